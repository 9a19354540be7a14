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
