"""Fine-tuning data (platonic_mlip.finetune_data, workflow/scripts/finetune_data.py): Cu target structures,
Au probes, EMT labels, the per-element energy shift, the split and the labelled extended XYZ files."""

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write
from conftest import ROOT

from platonic_mlip import finetune_data as fd
from platonic_mlip.structures import StructureError

SCRIPT = ROOT / "workflow" / "scripts" / "finetune_data.py"
SMALL = dict(n_bulk_strained=4, n_rattled=3, n_surfaces=2, n_clusters=2, dimer_distances=(2.0, 2.4, 3.0))
MODEL_REF = {"Cu": -4.096, "Au": -3.2}


@pytest.fixture(scope="module")
def cu_small():
    return fd.cu_target_structures(seed=3, **SMALL)


# --------------------------------------------------------------------------------------------------
# Structures
# --------------------------------------------------------------------------------------------------


def test_cu_structures_have_every_kind_unique_ids_and_the_requested_counts(cu_small):
    kinds = Counter(a.info["kind"] for a in cu_small)
    assert kinds == {"bulk": 1, "strained": 4, "rattled": 3, "surface": 2, "cluster": 2, "dimer": 3}
    assert set(kinds) == set(fd.KINDS)
    ids = [a.info["material_id"] for a in cu_small]
    assert len(set(ids)) == len(ids) and "Cu-dimer-2.400A" in ids
    surfaces = [a for a in cu_small if a.info["kind"] == "surface"]
    assert [s.info["facet"] for s in surfaces] == ["111", "100"]
    assert all(s.pbc.tolist() == [True, True, False] for s in surfaces)
    assert all(not a.pbc.any() for a in cu_small if a.info["kind"] in ("cluster", "dimer"))
    assert all(len(a) == 32 for a in cu_small if a.info["kind"] == "rattled")


def test_strain_changes_the_volume_by_the_stated_factor(cu_small):
    v0 = bulk("Cu", "fcc", a=fd.CU_A, cubic=True).get_volume()
    strained = [a for a in cu_small if a.info["kind"] == "strained"]
    for i, atoms in enumerate(strained):
        eps = atoms.info["strain"]
        assert np.allclose(eps, eps.T) and np.abs(eps).max() <= fd.STRAIN_MAX
        assert atoms.get_volume() / v0 == pytest.approx(np.linalg.det(np.eye(3) + eps), rel=1e-12)
        isotropic = np.allclose(eps, eps[0, 0] * np.eye(3))
        assert isotropic == (i % 2 == 0)  # even isotropic, odd anisotropic
    assert not np.allclose([a.get_volume() for a in strained], v0)


def test_generated_sets_are_deterministic_under_a_seed_and_differ_across_seeds(cu_small):
    again = fd.cu_target_structures(seed=3, **SMALL)
    other = fd.cu_target_structures(seed=4, **SMALL)
    assert [a.info["material_id"] for a in again] == [a.info["material_id"] for a in cu_small]
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(again, cu_small, strict=True))
    rattled = [i for i, a in enumerate(cu_small) if a.info["kind"] in ("rattled", "strained")]
    assert not any(np.allclose(cu_small[i].positions, other[i].positions) for i in rattled)
    au = fd.au_probe_structures(seed=1)
    assert all(
        np.array_equal(a.positions, b.positions)
        for a, b in zip(au, fd.au_probe_structures(seed=1), strict=True)
    )
    assert not np.allclose(au[1].positions, fd.au_probe_structures(seed=2)[1].positions)


def test_one_kind_count_leaves_the_other_kinds_unchanged(cu_small):
    more = fd.cu_target_structures(seed=3, **{**SMALL, "n_bulk_strained": 9})
    a = [x for x in cu_small if x.info["kind"] == "rattled"]
    b = [x for x in more if x.info["kind"] == "rattled"]
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b, strict=True))


def test_no_au_in_the_cu_data_and_no_cu_in_the_au_probes(cu_small):
    assert {s for a in cu_small for s in a.get_chemical_symbols()} == {"Cu"}
    au = fd.au_probe_structures()
    assert {s for a in au for s in a.get_chemical_symbols()} == {"Au"}
    assert {a.info["kind"] for a in au} == {"bulk", "rattled", "surface", "cluster", "dimer"}
    assert au[0].cell.cellpar()[0] == pytest.approx(fd.AU_A / np.sqrt(2))


def test_bad_generator_arguments_are_refused():
    with pytest.raises(ValueError, match="n_rattled=-1"):
        fd.cu_target_structures(n_rattled=-1)
    with pytest.raises(ValueError, match="appear once"):
        fd.cu_target_structures(dimer_distances=(2.0, 2.0))
    with pytest.raises(ValueError, match="box/2"):
        fd.cu_target_structures(dimer_distances=(12.0,))


