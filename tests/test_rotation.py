"""Rotational sensitivity (platonic_mlip.rotation, workflow/scripts/fig5g_rotational_sensitivity.py): an exactly
invariant feature map deviates at floating-point noise, a deliberately non-invariant one by the amount
geometry predicts; skipped probe structures are listed, never a crash."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from ase.neighborlist import neighbor_list
from conftest import ROOT
from test_probes import triclinic, write_run

from platonic_mlip import probes as pr
from platonic_mlip import rotation as rt
from platonic_mlip.projection import project_onto
from platonic_mlip.structures import load_structures

PROBE_SCRIPT = ROOT / "workflow" / "scripts" / "probe_structures.py"
SCRIPT = ROOT / "workflow" / "scripts" / "fig5g_rotational_sensitivity.py"
CUTOFF = 5.0
WIDTHS = (0.5, 1.0, 2.0)


def invariant_features(atoms, elements):
    """(n, len(elements) * len(WIDTHS)) per-atom, element-resolved sums of exp(-r / w) * fc(r) over the
    neighbours within CUTOFF (smooth cosine cutoff): a function of interatomic distances only."""
    i, j, d = neighbor_list("ijd", atoms, CUTOFF)
    fc = 0.5 * (np.cos(np.pi * d / CUTOFF) + 1.0)
    col = {z: k for k, z in enumerate(elements)}
    out = np.zeros((len(atoms), len(elements) * len(WIDTHS)))
    for w_i, w in enumerate(WIDTHS):
        cols = np.array([col[z] for z in atoms.numbers[j]]) * len(WIDTHS) + w_i
        np.add.at(out, (i, cols), np.exp(-d / w) * fc)
    return out


def cartesian_features(atoms, elements):
    """The invariant features with the Cartesian positions appended: not invariant under rotation."""
    return np.hstack([invariant_features(atoms, elements), atoms.positions])


def features(atoms_list, fn, elements):
    return np.vstack([fn(a, elements) for a in atoms_list])


def probe_set(parents, axes=("0,0,1", "1,1,1"), angles=(15.0, 90.0, 180.0)):
    probes = pr.rotation_probes(parents, axes, angles)
    return [p.atoms for p in probes], pr.probe_table(probes)


def test_an_invariant_feature_map_deviates_at_noise_and_a_cartesian_one_does_not():
    parents = [("BaCeO3", pr.bacec_o3()), ("t", triclinic())]
    atoms, table = probe_set(parents)
    elements = sorted({int(z) for a in atoms for z in a.numbers})
    inv = features(atoms, invariant_features, elements)
    dev = rt.rotation_deviations(inv, table, scale=1.0)
    assert len(dev) == sum(len(a) for _, a in parents) * 2 * 3
    assert dev["rel_dev"].max() < 1e-6
    assert set(dev["parent_set"]) == {"BaCeO3", "mp20"}
    cart = features(atoms, cartesian_features, elements)
    dev = rt.rotation_deviations(cart, table, scale=1.0)
    assert dev["rel_dev"].max() > 1.0


def test_deviation_of_positions_is_the_chord_of_the_rotation():
    """Feature = Cartesian position: ||R p - p|| = 2 sin(theta / 2) |p_perp| for a rotation about z."""
    t = triclinic()
    atoms, table = probe_set([("t", t)], axes=("0,0,1",), angles=(30.0, 90.0, 180.0))
    x = np.vstack([a.positions for a in atoms])
    scale = 2.5
    dev = rt.rotation_deviations(x, table, scale)
    for row in dev.itertuples():
        p = t.positions[row.atom_in_structure]
        expect = 2 * np.sin(np.deg2rad(row.angle_deg) / 2) * np.hypot(p[0], p[1]) / scale
        assert np.isclose(row.rel_dev, expect)
    assert len(dev) == 3 * len(t)


def test_per_atom_statistics_and_verdicts():
    dev = pd.DataFrame(
        {
            "parent": ["a"] * 4 + ["BaCeO3"] * 2,
            "parent_set": ["mp20"] * 4 + ["BaCeO3"] * 2,
            "material_id": ["a~1", "a~2", "a~1", "a~2", "B~1", "B~2"],
            "variant": ["z:1", "z:2"] * 3,
            "axis": ["0,0,1"] * 6,
            "angle_deg": [1.0, 2.0] * 3,
            "atom_in_structure": [0, 0, 1, 1, 0, 0],
            "atom_index": [0, 2, 1, 3, 4, 5],
            "element": ["O", "O", "Si", "Si", "Ba", "Ba"],
            "rel_dev": [3.0, 4.0, 0.0, 0.0, 1e-8, 2e-8],
        }
    )
    atoms = rt.per_atom(dev)
    a0 = atoms[(atoms["parent"] == "a") & (atoms["atom_in_structure"] == 0)].iloc[0]
    assert (
        a0["n_rotations"] == 2 and a0["max_rel_dev"] == 4.0 and np.isclose(a0["rms_rel_dev"], np.sqrt(12.5))
    )
    assert list(atoms.columns) == list(rt.ATOM_COLUMNS)
    s = rt.summarise(atoms, 1e-4, sets=["BaCeO3", "mp20", "other"]).set_index("parent_set")
    assert s.loc["BaCeO3", "invariant"] is True and s.loc["mp20", "invariant"] is False
    assert s.loc["mp20", "max_max_rel_dev"] == 4.0 and s.loc["mp20", "median_max_rel_dev"] == 2.0
    assert s.loc["other", "invariant"] is None and s.loc["other", "verdict"].startswith("not tested")
    assert s.loc["BaCeO3", "verdict"].startswith("invariant") and "not invariant" in s.loc["mp20", "verdict"]


def test_skipped_rows_are_left_out_and_a_missing_reference_is_an_error():
    parents = [("BaCeO3", pr.bacec_o3()), ("t", triclinic())]
    atoms, table = probe_set(parents, angles=(30.0, 60.0))
    x = np.vstack([a.positions for a in atoms])
    full = rt.rotation_deviations(x, table, 1.0)
    one = table.set_index("material_id").loc["t~rot:z:30"]
    x[one["atom_start"] : one["atom_stop"]] = np.nan  # a skipped rotated copy
    ref = table.set_index("material_id").loc["BaCeO3~identity"]
    x[ref["atom_start"] : ref["atom_stop"]] = np.nan  # a skipped reference: every BaCeO3 copy goes
    dev = rt.rotation_deviations(x, table, 1.0)
    assert "t~rot:z:30" not in set(dev["material_id"]) and "BaCeO3" not in set(dev["parent"])
    assert len(dev) == len(full) - 5 * 4 - 4
    with pytest.raises(ValueError, match="no identity copy"):
        rt.rotation_pairs(table[table["variant"] != "identity"])
    with pytest.raises(ValueError, match="scale"):
        rt.rotation_deviations(x, table, 0.0)


# --- the script, end to end on a synthetic run ------------------------------------------------------------


def write_model(folder, name, x, skipped=()):
    """Raw matrix and metadata of one model; ``skipped``: (material_id, atom_start, atom_stop) rows -> NaN."""
    x = np.array(x, dtype=np.float32)
    for _, a, b in skipped:
        x[a:b] = np.nan
    np.save(folder / f"{name}.npy", x)
    meta = {
        "model": name,
        "skipped": [
            {
                "material_id": m,
                "atom_start": int(a),
                "atom_stop": int(b),
                "elements": ["Xx"],
                "reason": "unsupported",
            }
            for m, a, b in skipped
        ],
    }
    (folder / f"{name}.json").write_text(json.dumps(meta))
    return folder / f"{name}.npy", folder / f"{name}.json"


def test_script_end_to_end_invariant_vs_cartesian_model_with_skips(tmp_path):
    npz, csv = write_run(tmp_path / "run")
    p = tmp_path / "probes"
    cmd = [sys.executable, str(PROBE_SCRIPT), "--structures", str(npz), "--atoms", str(csv)]
    cmd += ["--axes", "0,0,1", "1,1,1", "--angles", "30", "90", "--mp20-structures", "10"]
    cmd += ["--holdout-fraction", "0.2", "--n-perturbed", "2", "--seed", "1"]
    cmd += ["--out-structures", str(p / "structures.npz"), "--out-atoms", str(p / "atoms.csv")]
    cmd += ["--out-table", str(p / "probes.csv"), "--out-holdout", str(p / "holdout.csv")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    run_atoms, _ = load_structures(npz)
    probe_atoms, _ = load_structures(p / "structures.npz")
    table = pd.read_csv(p / "probes.csv", keep_default_na=False).set_index("material_id")
    elements = sorted({int(z) for a in run_atoms + probe_atoms for z in a.numbers})
    mp_parent = "mp-7"  # the low-symmetry structure: every run structure is a rotation parent

    def span(mid):
        return mid, int(table.loc[mid, "atom_start"]), int(table.loc[mid, "atom_stop"])

    emb, files = tmp_path / "emb", {}
    emb.mkdir()
    anchors = np.random.default_rng(0).choice(sum(len(a) for a in run_atoms), 6, replace=False)
    skips = {
        "inv": [span(f"{mp_parent}~rot:z:30")],  # one rotated copy
        "xyz": [span("BaCeO3~identity")],  # the reference: every BaCeO3 rotation is left without one
    }
    for name, fn in (("inv", invariant_features), ("xyz", cartesian_features)):
        x_run, x_probe = features(run_atoms, fn, elements), features(probe_atoms, fn, elements)
        raw = write_model(emb, name, x_run)
        praw = write_model(emb, f"probe-{name}", x_probe, skips[name])
        plat = emb / f"direct-{name}.npy"
        np.save(plat, project_onto(x_run, x_run[anchors]))
        pplat = emb / f"probe-direct-{name}.npy"
        np.save(pplat, project_onto(np.load(praw[0]), x_run[anchors]))
        files[name] = (*raw, plat, *praw, pplat)
    models = ["inv", "xyz"]
    out = tmp_path / "out"
    cmd = [sys.executable, str(SCRIPT), "--atoms", str(csv), "--probe-table", str(p / "probes.csv")]
    cmd += [
        "--probe-atoms",
        str(p / "atoms.csv"),
        "--models",
        *models,
        "--controls",
        "xyz",
        "--spaces",
        "direct",
    ]
    cmd += ["--labels", json.dumps({"inv": "Invariant", "xyz": "Cartesian"})]
    for flag, k in (("--raw", 0), ("--meta", 1), ("--platonic", 2), ("--probe-raw", 3), ("--probe-meta", 4)):
        cmd += [flag, *(str(files[m][k]) for m in models)]
    cmd += ["--probe-platonic", *(str(files[m][5]) for m in models), "--scale-pairs", "2000"]
    cmd += ["--out-csv", str(out / "atoms.csv"), "--out-summary", str(out / "summary.csv")]
    cmd += ["--out-skipped", str(out / "skipped.csv"), "--out-fig", str(out / "f.png"), str(out / "f.pdf")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr

    atoms = pd.read_csv(out / "atoms.csv")
    assert list(atoms.columns) == [
        "model", "label", "trained", "space", "parent", "parent_set", "atom_in_structure", "element",
        "n_rotations", "max_rel_dev", "rms_rel_dev",
    ]  # fmt: skip
    n_parent_atoms = table[table["variant"] == "identity"]["n_atoms"]
    assert len(atoms[(atoms["model"] == "inv") & (atoms["space"] == "raw")]) == n_parent_atoms.sum()
    inv_mp = atoms[(atoms["model"] == "inv") & (atoms["parent"] == mp_parent)]
    assert set(inv_mp["n_rotations"]) == {3}  # 4 rotations, one skipped
    summary = pd.read_csv(out / "summary.csv").set_index(["model", "space", "parent_set"])
    for space in ("raw", "direct"):
        for pset in ("BaCeO3", "mp20"):
            assert summary.loc[("inv", space, pset), "invariant"] == True  # noqa: E712
            assert summary.loc[("inv", space, pset), "max_max_rel_dev"] < 1e-5
        assert summary.loc[("xyz", space, "mp20"), "invariant"] == False  # noqa: E712
        assert summary.loc[("xyz", space, "mp20"), "max_max_rel_dev"] > 1e-2
        assert summary.loc[("xyz", space, "BaCeO3"), "verdict"].startswith("not tested")
    assert summary.loc[("xyz", "raw", "mp20"), "trained"] == False  # noqa: E712
    skipped = pd.read_csv(out / "skipped.csv")
    assert list(skipped.columns) == ["model", "material_id", "reason"]
    got = set(zip(skipped["model"], skipped["material_id"], strict=True))
    baceo3 = {m for m in table.index if m.startswith("BaCeO3~")}
    assert got == {("inv", f"{mp_parent}~rot:z:30")} | {("xyz", m) for m in baceo3}
    assert (out / "f.png").stat().st_size > 0 and (out / "f.pdf").stat().st_size > 0
