"""Phonons (``platonic_mlip.phonons``, ``workflow/scripts/phonons.py``) in the sevenn environment.

``.venvs/sevenn/bin/python -m pytest tests/families/test_sevenn_phonons.py``. Small supercells and meshes
keep every test within seconds; the physics checks: 7net-0 fcc Cu is stable with acoustic modes at 0 at
Gamma; a nearest-neighbour spring model of fcc Cu gives the analytic frequencies at X; EMT Cu relaxes to its
own lattice constant and is stable.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sevenn")
pytest.importorskip("phonopy")

from ase.calculators.calculator import Calculator, all_changes  # noqa: E402

from platonic_mlip import phonons as P  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "workflow" / "scripts" / "phonons.py"
SMALL = dict(min_length=6.0, mesh=4, npoints=31)  # 27-atom supercell of primitive fcc


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    import torch

    torch.set_num_threads(1)  # autograd on a busy 2-core machine: 2 threads can be 20x slower
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def calc_7net0():
    from platonic_mlip.embed.base import load_calculator, local_weights
    from platonic_mlip.models import resolve

    spec, _ = local_weights(resolve("7net-0"))
    return load_calculator(spec, "cpu")


class Springs(Calculator):
    """Central harmonic springs ``k/2 (d - d0)^2`` between atoms closer than ``cutoff`` (a toy model)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, k=1.0, d0=1.0, cutoff=3.0, nan_if_more_than=None):
        super().__init__()
        self.k, self.d0, self.cutoff, self.nan_if_more_than = k, d0, cutoff, nan_if_more_than

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from ase.neighborlist import neighbor_list

        super().calculate(atoms, properties, system_changes)
        i, j, d, vec = neighbor_list("ijdD", self.atoms, self.cutoff)
        stretch = d - self.d0
        forces = np.zeros((len(self.atoms), 3))
        np.add.at(forces, i, (self.k * stretch / d)[:, None] * vec)  # pulls i towards j when stretched
        if self.nan_if_more_than is not None and len(self.atoms) > self.nan_if_more_than:
            forces[:] = np.nan
        self.results = {"energy": 0.25 * self.k * float((stretch**2).sum()), "forces": forces}


def test_supercell_matrix_reaches_the_minimum_length():
    cell = P.reference_structure("Cu").cell[:]  # primitive fcc, heights a / sqrt(3) = 2.087 A
    assert np.array_equal(P.supercell_matrix(cell, 6.0), np.diag([3, 3, 3]))
    assert np.array_equal(P.supercell_matrix(np.diag([4.0, 5.0, 12.0]), 10.0), np.diag([3, 2, 1]))
    with pytest.raises(ValueError, match="zero volume"):
        P.supercell_matrix(np.zeros((3, 3)), 5.0)


def test_reference_structures_and_band_paths():
    sizes = {"Cu": 1, "Au": 1, "BaCeO3": 5, "Si": 2, "NaCl": 2}
    lattices = {"Cu": "FCC", "Au": "FCC", "BaCeO3": "CUB", "Si": "FCC", "NaCl": "FCC"}
    for name in P.REFERENCE_STRUCTURES:
        atoms = P.reference_structure(name)
        assert len(atoms) == sizes[name] and atoms.info["name"] == name
        path = P.band_path(atoms, 50)
        assert path["lattice"] == lattices[name] and path["labels"][0] == "Γ"
        assert len(path["distances"]) == len(path["qpoints"]) == len(path["segments"])
        assert np.all(np.diff(path["distances"]) >= 0)
    fcc = P.band_path(P.reference_structure("Cu", a=4.0), 50)
    assert list(fcc["labels"]) == ["Γ", "X", "W", "K", "Γ", "L", "U", "W", "L", "K|U", "X"]
    assert fcc["segments"].max() == 1  # one break (K|U)
    assert P.reference_structure("NaCl", a=6.0).cell.lengths() == pytest.approx([6 / np.sqrt(2)] * 3)
    with pytest.raises(ValueError, match="unknown reference structure"):
        P.reference_structure("GaAs")


def test_imaginary_summary_counts_below_the_tolerance_and_sets_gamma_apart():
    q = np.array([[0, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0]], dtype=float)
    f = np.array([[-0.02, 0.01, 0.03, 5.0], [-1.0, -0.01, 2.0, 6.0], [1.0, 1.5, 2.0, 7.0]])
    s = P.imaginary_summary(q, f, imag_tol=0.05, acoustic_tol=0.1)
    assert s["n_imaginary"] == 1 and s["min_frequency_THz"] == -1.0
    assert s["acoustic_gamma_max_THz"] == pytest.approx(0.03) and s["acoustic_ok"]
    assert s["imaginary_fraction"] == pytest.approx(1 / 9)
    f[0, :3] = [-0.5, 0.0, 0.2]  # broken translational invariance
    assert not P.imaginary_summary(q, f)["acoustic_ok"]
    with pytest.raises(ValueError, match="no Gamma"):
        P.imaginary_summary(q[1:], f[1:])


