"""Probe structures (platonic_mlip.probes, workflow/scripts/probe_structures.py): rotated copies are the same
crystal rotated, perturbations do what they say, every perturbation that cannot be made is listed, and
everything is deterministic given the seed."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from ase.build import bulk
from conftest import ROOT

from platonic_mlip import probes as pr
from platonic_mlip.chemistry import group_of, period_of
from platonic_mlip.structures import atom_table, check_geometry, load_structures, save_structures

SCRIPT = ROOT / "workflow" / "scripts" / "probe_structures.py"


def triclinic():
    """A low-symmetry 4-atom structure (no atom on a rotation axis)."""
    atoms = bulk("NaCl", "rocksalt", a=5.64) * (2, 1, 1)
    atoms.set_cell(atoms.cell[:] + [[0.0, 0.3, 0.1], [0.2, 0.0, 0.4], [0.1, 0.3, 0.0]], scale_atoms=True)
    atoms.positions += [[0.05, 0.1, 0.0], [0.0, 0.0, 0.0], [0.1, -0.1, 0.2], [0.0, 0.3, 0.1]]
    return atoms


def tiny_run():
    """(atoms_list, material_ids) of a small synthetic run."""
    atoms = [
        bulk("Cu", "fcc", a=3.6),
        bulk("Si", "diamond", a=5.43),
        bulk("NaCl", "rocksalt", a=5.64, cubic=True),
        bulk("MgO", "rocksalt", a=4.21),
        bulk("Fe", "bcc", a=2.87),
        bulk("KBr", "rocksalt", a=6.6),
        bulk("GaAs", "zincblende", a=5.65),
        triclinic(),
        bulk("CaO", "rocksalt", a=4.8),
        bulk("Al", "fcc", a=4.05, cubic=True),
    ]
    return atoms, [f"mp-{i}" for i in range(len(atoms))]


def write_run(folder, atoms=None, ids=None):
    """Write a run's structures.npz and atoms.csv under ``folder``; returns their paths."""
    if atoms is None:
        atoms, ids = tiny_run()
    folder.mkdir(parents=True, exist_ok=True)
    npz, csv = folder / "structures.npz", folder / "atoms.csv"
    save_structures(npz, atoms, ids)
    atom_table(atoms, ids, [-1] * len(atoms)).to_csv(csv, index=False)
    return npz, csv


def mic_distances(atoms):
    return atoms.get_all_distances(mic=True)


# --- rotations -----------------------------------------------------------------------------------------


def test_baceo3_is_the_cubic_perovskite():
    atoms = pr.bacec_o3(4.44)
    assert atoms.get_chemical_formula(mode="metal") == "BaCeO3"
    assert atoms.get_chemical_symbols() == ["Ba", "Ce", "O", "O", "O"]
    assert np.allclose(atoms.cell[:], 4.44 * np.eye(3)) and atoms.pbc.all()
    d = mic_distances(atoms)
    assert np.isclose(d[1, 2:].min(), 4.44 / 2)  # Ce-O octahedron: a/2
    assert np.isclose(d[0, 2:].min(), 4.44 / np.sqrt(2))  # Ba-O: a/sqrt(2)


def test_rotation_matrix_known_answers():
    assert np.allclose(pr.rotation_matrix([0, 0, 1], 90) @ [1, 0, 0], [0, 1, 0])
    r = pr.rotation_matrix([1, 1, 1], 120)  # the cubic 3-fold axis: x -> y -> z
    assert np.allclose(r @ [1, 0, 0], [0, 1, 0]) and np.allclose(r @ [0, 1, 0], [0, 0, 1])
    assert np.isclose(np.linalg.det(r), 1.0)


@pytest.mark.parametrize("make", [pr.bacec_o3, triclinic])
@pytest.mark.parametrize(("axis", "angle"), [("0,0,1", 30.0), ("1,1,1", 135.0), ("1,-2,0.5", 77.0)])
def test_a_rotated_copy_is_the_same_crystal_rotated(make, axis, angle):
    atoms = make()
    rot = pr.rotation_matrix(pr.parse_axis(axis), angle)
    new = pr.rotate(atoms, rot)
    assert np.allclose(new.positions, (rot @ atoms.positions.T).T)
    assert np.allclose(new.cell[:], (rot @ atoms.cell[:].T).T)
    assert np.allclose(mic_distances(new), mic_distances(atoms), atol=1e-10)
    assert np.isclose(new.cell.volume, atoms.cell.volume)
    assert np.allclose(new.get_scaled_positions(wrap=False), atoms.get_scaled_positions(wrap=False))
    assert (new.numbers == atoms.numbers).all() and (new.pbc == atoms.pbc).all()
    assert not np.allclose(new.positions, atoms.positions)  # it did move


