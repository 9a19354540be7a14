"""GFRE / LFRE (``platonic_mlip.reconstruction``) against scikit-matter, the reference implementation.

skmatter's ``global_reconstruction_error`` and ``local_reconstruction_error`` are called directly with
their default settings and the same train/test rows; the fast reimplementation must give the same
numbers (pointwise and aggregated) to ~1e-9 relative. The synthetic cases have no duplicated rows:
ties between equally distant neighbours are documented as broken differently (to the lower train row
here), and are tested on their own against a brute-force sort.
"""

import numpy as np
import pytest
from skmatter.metrics import (
    global_reconstruction_error,
    local_reconstruction_error,
    pointwise_global_reconstruction_error,
    pointwise_local_reconstruction_error,
)
from skmatter.preprocessing import StandardFlexibleScaler

from platonic_mlip.reconstruction import (
    ReconstructionError,
    SourceFit,
    crystal_system,
    error_table,
    flexible_scale,
    gfre_pointwise,
    lfre_pointwise,
    reconstruction_errors,
    stratified_split,
)

N, N_TEST = 300, 60
RTOL, ATOL = 1e-9, 1e-12


def split(n=N, n_test=N_TEST, seed=1):
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _cases():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(N, 6))
    low_rank = np.c_[z, z[:, :2], z @ rng.normal(size=(6, 3))]  # 11 columns of rank 6
    x8 = rng.normal(size=(N, 8)) + rng.normal(size=8)  # shifted columns: the scaling must centre
    x5 = 3.0 * rng.normal(size=(N, 5))
    x4 = rng.normal(size=(N, 4))
    x7 = rng.normal(size=(N, 7))
    x40 = rng.normal(size=(N, 40))
    return {
        # d > d': smooth nonlinear target of a wider source
        "wide_to_narrow": (
            x8,
            np.tanh(x8 @ rng.normal(size=(8, 5))) + 0.05 * rng.normal(size=(N, 5)),
            None,
            None,
        ),
        # d < d'
        "narrow_to_wide": (x5, np.sin(x5 @ rng.normal(size=(5, 12)) / 3.0), None, None),
        # the diagonal, X -> X
        "diagonal": (x7, x7, None, None),
        # a nonlinear relation (products, squares, exponentials of the columns)
        "nonlinear": (x4, np.c_[x4[:, 0] * x4[:, 1], x4[:, 2] ** 2, np.exp(0.5 * x4[:, 3])], None, None),
        # rank-deficient source (duplicated and linear-combination columns), both directions
        "low_rank_source": (low_rank, np.tanh(z[:, :4]), None, None),
        "low_rank_target": (rng.normal(size=(N, 5)) + z[:, :5], low_rank, None, None),
        # neighbourhoods larger than the widths: local maps with more rows than columns
        "large_k": (x4, np.c_[np.sin(x4), x4[:, :2] ** 2], 25, None),
        # few train rows, fewer than the source columns (n_train = 30 < d = 40)
        "small_train": (x40, np.tanh(x40[:, :6] @ rng.normal(size=(6, 6))), None, 30),
        # k = n_train: every train row is a neighbour
        "k_all_train": (x5, np.cos(x5[:, :3]), 12, 12),
    }


CASES = _cases()


@pytest.mark.parametrize("case", list(CASES))
def test_gfre_and_lfre_equal_skmatter(case):
    x, y, k, n_train = CASES[case]
    train, test = split()
    if n_train is not None:
        train = np.sort(np.random.default_rng(2).choice(train, n_train, replace=False))
    k_used = min(x.shape[1], y.shape[1]) if k is None else k

    ours = reconstruction_errors(x, y, train, test, k=k)
    assert ours["k"] == k_used
    gfre = global_reconstruction_error(x, y, train_idx=train, test_idx=test)
    lfre = local_reconstruction_error(x, y, k_used, train_idx=train, test_idx=test)
    np.testing.assert_allclose(ours["gfre"], gfre, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours["lfre"], lfre, rtol=RTOL, atol=ATOL)

    # and row by row
    source = SourceFit.build(x, train, test)
    y_train, y_test = flexible_scale(y[train], y[test])
    np.testing.assert_allclose(
        gfre_pointwise(source, y_train, y_test),
        pointwise_global_reconstruction_error(x, y, train_idx=train, test_idx=test),
        rtol=RTOL,
        atol=ATOL,
    )
    np.testing.assert_allclose(
        lfre_pointwise(source, y_train, y_test, k_used, chunk=16),  # several chunks of test rows
        pointwise_local_reconstruction_error(x, y, k_used, train_idx=train, test_idx=test),
        rtol=RTOL,
        atol=ATOL,
    )