def test_7net0_fcc_cu_is_stable_with_acoustic_modes_at_zero(calc_7net0):
    res = P.phonons(P.reference_structure("Cu"), calc_7net0, "7net-0", "Cu", **SMALL)
    s = res["summary"]
    assert res["relax"]["converged"] and res["n_supercell_atoms"] == 27
    assert s["n_imaginary"] == 0 and s["min_frequency_THz"] > 0.5
    assert s["acoustic_ok"] and s["acoustic_gamma_max_THz"] < 0.05
    top = res["band"]["frequencies"].max()
    assert 6.0 < top < 8.5, top  # Cu: about 7.3 THz measured; PBE-trained models a little lower
    assert res["mesh"]["frequencies"].shape == (64, 3)


def test_spring_model_gives_the_analytic_frequencies_at_x():
    """Nearest-neighbour central springs k on fcc: at X, longitudinal sqrt(8k/m), transverse sqrt(4k/m)."""
    from ase.units import fs

    a, k = 3.615, 1.5
    calc = Springs(k=k, d0=a / np.sqrt(2), cutoff=3.0)
    res = P.phonons(P.reference_structure("Cu", a), calc, "springs", "Cu", relax=False, **SMALL)
    band = res["band"]
    x_at = band["label_x"][list(band["labels"]).index("X")]
    freqs = np.sort(band["frequencies"][np.flatnonzero(np.isclose(band["distances"], x_at))[0]])
    to_thz = 1e3 * fs / (2 * np.pi)  # sqrt(eV / (A^2 amu)) in THz
    m = 63.546  # phonopy's mass of Cu
    expect = np.array([np.sqrt(4 * k / m), np.sqrt(4 * k / m), np.sqrt(8 * k / m)]) * to_thz
    assert freqs == pytest.approx(expect, rel=1e-2)
    assert res["summary"]["n_imaginary"] == 0 and res["summary"]["acoustic_gamma_max_THz"] < 1e-3
    # a wrong spring constant would not pass (the check can fail)
    assert not np.allclose(freqs, expect * np.sqrt(1.1), rtol=1e-2)


def test_emt_cu_relaxes_to_its_own_lattice_constant_and_is_stable():
    from ase.calculators.emt import EMT

    start = P.reference_structure("Cu", a=3.7)  # strained: the relaxation must change the cell
    res = P.phonons(start, EMT(), "emt", "Cu", **SMALL)
    a_relaxed = (4 * res["relax"]["volume_per_atom"]) ** (1 / 3)
    assert res["relax"]["converged"] and a_relaxed == pytest.approx(3.59, abs=0.01)  # EMT's Cu
    assert res["relaxed"].get_volume() < start.get_volume()
    assert res["summary"]["n_imaginary"] == 0 and res["summary"]["acoustic_ok"]


def test_unsupported_element_names_model_and_structure(calc_7net0):
    from ase.build import bulk

    po = bulk("Po", "sc", a=3.35)  # Z = 84: not in 7net-0's element table
    with pytest.raises(P.PhononError, match=r"model '7net-0' cannot evaluate structure 'polonium'.*Po"):
        P.phonons(po, calc_7net0, "7net-0", "polonium", **SMALL)


def test_nan_forces_of_a_displaced_cell_name_model_and_structure():
    calc = Springs(k=1.0, d0=3.615 / np.sqrt(2), nan_if_more_than=1)  # the 1-atom cell is fine
    with pytest.raises(P.PhononError, match=r"model 'toy': structure 'Cu' \(displaced supercell 1 of 1\)"):
        P.phonons(P.reference_structure("Cu"), calc, "toy", "Cu", relax=False, **SMALL)


