"""The contract every model family keeps, run in the family's own environment.

``PLATONIC_FAMILY=<family> <env python> -m pytest tests/families/test_contract.py`` (``make test`` does it for
every family of ``platonic_mlip.families.FAMILIES``). Without PLATONIC_FAMILY the test runs for every
registered family whose package imports in this interpreter. What it checks, on real MP-20 structures with
the registry's contract model of the family (``FAMILIES[f]["contract"]``):

- the model loads offline through the weights layer, with the registry's width;
- rows are aligned with atoms: a structure embedded alone equals its rows in a batch;
- the features do not depend on the batch split, nor on the process (a second process gives the same);
- they equal the package's own calculator/descriptor route (the adapter's ``NaiveRoute``) within ``atol``;
- every layer the registry declares loads; with ``multi_layer``, all layers in one pass equal each alone;
- a structure with an element the model lacks is reported by material_id before any forward pass;
- the family's untrained control is seeded: the same seed gives the same features, another seed others;
- a configured sha256 that does not match refuses the weights, for bundled checkpoints too;
- where the registry says ``calculator``, the adapter's ASE calculator (``embed.base.load_calculator``)
  gives finite energy, forces and stress, forces equal to -dE/dx (conservative models), and for invariant families an energy
  unchanged by a rigid rotation.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from platonic_mlip.families import FAMILIES
from platonic_mlip.models import MODELS, checkpoint_specs, resolve

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "mp20_sample" / "train.csv"
PACKAGE = {
    "mace": "mace",
    "sevenn": "sevenn",
    "orb": "orb_models",
    "chgnet": "chgnet",
    "reference": "dscribe",
}


def _families() -> list[str]:
    chosen = os.environ.get("PLATONIC_FAMILY")
    if chosen:
        if chosen not in FAMILIES:
            raise RuntimeError(
                f"PLATONIC_FAMILY={chosen!r} is not a registered family: {', '.join(FAMILIES)}"
            )
        return [chosen]
    return [f for f in FAMILIES if importlib.util.find_spec(PACKAGE.get(f, f)) is not None]


FAMS = _families()
if not FAMS:
    pytest.skip("no model family package importable in this interpreter", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    import torch

    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def structures():
    from platonic_mlip.structures import read_split_csv

    atoms, ids, _ = read_split_csv(SAMPLE, limit=8)
    return atoms, ids


def _load(name: str, options: dict | None = None, layers: list[str] | None = None):
    from platonic_mlip.embed.base import load_embedder, local_weights

    ids = [f"{name}@{layer}" for layer in layers] if layers else [name]
    spec = checkpoint_specs({m: resolve(m, options) for m in ids})[name]
    spec, weights = local_weights(spec)
    return load_embedder(spec, "cpu"), weights


_CACHE: dict = {}


def _contract(family: str):
    if family not in _CACHE:
        model = FAMILIES[family]["contract"]["model"]
        _CACHE[family] = _load(model)
    return _CACHE[family]


def _embed(emb, atoms, ids, batch_atoms=10_000):
    from platonic_mlip.embed.base import embed_structures

    feats, _ = embed_structures(emb, atoms, ids, batch_atoms=batch_atoms, progress=False)
    return feats


@pytest.mark.parametrize("family", FAMS)
def test_registry_entry_is_complete(family):
    entry = FAMILIES[family]
    assert (ROOT / "envs" / f"{entry['env']}.yaml").is_file()
    assert (ROOT / "envs" / "locks" / f"{entry['env']}.txt").is_file()
    assert entry["default_layer"] in entry["layers"]
    module = importlib.import_module(entry["adapter"])
    assert callable(module.load) and callable(module.key_url) and module.NaiveRoute
    assert callable(getattr(module, "calculator", None)) == entry["calculator"]  # ASE calculator (phonons)
    if entry["bundled"]:
        assert callable(module.bundled_path)
    assert MODELS[entry["contract"]["model"]]["family"] == family
    # a learned family has an untrained control; a constructed one a seeded model (its random construction)
    assert any(s["family"] == family and s["source"] == "random" for s in MODELS.values()), (
        f"family {family}: no seeded random model (untrained control) in the registry"
    )


@pytest.mark.parametrize("family", FAMS)
def test_loads_offline_with_the_registry_width(family, structures):
    emb, weights = _contract(family)
    spec = resolve(FAMILIES[family]["contract"]["model"])
    atoms, ids = structures
    feats = _embed(emb, atoms, ids)
    assert feats.dtype == np.float32 and np.isfinite(feats).all()
    assert feats.shape == (sum(len(a) for a in atoms), spec["dim"]) == (feats.shape[0], emb.dim)
    info = emb.info()
    assert {"weights_source", "weights_sha256", "layer", "versions"} <= set(info)
    if weights["path"]:
        assert len(weights["sha256"]) == 64


@pytest.mark.parametrize("family", FAMS)
def test_rows_align_with_atoms_and_batches_do_not_matter(family, structures):
    emb, _ = _contract(family)
    atoms, ids = structures
    whole = _embed(emb, atoms, ids)
    small = _embed(emb, atoms, ids, batch_atoms=1)  # one structure per batch
    assert np.abs(whole - small).max() < 1e-4
    start = sum(len(a) for a in atoms[:3])
    alone = _embed(emb, atoms[3:4], ids[3:4])
    assert np.abs(whole[start : start + len(atoms[3])] - alone).max() < 1e-4
    # a different structure has different rows (the check above can fail)
    assert np.abs(whole[: len(atoms[0])].mean(0) - alone.mean(0)).max() > 1e-3


@pytest.mark.parametrize("family", FAMS)
def test_a_second_process_gives_the_same_features(family, structures, tmp_path):
    emb, _ = _contract(family)
    atoms, ids = structures
    here = _embed(emb, atoms[:4], ids[:4])
    code = (
        "import sys, numpy as np, torch; torch.set_num_threads(2)\n"
        f"sys.path.insert(0, {str(ROOT / 'tests' / 'families')!r})\n"
        "import test_contract as t\n"
        "atoms, ids, _ = t.read()\n"
        f"emb, _ = t._load({FAMILIES[family]['contract']['model']!r})\n"
        f"np.save({str(tmp_path / 'f.npy')!r}, t._embed(emb, atoms[:4], ids[:4]))\n"
    )
    env = dict(os.environ, PLATONIC_FAMILY=family)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    there = np.load(tmp_path / "f.npy")
    assert there.shape == here.shape and np.abs(there - here).max() < 1e-5


def read():
    from platonic_mlip.structures import read_split_csv

    return read_split_csv(SAMPLE, limit=8)


@pytest.mark.parametrize("family", FAMS)
def test_equals_the_package_route(family, structures, tmp_path):
    from platonic_mlip.embed.base import adapter

    emb, _ = _contract(family)
    atoms, ids = structures
    ours = _embed(emb, atoms[:5], ids[:5])
    naive = adapter(family).NaiveRoute(emb, emb.device, tmp_path)
    try:
        theirs = naive(atoms[:5])
    finally:
        naive.close()
    assert theirs.shape == ours.shape
    diff = float(np.abs(theirs - ours).max())
    assert diff <= FAMILIES[family]["contract"]["atol"], f"{family}: max |ours - package route| = {diff:.2e}"


@pytest.mark.parametrize("family", FAMS)
def test_every_layer_loads_and_one_pass_equals_each_layer_alone(family, structures):
    entry = FAMILIES[family]
    model = entry["contract"]["model"]
    atoms, ids = structures
    alone = {}
    for layer in entry["layers"]:
        emb, _ = _load(model, layers=[layer])
        alone[layer] = _embed(emb, atoms[:3], ids[:3])
        assert np.isfinite(alone[layer]).all() and alone[layer].shape[1] == emb.dim
    if not entry["multi_layer"]:
        assert len(entry["layers"]) == 1, f"{family}: several layers but one per pass"
        return
    emb, _ = _load(model, layers=list(entry["layers"]))
    both = _embed(emb, atoms[:3], ids[:3])
    slices = emb.layer_slices()
    assert list(slices) == list(entry["layers"])
    for layer, (lo, hi) in slices.items():
        assert np.abs(both[:, lo:hi] - alone[layer]).max() < 1e-5, layer


@pytest.mark.parametrize("family", FAMS)
def test_unsupported_elements_are_reported_by_material_id(family, structures):
    from platonic_mlip.embed.base import UnsupportedElementsError, embed_structures

    z = FAMILIES[family]["contract"]["unsupported"]
    emb, _ = _contract(family)
    if z is None:
        assert emb.supported_numbers() is None
        return
    assert z not in emb.supported_numbers()
    atoms, ids = structures
    odd = atoms[1].copy()
    odd.numbers[0] = z
    with pytest.raises(UnsupportedElementsError, match="mp-odd-one"):
        embed_structures(emb, [atoms[0], odd], [ids[0], "mp-odd-one"], progress=False)


@pytest.mark.parametrize("family", FAMS)
def test_untrained_control_is_seeded(family, structures):
    control = next(m for m, s in MODELS.items() if s["family"] == family and s["source"] == "random")
    atoms, ids = structures
    a = _embed(_load(control)[0], atoms[:3], ids[:3])
    b = _embed(_load(control)[0], atoms[:3], ids[:3])
    c = _embed(_load(control, {"seed": MODELS[control]["seed"] + 1})[0], atoms[:3], ids[:3])
    assert np.array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


@pytest.mark.parametrize("family", FAMS)
def test_a_wrong_sha256_refuses_the_weights(family, tmp_path):
    from platonic_mlip.weights import WeightsError

    model = FAMILIES[family]["contract"]["model"]
    _, weights = _contract(family)
    if not weights["path"]:
        pytest.skip(f"{family}: the contract model ({model}) has no weights file")
    with pytest.raises(WeightsError, match=f"model_options.{model}.sha256"):
        _load(model, {"sha256": "0" * 64})
    good = _load(model, {"sha256": weights["sha256"]})[1]
    assert good["sha256"] == weights["sha256"]


def test_registry_is_json_serialisable():
    json.dumps(FAMILIES)


_CALCS: dict = {}


def _calculator(family: str):
    """The ASE calculator of the family's contract model (``embed.base.load_calculator``), cached."""
    from platonic_mlip.embed.base import load_calculator, local_weights

    if family not in _CALCS:
        spec, _ = local_weights(resolve(FAMILIES[family]["contract"]["model"]))
        _CALCS[family] = load_calculator(spec, "cpu")
    return _CALCS[family]


