"""Orb family loader (platonic_mlip.embed.orb): runs only in the orb environment (.venvs/orb).

Real MP-20 structures, random-initialised Orb-v3 architectures (no weights can be downloaded here).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("orb_models")

import torch  # noqa: E402

from platonic_mlip.embed import base, orb  # noqa: E402
from platonic_mlip.models import resolve  # noqa: E402
from platonic_mlip.structures import read_split_csv  # noqa: E402

pytestmark = pytest.mark.family("orb")

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "mp20_sample" / "train.csv"
ARCHS = ("orb_v3_conservative_inf_omat", "orb_v3_direct_inf_omat")
TOL = dict(rtol=1e-5, atol=1e-5)

torch.set_num_threads(2)


def _spec(arch: str, seed: int = 0, **kw) -> dict:
    spec = dict(name=f"test-{arch}", family="orb", source="random", architecture=arch, seed=seed, dim=256)
    spec.update(kw)
    return spec


@pytest.fixture(scope="module")
def structures():
    atoms, ids, _ = read_split_csv(SAMPLE, limit=20)
    return atoms, ids


@pytest.fixture(scope="module")
def embedders():
    return {arch: orb.load(_spec(arch), torch.device("cpu")) for arch in ARCHS}


@pytest.fixture(scope="module")
def feats8(embedders, structures):
    atoms = structures[0][:8]
    return {arch: emb.embed_batch(atoms) for arch, emb in embedders.items()}


def _rows(atoms_list) -> int:
    return sum(len(a) for a in atoms_list)


def _reference(emb, atoms_list) -> np.ndarray:
    """The package's own route: ORBCalculator per structure (graph as it builds it, full regressor forward,
    forces included); the trunk's node_features are captured with a forward hook on ``regressor.model``."""
    from orb_models.forcefield.calculator import ORBCalculator

    captured = []
    hook = emb.model.model.register_forward_hook(
        lambda mod, inp, out: captured.append(out["node_features"].detach().clone())
    )
    try:
        # orb's loaders leave default dtype float32 and matmul precision "high" set for the calculator
        with orb._matmul_precision("high"):
            calc = ORBCalculator(emb.model, device="cpu")
            for atoms in atoms_list:
                a = atoms.copy()
                a.calc = calc
                a.get_potential_energy()
    finally:
        hook.remove()
    assert len(captured) == len(atoms_list)
    return torch.cat(captured).numpy()


@pytest.mark.parametrize("arch", ARCHS)
def test_fast_path_matches_calculator_route(arch, embedders, structures, feats8):
    atoms = structures[0][:8]
    emb = embedders[arch]
    fast = feats8[arch]
    ref = _reference(emb, atoms)
    assert fast.dtype == np.float32
    assert fast.shape == (_rows(atoms), 256) == ref.shape
    np.testing.assert_allclose(fast, ref, **TOL)
    # the features are not trivially constant
    assert np.std(fast, axis=0).mean() > 1e-3


@pytest.mark.parametrize("arch", ARCHS)
def test_fast_trunk_matches_package_forward(arch, embedders, structures):
    """fast_trunk (first edge Linear split per node, SiLU in place, no decoder) == MoleculeGNS.forward."""
    emb = embedders[arch]
    assert emb.fast and orb.fast_trunk_applies(emb.model.model)
    batch = emb.graph(structures[0][:8])
    with torch.inference_mode():
        vectors, _, _ = batch.compute_differentiable_edge_vectors(
            use_stress_displacement=False, use_rotation=False
        )
        batch.edge_features["vectors"] = vectors
        ref = emb.model.model(batch)["node_features"]
        fast = orb.fast_trunk(emb.model.model, batch)
    np.testing.assert_allclose(fast.numpy(), ref.numpy(), **TOL)


def test_fast_trunk_falls_back_for_other_networks(embedders, monkeypatch):
    gns = embedders[ARCHS[1]].model.model
    assert orb.fast_trunk_applies(gns)
    monkeypatch.setattr(gns.gnn_stacks[0], "_attention_gate", "softmax")
    assert not orb.fast_trunk_applies(gns)


