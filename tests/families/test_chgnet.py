"""CHGNet embedder: every layer vs the package's own route, several layers in one pass, 0.2.0 (no
readout_norm), the random control, element table, errors. Runs in the chgnet environment (.venvs/chgnet)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("chgnet")

import torch  # noqa: E402

from platonic_mlip.embed import chgnet as fam  # noqa: E402
from platonic_mlip.embed.base import (  # noqa: E402
    UnsupportedElementsError,
    embed_structures,
    load_embedder,
    local_weights,
)
from platonic_mlip.families import FAMILIES  # noqa: E402
from platonic_mlip.models import ConfigError, resolve  # noqa: E402
from platonic_mlip.structures import read_split_csv  # noqa: E402

pytestmark = [pytest.mark.family("chgnet")]

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "mp20_sample" / "train.csv"
LAYERS = list(FAMILIES["chgnet"]["layers"])
# Batched forward-only features vs CHGNet.predict_structure one structure at a time (forces, stress,
# magmoms): measured max |diff| 0.0 (bit-identical, float32) for every layer of 0.3.0 and 0.2.0 on the first
# 10 MP-20 sample structures (123 atoms), and at most 3.8e-6 (0.3.0 conv4) on the first 100 (1023 atoms),
# CPU, torch 2.13.0; 1e-4 leaves room for other BLAS/GPU kernels.
ATOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "converting a tensor with requires_grad" in chgnet, ...
        yield


@pytest.fixture(scope="module")
def structures():
    # the first 12 sample structures; 10 and 11 (In5Mg, Mg2Yb4) have no bond under the 3 A bond-graph
    # cutoff, hence no angles (CHGNet skips its bond/angle layers per batch, see embed_batch)
    atoms, ids, _ = read_split_csv(SAMPLE, limit=12)
    return atoms, ids


def multi_spec(name: str, layers) -> dict:
    spec = resolve(name)
    spec.pop("dim", None)  # as models.checkpoint_specs does for a job of several layers
    spec.update(layers=list(layers), layer=layers[0])
    return spec


@pytest.fixture(scope="module")
def emb_all():
    """chgnet-0.3.0 with every layer, one pass."""
    return load_embedder(multi_spec("chgnet-0.3.0", LAYERS), "cpu")


@pytest.fixture(scope="module")
def feats_all(emb_all, structures):
    return emb_all.embed_batch(structures[0])


def cols(emb, feats, layer):
    start, stop = emb.layer_slices()[layer]
    return feats[:, start:stop]


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_matches_naive_route(layer, emb_all, feats_all, structures):
    atoms = structures[0]
    naive = fam.NaiveRoute(resolve(f"chgnet-0.3.0@{layer}"), torch.device("cpu"), None)
    try:
        ref = naive(atoms)
    finally:
        naive.close()
    assert ("return_atom_feas=True" in naive.description) == (layer == "conv3")
    fast = cols(emb_all, feats_all, layer)
    assert fast.dtype == np.float32 and ref.shape == fast.shape == (sum(len(a) for a in atoms), 64)
    assert np.abs(fast - ref).max() < ATOL


def test_layers_in_one_pass_equal_each_alone(emb_all, feats_all, structures):
    atoms = structures[0]
    assert emb_all.dim == 64 * len(LAYERS) and feats_all.shape[1] == emb_all.dim
    assert emb_all.layer_dims == {layer: 64 for layer in LAYERS}
    for layer in LAYERS:
        alone = load_embedder(resolve(f"chgnet-0.3.0@{layer}"), "cpu")
        assert alone.dim == 64 and alone.layer_dims == {layer: 64}
        assert np.array_equal(alone.embed_batch(atoms), cols(emb_all, feats_all, layer))
    # columns follow the requested order, not the network's
    two = load_embedder(multi_spec("chgnet-0.3.0", ["readout_input", "conv1"]), "cpu")
    out = two.embed_batch(atoms)
    assert two.layer_slices() == {"readout_input": [0, 64], "conv1": [64, 128]}
    assert np.array_equal(out[:, :64], cols(emb_all, feats_all, "readout_input"))
    assert np.array_equal(out[:, 64:], cols(emb_all, feats_all, "conv1"))
    info = two.info()
    assert info["layers"] == ["readout_input", "conv1"] and info["dim"] == 128
    assert (
        info["layer"].startswith("readout_input: input of the energy readout") and "; conv1:" in info["layer"]
    )


def test_forward_stops_after_deepest_layer(structures):
    emb = load_embedder(resolve("chgnet-0.3.0@conv1"), "cpu")
    calls = []
    handle = emb.model.atom_conv_layers[1].register_forward_hook(lambda *a: calls.append(1))
    try:
        emb.embed_batch(structures[0][:2])
    finally:
        handle.remove()
    assert calls == []  # conv2..conv4 and the readout never ran
    assert not any(p.requires_grad for p in emb.model.parameters())


def test_chgnet_020_without_readout_norm(structures):
    atoms = structures[0][8:12]  # two with angles, two without
    assert [len(g.bond_graph) > 0 for g in load_embedder(resolve("chgnet-0.2.0"), "cpu").graphs(atoms)] == [
        True,
        True,
        False,
        False,
    ]
    # through the weights layer, as the workflow loads it: the adapter gets the bundled file, not the key
    spec, weights = local_weights(multi_spec("chgnet-0.2.0", ["readout_input", "conv4", "conv3"]))
    assert spec["source"] == weights["path"] == str(Path(fam.bundled_path("0.2.0")).resolve())
    emb = load_embedder(spec, "cpu")
    assert emb.model.readout_norm is None and emb.info()["readout_norm"] is False
    out = emb.embed_batch(atoms)
    assert np.isfinite(out).all()
    # no readout_norm: the readout's input is the last atom conv's output
    assert np.array_equal(out[:, :64], out[:, 64:128])
    naive = fam.NaiveRoute(emb, emb.device, None)  # the embedder's first layer, readout_input
    assert naive.description.startswith("CHGNet.load(model_name='0.2.0')")
    assert "forward hook for readout_input" in naive.description
    assert np.abs(naive(atoms) - out[:, :64]).max() < ATOL
    naive.close()
    info = emb.info()
    assert info["weights_source"] == info["bundled_key"] == "0.2.0"
    assert info["weights_sha256"] == weights["sha256"]
    assert info["n_params"] == 400_438 and info["atom_graph_cutoff"] == 5.0
    assert "no readout_norm" in info["layer"]
    # a structure without angles gives the same rows alone as in a batch with angles (0.2.0's bond-conv
    # output biases would otherwise reach its bonds in a batch)
    alone = np.concatenate([emb.embed_batch([a]) for a in atoms])
    assert np.abs(alone - out).max() < 1e-5
    # 0.2.0 and 0.3.0 are different networks
    e030 = load_embedder(resolve("chgnet-0.3.0@conv3"), "cpu")
    assert np.abs(e030.embed_batch(atoms) - out[:, 128:]).max() > 1e-2


def test_r2scan_loads_and_differs(structures, emb_all, feats_all):
    atoms = structures[0][:3]
    emb = load_embedder(resolve("chgnet-r2scan"), "cpu")
    out = emb.embed_batch(atoms)
    n = out.shape[0]
    assert out.shape == (n, 64) and np.isfinite(out).all()
    assert np.abs(out - cols(emb_all, feats_all, "readout_input")[:n]).max() > 1e-3
    assert emb.info()["weights_sha256"] == fam._sha256(fam.bundled_path("r2scan"))


_SUBPROCESS = """
import hashlib, sys, torch
from platonic_mlip.embed.base import load_embedder
from platonic_mlip.models import resolve
from platonic_mlip.structures import read_split_csv
torch.set_num_threads(1)
atoms, _, _ = read_split_csv(sys.argv[1], limit=2)
print(hashlib.sha256(load_embedder(resolve("dummy-chgnet"), "cpu").embed_batch(atoms).tobytes()).hexdigest())
"""


def test_random_control(structures, emb_all, feats_all):
    import hashlib

    atoms = structures[0][:2]
    n = sum(len(a) for a in atoms)
    spec = resolve("dummy-chgnet")
    rng_before = torch.random.get_rng_state()
    a = load_embedder(spec, "cpu")
    assert torch.equal(rng_before, torch.random.get_rng_state())  # global RNG untouched
    b = load_embedder(spec, "cpu")
    c = load_embedder(dict(spec, seed=1), "cpu")
    fa, fb, fc = (e.embed_batch(atoms) for e in (a, b, c))
    assert np.isfinite(fa).all() and np.isfinite(fc).all()
    assert np.array_equal(fa, fb)
    assert np.abs(fa - fc).max() > 1e-2
    assert np.abs(fa - cols(emb_all, feats_all, "readout_input")[:n]).max() > 1e-2
    # the same weights in a fresh process
    other = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS, str(SAMPLE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert other.stdout.strip().splitlines()[-1] == hashlib.sha256(fa.tobytes()).hexdigest()
    # the naive route builds the same random network
    naive = fam.NaiveRoute(a, a.device, None)
    assert np.abs(naive(atoms) - fa).max() < ATOL
    naive.close()
    info = a.info()
    assert info["weights_sha256"] is None and info["seed"] == 0 and info["architecture"] == "0.3.0"
    assert info["n_params"] == emb_all.info()["n_params"] == 412_525
    assert a.supported_numbers() == emb_all.supported_numbers()
    with pytest.raises(ValueError, match="needs 'seed'"):
        load_embedder(dict(spec, seed=None), "cpu")


def test_elements_and_atom_order(emb_all, structures):
    assert emb_all.supported_numbers() == set(range(1, 95))
    atoms = structures[0][0].copy()
    am = atoms.copy()
    am.numbers[0] = 95  # americium: outside CHGNet's 94-element embedding
    with pytest.raises(UnsupportedElementsError, match=r"\[95\]"):
        emb_all.embed_batch([am])
    with pytest.raises(UnsupportedElementsError, match=r"mp-x \(Am\)"):
        embed_structures(emb_all, [atoms, am], ["mp-ok", "mp-x"], progress=False)
    # rows follow ASE atom order
    perm = np.random.default_rng(0).permutation(len(atoms))
    base = emb_all.embed_batch([atoms])
    permuted = emb_all.embed_batch([atoms[perm]])
    assert np.abs(permuted - base[perm]).max() < 1e-5


def test_batching_and_end_to_end(emb_all, feats_all, structures):
    atoms, ids = structures
    alone = np.concatenate([emb_all.embed_batch([a]) for a in atoms[:4]])
    assert np.abs(alone - feats_all[: len(alone)]).max() < 1e-5
    feats, stats = embed_structures(emb_all, atoms, ids, batch_atoms=40, progress=False)
    assert stats["n_batches"] > 1 and feats.dtype == np.float32
    assert np.abs(feats - feats_all).max() < 1e-5
    info = emb_all.info()
    assert info["weights_source"] == "0.3.0"
    assert info["weights_sha256"] == fam._sha256(fam.bundled_path("0.3.0"))
    assert set(info["versions"]) >= {"chgnet", "torch", "pymatgen"}
    assert info["n_params"] == 412_525 and info["n_conv"] == 4


def test_bundled_paths_are_what_chgnet_load_reads(monkeypatch):
    from chgnet.model import CHGNet

    opened = []

    def fake_from_file(path, **kwargs):
        opened.append(path)
        raise RuntimeError("stop")

    monkeypatch.setattr(CHGNet, "from_file", fake_from_file)
    for key in FAMILIES["chgnet"]["bundled"]:
        with pytest.raises(RuntimeError, match="stop"):
            CHGNet.load(model_name=key, use_device="cpu", verbose=False)
        assert Path(opened[-1]).resolve() == Path(fam.bundled_path(key)).resolve()
    with pytest.raises(
        RuntimeError, match=r"unknown bundled CHGNet checkpoint 'nope'.*0\.3\.0, 0\.2\.0, r2scan"
    ):
        fam.bundled_path("nope")
    with pytest.raises(ValueError, match="no download URL"):
        fam.key_url("0.3.0")


def test_errors():
    with pytest.raises(RuntimeError, match=r"unknown CHGNet checkpoint '0\.1\.0'.*0\.3\.0, 0\.2\.0, r2scan"):
        load_embedder(dict(resolve("chgnet-0.3.0"), source="0.1.0"), "cpu")
    with pytest.raises(RuntimeError, match="nope.pth.tar' does not exist"):
        load_embedder(dict(resolve("chgnet-0.3.0"), source="/no/such/nope.pth.tar"), "cpu")
    with pytest.raises(ValueError, match=r"model 'x': unknown CHGNet layer 'conv9'; choose from conv1, "):
        load_embedder(dict(resolve("chgnet-0.3.0"), name="x", layer="conv9"), "cpu")
    with pytest.raises(ValueError, match=r"unknown CHGNet layer 'last'"):
        fam.NaiveRoute(dict(resolve("chgnet-0.3.0"), layer="last"), "cpu", None)
    with pytest.raises(ConfigError, match="not a layer of the CHGNet family"):
        resolve("chgnet-0.3.0@conv9")
    with pytest.raises(ValueError, match="spec dim 128"):
        load_embedder(dict(resolve("chgnet-0.3.0"), dim=128), "cpu")
    with pytest.raises(ValueError, match="name a layer twice"):
        load_embedder(multi_spec("chgnet-0.3.0", ["conv1", "conv1"]), "cpu")


def test_local_checkpoint_and_conv_count(tmp_path, structures, emb_all, feats_all):
    from chgnet.model import CHGNet

    atoms = structures[0][:2]
    n = sum(len(a) for a in atoms)
    # a local copy of 0.3.0, saved as chgnet's Trainer saves models
    local = tmp_path / "copy.pth.tar"
    torch.save({"model": CHGNet.from_file(fam.bundled_path("0.3.0")).as_dict()}, local)
    emb = load_embedder(dict(resolve("chgnet-0.3.0@conv2"), source=str(local)), "cpu")
    assert np.array_equal(emb.embed_batch(atoms), cols(emb_all, feats_all, "conv2")[:n])
    assert emb.info()["weights_sha256"] == fam._sha256(local)
    assert emb.info()["weights_source"] == str(local)
    # a 3-conv architecture has no conv4
    small = tmp_path / "three.pth.tar"
    torch.save({"model": CHGNet(n_conv=3, composition_model=None).as_dict()}, small)
    spec = dict(resolve("dummy-chgnet"), architecture=str(small))
    with pytest.raises(ValueError, match=r"layer 'conv4' but this CHGNet has 3 atom-conv layers"):
        load_embedder(dict(spec, layer="conv4"), "cpu")
    three = load_embedder(dict(spec, layer="conv3"), "cpu")
    assert three.embed_batch(atoms).shape == (n, 64) and "atom-conv layer 3 of 3" in three.info()["layer"]


def test_isolated_atoms_are_reported_by_material_id_before_any_forward():
    """mp-604321 of the bundled sample has 4 atoms with no neighbour within 0.2.0's 5 A atom-graph cutoff
    (CHGNet's converter refuses it); 0.3.0 (6 A) embeds it. The structure is named, not a batch position."""
    from platonic_mlip.embed.base import unembeddable

    atoms, ids, _ = read_split_csv(SAMPLE)
    i = ids.index("mp-604321")
    pick = [atoms[0], atoms[i]]
    names = [ids[0], ids[i]]
    old = load_embedder(local_weights(resolve("chgnet-0.2.0"))[0], "cpu")
    bad = unembeddable(old, pick, names)
    assert [(b["structure"], b["material_id"]) for b in bad] == [(1, "mp-604321")]
    assert "no neighbour within the 5 A atom-graph cutoff" in bad[0]["reason"]
    with pytest.raises(UnsupportedElementsError, match="mp-604321"):
        embed_structures(old, pick, names, progress=False)
    feats, _ = embed_structures(old, pick, names, progress=False, skip=[1])
    assert np.isnan(feats[len(pick[0]) :]).all() and np.isfinite(feats[: len(pick[0])]).all()
    new = load_embedder(local_weights(resolve("chgnet-0.3.0"))[0], "cpu")
    assert unembeddable(new, pick, names) == []
