"""MACE family loader: fast batched features vs mace's own get_descriptors, loading routes, random controls."""

import functools
import http.server
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("mace")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from platonic_mlip.embed import embed_structures, load_embedder  # noqa: E402
from platonic_mlip.embed import mace as fam  # noqa: E402
from platonic_mlip.models import resolve  # noqa: E402
from platonic_mlip.structures import read_split_csv, sha256_of  # noqa: E402

pytestmark = pytest.mark.family("mace")

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "mp20_sample" / "train.csv"
DIM = 128  # MACE-MP-0 small: 128x0e


def _spec(**kw):
    spec = dict(name="test-mace", family="mace", source="random", architecture="small", seed=0, layer="first")
    spec.update(kw)
    return spec


@pytest.fixture(scope="module", autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def structures():
    """The first 20 MP-20 train structures (190 atoms)."""
    atoms, ids, _ = read_split_csv(SAMPLE, limit=20)
    return atoms, ids


@pytest.fixture(scope="module")
def small8():
    """Eight small real structures (<= 6 atoms each, in file order) to keep the forward passes cheap on CPU."""
    atoms, _, _ = read_split_csv(SAMPLE, limit=40)
    picked = [a for a in atoms if len(a) <= 6][:8]
    assert len(picked) == 8
    return picked


@pytest.fixture(scope="module")
def dummy():
    """The registry's untrained control (random MP-0-small, seed 0) through the generic loader."""
    return load_embedder(resolve("dummy-mace-mp-0-small"), "cpu")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """The random MP-0-small architecture (seed 0) saved as a .model file, as mace saves its models."""
    path = tmp_path_factory.mktemp("weights") / "random-small-seed0.model"
    torch.save(fam.build_random_model("small", 0), path)
    return path


@pytest.fixture(scope="module")
def calculator(model_file):
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=str(model_file), device="cpu", default_dtype="float32")


@pytest.fixture(scope="module")
def reference(calculator, small8):
    """get_descriptors per structure (the package's route, computes forces too), cached per num_layers."""
    cache = {}

    def get(num_layers):
        if num_layers not in cache:
            cache[num_layers] = np.concatenate(
                [calculator.get_descriptors(a, invariants_only=True, num_layers=num_layers) for a in small8]
            ).astype(np.float32)
        return cache[num_layers]

    return get


@pytest.fixture(scope="module")
def from_file(model_file):
    return {
        layer: fam.load(_spec(source=str(model_file), layer=layer), torch.device("cpu"))
        for layer in fam.LAYERS
    }


@pytest.mark.parametrize("layer", fam.LAYERS)
def test_fast_path_equals_get_descriptors(layer, small8, reference, from_file):
    atoms = small8
    emb = from_file[layer]
    got = emb.embed_batch(atoms)
    ref = reference(1) if layer == "first" else reference(-1)
    if layer == "last":
        ref = ref[:, -DIM:]
    assert emb.dim == {"first": DIM, "last": DIM, "all": 2 * DIM}[layer]
    # the fast path stops after the blocks the layer needs: block 1 of 2 for "first"
    assert emb.route == "truncated"
    assert emb.n_blocks == {"first": 1, "last": 2, "all": 2}[layer]
    assert got.dtype == np.float32
    assert got.shape == ref.shape == (sum(len(a) for a in atoms), emb.dim)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    assert np.abs(ref).max() > 1e-3  # not trivially zero