def _script():
    """workflow/scripts/phonons.py as a module (its ``main(argv)`` runs in this process: no second start-up)."""
    import importlib.util

    sys.path.insert(0, str(SCRIPT.parent))  # for its ``import _paths``
    spec = importlib.util.spec_from_file_location("phonons_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_script(tmp_path, structures, tag):
    npz, csv = tmp_path / f"{tag}.npz", tmp_path / f"{tag}.csv"
    argv = ["--model", "7net-0", "--structures", str(structures), "--device", "cpu", "--threads", "1"]
    argv += ["--min-length", "5", "--mesh", "2", "--npoints", "11", "--steps", "20"]
    _script().main([*argv, "--out-npz", str(npz), "--out-csv", str(csv)])
    return npz, csv


def test_script_end_to_end_writes_outputs_only_on_success(tmp_path):
    import pandas as pd
    from ase.build import bulk
    from ase.io import write

    cu = P.reference_structure("Cu")
    good = tmp_path / "good.extxyz"
    write(good, [cu], format="extxyz")
    npz, csv = _run_script(tmp_path, good, "good")
    rows = pd.read_csv(csv)
    assert list(rows.columns[:9]) == [
        "model",
        "structure",
        "n_atoms",
        "relaxed",
        "max_force_after_relax",
        "n_imaginary",
        "min_frequency_THz",
        "acoustic_gamma_max_THz",
        "wall_s",
    ]
    assert rows.loc[0, "structure"] == "Cu" and rows.loc[0, "n_imaginary"] == 0
    with np.load(npz) as z:
        assert list(z["structures"]) == ["Cu"] and str(z["model"]) == "7net-0"
        assert z["s0_frequencies"].shape == (len(z["s0_distances"]), 3)
        assert z["s0_mesh_frequencies"].shape == (8, 3)

    po = bulk("Po", "sc", a=3.35)
    po.info["name"] = "polonium"
    bad = tmp_path / "bad.extxyz"
    write(bad, [cu, po], format="extxyz")
    with pytest.raises(SystemExit, match="ERROR: model '7net-0' cannot evaluate structure 'polonium'"):
        _run_script(tmp_path, bad, "bad")
    assert not (tmp_path / "bad.csv").exists() and not (tmp_path / "bad.npz").exists()


def test_script_finetune_summary_and_distortion_outputs(tmp_path):
    """--finetune-summary swaps in a checkpoint file (here 7net-0's own, so the phonons must not change);
    --layer/--embeddings/--anchors add the distortion columns and the atoms' Platonic vectors."""
    import json

    import pandas as pd
    from ase.io import write

    from platonic_mlip.embed.base import local_weights
    from platonic_mlip.models import resolve

    _, plan = local_weights(resolve("7net-0"))
    summary = tmp_path / "summary.json"
    ckpt = {"epoch": 2, "path": plan["path"], "sha256": plan["sha256"]}
    early = {"epoch": 1, "path": str(tmp_path / "gone.pth"), "sha256": "0" * 64}
    summary.write_text(json.dumps({"arm": "naive", "checkpoints": [early, ckpt]}))
    si = P.reference_structure("Si")  # 2 symmetry-equivalent atoms
    structures = tmp_path / "si.extxyz"
    write(structures, [si], format="extxyz")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "emb.npy", rng.normal(size=(10, 128)).astype(np.float32))
    pd.DataFrame({"atom_index": [7, 2, 5]}).to_csv(tmp_path / "anchors.csv", index=False)
    argv = ["--model", "7net-0", "--structures", str(structures), "--device", "cpu", "--threads", "1"]
    argv += ["--min-length", "5", "--mesh", "2", "--npoints", "11", "--steps", "20"]
    outs = {}
    for tag, extra in (
        ("base", []),
        ("ft", ["--finetune-summary", str(summary), "--label", "7net-0 naive s0"]),
    ):
        extra += ["--layer", "readout_input", "--embeddings", str(tmp_path / "emb.npy")]
        extra += ["--anchors", str(tmp_path / "anchors.csv")]
        npz, csv = tmp_path / f"{tag}.npz", tmp_path / f"{tag}.csv"
        _script().main([*argv, *extra, "--out-npz", str(npz), "--out-csv", str(csv)])
        outs[tag] = (pd.read_csv(csv), dict(np.load(npz)))
    base, ft = outs["base"][0].iloc[0], outs["ft"][0].iloc[0]
    assert ft["model"] == "7net-0 naive s0" and str(outs["ft"][1]["model"]) == "7net-0 naive s0"
    meta = json.loads(str(outs["ft"][1]["params"]))
    assert meta["finetuned"]["epoch"] == 2 and meta["finetuned"]["path"] == plan["path"]
    assert ft["min_frequency_THz"] == pytest.approx(base["min_frequency_THz"], abs=1e-6)
    assert 0 <= base["sym_spread"] < 1e-3  # the two Si atoms are equivalent: invariant embeddings coincide
    assert 0 <= base["rot_spread"] < 1e-3  # an invariant model does not see a rigid rotation
    platonic = outs["base"][1]["s0_platonic"]
    assert platonic.shape == (2, 3) and np.all(np.abs(platonic) <= 1)
    summary.write_text(json.dumps({"arm": "naive", "checkpoints": [early]}))
    with pytest.raises(SystemExit, match="checkpoint of epoch 1 missing"):
        _script().main(
            [
                *argv,
                "--finetune-summary",
                str(summary),
                "--out-npz",
                str(tmp_path / "x.npz"),
                "--out-csv",
                str(tmp_path / "x.csv"),
            ]
        )