# --------------------------------------------------------------------------------------------------
# EMT labels and the shift
# --------------------------------------------------------------------------------------------------


def test_emt_fcc_cu_energy_is_ase_emt_and_the_published_value():
    direct = bulk("Cu", "fcc", a=3.61)
    direct.calc = EMT()
    assert fd.emt_bulk_energy("Cu", 3.61) == direct.get_potential_energy() / len(direct)
    assert fd.emt_bulk_energy("Cu", 3.61) == pytest.approx(-0.006, abs=0.001)  # NOTES.md section 6
    assert fd.emt_bulk_energy("Cu", 3.61) < fd.emt_bulk_energy("Cu", 3.80)


def test_forces_vanish_on_the_perfect_cell_and_not_on_rattled_ones(cu_small):
    labels = fd.emt_label(cu_small)
    assert labels.energies.shape == (len(cu_small),)
    for atoms, f, s in zip(cu_small, labels.forces, labels.stresses, strict=True):
        assert f.shape == (len(atoms), 3)
        assert (s is not None) == bool(atoms.pbc.all()) and (s is None or s.shape == (6,))
        if atoms.info["kind"] in ("bulk", "strained"):  # every atom an inversion centre
            assert np.abs(f).max() < 1e-10
        if atoms.info["kind"] in ("rattled", "cluster", "dimer"):
            assert np.abs(f).max() > 0.05
    assert all(a.calc is None for a in cu_small)  # the inputs carry no calculator afterwards


def test_an_element_emt_lacks_is_refused_naming_structure_and_element():
    atoms = [bulk("Cu", "fcc", a=3.61), bulk("Au", "fcc", a=4.08), bulk("Fe", "bcc", a=2.87)]
    atoms[2].info["material_id"] = "iron"
    with pytest.raises(
        StructureError, match=r"structure 2 \(iron\): element\(s\) Fe not covered by ASE's EMT"
    ):
        fd.emt_label(atoms)


def test_the_shift_puts_the_reference_crystal_on_the_model_energy_exactly():
    emt = {el: fd.emt_bulk_energy(el, a) for el, a in (("Cu", fd.CU_A), ("Au", fd.AU_A))}
    shift = fd.reference_shift(MODEL_REF, emt)
    assert shift["Cu"] == pytest.approx(-4.096 + 0.0057, abs=1e-3)
    cells = [
        bulk("Cu", "fcc", a=fd.CU_A),
        bulk("Cu", "fcc", a=fd.CU_A, cubic=True),
        bulk("Au", "fcc", a=fd.AU_A),
    ]
    shifted = fd.apply_shift(fd.emt_label(cells).energies, cells, shift)
    per_atom = shifted / np.array([len(c) for c in cells])
    assert per_atom == pytest.approx([-4.096, -4.096, -3.2], abs=1e-12)
    mixed = Atoms("CuAu", positions=[[0, 0, 0], [2.5, 0, 0]])
    assert fd.apply_shift([1.0], [mixed], shift)[0] == pytest.approx(1.0 + shift["Cu"] + shift["Au"])


def test_the_shift_refuses_missing_elements():
    with pytest.raises(ValueError, match=r"only the model has \['Au'\]"):
        fd.reference_shift({"Cu": -4.0, "Au": -3.0}, {"Cu": 0.0})
    with pytest.raises(StructureError, match=r"structure 0 \(x\): no energy shift for element\(s\) Au"):
        fd.apply_shift([0.0], [Atoms("Au", info={"material_id": "x"})], {"Cu": -4.0})


# --------------------------------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "expected"), [(100, [80, 10, 10]), (62, [50, 6, 6]), (7, [5, 1, 1])])
def test_split_keeps_structures_whole_with_the_right_fractions(n, expected):
    atoms = [Atoms("Cu") for _ in range(n)]
    parts = fd.split(atoms, (0.8, 0.1, 0.1), seed=5)
    assert [len(p) for p in parts] == expected
    assert sorted(np.concatenate(parts).tolist()) == list(range(n))  # disjoint, complete
    assert all((np.diff(p) > 0).all() for p in parts)
    assert all(
        np.array_equal(a, b) for a, b in zip(parts, fd.split(atoms, (0.8, 0.1, 0.1), seed=5), strict=True)
    )
    assert not all(
        np.array_equal(a, b) for a, b in zip(parts, fd.split(atoms, (0.8, 0.1, 0.1), seed=6), strict=True)
    )
    with pytest.raises(ValueError, match="sum to 1"):
        fd.split(atoms, (0.8, 0.3, 0.1))