def test_diagonal_gfre_is_zero_and_lfre_is_not_trivially_so():
    x = CASES["diagonal"][0]
    train, test = split()
    err = reconstruction_errors(x, x, train, test)
    assert err["gfre"] < 1e-10
    assert np.isfinite(err["lfre"]) and err["lfre"] >= 0.0


# ----------------------------------------------------------------------------------------------------
# every ordered pair
# ----------------------------------------------------------------------------------------------------


def _spaces():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(200, 6))
    return {
        "a": a,
        "b": np.tanh(a[:, :3] @ rng.normal(size=(3, 3))) + 0.1 * rng.normal(size=(200, 3)),
        "c": np.c_[a, np.sin(a[:, :3])] @ rng.normal(size=(9, 9)),
    }


@pytest.mark.parametrize("k_max", [None, 2])
def test_error_table_equals_pair_by_pair(k_max):
    spaces = _spaces()
    train, test = split(200, 40, seed=4)
    rows = error_table(spaces, train, test, k_max=k_max)
    assert [(r["source"], r["target"]) for r in rows] == [(s, t) for s in spaces for t in spaces]
    for r in rows:
        k = min(spaces[r["source"]].shape[1], spaces[r["target"]].shape[1])
        k = k if k_max is None else min(k, k_max)
        assert r["k"] == k and r["n_train"] == len(train) and r["n_test"] == len(test)
        want = reconstruction_errors(spaces[r["source"]], spaces[r["target"]], train, test, k=k)
        assert r["gfre"] == pytest.approx(want["gfre"], rel=1e-12, abs=1e-14)
        assert r["lfre"] == pytest.approx(want["lfre"], rel=1e-12, abs=1e-14)
    diag = {r["source"]: r["gfre"] for r in rows if r["source"] == r["target"]}
    assert max(diag.values()) < 1e-10


def test_error_table_workers_and_switches():
    spaces = _spaces()
    train, test = split(200, 40, seed=5)
    one = error_table(spaces, train, test, workers=1)
    two = error_table(spaces, train, test, workers=2)
    key = ("source", "target", "k", "n_train", "n_test")
    assert [tuple(r[c] for c in key) for r in one] == [tuple(r[c] for c in key) for r in two]
    for m in ("gfre", "lfre"):
        np.testing.assert_array_equal([r[m] for r in one], [r[m] for r in two])

    no_lfre = error_table(spaces, train, test, lfre=False)
    assert all(np.isnan(r["lfre"]) and np.isnan(r["k"]) for r in no_lfre)
    np.testing.assert_array_equal([r["gfre"] for r in no_lfre], [r["gfre"] for r in one])
    no_gfre = error_table(spaces, train, test, gfre=False)
    assert all(np.isnan(r["gfre"]) for r in no_gfre)
    np.testing.assert_array_equal([r["lfre"] for r in no_gfre], [r["lfre"] for r in one])


def test_error_table_of_chosen_pairs_computes_both_directions_and_the_diagonal():
    spaces = _spaces()
    train, test = split(200, 40, seed=6)
    full = error_table(spaces, train, test)
    part = error_table(spaces, train, test, pairs=[("c", "a")])
    got = [(r["source"], r["target"]) for r in part]
    assert got == [("a", "a"), ("a", "c"), ("b", "b"), ("c", "a"), ("c", "c")]
    want = {(r["source"], r["target"]): r for r in full}
    for r in part:
        for m in ("gfre", "lfre", "k"):
            assert r[m] == want[r["source"], r["target"]][m], (r["source"], r["target"], m)
    with pytest.raises(ReconstructionError, match=r"pairs name model\(s\) \['z'\]"):
        error_table(spaces, train, test, pairs=[("a", "z")])


