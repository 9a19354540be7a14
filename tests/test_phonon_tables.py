"""Phonon tables (analysis environment): disagreement, imaginary-mode tables, failure correlation; the
phonon report and structure scripts on synthetic inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from platonic_mlip.phonon_tables import (
    consensus_distance,
    disagreement_table,
    distortion_correlations,
    failure_correlation,
    frequency_disagreement,
    imaginary_table,
    orbit_spread,
    rotation_spread,
)

SCRIPTS = ROOT / "workflow" / "scripts"


def test_disagreement_is_the_rms_from_the_median_of_sorted_frequencies():
    base = np.arange(12.0).reshape(4, 3)
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(base.ravel()).reshape(4, 3)  # same distribution, other order
    out = frequency_disagreement({"a": base, "b": shuffled, "c": base + 1.0})
    # sorted a == sorted b == median: a and b are 0 away, c is 1 THz everywhere
    assert out == pytest.approx({"a": 0.0, "b": 0.0, "c": 1.0})
    two = frequency_disagreement({"a": base, "c": base + 1.0})  # median of two = mean
    assert two == pytest.approx({"a": 0.5, "c": 0.5})
    assert frequency_disagreement({"only": base}) == {"only": 0.0}


def test_disagreement_refuses_what_cannot_be_compared():
    with pytest.raises(ValueError, match="different sizes"):
        frequency_disagreement({"a": np.zeros(6), "b": np.zeros(9)})
    with pytest.raises(ValueError, match="model\\(s\\) b"):
        frequency_disagreement({"a": np.zeros(3), "b": np.array([0.0, np.nan, 1.0])})
    with pytest.raises(ValueError, match="no models"):
        frequency_disagreement({})


def test_disagreement_table_per_structure():
    mesh = {
        "m1": {"Cu": np.ones((2, 3)), "Si": np.zeros((2, 6))},
        "m2": {"Cu": np.ones((2, 3)) * 3},
    }
    t = disagreement_table(mesh)
    assert list(t.columns) == ["structure", "model", "n_models", "rms_from_median_THz"]
    cu = t[t.structure == "Cu"].set_index("model")["rms_from_median_THz"]
    assert cu.to_dict() == pytest.approx({"m1": 1.0, "m2": 1.0})
    si = t[t.structure == "Si"]
    assert len(si) == 1 and si.n_models.iloc[0] == 1 and si.rms_from_median_THz.iloc[0] == 0.0


def test_imaginary_table_pivots_and_refuses_duplicates():
    rows = pd.DataFrame(
        {"model": ["b", "b", "a", "a"], "structure": ["Cu", "Si", "Cu", "Si"], "n_imaginary": [0, 3, 1, 0]}
    )
    t = imaginary_table(rows)
    assert list(t.index) == ["b", "a"] and list(t.columns) == ["Cu", "Si"]
    assert t.loc["b", "Si"] == 3 and t.loc["a", "Cu"] == 1
    with pytest.raises(ValueError, match="duplicate"):
        imaginary_table(pd.concat([rows, rows.iloc[:1]]))
    with pytest.raises(ValueError, match="lacks column"):
        imaginary_table(rows.drop(columns="n_imaginary"))


def _frames(x, y):
    keys = [(m, s) for m in ("m1", "m2") for s in ("A", "B", "C", "D")][: len(x)]
    d = pd.DataFrame({"model": [k[0] for k in keys], "structure": [k[1] for k in keys], "distortion": x})
    f = pd.DataFrame({"model": [k[0] for k in keys], "structure": [k[1] for k in keys], "fail": y})
    return d, f


def test_correlation_of_a_monotone_relation_is_one():
    x = np.array([0.1, 0.5, 0.2, 0.9, 0.3, 0.7])
    d, f = _frames(x, np.exp(3 * x))  # monotone, not linear
    res = failure_correlation(d, f, "distortion", "fail")
    assert res["n"] == 6 and res["rho"] == pytest.approx(1.0) and res["p"] < 0.01
    res = failure_correlation(d, f.assign(fail=-f["fail"]), "distortion", "fail")
    assert res["rho"] == pytest.approx(-1.0)
    # unrelated values give a weak correlation (the test above can fail)
    d, f = _frames(x, np.array([3.0, 1.0, 2.0, 2.5, 0.5, 0.4]))
    assert abs(failure_correlation(d, f, "distortion", "fail")["rho"]) < 0.9


def test_correlation_joins_on_keys_and_drops_missing():
    d, f = _frames(np.arange(6.0), np.arange(6.0) ** 2)
    f = f.iloc[::-1].reset_index(drop=True)  # order does not matter: rows are matched on keys
    f.loc[0, "fail"] = np.nan
    res = failure_correlation(d, f.iloc[:5], "distortion", "fail")
    assert res["n"] == 4 and res["rho"] == pytest.approx(1.0)
    small = failure_correlation(d.iloc[:2], f, "distortion", "fail")
    assert small["n"] == 2 and np.isnan(small["rho"]) and np.isnan(small["p"])
    with pytest.raises(ValueError, match="failure table lacks"):
        failure_correlation(d, f, "distortion", "nope")
    with pytest.raises(ValueError, match="distortion table has duplicate"):
        failure_correlation(pd.concat([d, d]), f, "distortion", "fail")


def _fake_phonon_outputs(tmp_path, model, shift):
    """A phonons.py-like CSV and npz for two structures (fcc-like path with a break)."""
    x = np.linspace(0, 2.0, 21)
    seg = (np.arange(21) >= 11).astype(np.int64)
    x[11:] -= x[11] - x[10]
    arrays, rows = {}, []
    for i, s in enumerate(["Cu", "BaCeO3"]):
        freqs = np.stack([np.sin(x) * 5 + shift, np.sin(x) * 5 + 1, np.cos(x) * 2 + 3], axis=1)
        arrays.update(
            {
                f"s{i}_distances": x,
                f"s{i}_frequencies": freqs,
                f"s{i}_segments": seg,
                f"s{i}_label_x": np.array([0.0, x[10], x[-1]]),
                f"s{i}_labels": np.array(["Γ", "K|U", "X"]),
                f"s{i}_mesh_frequencies": np.sin(x[:8, None] * np.arange(1, 4)) + shift,  # uniform shift
            }
        )
        arrays[f"s{i}_platonic"] = np.full((2, 3), 0.5 + shift * (i + 1))  # 2 atoms, K = 3
        rows.append(
            dict(
                model=model,
                structure=s,
                n_imaginary=i * 3,
                min_frequency_THz=-i * 1.5 + shift,
                acoustic_gamma_max_THz=0.01 + shift,
                sym_spread=0.1 * i + shift,
                rot_spread=0.01,
            )
        )
    np.savez(tmp_path / f"{model}.npz", structures=np.array(["Cu", "BaCeO3"]), **arrays)
    pd.DataFrame(rows).to_csv(tmp_path / f"{model}.csv", index=False)


def test_phonon_report_script(tmp_path):
    _fake_phonon_outputs(tmp_path, "m1", 0.0)
    _fake_phonon_outputs(tmp_path, "m2", 0.5)
    pd.DataFrame(
        {"model": ["A", "A", "B", "B"], "structure": ["Cu", "BaCeO3"] * 2, "distortion": [0.1, 0.4, 0.2, 0.3]}
    ).to_csv(tmp_path / "dist.csv", index=False)
    out = {k: tmp_path / f"out.{k}" for k in ("png", "pdf", "imag", "dis", "json")}
    cmd = [sys.executable, str(SCRIPTS / "phonon_report.py"), "--csv", "m1.csv", "m2.csv"]
    cmd += ["--npz", "m1.npz", "m2.npz", "--labels", "A", "B", "--distortion", "dist.csv"]
    cmd += ["--out-png", out["png"], "--out-pdf", out["pdf"], "--out-imaginary", out["imag"]]
    cmd += ["--out-disagreement", out["dis"], "--out-correlation", out["json"]]
    cmd += ["--consensus", "A", "--out-distortion", "d.csv", "--out-distortion-correlation", "c.csv"]
    res = subprocess.run([str(c) for c in cmd], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    dist = pd.read_csv(tmp_path / "d.csv").set_index(["model", "structure"])
    assert dist.loc[("A", "Cu"), "platonic_distance"] == 0 and dist.loc[("A", "Cu"), "consensus_member"]
    assert dist.loc[("B", "BaCeO3"), "platonic_distance"] == pytest.approx(1.0)  # 0.5 + 0.5 * 2 - 0.5
    assert dist.loc[("B", "Cu"), "sym_spread"] == 0.5 and not dist.loc[("B", "Cu"), "consensus_member"]
    corr_table = pd.read_csv(tmp_path / "c.csv")
    assert len(corr_table) == 9 and set(corr_table.n) == {4}
    assert corr_table.set_index(["distortion", "failure"]).loc[("rot_spread", "n_imaginary"), "rho"] != 0.0
    assert out["png"].stat().st_size > 1000 and out["pdf"].stat().st_size > 1000
    imag = pd.read_csv(out["imag"]).set_index("model")
    assert imag.loc["B", "BaCeO3"] == 3 and imag.loc["A", "Cu:min_THz"] == 0.0
    dis = pd.read_csv(out["dis"])
    assert set(dis.model) == {"A", "B"} and np.allclose(dis.rms_from_median_THz, 0.25)
    corr = json.loads(out["json"].read_text())
    assert corr["n"] == 4 and corr["failure_col"] == "min_frequency_THz"
    # mismatched inputs are refused with a clear message
    bad = [str(c) for c in cmd[:4]] + ["--npz", "m1.npz"] + [str(c) for c in cmd[7:]]
    res = subprocess.run(bad, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "one of each per model" in res.stderr


def test_phonon_structures_script(tmp_path):
    from ase.build import bulk
    from ase.io import read

    from platonic_mlip.structures import save_structures

    run_atoms = [
        bulk("Cu", "fcc", a=3.6),
        bulk("Si", "diamond", a=5.43),
        bulk("Cu", "fcc", a=3.6, cubic=True),
    ]
    npz = tmp_path / "structures.npz"
    save_structures(npz, run_atoms, ["mp-1", "mp-2", "mp-3"])
    out = tmp_path / "ph.extxyz"
    cmd = [sys.executable, str(SCRIPTS / "phonon_structures.py"), "--structures", str(npz), "--n-run", "5"]
    cmd += ["--max-atoms", "2", "--lattice", "Cu=3.7", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    got = read(out, index=":")
    names = [a.info["name"] for a in got]
    assert names == ["Cu", "Au", "BaCeO3", "Si", "NaCl", "mp-1", "mp-2"]  # mp-3 has 4 atoms
    assert got[0].cell.lengths() == pytest.approx([3.7 / np.sqrt(2)] * 3)
    assert len(got[2]) == 5 and got[5].info["kind"] == "run"
    res = subprocess.run(cmd[:-2] + ["--lattice", "Xx=3", "--out", str(out)], capture_output=True, text=True)
    assert res.returncode != 0 and "unknown structure" in res.stderr


def test_orbit_and_rotation_spread():
    e = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [2.0, 0.0]])  # norms 1, 1, 2, 2: mean 1.5
    # orbit {0, 1}: deviations (0.5, -0.5) and (-0.5, 0.5), squared 0.5 each; orbit {2, 3}: 0
    assert orbit_spread(e, [0, 0, 2, 2]) == pytest.approx(np.sqrt(1.0 / 4) / 1.5)
    assert orbit_spread(e, [0, 1, 2, 3]) == 0.0  # every atom alone in its orbit
    with pytest.raises(ValueError, match="do not fit"):
        orbit_spread(e, [0, 0])
    with pytest.raises(ValueError, match="zero norm"):
        orbit_spread(np.zeros((2, 3)), [0, 0])
    r = e.copy()
    r[1] = [0.0, 1.3]
    assert rotation_spread(e, r) == pytest.approx(0.3 / 1.5)
    assert rotation_spread(e, e) == 0.0
    with pytest.raises(ValueError, match="differ"):
        rotation_spread(e, e[:2])


def test_consensus_distance_against_the_median_of_trained_models():
    vec = {
        "a": {"Cu": np.array([[0.0, 0.0], [0.0, 0.0]]), "Si": np.zeros((1, 2))},
        "b": {"Cu": np.array([[1.0, 1.0], [1.0, 1.0]])},
        "c": {"Cu": np.array([[2.0, 0.0], [2.0, 0.0]]), "Si": np.ones((1, 2))},
        "ft": {"Cu": np.array([[1.0, 3.0], [1.0, 3.0]])},
    }
    d = consensus_distance(vec, ["a", "b", "c"]).set_index(["model", "structure"])
    # median of (0,0), (1,1), (2,0) = (1, 0)
    assert d.loc[("a", "Cu"), "platonic_distance"] == pytest.approx(np.sqrt(0.5))
    assert d.loc[("ft", "Cu"), "platonic_distance"] == pytest.approx(np.sqrt(4.5))
    assert d.loc[("a", "Si"), "n_consensus"] == 2 and d.loc[("c", "Si"), "platonic_distance"] == 0.5
    with pytest.raises(ValueError, match="consensus model"):
        consensus_distance(vec, ["zz"])
    with pytest.raises(ValueError, match="different lengths"):
        consensus_distance({"a": {"Cu": np.zeros((1, 2))}, "b": {"Cu": np.zeros((1, 3))}}, ["a"])


def test_distortion_correlations_covers_every_pair():
    t = pd.DataFrame(
        {
            "model": list("aabbcc"),
            "structure": ["Cu", "Si"] * 3,
            "sym_spread": [0.1, 0.2, 0.3, 0.45, 0.5, 0.75],
            "platonic_distance": [1, 2, 3, 4, 5, 6],
            "n_imaginary": [0, 1, 2, 4, 5, 9],
            "min_frequency_THz": [0, 0, 0, 0, 0, 0],
        }
    )
    c = distortion_correlations(t).set_index(["distortion", "failure"])
    assert len(c) == 4  # rot_spread and acoustic_gamma_max_THz are absent
    assert c.loc[("sym_spread", "n_imaginary"), "rho"] == pytest.approx(1.0)
    assert np.isnan(c.loc[("platonic_distance", "min_frequency_THz"), "rho"])  # constant failure
    assert (c.n == 6).all()
    # within structures (minus the median): Cu -0.2, 0, 0.2 vs -2, 0, 3; Si -0.25, 0, 0.3 vs -3, 0, 5
    assert c.loc[("sym_spread", "n_imaginary"), "rho_within"] == pytest.approx(1.0)
    noisy = distortion_correlations(t, floor=1.0).set_index(["distortion", "failure"])
    assert np.isnan(noisy.loc[("sym_spread", "n_imaginary"), "rho"])  # all below the floor: constant 0
    assert noisy.loc[("platonic_distance", "n_imaginary"), "rho"] == pytest.approx(1.0)