# --------------------------------------------------------------------------------------------------
# Labelled extended XYZ
# --------------------------------------------------------------------------------------------------


def test_write_read_round_trip_is_exact(tmp_path, cu_small):
    labels = fd.emt_label(cu_small)
    energies = labels.energies + np.pi  # many significant digits
    path = tmp_path / "cu.extxyz"
    fd.write_labelled_extxyz(path, cu_small, energies, labels.forces, labels.stresses)
    assert not list(tmp_path.glob(".*part*"))
    back = fd.read_labelled_extxyz(path)
    assert np.array_equal(back.energies, energies)
    for a, b, f, g, s, t in zip(
        cu_small, back.atoms, labels.forces, back.forces, labels.stresses, back.stresses, strict=True
    ):
        assert np.array_equal(a.positions, b.positions) and np.array_equal(a.cell[:], b.cell[:])
        assert np.array_equal(a.numbers, b.numbers) and a.pbc.tolist() == b.pbc.tolist()
        assert np.array_equal(f, g)
        assert (s is None and t is None) or np.allclose(s, t, rtol=0, atol=1e-15)
        assert b.info == {"material_id": a.info["material_id"], "kind": a.info["kind"]} and b.calc is None
    plain = read(path, index=":")  # a plain ASE read sees the labels
    assert plain[5].get_potential_energy() == energies[5]
    assert np.array_equal(plain[5].get_forces(), labels.forces[5])


def _user_file(path, n=5, drop=None, frame=3, **labels):
    frames = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.rattle(0.02, seed=i)
        atoms.info["material_id"] = f"u{i}"
        results = {"energy": -1.0 * i, "forces": np.full((len(atoms), 3), 0.1 * i)}
        if i == frame:
            results.pop(drop, None)
            results.update(labels)
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    write(path, frames, format="extxyz")
    return path


@pytest.mark.parametrize(("drop", "what"), [("forces", "no forces"), ("energy", "no energy")])
def test_a_user_file_missing_a_label_on_frame_3_names_the_file_and_frame(tmp_path, drop, what):
    path = _user_file(tmp_path / "user.xyz", drop=drop)
    with pytest.raises(StructureError, match=rf"user\.xyz: frame 3 \(material_id u3\): {what}"):
        fd.read_labelled_extxyz(path)


def test_a_user_file_with_bad_labels_or_geometry_is_refused(tmp_path):
    path = _user_file(tmp_path / "nan.xyz", energy=float("nan"))
    with pytest.raises(StructureError, match="frame 3 .*not finite"):
        fd.read_labelled_extxyz(path)
    crowded = bulk("Cu", "fcc", a=3.61, cubic=True)
    crowded.positions[1] = crowded.positions[0] + 0.1
    crowded.calc = SinglePointCalculator(crowded, energy=0.0, forces=np.zeros((4, 3)))
    write(tmp_path / "close.xyz", [crowded], format="extxyz")
    with pytest.raises(
        StructureError,
        match=r"close.xyz: frame 0 \(material_id close-0\): atoms 0 \(Cu\) and 1 \(Cu\) are 0.173 A apart",
    ):
        fd.read_labelled_extxyz(tmp_path / "close.xyz")
    with pytest.raises(StructureError, match="not found"):
        fd.read_labelled_extxyz(tmp_path / "absent.xyz")


def test_a_user_file_with_its_own_label_keys(tmp_path):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms.info["REF_energy"] = -12.5
    atoms.arrays["REF_forces"] = np.ones((4, 3))
    write(tmp_path / "ref.xyz", [atoms], format="extxyz")
    got = fd.read_labelled_extxyz(tmp_path / "ref.xyz", energy_key="REF_energy", forces_key="REF_forces")
    assert got.energies.tolist() == [-12.5] and np.array_equal(got.forces[0], np.ones((4, 3)))
    assert got.atoms[0].info == {"material_id": "ref-0", "kind": "user"}
    with pytest.raises(StructureError, match="frame 0 .*no energy .*no forces"):
        fd.read_labelled_extxyz(tmp_path / "ref.xyz")


# --------------------------------------------------------------------------------------------------
# The script
# --------------------------------------------------------------------------------------------------


