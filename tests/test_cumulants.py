"""Cumulant structure descriptors (platonic_mlip.cumulants), checked against independent computations."""

import numpy as np
import pytest
import sympy as sp
from scipy import stats

from platonic_mlip.cumulants import (
    central_moments,
    cumulant_blocks,
    cumulants_from_moments,
    descriptor,
    groups_from_offsets,
    kappa8_released,
    structure_cumulants,
)

T = sp.symbols("t")


def exact_cumulants(values, r_max=8):
    """kappa_1..kappa_r_max of the equally weighted distribution on ``values`` (rationals), from
    the series of the cumulant generating function K(t) = log((1/n) sum_i exp(t x_i))."""
    vals = [sp.Rational(v) for v in values]
    K = sp.log(sp.Add(*[sp.exp(T * v) for v in vals]) / len(vals))
    series = sp.series(K, T, 0, r_max + 1).removeO()
    return [sp.factorial(r) * series.coeff(T, r) for r in range(1, r_max + 1)]


def kappa_of(x):
    """Our kappa_1..kappa_8 of one sample x (n,), as a single structure with one feature."""
    mean, mu = central_moments(np.asarray(x, dtype=float)[:, None], np.zeros(len(x), dtype=int))
    return cumulants_from_moments(mean, mu)[0, :, 0], mu[0, :, 0]


def random_structures(rng, sizes, D):
    X = rng.standard_gamma(2.0, size=(sum(sizes), D)) * rng.uniform(0.5, 3.0, size=D) - 1.0
    groups = np.repeat(np.arange(len(sizes)), sizes)
    return X, groups


# -- 1. low orders against scipy's k-statistics ------------------------------------------------------


@pytest.mark.parametrize("sizes", [(5, 9, 17), (60, 6, 250)])
def test_low_orders_match_scipy_k_statistics(sizes):
    rng = np.random.default_rng(sum(sizes))
    X, groups = random_structures(rng, sizes, D=3)
    mean, mu = central_moments(X, groups)
    kappa = cumulants_from_moments(mean, mu)
    for s, n in enumerate(sizes):
        for d in range(X.shape[1]):
            x = X[groups == s, d]
            k1, k2, k3, k4 = kappa[s, :4, d]
            # population central moments implied by our cumulants
            m2, m3, m4 = k2, k3, k4 + 3 * k2**2
            assert k1 == pytest.approx(stats.kstat(x, 1), rel=1e-12)
            assert n / (n - 1) * m2 == pytest.approx(stats.kstat(x, 2), rel=1e-10)
            assert n**2 / ((n - 1) * (n - 2)) * m3 == pytest.approx(stats.kstat(x, 3), rel=1e-9)
            want4 = n**2 * ((n + 1) * m4 - 3 * (n - 1) * m2**2) / ((n - 1) * (n - 2) * (n - 3))
            assert want4 == pytest.approx(stats.kstat(x, 4), rel=1e-9)


def test_central_moments_match_naive_loop_and_survive_offset():
    rng = np.random.default_rng(1)
    X, groups = random_structures(rng, (4, 11, 30), D=2)
    mean, mu = central_moments(X, groups)
    for s in range(3):
        x = X[groups == s]
        np.testing.assert_allclose(mean[s], x.mean(axis=0), rtol=1e-13)
        for k in range(2, 9):
            np.testing.assert_allclose(mu[s, k], ((x - x.mean(axis=0)) ** k).mean(axis=0), rtol=1e-11)
    np.testing.assert_array_equal(mu[:, 0], 1.0)
    np.testing.assert_array_equal(mu[:, 1], 0.0)
    # a large common offset must not destroy the moments (a raw-moment expansion would)
    shift = 1e7
    _, mu_shifted = central_moments(X + shift, groups)
    np.testing.assert_allclose(mu_shifted[:, 2:], mu[:, 2:], rtol=1e-5)


# -- 2. high orders against exact (sympy) cumulants and closed forms ---------------------------------

SKEWED = ["-3/2", "0", "1/4", "2", "7/3", "5", "5", "-1/3", "9/2"]


@pytest.mark.parametrize(
    "values", [SKEWED, ["1", "1", "1", "2", "10"], ["-7/5", "3/8", "3/8", "11/4", "-2", "6/7", "1/9"]]
)
def test_all_orders_match_exact_cgf_series(values):
    want = np.array([float(k) for k in exact_cumulants(values)])
    got, _ = kappa_of([float(sp.Rational(v)) for v in values])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("m", [1, 4, 10])