def _evaluate(calc, atoms):
    a = atoms.copy()
    calc.reset()
    a.calc = calc
    return float(a.get_potential_energy()), np.asarray(a.get_forces()), np.asarray(a.get_stress())


WITH_CALCULATOR = [f for f in FAMS if FAMILIES[f]["calculator"]]


@pytest.mark.parametrize("family", WITH_CALCULATOR)
def test_calculator_gives_energy_forces_stress_and_forces_are_minus_the_gradient(family, structures):
    """The family's ASE calculator: finite energy, (n, 3) forces and Voigt stress; for a conservative
    model a force component equals -dE/dx by central finite differences (the check can fail: a wrong
    sign or a rescaled force would)."""
    calc = _calculator(family)
    atoms = min(structures[0], key=len).copy()
    atoms.rattle(0.03, seed=1)  # off equilibrium: forces well above the finite-difference noise
    energy, forces, stress = _evaluate(calc, atoms)
    assert np.isfinite(energy) and forces.shape == (len(atoms), 3) and stress.shape == (6,)
    assert np.isfinite(forces).all() and np.isfinite(stress).all()
    if not getattr(calc, "conservative", True):  # an Orb direct model: forces from a head
        return
    i, k = np.unravel_index(np.abs(forces).argmax(), forces.shape)
    h = 1e-2
    plus, minus = atoms.copy(), atoms.copy()
    plus.positions[i, k] += h
    minus.positions[i, k] -= h
    numeric = -(_evaluate(calc, plus)[0] - _evaluate(calc, minus)[0]) / (2 * h)
    noise = float(20 * np.finfo(np.float32).eps * max(abs(energy), 1e-3) / h)  # float32 energies
    assert abs(forces[i, k]) > 10 * noise, f"{family}: forces too small to test ({forces[i, k]:.3g} eV/A)"
    assert numeric == pytest.approx(float(forces[i, k]), rel=0.05, abs=noise), (family, i, k)


@pytest.mark.parametrize("family", WITH_CALCULATOR)
def test_calculator_energy_is_rotation_invariant_for_invariant_families(family, structures):
    """Rotating cell and positions together leaves the energy of an invariant family unchanged and rotates
    its forces; a non-invariant family (Orb) is only required to give finite values."""
    from scipy.spatial.transform import Rotation

    calc = _calculator(family)
    atoms = min(structures[0], key=len).copy()
    atoms.rattle(0.03, seed=2)
    rot = Rotation.from_rotvec([0.3, -0.7, 0.5]).as_matrix()
    turned = atoms.copy()
    turned.set_cell(atoms.cell[:] @ rot.T, scale_atoms=False)
    turned.set_positions(atoms.positions @ rot.T)
    e0, f0, _ = _evaluate(calc, atoms)
    e1, f1, _ = _evaluate(calc, turned)
    assert np.isfinite(e1) and np.isfinite(f1).all()
    if not FAMILIES[family]["invariant"]:
        return
    assert e1 == pytest.approx(e0, abs=1e-3 + 1e-5 * abs(e0)), family
    assert np.abs(f1 - f0 @ rot.T).max() < 1e-3, family
