"""Zero-shot model stitching (platonic_mlip.stitching, workflow/scripts/zero_shot_stitching.py) and the
property table (workflow/scripts/structure_properties.py): known-answer cases."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from platonic_mlip.chemistry import group_of
from platonic_mlip.projection import project
from platonic_mlip.stitching import (
    CLASSIFY,
    REGRESS,
    Split,
    atom_split,
    pool,
    split_structures,
    stitch,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
#: Li Na K Mg Ca Al O S Cl Fe Ni Cu Zn, and La (f-block: no group)
ELEMENTS = np.array([3, 11, 19, 12, 20, 13, 8, 16, 17, 26, 28, 29, 30, 57])
#: structures model U skipped in the script tests: a training one and a held-out one (split seed 0)
SKIPPED = (
    int(np.flatnonzero(~split_structures(120, 0.25, 0))[0]),
    int(np.flatnonzero(split_structures(120, 0.25, 0))[0]),
)


def toy_run(n_struct=120, per=6, d=16, seed=0):
    """Atoms of ``n_struct`` structures: raw vectors = element vector + structure vector + noise; a
    property linear in the structure's mean raw vector."""
    rng = np.random.default_rng(seed)
    numbers = rng.choice(ELEMENTS, n_struct * per)
    sidx = np.repeat(np.arange(n_struct), per)
    emb = {z: 2.0 * rng.normal(size=d) for z in ELEMENTS}
    x = (
        np.array([emb[z] for z in numbers])
        + rng.normal(size=(n_struct, d))[sidx]
        + 0.3 * rng.normal(size=(len(sidx), d))
    )
    prop = pool(x, sidx, n_struct) @ rng.normal(size=d) + 0.05 * rng.normal(size=n_struct)
    return x, numbers, sidx, prop


def platonic(x, n_anchors=48, seed=1):
    anchors = np.random.default_rng(seed).choice(len(x), n_anchors, replace=False)
    return project(x, anchors, out_dtype=np.float64)


def splits(spaces: dict, numbers, sidx, prop, seed=0):
    n_struct = int(sidx.max()) + 1
    test_s = split_structures(n_struct, 0.25, seed)
    groups = np.array([group_of(int(z)) or 0 for z in numbers])
    train, test = atom_split(sidx, test_s, groups > 0, max_train=400, seed=seed)
    atom = {m: Split(x[train], groups[train], x[test], groups[test]) for m, x in spaces.items()}
    tr_s, te_s = np.flatnonzero(~test_s), np.flatnonzero(test_s)
    struct = {}
    for m, x in spaces.items():
        pooled = pool(x, sidx, n_struct)
        struct[m] = Split(pooled[tr_s], prop[tr_s], pooled[te_s], prop[te_s])
    return atom, struct


def by_pair(rows):
    return {(r["source"], r["target"]): r for r in rows}


def test_split_by_structure_keeps_every_structure_on_one_side():
    _, numbers, sidx, _ = toy_run()
    test_s = split_structures(120, 0.25, 0)
    assert test_s.sum() == 30
    np.testing.assert_array_equal(test_s, split_structures(120, 0.25, 0))
    assert not np.array_equal(test_s, split_structures(120, 0.25, 1))
    labelled = np.array([group_of(int(z)) is not None for z in numbers])
    train, test = atom_split(sidx, test_s, labelled, max_train=300, seed=0)
    assert len(train) == 300 and len(np.intersect1d(train, test)) == 0
    assert not set(sidx[train]) & set(sidx[test])
    assert set(sidx[test]) == set(np.flatnonzero(test_s)) and test_s[sidx[test]].all()
    assert labelled[train].all() and labelled[test].all()
    assert len(test) == int((labelled & test_s[sidx]).sum())  # every held-out atom is scored


def test_rotated_copy_stitches_perfectly():
    x, numbers, sidx, prop = toy_run()
    q, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(16, 16)))
    plat_a, plat_b = platonic(x), platonic(x @ q)
    np.testing.assert_allclose(plat_a, plat_b, atol=1e-12)  # cosines to the same anchor atoms
    atom, struct = splits({"A": plat_a, "B": plat_b}, numbers, sidx, prop)
    for kind, data in ((CLASSIFY, atom), (REGRESS, struct)):
        rows = by_pair(stitch(kind, data))
        assert len(rows) == 4
        for pair, r in rows.items():
            assert r["score_transfer"] == pytest.approx(r["score_own"], abs=1e-9), (kind, pair)
            assert r["score_transfer_target_scaled"] == pytest.approx(r["score_own"], abs=1e-9)
        own = rows[("A", "B")]["score_own"]
        assert own > rows[("A", "B")]["score_baseline"] + 0.3  # the readouts do learn something
    # raw space: the same rotation breaks the readout
    atom_raw, _ = splits({"A": x, "B": x @ q}, numbers, sidx, prop)
    r = by_pair(stitch(CLASSIFY, atom_raw))[("A", "B")]
    assert r["score_own"] > 0.9 and r["score_transfer"] < r["score_own"] - 0.3