def test_rotation_grid_identity_and_ids():
    parents = [("BaCeO3", pr.bacec_o3()), ("mp-7", triclinic())]
    axes, angles = ["0,0,1", "1,1,1", "1,0,0"], [15, 90, 180]
    out = pr.rotation_probes(parents, axes, angles)
    assert len(out) == len(parents) * (1 + len(axes) * len(angles))
    ids = [p.material_id for p in out]
    assert len(set(ids)) == len(ids)
    assert "BaCeO3~rot:z:90" in ids and "mp-7~rot:1_1_1:15" in ids and "mp-7~rot:x:180" in ids
    for parent, atoms in parents:
        ident = [p for p in out if p.parent == parent and p.variant == "identity"]
        assert len(ident) == 1 and ident[0].material_id == f"{parent}~identity" and ident[0].angle_deg == 0
        assert np.array_equal(ident[0].atoms.positions, atoms.positions)
        assert np.array_equal(ident[0].atoms.cell[:], atoms.cell[:])
        assert np.array_equal(ident[0].atoms.numbers, atoms.numbers)
    p = next(p for p in out if p.material_id == "mp-7~rot:1_1_1:15")
    assert p.axis == "1,1,1" and p.angle_deg == 15 and p.kind == "rotation" and p.variant == "1_1_1:15"
    assert np.allclose(p.atoms.positions, parents[1][1].positions @ pr.rotation_matrix([1, 1, 1], 15).T)


def test_axis_parsing():
    assert pr.axis_name("0,0,1") == "z" and pr.axis_name("0,2,0") == "y" and pr.axis_name("1,1,1") == "1_1_1"
    assert np.allclose(pr.parse_axis("1,1,1"), np.ones(3) / np.sqrt(3))
    for bad in ("0,0,0", "1,2", "a,b,c"):
        with pytest.raises(ValueError, match="rotation axis"):
            pr.parse_axis(bad)
    with pytest.raises(ValueError, match="same name"):
        pr.rotation_probes([("x", triclinic())], ["0,0,1", "0,0,2"], [30])


# --- perturbations ---------------------------------------------------------------------------------------


def test_rattle_displaces_by_sigma_and_keeps_the_cell():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (4, 4, 4)  # 256 atoms
    new, detail = pr.rattle(atoms, np.random.default_rng(1), 0.1)
    shift = new.positions - atoms.positions
    assert abs(np.sqrt(np.mean(shift**2)) - 0.1) < 0.01  # per component
    assert abs(shift.mean()) < 0.01
    assert np.array_equal(new.cell[:], atoms.cell[:]) and np.array_equal(new.numbers, atoms.numbers)
    assert "sigma 0.1 A" in detail


@pytest.mark.parametrize("s", [0.08, -0.05])
def test_strain_scales_lengths_and_volume(s):
    atoms = triclinic()
    new, detail = pr.strain(atoms, s)
    assert np.isclose(new.cell.volume, atoms.cell.volume * (1 + s) ** 3)
    assert np.allclose(new.cell.cellpar()[:3], atoms.cell.cellpar()[:3] * (1 + s))
    assert np.allclose(new.cell.cellpar()[3:], atoms.cell.cellpar()[3:])
    assert np.allclose(new.get_scaled_positions(wrap=False), atoms.get_scaled_positions(wrap=False))
    assert np.allclose(mic_distances(new), mic_distances(atoms) * (1 + s))
    assert f"{100 * s:+g}%" in detail


def counts(atoms):
    z, n = np.unique(atoms.numbers, return_counts=True)
    return dict(zip(z.tolist(), n.tolist(), strict=True))


def test_swap_within_group_replaces_every_atom_of_one_element_by_its_group_mate():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)  # Na4 Cl4
    run_elements = [11, 17, 19, 35, 12]  # Na Cl K Br Mg
    seen = set()
    for seed in range(20):
        new, detail = pr.swap_within_group(atoms, np.random.default_rng(seed), run_elements)
        before, after = counts(atoms), counts(new)
        (old,) = set(before) - set(after)
        (rep,) = set(after) - set(before)
        assert after[rep] == before[old] == 4 and group_of(rep) == group_of(old)
        assert (rep, old) in {(19, 11), (35, 17)}
        assert np.array_equal(new.positions, atoms.positions)
        seen.add(rep)
        assert detail.startswith("all 4 ")
    assert seen == {19, 35}  # both elements get chosen over seeds