def test_lfre_chunks_do_not_change_the_numbers(monkeypatch):
    """Neighbourhood batches sized by width (``lfre_chunk``): tiny batches give the same errors."""
    from platonic_mlip import reconstruction

    assert reconstruction.lfre_chunk(128, 256) == 128  # the raw space: full batches
    assert reconstruction.lfre_chunk(100, 2048) == 40  # order-8 descriptors: smaller ones
    assert reconstruction.lfre_chunk(1000, 10_000) == 8
    spaces = _spaces()
    train, test = split(200, 40, seed=7)
    full = error_table(spaces, train, test)
    monkeypatch.setattr(reconstruction, "LFRE_CHUNK_FLOATS", 1)  # batches of 8 test rows
    small = error_table(spaces, train, test, lfre_rows=np.arange(3, 40))
    monkeypatch.undo()
    want = error_table(spaces, train, test, lfre_rows=np.arange(3, 40))
    np.testing.assert_allclose([r["lfre"] for r in small], [r["lfre"] for r in want], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal([r["gfre"] for r in small], [r["gfre"] for r in full])
    assert all(r["n_test_lfre"] == 37 for r in small)


def test_lfre_subset_and_rows_used():
    from platonic_mlip.reconstruction import lfre_subset, rows_used

    assert lfre_subset(100, 0, 1) is None and lfre_subset(100, 100, 1) is None
    sub = lfre_subset(100, 30, 1)
    assert len(sub) == 30 and len(set(sub)) == 30 and (np.diff(sub) > 0).all() and sub.max() < 100
    np.testing.assert_array_equal(sub, lfre_subset(100, 30, 1))
    assert not np.array_equal(sub, lfre_subset(100, 30, 2))
    used, tr, te = rows_used(np.array([9, 2, 40]), np.array([5, 7]))
    np.testing.assert_array_equal(used, [2, 5, 7, 9, 40])
    np.testing.assert_array_equal(used[tr], [9, 2, 40])
    np.testing.assert_array_equal(used[te], [5, 7])


# ----------------------------------------------------------------------------------------------------
# known answers
# ----------------------------------------------------------------------------------------------------


def test_invertible_linear_map_is_reconstructed_both_ways():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(N, 6))
    a = rng.normal(size=(6, 6)) + 3.0 * np.eye(6)
    assert np.linalg.cond(a) < 1e3
    y = x @ a + rng.normal(size=6)
    train, test = split()
    assert reconstruction_errors(x, y, train, test, lfre=False)["gfre"] < 1e-6
    assert reconstruction_errors(y, x, train, test, lfre=False)["gfre"] < 1e-6


def test_independent_noise_is_no_better_than_the_mean():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(N, 8)), rng.normal(size=(N, 5))
    train, test = split()
    err = reconstruction_errors(x, y, train, test)
    assert 0.9 < err["gfre"] < 1.15
    assert err["lfre"] > 0.9  # a local map fitted to noise is no better


def test_gfre_is_asymmetric_for_a_projection():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(N, 8))
    y = x[:, :2]
    train, test = split()
    forward = reconstruction_errors(x, y, train, test, lfre=False)["gfre"]
    backward = reconstruction_errors(y, x, train, test, lfre=False)["gfre"]
    assert forward < 1e-6
    # 6 of 8 unit-variance columns are lost: sqrt(6/8) ~ 0.87
    assert backward == pytest.approx(np.sqrt(6 / 8), abs=0.1)


# ----------------------------------------------------------------------------------------------------
# neighbours with ties
# ----------------------------------------------------------------------------------------------------


def _tied_points():
    """Train rows with many exact duplicates and exactly representable scaled coordinates.

    Raw train rows (±2, 0), (0, ±2) x3, (±2, ±2) x2, (0, 0) x8: column means 0, total variance 4, so the
    scaled rows are (±1, 0), (0, ±1), (±1, ±1), (0, 0) and every squared distance is exact.
    """
    axes = [(2, 0), (-2, 0), (0, 2), (0, -2)] * 3
    diagonals = [(2, 2), (-2, -2), (2, -2), (-2, 2)] * 2
    train_rows = np.array(axes + diagonals + [(0, 0)] * 8, dtype=float)
    test_rows = np.array([(0, 0), (1, 0), (2, 1), (-3, 2), (1, 1), (0, -2), (4, 4), (-1, 3)], dtype=float)
    order = np.random.default_rng(9).permutation(len(train_rows) + len(test_rows))
    x = np.r_[train_rows, test_rows][order]
    is_train = order < len(train_rows)
    return x, np.flatnonzero(is_train), np.flatnonzero(~is_train)