def test_unrelated_target_falls_to_baseline():
    x, numbers, sidx, prop = toy_run()
    plat = platonic(x)
    shuffled = plat[np.random.default_rng(3).permutation(len(plat))]  # same distribution, no relation
    atom, struct = splits({"A": plat, "C": shuffled}, numbers, sidx, prop)
    r = by_pair(stitch(CLASSIFY, atom))[("A", "C")]
    assert r["score_own"] < r["score_baseline"] + 0.15  # C's own readout cannot learn either
    assert r["score_transfer"] < r["score_baseline"] + 0.1
    assert by_pair(stitch(CLASSIFY, atom))[("A", "A")]["score_own"] > 0.9
    s = by_pair(stitch(REGRESS, struct))[("A", "C")]
    assert s["score_transfer"] < 0.2 and s["score_baseline"] < 0.05


def test_widths_differ_gives_nan_and_a_note():
    x, numbers, sidx, prop = toy_run()
    atom, _ = splits({"A": x, "W": x[:, :8]}, numbers, sidx, prop)
    r = by_pair(stitch(CLASSIFY, atom))[("A", "W")]
    assert np.isnan(r["score_transfer"]) and "widths differ (16 vs 8)" in r["note"]
    assert np.isfinite(r["score_own"])


# --- the scripts ---------------------------------------------------------------------------------------


def write_run(tmp_path):
    """Models A, B = A rotated (raw width 16), U (untrained, width 8, unrelated), which skipped a training
    and a held-out structure (``SKIPPED``)."""
    x, numbers, sidx, prop = toy_run()
    n = len(numbers)
    ids = np.array([f"s{s}" for s in sidx])
    pd.DataFrame(
        {
            "atom_index": np.arange(n),
            "structure_index": sidx,
            "material_id": ids,
            "atom_in_structure": np.arange(n) % 6,
            "Z": numbers,
            "element": "X",
            "spacegroup": -1,
        }
    ).to_csv(tmp_path / "atoms.csv", index=False)
    rng = np.random.default_rng(9)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    raws = {"A": x, "B": x @ q, "U": rng.normal(size=(n, 8))}
    anchors = rng.choice(n, 40, replace=False)
    raw, meta, plat = [], [], []
    for m, r in raws.items():
        skipped = []
        if m == "U":
            r = r.copy()
            for k in SKIPPED:
                rows = np.flatnonzero(sidx == k)
                r[rows] = np.nan
                skipped.append(
                    {"material_id": f"s{k}", "atom_start": int(rows[0]), "atom_stop": int(rows[-1]) + 1}
                )
        p = project(np.nan_to_num(r), anchors)
        p[np.isnan(r[:, 0])] = np.nan
        for name, arr in ((f"{m}.npy", r.astype(np.float32)), (f"{m}_p.npy", p)):
            np.save(tmp_path / name, arr)
        (tmp_path / f"{m}.json").write_text(json.dumps({"skipped": skipped}))
        raw.append(str(tmp_path / f"{m}.npy"))
        meta.append(str(tmp_path / f"{m}.json"))
        plat.append(str(tmp_path / f"{m}_p.npy"))
    args = ["--atoms", str(tmp_path / "atoms.csv"), "--models", "A", "B", "U", "--controls", "U"]
    args += ["--spaces", "direct", "--raw", *raw, "--meta", *meta, "--platonic", *plat]
    return args, [f"s{i}" for i in range(int(sidx.max()) + 1)], prop


def run_script(name, *args):
    res = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_stitching_script_with_properties(tmp_path):
    args, ids, prop = write_run(tmp_path)
    pd.DataFrame({"material_id": ids, "formation_energy_per_atom": prop, "band_gap": np.abs(prop)}).to_csv(
        tmp_path / "props.csv", index=False
    )
    out = ["--properties", str(tmp_path / "props.csv"), "--max-train-atoms", "300"]
    out += [
        "--out-csv",
        str(tmp_path / "s.csv"),
        "--out-fig",
        str(tmp_path / "s.png"),
        str(tmp_path / "s.pdf"),
    ]
    run_script("zero_shot_stitching.py", *args, *out)
    table = pd.read_csv(tmp_path / "s.csv")
    assert set(table["task"]) == {"element_group", "formation_energy_per_atom", "band_gap"}
    assert not table["note"].fillna("").str.startswith("skipped").any()
    assert len(table) == 3 * 2 * 9  # tasks x spaces x ordered pairs
    t = table.set_index(["task", "space", "source_model", "target_model"])
    for task in ("element_group", "formation_energy_per_atom"):
        r = t.loc[(task, "direct", "A", "B")]
        assert r["score_transfer"] == pytest.approx(r["score_own"], abs=1e-5)
    assert np.isnan(t.loc[("element_group", "raw", "A", "U"), "score_transfer"])
    # U skipped a training and a held-out structure: counted on U's side only (structures in the
    # structure tasks; in the atom task, the held-out structure's atoms that have a group)
    prop_rows = table[table["task"] == "formation_energy_per_atom"]
    not_u = prop_rows[(prop_rows["source_model"] != "U") & (prop_rows["target_model"] != "U")]
    assert (not_u[["n_skipped_source", "n_skipped_target"]] == 0).all().all()
    assert (prop_rows.loc[prop_rows["source_model"] == "U", "n_skipped_source"] == 1).all()
    assert (prop_rows.loc[prop_rows["target_model"] == "U", "n_skipped_target"] == 1).all()
    numbers, sidx = toy_run()[1:3]
    expect = sum(group_of(int(z)) is not None for z in numbers[sidx == SKIPPED[1]])
    atom_rows = table[(table["task"] == "element_group") & (table["target_model"] == "U")]
    assert expect > 0 and (atom_rows["n_skipped_target"] == expect).all()
    assert (atom_rows["n_test"] == atom_rows["n_test"].max()).all()
    a_rows = table[(table["task"] == "element_group") & (table["target_model"] == "A")]
    assert set(a_rows["n_test"]) == {int(atom_rows["n_test"].iloc[0]) + expect}
    assert (tmp_path / "s.png").stat().st_size > 0


