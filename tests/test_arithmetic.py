"""Element analogies by embedding arithmetic (platonic_mlip.arithmetic, workflow/scripts/embedding_arithmetic.py):
known-answer cases."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from platonic_mlip.arithmetic import (
    analogy_accuracy,
    analogy_pairs,
    element_centroids,
    loo_offsets,
    permutations,
    shuffled_accuracies,
    summarise,
)
from platonic_mlip.chemistry import group_of, period_of
from platonic_mlip.projection import project

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "workflow" / "scripts" / "embedding_arithmetic.py"

#: groups 1, 2 and 13-17 of periods 2-5: 7 pairs per transition 2->3, 3->4, 4->5
ELEMENTS = [
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    19,
    20,
    31,
    32,
    33,
    34,
    35,
    37,
    38,
    49,
    50,
    51,
    52,
    53,
]


def additive_atoms(d=24, per=8, noise=0.01, seed=0):
    """Atoms whose element centroid is (group vector + period vector): every analogy holds exactly."""
    rng = np.random.default_rng(seed)
    g_vec = {g: rng.normal(size=d) for g in {group_of(z) for z in ELEMENTS}}
    p_vec = {p: 2.0 * rng.normal(size=d) for p in {period_of(z) for z in ELEMENTS}}
    numbers = np.repeat(ELEMENTS, per)
    centre = np.array([g_vec[group_of(z)] + p_vec[period_of(z)] for z in numbers])
    return centre + noise * rng.normal(size=centre.shape), numbers


def test_analogy_pairs_same_group_next_period():
    # Li Na K (group 1), F Cl (17), La (no group), Fe (8, period 4 only)
    pairs = analogy_pairs([3, 11, 19, 9, 17, 57, 26])
    got = {
        (int(pairs.elements[s]), int(pairs.elements[t]), int(p)) for s, t, p in zip(*pairs[1:], strict=True)
    }
    assert got == {(3, 11, 2), (9, 17, 2), (11, 19, 3)}


def test_element_centroids_means_and_min_atoms():
    x = np.array([[0.0, 0.0], [2.0, 2.0], [1.0, 5.0], [3.0, 5.0], [5.0, 5.0], [9.0, 9.0]])
    z = np.array([8, 8, 26, 26, 26, 1])
    elements, cent, counts = element_centroids(x, z, min_atoms=2)
    assert elements.tolist() == [8, 26]  # H has one atom: left out
    np.testing.assert_allclose(cent, [[1.0, 1.0], [3.0, 5.0]])
    assert counts.tolist() == [2, 3]


def test_leave_one_out_offset_excludes_the_query():
    # two pairs in one transition: each query's offset is the other pair's difference
    cent = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [10.0, 3.0]])  # Li, Na, F, Cl
    pairs = analogy_pairs([3, 11, 9, 17])
    offsets, usable = loo_offsets(cent, pairs)
    assert usable.all()
    by_src = {int(pairs.elements[s]): o for s, o in zip(pairs.source, offsets, strict=True)}
    np.testing.assert_allclose(by_src[3], [0.0, 3.0])  # Li uses F -> Cl
    np.testing.assert_allclose(by_src[9], [1.0, 0.0])  # F uses Li -> Na


def test_single_pair_transition_is_not_scored():
    pairs = analogy_pairs([3, 11, 19, 9, 17])  # 2->3: Li-Na, F-Cl; 3->4: Na-K only
    n, _, retrieved = analogy_accuracy(np.random.default_rng(0).normal(size=(5, 3)), pairs)
    assert n == 2
    assert (retrieved[pairs.transition == 3] == -1).all()


def test_additive_centroids_give_accuracy_one_and_shuffled_low():
    x, z = additive_atoms()
    elements, cent, _ = element_centroids(x, z, 5)
    pairs = analogy_pairs(elements)
    n, acc, _ = analogy_accuracy(cent, pairs)
    assert n == len(pairs) == 21
    assert acc == 1.0
    shuffled = shuffled_accuracies(x, z, permutations(len(z), 10, 0), 5)
    mean, lo, hi = summarise(shuffled)
    assert len(shuffled) == 10 and hi < 0.3 and mean < 0.15


def test_no_structure_gives_chance():
    rng = np.random.default_rng(3)
    z = np.repeat(ELEMENTS, 8)
    x = rng.normal(size=(len(z), 24))
    elements, cent, _ = element_centroids(x, z, 5)
    assert analogy_accuracy(cent, analogy_pairs(elements))[1] < 0.3


def test_rotated_copy_transfer_platonic_equals_self_raw_does_not():
    x, z = additive_atoms(noise=0.3, seed=1)
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(x.shape[1], x.shape[1])))
    x_b = x @ q  # model B: an exactly rotated copy of model A
    elements, cent_a, _ = element_centroids(x, z, 5)
    _, cent_b, _ = element_centroids(x_b, z, 5)
    pairs = analogy_pairs(elements)
    _, self_raw, _ = analogy_accuracy(cent_a, pairs)
    _, transfer_raw, _ = analogy_accuracy(cent_b, pairs, offsets_from=cent_a)
    assert self_raw == 1.0
    assert transfer_raw < 0.5  # A's offset is not a direction of B's coordinates
    anchors = np.random.default_rng(4).choice(len(z), 40, replace=False)
    plat_a = project(x, anchors, out_dtype=np.float64)
    plat_b = project(x_b, anchors, out_dtype=np.float64)
    np.testing.assert_allclose(plat_a, plat_b, atol=1e-12)
    _, pc_a, _ = element_centroids(plat_a, z, 5)
    _, pc_b, _ = element_centroids(plat_b, z, 5)
    n_self, self_plat, ret_self = analogy_accuracy(pc_b, pairs)
    n_tr, transfer_plat, ret_tr = analogy_accuracy(pc_b, pairs, offsets_from=pc_a)
    assert n_tr == n_self and transfer_plat == self_plat
    np.testing.assert_array_equal(ret_tr, ret_self)
    assert self_plat > 0.5  # the equality is not that of two failures


def test_transfer_between_widths_is_refused():
    pairs = analogy_pairs([3, 11, 9, 17])
    with pytest.raises(ValueError, match="offsets from"):
        analogy_accuracy(np.zeros((4, 3)), pairs, offsets_from=np.zeros((4, 5)))


# --- the script ----------------------------------------------------------------------------------------


def write_run(tmp_path, skip_structure: int | None = 2):
    """A run of three models: A (width 24), B = A rotated (24), C (width 16, unrelated); one Platonic
    space; model C skipped the structure ``skip_structure``."""
    x, z = additive_atoms(noise=0.3, seed=5)
    rng = np.random.default_rng(6)
    n = len(z)
    structure = np.arange(n) // 4
    atoms = pd.DataFrame(
        {
            "atom_index": np.arange(n),
            "structure_index": structure,
            "material_id": [f"s{s}" for s in structure],
            "atom_in_structure": np.arange(n) % 4,
            "Z": z,
            "element": ["X"] * n,
            "spacegroup": -1,
        }
    )
    atoms.to_csv(tmp_path / "atoms.csv", index=False)
    q, _ = np.linalg.qr(rng.normal(size=(24, 24)))
    raws = {"A": x, "B": x @ q, "C": rng.normal(size=(n, 16))}
    anchors = rng.choice(n, 30, replace=False)
    args = ["--models", "A", "B", "C", "--controls", "C", "--labels", json.dumps({"A": "model A"})]
    args += ["--spaces", "direct", "--atoms", str(tmp_path / "atoms.csv")]
    raw, meta, plat = [], [], []
    for m, r in raws.items():
        skipped = []
        if m == "C" and skip_structure is not None:
            rows = np.flatnonzero(structure == skip_structure)
            r = r.copy()
            r[rows] = np.nan
            skipped = [
                {
                    "material_id": f"s{skip_structure}",
                    "atom_start": int(rows[0]),
                    "atom_stop": int(rows[-1]) + 1,
                }
            ]
        np.save(tmp_path / f"{m}.npy", r.astype(np.float32))
        (tmp_path / f"{m}.json").write_text(json.dumps({"skipped": skipped}))
        p = project(np.nan_to_num(r), anchors)
        p[np.isnan(r[:, 0])] = np.nan
        np.save(tmp_path / f"{m}_direct.npy", p)
        raw.append(str(tmp_path / f"{m}.npy"))
        meta.append(str(tmp_path / f"{m}.json"))
        plat.append(str(tmp_path / f"{m}_direct.npy"))
    return args + ["--raw", *raw, "--meta", *meta, "--platonic", *plat]


def test_script_tables_and_figure(tmp_path):
    args = write_run(tmp_path)
    out = [
        "--shuffles",
        "5",
        "--out-csv",
        str(tmp_path / "a.csv"),
        "--out-transfer",
        str(tmp_path / "t.csv"),
        "--out-fig",
        str(tmp_path / "a.png"),
        str(tmp_path / "a.pdf"),
    ]
    res = subprocess.run(
        [sys.executable, str(SCRIPT), *args, *out], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "4 atoms of 1 structure(s) left out" in res.stdout
    table = pd.read_csv(tmp_path / "a.csv")
    assert len(table) == 6  # 3 models x (raw, direct)
    assert (table["n_atoms_skipped"] == 4).all()
    row = table.set_index(["model", "space"])
    assert row.loc[("A", "raw"), "accuracy"] == 1.0
    assert row.loc[("C", "raw"), "label"] == "C (untrained)" and not row.loc[("C", "raw"), "trained"]
    assert row.loc[("A", "raw"), "label"] == "model A"
    transfer = pd.read_csv(tmp_path / "t.csv").set_index(["source_model", "target_model", "space"])
    assert len(transfer) == 18
    assert np.isnan(transfer.loc[("A", "C", "raw"), "accuracy"])
    assert "widths differ (24 vs 16)" in transfer.loc[("A", "C", "raw"), "note"]
    assert transfer.loc[("A", "B", "direct"), "accuracy"] == row.loc[("B", "direct"), "accuracy"]
    assert transfer.loc[("A", "A", "direct"), "accuracy"] == row.loc[("A", "direct"), "accuracy"]
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "a.pdf").stat().st_size > 0