def test_neighbour_ties_go_to_the_lower_train_row():
    x, train, test = _tied_points()
    source = SourceFit.build(x, train, test)
    assert np.array_equal(2.0 * source.x_train, np.round(2.0 * source.x_train))  # exact coordinates
    d2 = ((source.x_test[:, None, :] - source.x_train[None, :, :]) ** 2).sum(-1)
    n_train = len(train)
    rows = np.arange(n_train)
    assert any(len(np.unique(r)) < n_train for r in d2)  # there are ties to break

    for k in (1, 3, 5, 12, 17, n_train):
        for chunk in (3, 256):
            got = SourceFit.build(x, train, test).with_neighbours(k, chunk=chunk).neighbours
            want = np.array([np.lexsort((rows, r))[:k] for r in d2])
            np.testing.assert_array_equal(got, want, err_msg=f"k={k} chunk={chunk}")
            # sorted by distance, ties ascending in row
            dist = np.take_along_axis(d2, got, axis=1)
            assert np.all(np.diff(dist, axis=1) >= 0)
            assert np.all((np.diff(dist, axis=1) > 0) | (np.diff(got, axis=1) > 0))

    # deterministic, and the first k of a longer list are the k nearest
    a = SourceFit.build(x, train, test).with_neighbours(17).neighbours
    b = SourceFit.build(x, train, test).with_neighbours(17).neighbours
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:, :5], SourceFit.build(x, train, test).with_neighbours(5).neighbours)


def test_lfre_with_ties_is_deterministic_and_k_too_large_raises():
    x, train, test = _tied_points()
    rng = np.random.default_rng(10)
    y = np.c_[np.sin(x[:, 0]), x[:, 1] ** 2] + 0.01 * rng.normal(size=(len(x), 2))
    first = reconstruction_errors(x, y, train, test, k=6)
    assert first == reconstruction_errors(x, y, train, test, k=6)
    with pytest.raises(ReconstructionError, match="my-source"):
        reconstruction_errors(x, y, train, test, k=len(train) + 1, names=("my-source", "target"))


def test_lfre_k_larger_than_train_raises_naming_the_source():
    x, y = CASES["wide_to_narrow"][:2]
    train, test = split()
    train = train[:10]
    with pytest.raises(ReconstructionError, match="soap-space"):
        reconstruction_errors(x, y, train, test, k=11, names=("soap-space", "mace-space"))
    with pytest.raises(ReconstructionError, match="soap-space"):
        wide = np.random.default_rng(14).normal(size=(N, 12))
        error_table({"soap-space": wide}, train, test, k_max=20)  # k = min(12, 12) > 10 train rows
    # k equal to the train rows is fine, GFRE alone never needs neighbours
    assert np.isfinite(reconstruction_errors(x, y, train, test, k=10)["lfre"])
    assert np.isfinite(reconstruction_errors(x, y, train, test, k=11, lfre=False)["gfre"])


# ----------------------------------------------------------------------------------------------------
# scaling
# ----------------------------------------------------------------------------------------------------


def test_flexible_scale_equals_skmatter_scaler():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(120, 7)) * rng.uniform(0.1, 10.0, size=7) + rng.normal(size=7) * 5.0
    train, test = x[:90], x[90:]
    scaler = StandardFlexibleScaler().fit(train)
    got_train, got_test = flexible_scale(train, test)
    np.testing.assert_allclose(got_train, scaler.transform(train), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got_test, scaler.transform(test), rtol=1e-12, atol=1e-14)
    # total train variance 1, columns centred
    assert ((got_train - got_train.mean(0)) ** 2).mean(0).sum() == pytest.approx(1.0)
    np.testing.assert_allclose(got_train.mean(0), 0.0, atol=1e-12)
    # float32 input is scaled in float64
    assert flexible_scale(train.astype(np.float32), test.astype(np.float32))[0].dtype == np.float64


def test_constant_matrix_raises_naming_it():
    const = np.full((50, 4), 3.25)
    with pytest.raises(ReconstructionError, match="orb-v3"):
        flexible_scale(const[:40], const[40:], name="orb-v3")
    assert issubclass(ReconstructionError, ValueError)
    x = np.random.default_rng(12).normal(size=(50, 3))
    with pytest.raises(ReconstructionError, match="flat-target"):
        reconstruction_errors(x, const, np.arange(40), np.arange(40, 50), names=("x", "flat-target"))
    with pytest.raises(ReconstructionError, match="flat-source"):
        reconstruction_errors(const, x, np.arange(40), np.arange(40, 50), names=("flat-source", "y"))


