"""Fig. 5f, equivariant fraction (platonic_mlip.symmetry, workflow/scripts/fig5f_equivariant_fraction.py):
known-answer cases. Structures with known equivalent sites, an exactly invariant feature map against a
deliberately non-invariant one, planted duplicates, TwoNN on linear subspaces of known dimension, and a
structure spglib cannot analyse (skipped and listed, the rest computed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list
from ase.spacegroup import crystal

from platonic_mlip.spaces import pair_scale
from platonic_mlip.structures import atom_table, save_structures
from platonic_mlip.symmetry import (
    DEFAULT_NEIGHBOURS,
    SymmetryError,
    coincidence_fraction,
    collapse_fraction,
    equivalent_pairs,
    equivalent_sites,
    kept_neighbour_distances,
    nearest_distances,
    neighbours,
    sample_structures,
    space_diagnostics,
    structure_orbits,
    structure_symmetry,
    twonn_dimension,
    unique_rows,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "workflow" / "scripts" / "fig5f_equivariant_fraction.py"
ELEMENTS = (1, 8, 11, 17, 22, 56)


def perovskite():
    """Cubic BaTiO3 (Pm-3m, 221): Ba, Ti, then the three O."""
    return crystal(
        ["Ba", "Ti", "O"], [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0, 0.5)], spacegroup=221, cellpar=4.0
    )


def rock_salt():
    """NaCl conventional cell (Fm-3m, 225): four Na, four Cl."""
    return crystal(["Na", "Cl"], [(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225, cellpar=5.64)


def rutile():
    """TiO2 rutile (P4_2/mnm, 136): two Ti, four O."""
    return crystal(
        ["Ti", "O"], [(0, 0, 0), (0.3, 0.3, 0)], spacegroup=136, cellpar=[4.6, 4.6, 2.95, 90, 90, 90]
    )


def molecule():
    """A non-periodic water-like molecule: spglib cannot analyse it."""
    return Atoms("OH2", positions=[(0, 0, 0), (0.96, 0, 0), (-0.24, 0.93, 0)], pbc=False)


def invariant_features(atoms, cutoff: float = 6.0) -> np.ndarray:
    """(n, 3 * len(ELEMENTS)): per element, the sums over neighbours of exp(-r) and r^-2, and the atom's own
    element one-hot: unchanged by any symmetry operation of the structure."""
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    e = len(ELEMENTS)
    f = np.zeros((len(atoms), 3 * e))
    for k, z in enumerate(ELEMENTS):
        m = atoms.numbers[j] == z
        np.add.at(f[:, k], i[m], np.exp(-d[m]))
        np.add.at(f[:, e + k], i[m], d[m] ** -2.0)
        f[atoms.numbers == z, 2 * e + k] = 1.0
    return f


def positional_features(atoms) -> np.ndarray:
    """The invariant features with the Cartesian positions appended: not invariant."""
    return np.hstack([invariant_features(atoms), atoms.positions])


# ------------------------------------------------------------------------------------------------
# equivalent sites
# ------------------------------------------------------------------------------------------------


def test_perovskite_three_oxygens_equivalent_ba_and_ti_unique():
    eq, number = structure_symmetry(perovskite())
    assert number == 221
    assert eq[2] == eq[3] == eq[4]
    assert len({int(eq[0]), int(eq[1]), int(eq[2])}) == 3
    assert equivalent_pairs(eq).tolist() == [[2, 3], [2, 4], [3, 4]]


def test_rock_salt_all_na_equivalent_all_cl_equivalent():
    atoms = rock_salt()
    eq, number = structure_symmetry(atoms)
    assert number == 225
    na, cl = atoms.numbers == 11, atoms.numbers == 17
    assert na.sum() == cl.sum() == 4
    assert len(set(eq[na].tolist())) == 1 and len(set(eq[cl].tolist())) == 1
    assert eq[na][0] != eq[cl][0]
    assert len(equivalent_pairs(eq)) == 6 + 6


def test_broken_symmetry_splits_the_orbit():
    """One O moved by 0.2 A (far beyond symprec): it leaves the O orbit."""
    atoms = perovskite()
    atoms.positions[2] += [0.0, 0.2, 0.0]
    eq = equivalent_sites(atoms, symprec=0.01)
    assert eq[3] == eq[4] and eq[2] != eq[3]


def test_equivalent_pairs_match_brute_force():
    rng = np.random.default_rng(1)
    orbits = rng.integers(-1, 12, size=200)
    got = {tuple(p) for p in equivalent_pairs(orbits).tolist()}
    want = {
        (i, j) for i in range(200) for j in range(i + 1, 200) if orbits[i] == orbits[j] and orbits[i] >= 0
    }
    assert got == want
    assert len(equivalent_pairs(orbits)) == len(want)  # no pair twice
    assert equivalent_pairs(np.array([3, -1, 5])).shape == (0, 2)


def test_unanalysable_structures_are_skipped_and_listed():
    degenerate = Atoms("Na", positions=[(0, 0, 0)], cell=[[4, 0, 0], [4, 0, 0], [0, 0, 4]], pbc=True)
    flat = Atoms("Na", positions=[(0, 0, 0)], cell=[[4, 0, 0], [4, 1e-4, 0], [0, 0, 4]], pbc=True)
    with pytest.raises(SymmetryError, match="degenerate cell"):
        equivalent_sites(degenerate)
    with pytest.raises(SymmetryError, match="spglib found no symmetry"):
        equivalent_sites(flat)  # volume 1.6e-3 A^3: spglib returns None
    with pytest.raises(SymmetryError, match="not periodic"):
        equivalent_sites(molecule())
    atoms_list = [perovskite(), degenerate, molecule(), flat, rock_salt()]
    orbits, groups, skipped = structure_orbits(atoms_list, ["p", "d", "m", "f", "r"])
    assert groups.tolist() == [221, -1, -1, -1, 225]
    assert [s[0] for s in skipped] == ["d", "m", "f"]
    assert "degenerate" in skipped[0][1] and "not periodic" in skipped[1][1] and "spglib" in skipped[2][1]
    assert (orbits[5:10] == -1).all()  # the degenerate cells' atoms, the molecule's three
    assert (orbits[:5] >= 0).all() and (orbits[10:] >= 0).all()
    assert len(equivalent_pairs(orbits)) == 3 + 12  # the perovskite's and the rock salt's, run-wide ids


# ------------------------------------------------------------------------------------------------
# equivariant fraction: exactly invariant vs non-invariant features
# ------------------------------------------------------------------------------------------------


def _fractions(feature_map):
    structures = [perovskite(), rock_salt(), rutile()]
    orbits, _, skipped = structure_orbits(structures, ["p", "r", "t"])
    assert not skipped
    pairs = equivalent_pairs(orbits)
    assert len(pairs) == 3 + 12 + (1 + 6)
    x = np.vstack([feature_map(a) for a in structures])
    scale = pair_scale(x, None, 5000, 0)
    return space_diagnostics(x, pairs, scale, 1e-4), coincidence_fraction(x, pairs, 1e-4 * scale)


def test_invariant_features_give_equivariant_fraction_one():
    diag, frac = _fractions(invariant_features)
    assert frac == 1.0
    assert diag["equivariant_fraction"] == 1.0
    assert diag["median_pair_distance_rel"] < 1e-10
    # 3 O + 4 Na + 4 Cl + 2 Ti + 4 O of the 19 atoms have an equivalent partner
    assert diag["collapse_fraction"] == pytest.approx(17 / 19)


def test_position_dependent_features_are_not_equivariant():
    diag, frac = _fractions(positional_features)
    assert frac < 1.0
    assert diag["equivariant_fraction"] == 0.0  # every equivalent pair sits at another position
    assert diag["median_pair_distance_rel"] > 0.01
    assert diag["collapse_fraction"] == 0.0


# ------------------------------------------------------------------------------------------------
# collapse, de-duplication, TwoNN
# ------------------------------------------------------------------------------------------------


def test_collapse_fraction_counts_planted_duplicates():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(100, 5))
    x = np.vstack([base, base[:10], base[10:15] + 1e-9])
    assert collapse_fraction(x, 1e-6) == pytest.approx(30 / 115)
    assert collapse_fraction(base, 1e-6) == 0.0
    assert nearest_distances(x, 1)[100:110, 0].max() == 0.0


def test_unique_rows_merges_large_clusters_and_chains():
    rng = np.random.default_rng(3)
    spread = rng.normal(size=(40, 4))
    tol = 1e-6
    # two stacks of more copies than one search lists, 0.5 tol apart: their link is beyond the lists
    big = np.repeat(rng.normal(size=(1, 4)), 2 * (DEFAULT_NEIGHBOURS + 5), axis=0)
    big[DEFAULT_NEIGHBOURS + 5 :, 1] += 0.5 * tol
    chain = np.zeros((3, 4)) + 7.0
    chain[:, 0] += np.array([0.0, 0.6, 1.2]) * tol  # ends 1.2 tol apart, joined through the middle
    x = np.vstack([spread, big, chain])
    keep = unique_rows(x, tol)
    assert len(keep) == 40 + 1 + 1
    assert keep.tolist() == list(range(40)) + [40, 40 + len(big)]
    # the kept rows' first and second neighbours among kept rows, against brute force
    r = kept_neighbour_distances(x, keep, neighbours(x, DEFAULT_NEIGHBOURS))
    kx = x[keep]
    d = np.linalg.norm(kx[:, None] - kx[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(r, np.sort(d, axis=1)[:, :2])


@pytest.mark.parametrize("dim", [3, 6])
def test_twonn_recovers_the_dimension_of_a_linear_subspace(dim):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, dim)) @ rng.normal(size=(dim, 20))
    est, n = twonn_dimension(x)
    assert n == 2000
    assert est == pytest.approx(dim, abs=0.15 * dim)


def test_twonn_ignores_duplicates_and_needs_enough_points():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1500, 3)) @ rng.normal(size=(3, 12))
    est, n = twonn_dimension(np.vstack([x, x[:400]]), tol=1e-9)
    assert n == 1500
    assert est == pytest.approx(twonn_dimension(x)[0])
    est, n = twonn_dimension(np.repeat(x[:5], 6, axis=0), tol=1e-9)
    assert n == 5 and np.isnan(est)


def test_sample_structures_keeps_whole_structures_within_the_budget():
    n_atoms = np.array([5, 7, 3, 9, 4, 6])
    chosen = np.array([True, True, False, True, True, True])
    assert sample_structures(n_atoms, chosen, 100).tolist() == chosen.tolist()
    assert sample_structures(n_atoms, chosen, 0).tolist() == chosen.tolist()
    s = sample_structures(n_atoms, chosen, 15, seed=1)
    assert not s[2] and (s <= chosen).all() and 0 < n_atoms[s].sum() <= 15
    assert s.tolist() == sample_structures(n_atoms, chosen, 15, seed=1).tolist()
    assert sample_structures(n_atoms, chosen, 1).sum() == 1  # at least one structure


# ------------------------------------------------------------------------------------------------
# the script, end to end
# ------------------------------------------------------------------------------------------------


def _write_run(tmp: Path):
    """A run of four structures (perovskite, rock salt, rutile, a molecule) and two models: ``inv``
    (invariant features) and ``pos`` (invariant + positions; an untrained control that skipped rutile)."""
    structures = [perovskite(), rock_salt(), rutile(), molecule()]
    ids = ["mp-p", "mp-r", "mp-t", "mol"]
    save_structures(tmp / "structures.npz", structures, ids)
    atom_table(structures, ids, [221, -1, 136, -1]).to_csv(tmp / "atoms.csv", index=False)
    n = np.array([len(a) for a in structures])
    rutile_rows = slice(int(n[:2].sum()), int(n[:3].sum()))
    rng = np.random.default_rng(6)
    raw, meta, platonic = [], [], []
    for model, fmap in (("inv", invariant_features), ("pos", positional_features)):
        x = np.vstack([fmap(a) for a in structures]).astype(np.float32)
        skipped = []
        if model == "pos":
            x[rutile_rows] = np.nan
            skipped = [
                {"material_id": "mp-t", "atom_start": rutile_rows.start, "atom_stop": rutile_rows.stop}
            ]
        np.save(tmp / f"{model}.npy", x)
        (tmp / f"{model}.json").write_text(json.dumps({"skipped": skipped}))
        np.save(tmp / f"{model}_direct.npy", (x @ rng.normal(size=(x.shape[1], 4))).astype(np.float32))
        raw.append(str(tmp / f"{model}.npy"))
        meta.append(str(tmp / f"{model}.json"))
        platonic.append(str(tmp / f"{model}_direct.npy"))
    args = ["--models", "inv", "pos", "--controls", "pos", "--labels", json.dumps({"inv": "Invariant"})]
    args += ["--spaces", "direct", "--raw", *raw, "--meta", *meta, "--platonic", *platonic]
    return args


def test_script_end_to_end(tmp_path):
    args = _write_run(tmp_path)
    out = tmp_path / "out"
    cmd = [sys.executable, str(SCRIPT), "--structures", str(tmp_path / "structures.npz")]
    cmd += ["--atoms", str(tmp_path / "atoms.csv"), *args, "--scale-pairs", "2000"]
    cmd += ["--out-csv", str(out / "f.csv"), "--out-skipped", str(out / "s.csv")]
    cmd += ["--out-fig", str(out / "f.png"), str(out / "f.pdf")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (out / "f.png").stat().st_size > 0 and (out / "f.pdf").stat().st_size > 0

    t = pd.read_csv(out / "f.csv")
    assert list(t.columns) == [
        "subset",
        "model",
        "label",
        "trained",
        "space",
        "n_structures",
        "n_atoms",
        "n_atoms_skipped",
        "n_equivalent_pairs",
        "equivariant_fraction",
        "median_pair_distance_rel",
        "neighbour_atoms",
        "collapse_fraction",
        "twonn_dimension",
        "twonn_points",
        "scale",
    ]
    assert len(t) == 2 * 2 * 2
    assert set(t["space"]) == {"raw", "direct"} and set(t["subset"]) == {"sg221", "all"}
    row = t.set_index(["subset", "model", "space"])
    for space in ("raw", "direct"):
        inv, pos = row.loc[("sg221", "inv", space)], row.loc[("sg221", "pos", space)]
        assert inv["label"] == "Invariant" and bool(inv["trained"])
        assert pos["label"] == "pos (untrained)" and not bool(pos["trained"])
        assert inv["n_structures"] == 1 and inv["n_atoms"] == 5 and inv["n_equivalent_pairs"] == 3
        assert inv["equivariant_fraction"] == 1.0 and pos["equivariant_fraction"] == 0.0
        assert inv["collapse_fraction"] == pytest.approx(3 / 5) and pos["collapse_fraction"] == 0.0
        # the molecule is skipped for everyone; rutile only for pos
        a_inv, a_pos = row.loc[("all", "inv", space)], row.loc[("all", "pos", space)]
        assert a_inv["n_structures"] == 3 and a_inv["n_atoms"] == 5 + 8 + 6
        assert a_inv["n_atoms_skipped"] == 0 and a_pos["n_atoms_skipped"] == 6
        assert a_pos["n_structures"] == 2 and a_pos["n_atoms"] == 13
        assert a_inv["n_equivalent_pairs"] == 3 + 12 + 7 and a_pos["n_equivalent_pairs"] == 3 + 12
        assert a_inv["equivariant_fraction"] == 1.0 and a_pos["equivariant_fraction"] == 0.0
        assert a_inv["twonn_points"] == 3 + 2 + 2  # one unique row per orbit
        assert np.isnan(a_inv["twonn_dimension"])  # fewer than 10 unique points
        assert a_inv["scale"] > 0

    s = pd.read_csv(out / "s.csv")
    assert list(s.columns) == ["material_id", "reason"]
    assert s["material_id"].tolist() == ["mol", "mp-t"]
    assert "not periodic" in s["reason"][0] and "model pos" in s["reason"][1]


def test_script_rejects_an_atom_table_of_another_run(tmp_path):
    args = _write_run(tmp_path)
    table = pd.read_csv(tmp_path / "atoms.csv")
    table.iloc[:-1].to_csv(tmp_path / "short.csv", index=False)
    cmd = [sys.executable, str(SCRIPT), "--structures", str(tmp_path / "structures.npz")]
    cmd += ["--atoms", str(tmp_path / "short.csv"), *args]
    cmd += ["--out-csv", str(tmp_path / "f.csv"), "--out-skipped", str(tmp_path / "s.csv")]
    cmd += ["--out-fig", str(tmp_path / "f.png")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.startswith("ERROR:") and "short.csv" in res.stderr
    assert not (tmp_path / "f.csv").exists()
