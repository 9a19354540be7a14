import numpy as np
import pytest

from platonic_mlip.projection import project


@pytest.fixture
def emb():
    return np.random.default_rng(0).normal(size=(500, 32))


def test_range_and_anchor_self_entry(emb):
    idx = np.array([3, 17, 200, 499])
    z = project(emb, idx)
    assert z.shape == (500, 4)
    assert np.all(z <= 1.0) and np.all(z >= -1.0)
    np.testing.assert_allclose(z[idx, np.arange(4)], 1.0, atol=1e-6)


def test_matches_explicit_cosine(emb):
    idx = np.array([1, 2, 3])
    z = project(emb, idx, out_dtype=np.float64)
    a = emb[idx]
    expect = (emb @ a.T) / np.outer(np.linalg.norm(emb, axis=1), np.linalg.norm(a, axis=1))
    np.testing.assert_allclose(z, expect, atol=1e-12)


def test_invariant_to_rotation_and_scale(emb):
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(32, 32)))
    idx = rng.choice(500, 20, replace=False)
    z1 = project(emb, idx, out_dtype=np.float64)
    z2 = project(7.5 * emb @ q, idx, out_dtype=np.float64)
    np.testing.assert_allclose(z1, z2, atol=1e-10)


def test_not_invariant_to_translation(emb):
    # the projection does no centring (paper): a shifted space projects differently
    idx = np.arange(10)
    assert not np.allclose(project(emb, idx), project(emb + 3.0, idx), atol=1e-3)


def test_chunking_does_not_change_result(emb):
    idx = np.arange(0, 500, 50)
    np.testing.assert_array_equal(project(emb, idx, chunk=7), project(emb, idx, chunk=100000))


def test_writes_into_a_memmap_chunk_by_chunk(emb, tmp_path):
    idx = np.array([0, 9, 250])
    src = tmp_path / "emb.npy"
    np.save(src, emb.astype(np.float32))
    mm = np.load(src, mmap_mode="r")
    out = np.lib.format.open_memmap(tmp_path / "z.npy", mode="w+", dtype=np.float32, shape=(500, 3))
    got = project(mm, idx, chunk=64, out=out)
    assert got is out
    out.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), project(emb.astype(np.float32), idx))
    with pytest.raises(ValueError, match="shape"):
        project(emb, idx, out=np.empty((500, 4), dtype=np.float32))


def test_project_script_writes_the_projection_atomically(emb, tmp_path):
    import subprocess
    import sys

    import pandas as pd
    from conftest import ROOT

    np.save(tmp_path / "emb.npy", emb.astype(np.float32))
    pd.DataFrame({"atom_index": [4, 40, 400]}).to_csv(tmp_path / "anchors.csv", index=False)
    out = tmp_path / "platonic" / "m.npy"
    cmd = [sys.executable, str(ROOT / "workflow" / "scripts" / "project.py"), "--embeddings"]
    cmd += [str(tmp_path / "emb.npy"), "--anchors", str(tmp_path / "anchors.csv"), "--chunk", "77"]
    res = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    z = np.load(out)
    assert z.shape == (500, 3) and z.dtype == np.float32
    np.testing.assert_array_equal(z, project(emb.astype(np.float32), np.array([4, 40, 400])))
    assert [p.name for p in out.parent.iterdir()] == ["m.npy"]  # no temporary file left