def test_truncated_route_runs_only_needed_blocks(small8, from_file):
    emb = from_file["first"]
    calls, handles = [], []
    for name in ("interactions", "products", "readouts"):
        for i, block in enumerate(getattr(emb.model, name)):
            handles.append(block.register_forward_hook(lambda *_, n=name, i=i: calls.append((n, i))))
    try:
        feats = emb.node_feats(small8[:2])
        assert sorted(calls) == [("interactions", 0), ("products", 0)]
        assert feats.shape[1] == DIM  # only layer 1's node features (128x0e)
        calls.clear()
        emb.node_feats(small8[:2], full_model=True)
        assert ("interactions", 1) in calls and ("readouts", 0) in calls
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("layer", fam.LAYERS)
def test_truncated_route_equals_full_model(layer, structures, from_file):
    """The truncated forward equals slicing the whole model's node_feats (the previous fast path)."""
    emb = from_file[layer]
    atoms = structures[0][:10]
    got = emb.embed_batch(atoms)
    full = emb.embed_batch(atoms, _full_model=True)
    assert got.shape == full.shape == (sum(len(a) for a in atoms), emb.dim)
    np.testing.assert_allclose(got, full, atol=1e-6, rtol=0)


def test_unknown_model_class_falls_back_to_full_model(model_file, small8, caplog):
    from mace.modules.models import ScaleShiftMACE

    class OtherMACE(ScaleShiftMACE):  # a subclass may override forward: no truncated route
        pass

    model = torch.load(model_file, weights_only=False)
    model.__class__ = OtherMACE
    with caplog.at_level("INFO", logger=fam.__name__):
        emb = fam.MACEEmbedder(_spec(layer="first"), torch.device("cpu"), model, "test", None)
    assert emb.route == "full"
    assert "OtherMACE" in caplog.text and "whole model" in caplog.text
    assert emb.info()["forward_route"].startswith("whole model")
    ref = fam.load(_spec(source=str(model_file), layer="first"), torch.device("cpu"))
    atoms = small8[:3]
    np.testing.assert_allclose(emb.embed_batch(atoms), ref.embed_batch(atoms), atol=1e-6, rtol=0)


def test_layers_are_consistent(small8, from_file):
    atoms = small8
    first, last, every = (from_file[k].embed_batch(atoms) for k in ("first", "last", "all"))
    np.testing.assert_array_equal(every[:, :DIM], first)
    np.testing.assert_array_equal(every[:, DIM:], last)


def test_batching_invariance(small8, from_file):
    atoms = small8
    emb = from_file["first"]
    batched = emb.embed_batch(atoms)
    single = np.concatenate([emb.embed_batch([a]) for a in atoms])
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=0)


def test_random_init_deterministic_per_seed(small8, from_file, dummy):
    atoms = small8[:4]
    a = dummy
    b = fam.load(_spec(seed=0), torch.device("cpu"))
    c = fam.load(_spec(seed=1), torch.device("cpu"))
    sa, sb, sc = (m.model.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())
    fa, fb, fc = (m.embed_batch(atoms) for m in (a, b, c))
    np.testing.assert_array_equal(fa, fb)
    # the saved seed-0 model gives the same features as building seed 0 again
    np.testing.assert_array_equal(fa, from_file["first"].embed_batch(atoms))
    assert np.abs(fa - fc).max() > 1e-4


def test_random_small_architecture_and_info(from_file, dummy):
    emb = dummy
    assert emb.supported_numbers() == set(range(1, 84)) | set(range(89, 95))
    info = emb.info()
    assert info["weights_sha256"] is None
    assert info["r_max"] == 6.0 and info["num_interactions"] == 2
    assert info["hidden_irreps"] == "128x0e"
    assert 3.8e6 < info["n_params"] < 3.9e6  # MACE-MP-0 small has ~3.85 M parameters
    assert set(info["versions"]) >= {"mace-torch", "torch", "e3nn"}
    assert "interaction block 1" in info["layer"]
    file_info = from_file["first"].info()
    assert file_info["weights_sha256"] == sha256_of(file_info["weights_path"])
    assert file_info["n_params"] == info["n_params"]


def test_registry_spec_through_driver(structures, dummy):
    spec, emb = dummy.spec, dummy
    assert emb.dim == spec["dim"] == 128
    atoms, ids = structures
    feats, stats = embed_structures(emb, atoms, ids, batch_atoms=60, progress=False)
    n = sum(len(a) for a in atoms)
    assert feats.shape == (n, spec["dim"]) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert stats["n_atoms"] == n and stats["n_batches"] > 1 and stats["atoms_per_s"] > 0
    # rows follow structure order: the first structure's rows equal its own embedding
    np.testing.assert_allclose(feats[: len(atoms[0])], emb.embed_batch([atoms[0]]), atol=1e-5, rtol=0)