def test_stitching_script_lists_missing_properties_as_skipped(tmp_path):
    args, ids, _ = write_run(tmp_path)
    pd.DataFrame({"material_id": ids}).to_csv(tmp_path / "props.csv", index=False)
    out = ["--properties", str(tmp_path / "props.csv"), "--max-train-atoms", "300"]
    out += ["--out-csv", str(tmp_path / "s.csv"), "--out-fig", str(tmp_path / "s.png")]
    res = run_script("zero_shot_stitching.py", *args, *out)
    table = pd.read_csv(tmp_path / "s.csv")
    skipped = table[table["note"].fillna("").str.startswith("skipped")]
    assert sorted(skipped["task"]) == ["band_gap", "formation_energy_per_atom"]
    assert skipped["note"].str.contains("has no column").all() and skipped["score_transfer"].isna().all()
    assert set(table["task"]) == {"element_group", "band_gap", "formation_energy_per_atom"}
    assert "task band_gap skipped" in res.stdout


def test_structure_properties_mp20_csv_in_run_order(tmp_path):
    src = tmp_path / "train.csv"
    src.write_text(
        "\ufeff,material_id,formation_energy_per_atom,band_gap,cif\n"
        '0,mp-2,-1.5,0.0,"data_x"\n'
        '1,mp-1,n/a,2.5,"data_y"\n'
        '2,mp-9,-3.0,1.0,"data_z"\n'
    )
    pd.DataFrame({"structure_index": [0, 0, 1, 2], "material_id": ["mp-1", "mp-1", "mp-2", "mp-3"]}).to_csv(
        tmp_path / "atoms.csv", index=False
    )
    res = run_script(
        "structure_properties.py",
        "--source",
        str(src),
        "--atoms",
        str(tmp_path / "atoms.csv"),
        "--out",
        str(tmp_path / "p.csv"),
    )
    p = pd.read_csv(tmp_path / "p.csv")
    assert p.columns.tolist() == ["material_id", "formation_energy_per_atom", "band_gap"]
    assert p["material_id"].tolist() == ["mp-1", "mp-2", "mp-3"]
    np.testing.assert_array_equal(p["formation_energy_per_atom"].to_numpy(), [np.nan, -1.5, np.nan])
    np.testing.assert_array_equal(p["band_gap"].to_numpy(), [2.5, 0.0, np.nan])
    assert (
        "1 value(s) that are not numbers" in res.stdout
        and "1 structure(s) of the run not found" in res.stdout
    )
    assert "not in the source: e_above_hull" in res.stdout


def test_structure_properties_cif_dir_and_extxyz(tmp_path):
    from ase import Atoms
    from ase.io import write

    pd.DataFrame({"structure_index": [0, 1], "material_id": ["a", "b"]}).to_csv(
        tmp_path / "atoms.csv", index=False
    )
    (tmp_path / "cifs").mkdir()
    run_script(
        "structure_properties.py",
        "--source",
        str(tmp_path / "cifs"),
        "--atoms",
        str(tmp_path / "atoms.csv"),
        "--out",
        str(tmp_path / "p.csv"),
    )
    assert pd.read_csv(tmp_path / "p.csv").columns.tolist() == ["material_id"]
    frames = []
    for mid, gap in (("b", 1.25), ("a", 0.5)):
        atoms = Atoms("H", positions=[[0, 0, 0]], cell=[3, 3, 3], pbc=True)
        atoms.info.update(material_id=mid, band_gap=gap)
        frames.append(atoms)
    write(tmp_path / "s.extxyz", frames, format="extxyz")
    run_script(
        "structure_properties.py",
        "--source",
        str(tmp_path / "s.extxyz"),
        "--atoms",
        str(tmp_path / "atoms.csv"),
        "--out",
        str(tmp_path / "q.csv"),
    )
    q = pd.read_csv(tmp_path / "q.csv")
    assert q.columns.tolist() == ["material_id", "band_gap"] and q["band_gap"].tolist() == [0.5, 1.25]