def run_script(out, *extra):
    cmd = [sys.executable, str(SCRIPT), *extra]
    for name in ("train", "val", "test", "au"):
        cmd += [f"--out-{name}", str(out / f"{name}.extxyz")]
    cmd += ["--out-summary", str(out / "summary.json")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


SIZES = ["--n-strained", "4", "--n-rattled", "4", "--n-surfaces", "2", "--n-clusters", "2"]
SIZES += ["--dimer-distances", "2.0", "2.4", "3.0", "--au-rattled", "1", "--au-clusters", "1"]


def test_script_generates_shifted_splits_and_probes(tmp_path):
    (tmp_path / "ref.json").write_text(json.dumps(MODEL_REF))
    res = run_script(tmp_path / "s", *SIZES, "--shift-json", str(tmp_path / "ref.json"))
    assert res.returncode == 0, res.stderr
    assert "WARNING" not in res.stderr
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    counts = {s: summary["splits"][s]["n_structures"] for s in ("train", "val", "test")}
    assert counts == {"train": 13, "val": 2, "test": 1}  # 16 structures: 12.8, 1.6, 1.6 rounded
    assert summary["shift"]["applied"] and set(summary["shift"]["delta"]) == {"Cu", "Au"}
    pairs = {row["pair"]: row for row in summary["emt_dimers"]}
    assert 2.0 < pairs["Au-Au"]["r_min"] < 3.0 and not pairs["Cu-Cu"]["repulsive"]
    sets = {
        n: fd.read_labelled_extxyz(tmp_path / "s" / f"{n}.extxyz") for n in ("train", "val", "test", "au")
    }
    ids = [a.info["material_id"] for n in ("train", "val", "test") for a in sets[n].atoms]
    assert len(ids) == len(set(ids)) == 16
    for data, el in ((sets["au"], "Au"), *((sets[n], "Cu") for n in ("train", "val", "test"))):
        for atoms, e in zip(data.atoms, data.energies, strict=True):
            assert set(atoms.get_chemical_symbols()) == {el}
            if atoms.info["kind"] == "bulk":
                assert e / len(atoms) == pytest.approx(MODEL_REF[el], abs=1e-12)


def test_script_shift_moves_energies_only(tmp_path):
    (tmp_path / "ref.json").write_text(json.dumps({"e_per_atom": MODEL_REF, "note": "7net-0"}))
    res = run_script(tmp_path / "raw", *SIZES)
    assert res.returncode == 0, res.stderr
    assert res.stderr.startswith("WARNING: no --shift-json")
    res = run_script(tmp_path / "shifted", *SIZES, "--shift-json", str(tmp_path / "ref.json"))
    assert res.returncode == 0, res.stderr
    delta = json.loads((tmp_path / "shifted" / "summary.json").read_text())["shift"]["delta"]
    for name in ("train", "au"):
        raw = fd.read_labelled_extxyz(tmp_path / "raw" / f"{name}.extxyz")
        shifted = fd.read_labelled_extxyz(tmp_path / "shifted" / f"{name}.extxyz")
        for a, b, ea, eb, fa, fb in zip(
            raw.atoms, shifted.atoms, raw.energies, shifted.energies, raw.forces, shifted.forces, strict=True
        ):
            assert a.info == b.info and np.array_equal(fa, fb)
            assert eb - ea == pytest.approx(sum(delta[s] for s in a.get_chemical_symbols()), abs=1e-9)


def test_script_validates_a_user_file(tmp_path):
    good = _user_file(tmp_path / "good.xyz", n=10, frame=-1)
    res = run_script(tmp_path / "v", "--mode", "validate", "--input", str(good), "--au-clusters", "0")
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "v" / "summary.json").read_text())
    assert [summary["splits"][s]["n_structures"] for s in ("train", "val", "test")] == [8, 1, 1]
    assert summary["splits"]["train"]["kinds"] == {"user": 8} and summary["source"] == str(good)
    bad = _user_file(tmp_path / "bad.xyz", drop="forces")
    res = run_script(tmp_path / "b", "--mode", "validate", "--input", str(bad))
    assert res.returncode == 1
    assert res.stderr.splitlines()[-1].startswith("ERROR: ") and "bad.xyz: frame 3" in res.stderr
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_script_refuses_the_probe_element_in_user_data_and_a_shift_without_it(tmp_path):
    atoms = Atoms("CuAu", positions=[[0, 0, 0], [2.5, 0, 0]])
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((2, 3)))
    write(tmp_path / "au.xyz", [atoms] * 4, format="extxyz")
    res = run_script(tmp_path / "v", "--mode", "validate", "--input", str(tmp_path / "au.xyz"))
    assert res.returncode == 1 and "frame 0 (material_id au-0) holds Au" in res.stderr
    (tmp_path / "ref.json").write_text(json.dumps({"Cu": -4.0}))
    res = run_script(tmp_path / "g", *SIZES, "--shift-json", str(tmp_path / "ref.json"))
    assert res.returncode == 1 and "no reference energy for Au" in res.stderr