def test_discrete_uniform_cumulants(m):
    # uniform on {0..m}: kappa_1 = m/2, kappa_r = B_r ((m+1)^r - 1) / r for r >= 2 (odd ones vanish)
    got, _ = kappa_of(np.arange(m + 1))
    want = [m / 2] + [float(sp.bernoulli(r) * ((m + 1) ** r - 1) / r) for r in range(2, 9)]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)


def test_two_point_cumulants():
    # 10 ones among 40 values: Bernoulli(p = 1/4); kappa_1 = p, kappa_{r+1} = p (1 - p) d kappa_r / dp
    p = sp.symbols("p")
    kappas = [p]
    for _ in range(7):
        kappas.append(sp.expand(p * (1 - p) * sp.diff(kappas[-1], p)))
    want = [float(k.subs(p, sp.Rational(1, 4))) for k in kappas]
    got, _ = kappa_of(np.r_[np.ones(10), np.zeros(30)])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
    assert want[3] == pytest.approx(-3 / 128)  # p q (1 - 6 p q) at p = 1/4


# -- 3. kappa_8: correct formula vs the released code's swapped coefficients -------------------------


def test_kappa8_correct_vs_released_on_skewed_sample():
    exact8 = float(exact_cumulants(SKEWED)[7])
    kappa, mu = kappa_of([float(sp.Rational(v)) for v in SKEWED])
    released = kappa8_released(mu[None, :, None])[0, 0]
    m2, m3, m4 = mu[2], mu[3], mu[4]
    assert m3 != 0
    assert kappa[7] == pytest.approx(exact8, rel=1e-10)
    assert released != pytest.approx(exact8, rel=1e-3)
    assert kappa[7] - released == pytest.approx((560 - 420) * (m2 * m3**2 - m2**2 * m4), rel=1e-9)


def test_kappa8_released_differs_even_when_symmetric():
    # released - correct = 140 mu2 (mu2 mu4 - mu3^2) >= 140 mu2^4 > 0 (Pearson), so the error never
    # vanishes; the bound is attained by a two-point distribution
    x = np.array([-3.0, -1.0, 0.0, 0.0, 1.0, 3.0])  # symmetric: mu3 = 0
    kappa, mu = kappa_of(x)
    assert mu[3] == pytest.approx(0.0, abs=1e-14)
    diff = kappa8_released(mu[None, :, None])[0, 0] - kappa[7]
    assert diff == pytest.approx(140 * mu[2] * (mu[2] * mu[4] - mu[3] ** 2), rel=1e-12)
    assert diff > 140 * mu[2] ** 4
    kappa, mu = kappa_of(np.array([-2.0, 2.0]))
    assert kappa8_released(mu[None, :, None])[0, 0] - kappa[7] == pytest.approx(140 * mu[2] ** 4)
    assert kappa[7] == pytest.approx(float(exact_cumulants(["-2", "2"])[7]))


# -- 4. invariances, shapes, edge cases ---------------------------------------------------------------


def test_permutation_and_non_contiguous_rows():
    rng = np.random.default_rng(7)
    sizes = (3, 8, 5, 12)
    X, groups = random_structures(rng, sizes, D=4)
    ref = structure_cumulants(X, groups)
    # permuting atoms within each structure
    perm = np.concatenate([rng.permutation(np.flatnonzero(groups == s)) for s in range(len(sizes))])
    within = structure_cumulants(X[perm], groups[perm])
    np.testing.assert_allclose(within.blocks, ref.blocks, rtol=1e-11, atol=1e-13)
    # fully shuffled rows with ids whose first appearance keeps the original order
    shuffle = np.r_[[0, 3, 11, 16], rng.permutation(np.setdiff1d(np.arange(len(X)), [0, 3, 11, 16]))]
    ids = np.array([40, 7, 99, 3])[groups]
    shuffled = structure_cumulants(X[shuffle], ids[shuffle])
    np.testing.assert_array_equal(shuffled.kept, [40, 7, 99, 3])
    np.testing.assert_array_equal(shuffled.n_atoms, sizes)
    np.testing.assert_allclose(shuffled.blocks, ref.blocks, rtol=1e-11, atol=1e-13)
    # offsets give the same grouping
    np.testing.assert_array_equal(groups_from_offsets(np.r_[0, np.cumsum(sizes)]), groups)