def test_bad_layer_and_missing_path(tmp_path, model_file):
    with pytest.raises(ValueError, match="layer"):
        fam.load(_spec(source=str(model_file), layer="middle"), torch.device("cpu"))
    missing = tmp_path / "nope.model"
    with pytest.raises(fam.WeightsUnavailableError, match="test-mace") as err:
        fam.load(_spec(source=str(missing)), torch.device("cpu"))
    assert str(missing) in str(err.value)


def test_not_a_model_file(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_text("<html>not found</html>")
    with pytest.raises(fam.WeightsUnavailableError, match="could not load"):
        fam.load(_spec(source=str(bad)), torch.device("cpu"))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_dir(model_file):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(model_file.parent))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port_url(name="x.model"):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


def test_url_download_into_cache(http_dir, model_file, tmp_path, monkeypatch, small8):
    cache = tmp_path / "cache"
    monkeypatch.setenv(fam.WEIGHTS_ENV, str(cache))
    url = f"{http_dir}/{model_file.name}"
    emb = fam.load(_spec(source=url), torch.device("cpu"))
    expected = cache / "randomsmallseed0model"  # mace's cache naming: alphanumerics and '_' of the basename
    assert expected.is_file()
    info = emb.info()
    assert info["weights_source"] == url
    assert info["weights_sha256"] == sha256_of(model_file)
    ref = fam.load(_spec(source=str(model_file)), torch.device("cpu"))
    atoms = small8[:3]
    np.testing.assert_array_equal(emb.embed_batch(atoms), ref.embed_batch(atoms))


def test_cached_url_needs_no_network(model_file, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    url = _closed_port_url(model_file.name)
    monkeypatch.setenv(fam.WEIGHTS_ENV, str(cache))
    _, path = fam.resolve_source(url)
    path.write_bytes(model_file.read_bytes())
    emb = fam.load(_spec(source=url), torch.device("cpu"))
    assert emb.info()["weights_sha256"] == sha256_of(model_file)


def test_unreachable_url_fails_fast_and_clearly(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv(fam.WEIGHTS_ENV, str(cache))
    monkeypatch.setenv(fam.TIMEOUT_ENV, "3")
    url = _closed_port_url("mace-test.model")
    t0 = time.perf_counter()
    with pytest.raises(fam.WeightsUnavailableError) as err:
        fam.load(_spec(source=url, name="offline-mace"), torch.device("cpu"))
    assert time.perf_counter() - t0 < 15
    msg = str(err.value)
    assert "offline-mace" in msg and str(cache / "macetestmodel") in msg and fam.WEIGHTS_ENV in msg
    assert not list(cache.glob("*"))  # no partial file left behind


def test_foundation_key_resolution(tmp_path, monkeypatch):
    from mace.calculators import foundations_models as fm

    monkeypatch.setenv(fam.WEIGHTS_ENV, str(tmp_path))
    url, path = fam.resolve_source("small")
    assert url == fm.mace_mp_urls["small"]
    assert path == tmp_path / "20231210mace128L0_energy_epoch249model"
    url, path = fam.resolve_source("medium-omat-0")
    assert url == fm.mace_mp_urls["medium-omat-0"] and path.parent == tmp_path
    # offline: a key whose download fails names the model, the key and where to put the file
    monkeypatch.setitem(
        fm.mace_mp_urls, "small", _closed_port_url("2023-12-10-mace-128-L0_energy_epoch-249.model")
    )
    with pytest.raises(fam.WeightsUnavailableError) as err:
        fam.load(_spec(source="small", name="mace-mp-0-small"), torch.device("cpu"))
    msg = str(err.value)
    assert "mace-mp-0-small" in msg and "'small'" in msg
    assert str(tmp_path / "20231210mace128L0_energy_epoch249model") in msg