def test_swap_across_groups_stays_in_the_period():
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    run_elements = [11, 17, 12, 19, 35]  # Mg is the only same-period element of another group
    new, detail = pr.swap_across_groups(atoms, np.random.default_rng(0), run_elements)
    (old,) = set(counts(atoms)) - set(counts(new))
    (rep,) = set(counts(new)) - set(counts(atoms))
    assert rep == 12 and period_of(rep) == period_of(old) and group_of(rep) != group_of(old)
    assert "period 3" in detail


def test_swaps_without_a_replacement_are_perturbation_errors():
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    with pytest.raises(pr.PerturbationError, match="same group"):
        pr.swap_within_group(atoms, np.random.default_rng(0), [11, 17, 12])
    with pytest.raises(pr.PerturbationError, match="same period"):
        pr.swap_across_groups(atoms, np.random.default_rng(0), [11, 17, 19])
    la = bulk("La", "fcc", a=5.3)  # f-block: no IUPAC group, never swapped within a group
    with pytest.raises(pr.PerturbationError):
        pr.swap_within_group(la, np.random.default_rng(0), [57, 58, 21, 39])


def test_remove_atom_removes_exactly_one():
    atoms = triclinic()
    new, detail = pr.remove_atom(atoms, np.random.default_rng(3))
    assert len(new) == len(atoms) - 1
    i = int(detail.split()[2])
    keep = np.arange(len(atoms)) != i
    assert np.array_equal(new.positions, atoms.positions[keep])
    assert np.array_equal(new.numbers, atoms.numbers[keep])
    with pytest.raises(pr.PerturbationError, match="single-atom"):
        pr.remove_atom(bulk("Cu", "fcc", a=3.6), np.random.default_rng(0))


def test_perturbation_probes_list_every_skip_and_are_deterministic():
    atoms, ids = tiny_run()
    structures = [(i, ids[i], atoms[i]) for i in range(len(atoms))]
    run_elements = sorted({int(z) for a in atoms for z in a.numbers})
    made, skips = pr.perturbation_probes(structures, pr.PERTURBATIONS, 5, run_elements)
    assert len(made) + len(skips) == len(structures) * len(pr.PERTURBATIONS)
    done = {p.material_id for p in made} | {s.material_id for s in skips}
    assert done == {f"{m}~{p}" for m in ids for p in pr.PERTURBATIONS}
    single = [ids[i] for i, a in enumerate(atoms) if len(a) == 1]
    assert {s.material_id for s in skips if s.variant == "remove_atom"} == {
        f"{m}~remove_atom" for m in single
    }
    assert all(s.reason for s in skips)
    for p in made:
        check_geometry(p.atoms, p.material_id)
        assert p.kind == "perturbation" and p.parent == p.material_id.split("~")[0]
    again, skips2 = pr.perturbation_probes(structures, pr.PERTURBATIONS, 5, run_elements)
    assert [s.material_id for s in skips2] == [s.material_id for s in skips]
    for a, b in zip(made, again, strict=True):
        assert a.material_id == b.material_id and np.array_equal(a.atoms.positions, b.atoms.positions)
        assert np.array_equal(a.atoms.numbers, b.atoms.numbers)
    other, _ = pr.perturbation_probes(structures, ["rattle"], 6, run_elements)
    assert not np.allclose(other[0].atoms.positions, made[0].atoms.positions)


def test_rattle_redraws_then_skips_when_atoms_come_too_close():
    dimer = bulk("Cu", "fcc", a=3.6, cubic=True) * (3, 3, 3)  # nearest neighbours 2.55 A
    _, skips = pr.perturbation_probes([(0, "cu", dimer)], ["rattle"], 0, [29], min_distance=2.45, attempts=3)
    assert len(skips) == 1 and skips[0].reason.startswith("3 draws failed the geometry check")
    # two atoms 0.62 A apart: some draws bring them under 0.5 A and are redrawn with the next generator
    pair = bulk("Cu", "sc", a=6.0)
    pair.append("Cu")
    pair.positions[1] = [0.62, 0.0, 0.0]
    redrawn = 0
    for seed in range(40):
        made, skips = pr.perturbation_probes([(0, "p", pair)], ["rattle"], seed, [29], attempts=5)
        if skips:
            continue
        (p,) = made
        attempt = int(p.detail.split("(draw ")[1].split(":")[0]) - 1 if "(draw " in p.detail else 0
        redrawn += attempt > 0
        rng = np.random.default_rng([seed, 3, 0, pr.PERTURBATIONS.index("rattle"), attempt])
        assert np.allclose(p.atoms.positions, pair.positions + rng.normal(0, 0.1, (2, 3)))
        check_geometry(p.atoms, "p")
    assert redrawn > 0