# ----------------------------------------------------------------------------------------------------
# test sets
# ----------------------------------------------------------------------------------------------------


def _strata(singletons=("f", "g")):
    labels = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 150 + ["d"] * 45 + ["e"] * 5 + list(singletons))
    return labels[np.random.default_rng(13).permutation(len(labels))]


def _check_split(strata, n_test, seed, tol):
    n = len(strata)
    train, test = stratified_split(strata, n_test, seed)
    assert len(test) == n_test and len(train) == n - n_test
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)  # sorted, unique
    assert len(np.intersect1d(train, test)) == 0
    np.testing.assert_array_equal(np.union1d(train, test), np.arange(n))
    names, counts = np.unique(strata, return_counts=True)
    for name, count in zip(names, counts, strict=True):
        if count < 2:
            continue
        share = np.sum(strata[test] == name)
        assert abs(share - n_test * count / n) <= tol, (name, share, n_test * count / n)
    return train, test


def test_stratified_split_sizes_seeds_and_proportions():
    strata = _strata()
    # scikit-learn's stratified allocation is within one row of the exact share; a random split is not
    train, test = _check_split(strata, 200, seed=3, tol=1.0)
    again = stratified_split(strata, 200, seed=3)
    np.testing.assert_array_equal(again[0], train)
    np.testing.assert_array_equal(again[1], test)
    other = stratified_split(strata, 200, seed=4)
    assert not np.array_equal(other[1], test)
    for seed in range(5):
        _check_split(strata, 150, seed=seed, tol=1.0)


def test_stratified_split_with_a_single_singleton_stratum():
    """A lone one-row stratum joins the largest stratum; the split stays stratified."""
    strata = _strata(singletons=("f",))
    for seed in range(3):
        _check_split(strata, 200, seed=seed, tol=1.0)


def test_stratified_split_max_train_and_errors():
    strata = _strata()
    full_train, test = stratified_split(strata, 200, seed=3)
    train, test_capped = stratified_split(strata, 200, seed=3, max_train=300)
    np.testing.assert_array_equal(test_capped, test)
    assert len(train) == 300 and np.all(np.diff(train) > 0)
    assert np.all(np.isin(train, full_train))
    np.testing.assert_array_equal(stratified_split(strata, 200, seed=3, max_train=300)[0], train)
    assert not np.array_equal(stratified_split(strata, 200, seed=5, max_train=300)[0], train)
    # a cap above the train size changes nothing
    np.testing.assert_array_equal(stratified_split(strata, 200, seed=3, max_train=10_000)[0], full_train)

    for n_test in (len(strata), len(strata) + 1, 0):
        with pytest.raises(ReconstructionError):
            stratified_split(strata, n_test, seed=0)


def test_stratified_split_with_too_many_strata_still_splits():
    strata = np.repeat([f"s{i}" for i in range(40)], 3)  # 40 strata, a test set of 10 cannot hold them
    train, test = stratified_split(strata, 10, seed=0)
    assert len(test) == 10 and len(train) == 110 and len(np.intersect1d(train, test)) == 0


def test_crystal_system():
    sg = [1, 2, 3, 15, 16, 74, 75, 142, 143, 167, 168, 194, 195, 230, np.nan, 0, 231, -5]
    want = (
        ["triclinic"] * 2
        + ["monoclinic"] * 2
        + ["orthorhombic"] * 2
        + ["tetragonal"] * 2
        + ["trigonal"] * 2
        + ["hexagonal"] * 2
        + ["cubic"] * 2
        + ["unknown"] * 4
    )
    assert list(crystal_system(sg)) == want
    assert list(crystal_system(np.array([225.0, 62.0]))) == ["cubic", "orthorhombic"]


def test_lfre_needs_two_neighbours():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 1)), rng.normal(size=(40, 3))
    train, test = np.arange(30), np.arange(30, 40)
    with pytest.raises(ReconstructionError, match="k >= 2"):
        reconstruction_errors(x, y, train, test, names=("one-column", "y"))