@pytest.mark.parametrize("arch", ARCHS)
def test_edge_chunks_and_package_trunk_agree(arch, embedders, structures, feats8, monkeypatch):
    """Chunked forwards (small edge_chunk) and the package's own trunk give the same features."""
    atoms = structures[0][:8]
    emb = embedders[arch]
    graphs = emb.graphs(atoms)
    chunks = orb._chunks(graphs, 300)
    assert len(chunks) > 2 and [g for c in chunks for g in c] == graphs
    assert all(len(c) == 1 or sum(int(g.n_edge.sum()) for g in c) <= 300 for c in chunks)
    assert orb._chunks(graphs, None) == [graphs]
    monkeypatch.setattr(emb, "edge_chunk", 300)
    np.testing.assert_allclose(emb.embed_batch(atoms), feats8[arch], **TOL)
    monkeypatch.setattr(emb, "edge_chunk", None)
    monkeypatch.setattr(emb, "fast", False)
    np.testing.assert_allclose(emb.embed_batch(atoms), feats8[arch], **TOL)


@pytest.mark.parametrize("arch", ARCHS)
def test_batching_invariance(arch, embedders, structures, feats8):
    atoms = structures[0][:8]
    emb = embedders[arch]
    # batch_atoms=1: every structure is a batch of its own (one by one), through the driver
    one_by_one, stats = base.embed_structures(emb, atoms, structures[1][:8], batch_atoms=1, progress=False)
    assert stats["n_batches"] == len(atoms)
    np.testing.assert_allclose(one_by_one, feats8[arch], **TOL)


def test_random_weights_deterministic_and_seeded(embedders, structures, feats8):
    arch = ARCHS[0]
    atoms = structures[0][:4]
    first4 = feats8[arch][: _rows(atoms)]
    rng_before = torch.random.get_rng_state()
    again = orb.load(_spec(arch, seed=0), "cpu")
    other = orb.load(_spec(arch, seed=1), "cpu")
    assert torch.equal(rng_before, torch.random.get_rng_state()), "loading must not move the global RNG"
    sd0, sd1 = embedders[arch].model.state_dict(), again.model.state_dict()
    assert all(torch.equal(sd0[k], sd1[k]) for k in sd0)
    np.testing.assert_allclose(again.embed_batch(atoms), first4, **TOL)
    diff = np.abs(other.embed_batch(atoms) - first4).max()
    assert diff > 1e-2
    info = again.info()
    assert info["weights_sha256"] is None and "random" in info["weights_source"]


@pytest.mark.parametrize("arch", ARCHS)
def test_architecture_table_matches_loaders(arch, monkeypatch):
    """ARCHITECTURES builds what orb's own loader builds (builder, radius, neighbours, parameters)."""
    from orb_models.forcefield import pretrained

    monkeypatch.setattr(pretrained, "load_model", lambda model, *a, **k: model)
    by_loader = getattr(pretrained, arch)(weights_path="unused", device="cpu", compile=False)
    ours = orb.build_architecture(arch)
    assert type(ours) is type(by_loader)
    assert ours.system_config == by_loader.system_config
    a, b = ours.state_dict(), by_loader.state_dict()
    assert a.keys() == b.keys()
    assert all(a[k].shape == b[k].shape for k in a)


def test_info_and_supported_numbers(embedders):
    emb = embedders[ARCHS[0]]
    info = emb.info()
    assert info["layer"] == "trunk node_features"
    assert info["cutoff"] == 6.0 and info["max_num_neighbors"] == 120
    assert info["n_params"] > 10_000_000
    assert set(info["versions"]) >= {"orb-models", "torch"}
    assert info["regressor"] == "ConservativeForcefieldRegressor"
    assert embedders[ARCHS[1]].info()["regressor"] == "DirectForcefieldRegressor"
    assert emb.supported_numbers() == set(range(1, 118))
    assert emb.dim == 256


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, embedders):
    path = tmp_path_factory.mktemp("ckpt") / "orb-random-direct.ckpt"
    torch.save(embedders[ARCHS[1]].model.state_dict(), path)
    return path