def test_holdout_is_the_fraction_and_seeded():
    h = pr.holdout_indices(50, 0.2, 0)
    assert len(h) == 10 and len(set(h)) == 10 and (np.diff(h) > 0).all() and h.max() < 50
    assert np.array_equal(h, pr.holdout_indices(50, 0.2, 0))
    assert not np.array_equal(h, pr.holdout_indices(50, 0.2, 1))
    assert len(pr.holdout_indices(50, 0.0, 0)) == 0
    with pytest.raises(ValueError):
        pr.holdout_indices(50, 1.0, 0)


def test_probe_table_offsets_and_unique_ids():
    probes = pr.rotation_probes([("BaCeO3", pr.bacec_o3()), ("t", triclinic())], ["0,0,1"], [30, 60])
    t = pr.probe_table(probes)
    assert list(t.columns) == list(pr.PROBE_COLUMNS)
    assert (t["atom_stop"] - t["atom_start"] == t["n_atoms"]).all()
    assert (t["atom_start"].to_numpy()[1:] == t["atom_stop"].to_numpy()[:-1]).all() and t["atom_start"][
        0
    ] == 0
    with pytest.raises(ValueError, match="not unique"):
        pr.probe_table(probes + probes[:1])


# --- the script -------------------------------------------------------------------------------------------


def run_script(run_dir, out, *extra):
    npz, csv = write_run(run_dir)
    cmd = [sys.executable, str(SCRIPT), "--structures", str(npz), "--atoms", str(csv)]
    cmd += ["--out-structures", str(out / "structures.npz"), "--out-atoms", str(out / "atoms.csv")]
    cmd += ["--out-table", str(out / "probes.csv"), "--out-holdout", str(out / "holdout.csv"), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_script_writes_aligned_probes_holdout_and_skips(tmp_path):
    args = ["--axes", "0,0,1", "1,1,1", "--angles", "30", "90", "--mp20-structures", "3"]
    args += ["--holdout-fraction", "0.5", "--n-perturbed", "4", "--seed", "2"]
    res = run_script(tmp_path / "run", tmp_path / "p", *args)
    assert res.returncode == 0, res.stderr
    t = pd.read_csv(tmp_path / "p" / "probes.csv", keep_default_na=False)
    atoms = pd.read_csv(tmp_path / "p" / "atoms.csv")
    structures, ids = load_structures(tmp_path / "p" / "structures.npz")
    assert ids == t["material_id"].tolist() and t["material_id"].is_unique
    assert [len(a) for a in structures] == t["n_atoms"].tolist() and len(atoms) == t["atom_stop"].iloc[-1]
    assert (atoms["spacegroup"] == -1).all()
    rot = t[t["kind"] == "rotation"]
    assert len(rot) == 4 * (1 + 2 * 2) and rot["parent"].nunique() == 4
    assert "BaCeO3~rot:1_1_1:90" in set(rot["material_id"])
    holdout = pd.read_csv(tmp_path / "p" / "holdout.csv")
    assert len(holdout) == 5 and set(holdout["material_id"]) <= {f"mp-{i}" for i in range(10)}
    skipped = pd.read_csv(tmp_path / "p" / "probes_skipped.csv")
    pert = t[t["kind"] == "perturbation"]
    assert len(pert) + len(skipped) == 4 * len(pr.PERTURBATIONS)
    assert set(pert["parent"]) | set(skipped["parent"]) <= set(holdout["material_id"])
    run_atoms, run_ids = tiny_run()
    singles = {m for a, m in zip(run_atoms, run_ids, strict=True) if len(a) == 1}
    perturbed = set(pert["parent"]) | set(skipped["parent"])
    assert {m.split("~")[0] for m in skipped.loc[skipped["variant"] == "remove_atom", "material_id"]} == (
        perturbed & singles
    )
    # the same seed gives the same probes
    again = run_script(tmp_path / "run2", tmp_path / "q", *args)
    assert again.returncode == 0, again.stderr
    assert pd.read_csv(tmp_path / "q" / "probes.csv").equals(pd.read_csv(tmp_path / "p" / "probes.csv"))
    with np.load(tmp_path / "p" / "structures.npz") as a, np.load(tmp_path / "q" / "structures.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_script_rejects_a_bad_axis(tmp_path):
    res = run_script(tmp_path / "run", tmp_path / "p", "--axes", "0,0,0")
    assert res.returncode == 1 and res.stderr.startswith("ERROR: --axes/--angles: rotation axis '0,0,0'")
    assert not (tmp_path / "p" / "probes.csv").exists()
