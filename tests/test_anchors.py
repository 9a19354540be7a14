import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, require_env

from platonic_mlip.anchors import (
    PAPER_N_ATOMS,
    anchor_table,
    check_published,
    direct_anchors,
    indices_from_table,
    overlap_report,
    random_anchors,
    read_published,
)


def blobs(n_clusters=6, per=80, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=20.0, size=(n_clusters, dim))
    labels = np.repeat(np.arange(n_clusters), per)
    x = centres[labels] + rng.normal(scale=0.5, size=(len(labels), dim))
    perm = rng.permutation(len(labels))
    return x[perm], labels[perm]


def test_direct_picks_one_anchor_per_cluster():
    x, labels = blobs()
    idx = direct_anchors(x, 6)
    assert len(idx) == 6
    assert sorted(labels[idx]) == list(range(6))


def test_direct_is_deterministic():
    x, _ = blobs(n_clusters=5, seed=3)
    np.testing.assert_array_equal(direct_anchors(x, 5), direct_anchors(x.copy(), 5))


def test_random_anchors_seeded_and_distinct():
    a = random_anchors(1000, 50, seed=1)
    assert len(np.unique(a)) == 50 and a.max() < 1000
    np.testing.assert_array_equal(a, random_anchors(1000, 50, seed=1))
    assert not np.array_equal(a, random_anchors(1000, 50, seed=2))


def test_bad_k():
    with pytest.raises(ValueError, match="k=0"):
        random_anchors(10, 0, 0)
    with pytest.raises(ValueError, match="k=20"):
        direct_anchors(np.zeros((10, 3)), 20)


def test_anchor_table_round_trip():
    atoms = pd.DataFrame(
        {
            "atom_index": range(6),
            "structure_index": [0, 0, 1, 1, 1, 2],
            "material_id": ["a", "a", "b", "b", "b", "c"],
            "atom_in_structure": [0, 1, 0, 1, 2, 0],
            "Z": [1, 8, 26, 26, 8, 14],
            "element": ["H", "O", "Fe", "Fe", "O", "Si"],
        }
    )
    t = anchor_table(np.array([1, 4]), atoms)
    assert list(t["material_id"]) == ["a", "b"] and list(t["atom_in_structure"]) == [1, 2]
    # the same anchors found in a dataset with another order
    shuffled = atoms.iloc[::-1].reset_index(drop=True).assign(atom_index=range(6))
    np.testing.assert_array_equal(indices_from_table(t, shuffled), [4, 1])
    with pytest.raises(KeyError, match="material_id a"):
        indices_from_table(t, atoms[atoms.material_id != "a"])


def test_shipped_published_anchors_are_the_papers_100():
    idx = read_published(ROOT / "resources" / "anchors" / "mp20_train_k100.txt")
    assert len(idx) == 100 and len(np.unique(idx)) == 100
    assert idx.min() >= 0 and idx.max() < PAPER_N_ATOMS
    check_published(idx, PAPER_N_ATOMS)


def test_read_published_names_the_bad_line(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("# header\n5\n\n7  # note\n")
    np.testing.assert_array_equal(read_published(f), [5, 7])
    f.write_text("# header\n5\nseven\n")
    with pytest.raises(ValueError, match="line 3.*'seven'"):
        read_published(f)
    f.write_text("5\n6\n5\n")
    with pytest.raises(ValueError, match="line 3.*twice"):
        read_published(f)
    with pytest.raises(ValueError, match="282,847 atoms.*9,047"):
        check_published(np.array([1, 2]), 9047)


def toy_atoms():
    return pd.DataFrame(
        {
            "atom_index": range(8),
            "structure_index": [0, 0, 1, 1, 2, 2, 3, 3],
            "element": ["O", "Fe", "O", "O", "Si", "O", "Li", "Li"],
        }
    )


def test_overlap_report_counts_atoms_structures_and_elements():
    r = overlap_report(np.array([0, 2, 4, 6]), np.array([1, 2, 5, 7]), toy_atoms())
    assert r["shared_atoms"] == 1 and r["shared_atom_indices"] == [2]
    assert r["jaccard_atoms"] == pytest.approx(1 / 7)
    assert r["shared_structures"] == 4 and r["shared_structures_fraction"] == 1.0
    # ours: O, O, Si, Li; published: Fe, O, O, Li -> O 2 + Li 1 shared
    assert r["element_overlap"] == 3 and r["element_overlap_fraction"] == 0.75
    same = overlap_report(np.array([1, 3]), np.array([3, 1]), toy_atoms())
    assert same["shared_atoms_fraction"] == 1.0 and same["jaccard_atoms"] == 1.0


def full_split_table(path):
    """A stand-in atom table with the full split's 282,847 rows (10 atoms per structure)."""
    n = PAPER_N_ATOMS
    z = np.resize([8, 26, 14, 3, 1], n)
    symbols = {8: "O", 26: "Fe", 14: "Si", 3: "Li", 1: "H"}
    pd.DataFrame(
        {
            "atom_index": np.arange(n),
            "structure_index": np.arange(n) // 10,
            "material_id": [f"mp-{i // 10}" for i in range(n)],
            "atom_in_structure": np.arange(n) % 10,
            "Z": z,
            "element": [symbols[v] for v in z],
        }
    ).to_csv(path, index=False)


def test_published_anchor_set_and_overlap_scripts(tmp_path):
    py = str(require_env("analysis"))
    atoms = tmp_path / "atoms.csv"
    full_split_table(atoms)
    published = ROOT / "resources" / "anchors" / "mp20_train_k100.txt"
    scripts = ROOT / "workflow" / "scripts"
    out = tmp_path / "published.csv"
    cmd = [py, scripts / "select_anchors.py", "--method", "published", "--k", "100", "--atoms", atoms]
    res = subprocess.run([*cmd, "--published", published, "--out", out], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(out)
    np.testing.assert_array_equal(table["atom_index"], read_published(published))
    assert (table["material_id"] == [f"mp-{i // 10}" for i in table["atom_index"]]).all()
    # our "DIRECT" here: 40 of the published atoms and 60 others
    ours = table.iloc[:40].copy()
    others = np.setdiff1d(np.arange(1000, 1100), table["atom_index"])[:60]
    ours = pd.concat([ours, pd.DataFrame({"atom_index": others})], ignore_index=True)
    ours["reference_model"] = "m"
    ours.to_csv(tmp_path / "direct.csv", index=False)
    report = tmp_path / "overlap.json"
    res = subprocess.run(
        [py, scripts / "anchor_overlap.py", "--atoms", atoms, "--ours", tmp_path / "direct.csv"]
        + ["--published", published, "--out", report],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    import json

    r = json.loads(report.read_text())
    assert r["shared_atoms"] == 40 and r["n_published"] == 100 and r["n_ours"] == 100
    # a table that is not the full split is refused, naming the config key
    small = tmp_path / "small.csv"
    pd.read_csv(atoms, nrows=5000).to_csv(small, index=False)
    res = subprocess.run(
        [*cmd[:-1], small, "--published", published, "--out", tmp_path / "x.csv"],
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0 and "anchors.published" in res.stderr and "282,847" in res.stderr
    assert not (tmp_path / "x.csv").exists()