def test_load_local_checkpoint(checkpoint, structures, feats8):
    atoms = structures[0][:4]
    emb = orb.load(
        dict(name="local", family="orb", source=str(checkpoint), architecture=ARCHS[1]), torch.device("cpu")
    )
    np.testing.assert_allclose(emb.embed_batch(atoms), feats8[ARCHS[1]][: _rows(atoms)], **TOL)
    info = emb.info()
    assert info["weights_sha256"] == _sha(checkpoint)
    assert info["weights_source"] == str(checkpoint.resolve())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_load_from_url_into_cache(checkpoint, structures, feats8, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv(orb.WEIGHTS_ENV, str(cache))
    handler = functools.partial(_QuietHandler, directory=str(checkpoint.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{checkpoint.name}"
    spec = dict(name="url", family="orb", source=url, architecture=ARCHS[1])
    try:
        emb = orb.load(spec, "cpu")
    finally:
        server.shutdown()
        server.server_close()
    atoms = structures[0][:4]
    np.testing.assert_allclose(emb.embed_batch(atoms), feats8[ARCHS[1]][: _rows(atoms)], **TOL)
    info = emb.info()
    assert info["weights_source"] == url
    assert info["weights_sha256"] == _sha(checkpoint)
    assert Path(info["weights_path"]).parent == cache
    # the server is gone: a second load must come from the cache, without network
    t0 = time.perf_counter()
    again = orb.load(spec, "cpu")
    assert time.perf_counter() - t0 < 10
    assert again.info()["weights_sha256"] == _sha(checkpoint)


def test_pretrained_name_uses_local_copy_and_restores_dtype(
    checkpoint, structures, feats8, tmp_path, monkeypatch
):
    """A pretrained loader name with its file already in the weights dir: orb's own loader runs on the local
    file (no network), and torch's global default dtype and matmul precision survive it."""
    import shutil

    arch = ARCHS[1]
    cache = tmp_path / "weights"
    cache.mkdir()
    monkeypatch.setenv(orb.WEIGHTS_ENV, str(cache))
    url = orb._pretrained_url(arch)
    assert url.startswith("https://") and url.endswith(".ckpt")
    local = cache / url.rsplit("/", 1)[1]
    shutil.copyfile(checkpoint, local)

    atoms = structures[0][:4]
    old_dtype, old_prec = torch.get_default_dtype(), torch.get_float32_matmul_precision()
    torch.set_default_dtype(torch.float64)
    try:
        emb = orb.load(dict(name="orb-v3-direct-inf-omat", family="orb", source=arch), "cpu")
        assert torch.get_default_dtype() == torch.float64
        assert torch.get_float32_matmul_precision() == old_prec
        feats = emb.embed_batch(atoms)  # graphs follow the model's dtype, not the default
    finally:
        torch.set_default_dtype(old_dtype)
    assert feats.dtype == np.float32
    np.testing.assert_allclose(feats, feats8[arch][: _rows(atoms)], **TOL)
    info = emb.info()
    assert info["weights_source"] == url
    assert info["weights_sha256"] == _sha(local)


def test_default_dtype_unchanged_after_random_load():
    before = torch.get_default_dtype()
    orb.load(_spec(ARCHS[1], seed=5), "cpu")
    assert torch.get_default_dtype() == before


def test_unreachable_sources_fail_fast_with_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(orb.WEIGHTS_ENV, str(tmp_path / "empty"))
    dead = f"http://127.0.0.1:{_closed_port()}/orb-missing.ckpt"

    t0 = time.perf_counter()
    with pytest.raises(orb.OrbWeightsError) as err:
        orb.load(dict(name="dead-url", family="orb", source=dead, architecture=ARCHS[0]), "cpu")
    msg = str(err.value)
    assert "dead-url" in msg and dead in msg and str(tmp_path / "empty" / "orb-missing.ckpt") in msg

    # a pretrained name whose checkpoint is not cached and whose server cannot be reached
    monkeypatch.setattr(orb, "_pretrained_url", lambda name: dead)
    with pytest.raises(orb.OrbWeightsError) as err:
        orb.load(dict(name="orb-v3-direct-inf-omat", family="orb", source="orb_v3_direct_inf_omat"), "cpu")
    msg = str(err.value)
    assert "orb-v3-direct-inf-omat" in msg and "orb-missing.ckpt" in msg and "source" in msg

    missing = tmp_path / "nope.ckpt"
    with pytest.raises(orb.OrbWeightsError, match="nope.ckpt"):
        orb.load(dict(name="missing", family="orb", source=str(missing), architecture=ARCHS[0]), "cpu")
    assert time.perf_counter() - t0 < 20


def test_embed_structures_end_to_end(structures):
    atoms, ids = structures
    spec = resolve("dummy-orb-v3")
    emb = base.load_embedder(spec, device="cpu")
    assert isinstance(emb, base.Embedder)
    feats, stats = base.embed_structures(emb, atoms, ids, batch_atoms=120, progress=False)
    assert feats.shape == (sum(len(a) for a in atoms), spec["dim"])
    assert feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert stats["n_atoms"] == feats.shape[0] and stats["atoms_per_s"] > 0
