"""SevenNet embedder: fast path vs the package's own forward, batching, random control, modals, offline."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sevenn")

import torch  # noqa: E402

from platonic_mlip.embed.base import embed_structures, load_embedder  # noqa: E402
from platonic_mlip.models import resolve  # noqa: E402
from platonic_mlip.structures import read_split_csv  # noqa: E402

pytestmark = [
    pytest.mark.family("sevenn"),
    pytest.mark.filterwarnings("ignore:No tensor product accelerator"),
]

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "mp20_sample" / "train.csv"
CPU = torch.device("cpu")


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no tensor product accelerator" and friends
        yield


@pytest.fixture(scope="module")
def structures():
    atoms, ids, _ = read_split_csv(SAMPLE, limit=20)
    return atoms, ids


@pytest.fixture(scope="module")
def emb_7net0():
    return load_embedder(resolve("7net-0"), "cpu")


@pytest.fixture(scope="module")
def emb_mf_pbe():
    return load_embedder(resolve("7net-mf-0", {"modal": "PBE"}), "cpu")


def reference_features(checkpoint: str, atoms_list, modal=None) -> np.ndarray:
    """sevenn's ASE calculator (full forward with forces), one structure at a time, with a forward
    pre-hook on reduce_input_to_hidden capturing its input."""
    from sevenn.calculator import SevenNetCalculator

    calc = SevenNetCalculator(checkpoint, device="cpu", modal=modal)
    captured = []

    def hook(module, args):
        captured.append(args[0]["x"].detach().clone())

    handle = calc.model._modules["reduce_input_to_hidden"].register_forward_pre_hook(hook)
    try:
        for atoms in atoms_list:
            a = atoms.copy()
            a.calc = calc
            forces = a.get_forces()  # the reference path really computes forces
            assert forces.shape == (len(a), 3)
    finally:
        handle.remove()
    assert len(captured) == len(atoms_list)
    return torch.cat(captured).numpy()


@pytest.mark.parametrize("which", ["7net-0", "7net-mf-0:PBE"])
def test_fast_path_matches_calculator(which, structures, emb_7net0, emb_mf_pbe):
    atoms = structures[0][:8]
    emb, modal = (emb_7net0, None) if which == "7net-0" else (emb_mf_pbe, "PBE")
    fast = emb.embed_batch(atoms)
    ref = reference_features(emb.checkpoint_path, atoms, modal=modal)
    assert fast.dtype == np.float32
    assert fast.shape == ref.shape == (sum(len(a) for a in atoms), 128)
    assert np.abs(fast - ref).max() < 1e-5


def test_batching_invariance(structures, emb_7net0):
    atoms = structures[0][:5]
    batched = emb_7net0.embed_batch(atoms)
    alone = np.concatenate([emb_7net0.embed_batch([a]) for a in atoms])
    assert np.abs(batched - alone).max() < 1e-5
    # order within the batch follows the structures
    rev = emb_7net0.embed_batch(atoms[::-1])
    n = [len(a) for a in atoms]
    off = np.cumsum([0] + n)
    rev_off = np.cumsum([0] + n[::-1])
    for i in range(len(atoms)):
        j = len(atoms) - 1 - i
        assert np.abs(rev[rev_off[j] : rev_off[j + 1]] - batched[off[i] : off[i + 1]]).max() < 1e-5


def test_no_grad_no_force_module(structures, emb_7net0):
    assert "force_output" not in emb_7net0.module_names
    assert emb_7net0.module_names[-1] != "reduce_input_to_hidden"
    assert not any(p.requires_grad for p in emb_7net0.model.parameters())
    out = emb_7net0.embed_batch(structures[0][:2])
    assert out.shape[1] == emb_7net0.dim == 128


def test_random_control(structures, emb_7net0):
    atoms = structures[0][:4]
    spec = resolve("dummy-7net-0")
    rng_before = torch.random.get_rng_state()
    a = load_embedder(spec, "cpu")
    assert torch.equal(rng_before, torch.random.get_rng_state())  # global RNG untouched
    b = load_embedder(spec, "cpu")
    other = dict(spec, seed=1)
    c = load_embedder(other, "cpu")
    fa, fb, fc = (e.embed_batch(atoms) for e in (a, b, c))
    assert np.isfinite(fa).all() and np.isfinite(fc).all()  # 7net-0's config stores conv_denominator 0.0
    assert np.array_equal(fa, fb)
    assert np.abs(fa - fc).max() > 1e-3
    assert np.abs(fa - emb_7net0.embed_batch(atoms)).max() > 1e-3
    info = a.info()
    assert info["weights_sha256"] is None
    assert info["seed"] == 0 and info["architecture"] == "7net-0"
    assert a.supported_numbers() == emb_7net0.supported_numbers()


def test_modals(structures, emb_mf_pbe):
    atoms = structures[0][:2]
    r2 = load_embedder(resolve("7net-mf-0", {"modal": "R2SCAN"}), "cpu")
    diff = np.abs(emb_mf_pbe.embed_batch(atoms) - r2.embed_batch(atoms)).max()
    assert diff > 1e-4
    assert "modal PBE" in emb_mf_pbe.info()["layer"]
    with pytest.raises(ValueError, match=r"unknown modal 'nope'.*R2SCAN.*PBE"):
        load_embedder(resolve("7net-mf-0", {"modal": "nope"}), "cpu")
    spec = resolve("7net-mf-0")
    spec.pop("modal")
    with pytest.raises(ValueError, match=r"needs 'modal'.*R2SCAN.*PBE"):
        load_embedder(spec, "cpu")
    with pytest.raises(ValueError, match="not multi-fidelity"):
        load_embedder(resolve("7net-0", {"modal": "PBE"}), "cpu")


def test_omat_offline_error(monkeypatch, tmp_path):
    import sevenn._const as const

    # an absent file and a download link to a closed local port: sevenn's downloader fails at once
    expected = tmp_path / "SevenNet_omat" / "checkpoint_sevennet_omat.pth"
    monkeypatch.setattr(const, "SEVENNET_omat", str(expected))
    monkeypatch.setattr(
        const,
        "CHECKPOINT_DOWNLOAD_LINKS",
        {str(expected): "http://127.0.0.1:9/checkpoint_sevennet_omat.pth"},
    )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError) as err:
        load_embedder(resolve("7net-omat"), "cpu")
    assert time.perf_counter() - t0 < 20
    msg = str(err.value)
    assert "7net-omat" in msg and str(expected) in msg and "source" in msg
    assert not expected.parent.exists()  # no empty directory left behind


def test_missing_local_checkpoint(tmp_path):
    spec = dict(resolve("7net-0"), source=str(tmp_path / "nope.pth"))
    with pytest.raises(RuntimeError, match="nope.pth"):
        load_embedder(spec, "cpu")


def test_embed_structures_end_to_end(structures, emb_7net0):
    atoms, ids = structures
    feats, stats = embed_structures(emb_7net0, atoms, ids, batch_atoms=64, progress=False)
    assert feats.shape == (sum(len(a) for a in atoms), 128)
    assert feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert stats["n_batches"] > 1
    info = emb_7net0.info()
    assert len(info["weights_sha256"]) == 64
    assert info["layer"] == "input of reduce_input_to_hidden"
    assert set(info["versions"]) >= {"sevenn", "torch", "e3nn"}
    assert 8 in emb_7net0.supported_numbers() and len(emb_7net0.supported_numbers()) == 89
    assert os.path.isfile(info["checkpoint_path"])