def test_descriptor_shape_and_blocks():
    rng = np.random.default_rng(3)
    X, groups = random_structures(rng, (6, 9), D=3)
    X[:, 1] = 2.5  # constant feature
    res = structure_cumulants(X, groups)
    assert res.blocks.shape == (2, 8, 3)
    for n in range(1, 9):
        desc = descriptor(res.blocks, n)
        assert desc.shape == (2, n * 3)
        np.testing.assert_array_equal(desc, res.descriptor(n))
        np.testing.assert_array_equal(desc[:, -3:], res.blocks[:, n - 1])  # block-major
    np.testing.assert_allclose(descriptor(res.blocks, 1), [X[:6].mean(0), X[6:].mean(0)], rtol=1e-13)
    np.testing.assert_allclose(res.blocks[:, 1:, 1], 0.0, atol=1e-12)
    np.testing.assert_array_equal(res.blocks[:, 0, 1], 2.5)
    # block transform: sign(kappa) |kappa|^(1/k)
    kappa = cumulants_from_moments(*central_moments(X, groups))
    b = cumulant_blocks(kappa)
    np.testing.assert_allclose(np.sign(b) * np.abs(b) ** np.arange(1, 9)[None, :, None], kappa, rtol=1e-9)
    np.testing.assert_array_equal(np.sign(b), np.sign(kappa))
    assert (res.blocks[:, 1, [0, 2]] > 0).all()  # block 2 is the standard deviation
    np.testing.assert_allclose(res.blocks[:, 1, 0], [X[:6, 0].std(), X[6:, 0].std()], rtol=1e-12)


@pytest.mark.parametrize("c", [3.0, 0.5, -2.0])
def test_scaling(c):
    rng = np.random.default_rng(5)
    X, groups = random_structures(rng, (7, 13), D=2)
    base = structure_cumulants(X, groups).blocks
    scaled = structure_cumulants(c * X, groups).blocks
    # block_k(c x) = sign(c)^k |c| block_k(x): c * block for c > 0; for c < 0 odd blocks flip sign
    sign = np.sign(c) ** np.arange(1, 9)
    np.testing.assert_allclose(scaled, abs(c) * sign[None, :, None] * base, rtol=1e-9, atol=1e-12)
    if c < 0:
        np.testing.assert_allclose(scaled[:, 0::2], c * base[:, 0::2], rtol=1e-9)
        np.testing.assert_allclose(scaled[:, 1::2], -c * base[:, 1::2], rtol=1e-9)


def test_single_atom_structures_dropped():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(10, 2))
    groups = np.array([5, 1, 1, 1, 8, 2, 2, 9, 9, 9])
    res = structure_cumulants(X, groups)
    np.testing.assert_array_equal(res.kept, [1, 2, 9])
    np.testing.assert_array_equal(res.dropped, [5, 8])
    np.testing.assert_array_equal(res.n_atoms, [3, 2, 3])
    np.testing.assert_allclose(res.blocks[:, 0], [X[1:4].mean(0), X[5:7].mean(0), X[7:].mean(0)])
    loose = structure_cumulants(X, groups, min_atoms=1)
    np.testing.assert_array_equal(loose.kept, [5, 1, 8, 2, 9])
    assert len(loose.dropped) == 0
    np.testing.assert_array_equal(loose.blocks[[0, 2], 1:], 0.0)
    strict = structure_cumulants(X, groups, min_atoms=3)
    np.testing.assert_array_equal(strict.dropped, [5, 8, 2])


def test_errors():
    X = np.ones((6, 2))
    groups = np.array([0, 0, 0, 1, 1, 1])
    X_nan = X.copy()
    X_nan[[1, 4], 0] = np.nan
    with pytest.raises(ValueError, match=r"2 row.*\[1, 4\]"):
        structure_cumulants(X_nan, groups)
    with pytest.raises(ValueError, match=r"\[1, 4\]"):
        central_moments(X_nan, groups)
    with pytest.raises(ValueError, match="6 rows but groups has 5"):
        structure_cumulants(X, groups[:5])
    blocks = structure_cumulants(X, groups).blocks
    for order in (0, 9):
        with pytest.raises(ValueError, match=f"got {order}"):
            descriptor(blocks, order)
