"""Feature reconstruction errors (GFRE, LFRE) of Chorna et al. (arXiv 2512.05717), computed fast.

How much of a target feature space Y can a linear map rebuild from a source space X? The definitions
are scikit-matter's ``global_reconstruction_error`` and ``local_reconstruction_error`` with their
default settings (Goscinski et al. 2021), which are the settings Chorna et al. use:

- **scaling**: each matrix is centred by its train column means and divided by the square root of its
  total train variance (skmatter's ``StandardFlexibleScaler``), so an error of 1 means "no better than
  the mean";
- **regression**: skmatter's ``Ridge2FoldCV``: no intercept; the cutoff of singular values below
  ``alpha * s_max`` chosen among ``alphas = geomspace(1e-9, 0.9, 20)`` (relative) by 2-fold
  cross-validation (``KFold(2, shuffle=True, random_state=0x5F3759DF)``) on the root-mean-square error
  averaged over target columns;
- **GFRE** = sqrt(mean over test rows of ||y_i - W x_i||^2), W fitted on the train rows;
- **LFRE**: for every test row, the ``k`` train rows nearest to it in the scaled source space, centred
  on their own means, give a local map; LFRE = sqrt(mean over test rows of the local errors^2).

skmatter refits everything for every (source, target) pair and one regression per test row, each
through scikit-learn's scorer. Here what depends on the source alone (scaling, folds, singular value
decompositions, neighbourhoods) is computed once per source (``SourceFit``) and reused for every target,
the cross-validation of every cutoff is read off Gram matrices, and the local regressions of all test
rows run as batched linear algebra. ``tests/test_reconstruction.py`` checks the numbers against
skmatter's own functions. Differences from skmatter, both documented as ours: ties between equally
distant neighbours go to the lower train row (skmatter's unstable sort leaves them to chance), and the
cross-validation scores, read off Gram matrices, are exact to about 1e-8 only: where the target is rebuilt
almost exactly (error below ~1e-8) from an ill-conditioned source, another cutoff may be chosen and the
(tiny) error differs from skmatter's.

Shapes: X (n, d) source, Y (n, d') target, rows are atoms (or structures) in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ALPHAS = np.geomspace(1e-9, 0.9, 20)
CV_SEED = 0x5F3759DF
_EPS = np.spacing(1.0)


class ReconstructionError(ValueError):
    """A matrix that cannot be used (zero variance, too few rows); the message names it."""


def flexible_scale(
    train: np.ndarray, test: np.ndarray, name: str = "matrix"
) -> tuple[np.ndarray, np.ndarray]:
    """Centre by the train column means and divide by sqrt(total train variance) (skmatter's
    ``StandardFlexibleScaler``). train (n, d), test (t, d) -> both scaled, float64."""
    train = np.asarray(train, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    mean = train.mean(axis=0)
    var = ((train - mean) ** 2).mean(axis=0).sum()
    if var < 1e-12:  # skmatter's StandardFlexibleScaler: atol 1e-12, rtol 0
        raise ReconstructionError(f"{name}: the train rows have zero variance; no error can be scaled")
    scale = np.sqrt(var)
    return (train - mean) / scale, (test - mean) / scale


def two_folds(n: int, random_state: int = CV_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The two folds skmatter's ``Ridge2FoldCV`` uses for n rows (scikit-learn's shuffled ``KFold``)."""
    from sklearn.model_selection import KFold

    first, second = next(KFold(n_splits=2, shuffle=True, random_state=random_state).split(np.zeros((n, 1))))
    return first, second


# ----------------------------------------------------------------------------------------------------
# the cross-validated cutoff, for one matrix (global) or a batch of small ones (local)
# ----------------------------------------------------------------------------------------------------


@dataclass
class _Fold:
    """A fit on one fold evaluated on the other, for a batch of b problems (b = 1 for GFRE).

    u (b, m1, r) left singular vectors of the fit fold (None for tall fits: see ``_Ridge``); s (b, r);
    vt (b, r, d); rank (b,) kept above rcond; inv (b, r) = 1/s up to rank, else 0;
    a (b, m2, r) = X_eval V / s (zero beyond rank); gram (b, r, r) = a^T a.
    """

    u: np.ndarray | None
    s: np.ndarray
    vt: np.ndarray
    rank: np.ndarray
    inv: np.ndarray
    a: np.ndarray
    gram: np.ndarray
    lower: np.ndarray = field(init=False)

    def __post_init__(self):
        self.lower = np.tril(self.gram, -1)


def _svd(x: np.ndarray, left: bool):
    """Thin SVD (u, s, vt) of a batch x (b, m, d); without ``left``, u is None and s, vt come from the
    triangular factor of a QR decomposition (the same numbers, about half the time for tall x)."""
    if left:
        return np.linalg.svd(x, full_matrices=False)
    if x.shape[-2] > x.shape[-1]:
        x = np.linalg.qr(x, mode="r")
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    return None, s, vt


def _masked_inverse(s: np.ndarray, n: np.ndarray) -> np.ndarray:
    """(b, r) 1/s for the first n (b,) components, 0 beyond."""
    keep = np.arange(s.shape[-1]) < n[:, None]
    return np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)


def _fold(x_fit: np.ndarray, x_eval: np.ndarray, rcond: float, left: bool = True) -> _Fold:
    u, s, vt = _svd(x_fit, left)
    rank = np.sum(s > rcond, axis=-1)
    inv = _masked_inverse(s, rank)
    a = (x_eval @ np.swapaxes(vt, -1, -2)) * inv[:, None, :]
    return _Fold(u=u, s=s, vt=vt, rank=rank, inv=inv, a=a, gram=np.swapaxes(a, -1, -2) @ a)


def _cv_rmse(
    fold: _Fold, b: np.ndarray, c: np.ndarray, yy: np.ndarray, n_eval: int, scaled_alphas: np.ndarray
) -> np.ndarray:
    """Mean over target columns of the evaluation-fold RMSE, for every alpha: (b, n_alphas).

    The prediction with the first m singular components is a[:, :m] @ B[:m], B = u^T y_fit (b, r, d');
    its squared error per column is yy + sum_j<m B_j (2 (L B)_j + G_jj B_j - 2 C_j), with C = a^T y_eval
    (b, r, d'), yy (b, d') the column sums of y_eval^2 and L the strictly lower triangle of G = a^T a:
    one cumulative sum over components gives every cutoff, read off at the cutoffs of ``scaled_alphas``.
    """
    terms = fold.lower @ b
    terms *= 2.0
    terms += np.diagonal(fold.gram, axis1=-2, axis2=-1)[..., None] * b
    terms -= 2.0 * c
    terms *= b
    np.cumsum(terms, axis=-2, out=terms)
    m = np.minimum(fold.rank[:, None], np.sum(fold.s[:, None, :] > scaled_alphas[..., None], axis=-1))
    sse = np.take_along_axis(terms, np.maximum(m - 1, 0)[..., None], axis=-2)  # (b, n_alphas, d')
    sse[m == 0] = 0.0
    sse += yy[:, None, :]
    np.maximum(sse, 0.0, out=sse)
    sse /= n_eval
    return np.sqrt(sse, out=sse).mean(axis=-1)


@dataclass
class _Ridge:
    """The source side of skmatter's ``Ridge2FoldCV`` for a batch of b design matrices x (b, m, d).

    Two ways to the same numbers. Small batched problems (LFRE's neighbourhoods) keep the left singular
    vectors and project targets on them. A tall single matrix (GFRE's train set, ``tall=True``) keeps no
    left vectors: a target enters only through the cross products X_f^T y_f of the two folds (d x d' each,
    one pass over the rows), since u^T y = S^-1 V^T X^T y; this reads the rows of y once instead of three
    times, at the price of a rounding error grown by s_max / s_j in component j (harmless: see the tests).
    """

    first: _Fold
    second: _Fold
    folds: tuple[np.ndarray, np.ndarray]
    scaled_alphas: np.ndarray  # (b, n_alphas)
    u: np.ndarray | None
    s: np.ndarray
    vt: np.ndarray
    x_folds: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def build(cls, x: np.ndarray, alphas: np.ndarray, tall: bool = False) -> _Ridge:
        m, d = x.shape[-2:]
        f1, f2 = two_folds(m)
        rcond = max(m, d) * _EPS
        x1, x2 = x[:, f1], x[:, f2]
        first = _fold(x1, x2, rcond, left=not tall)
        second = _fold(x2, x1, rcond, left=not tall)
        smax = np.maximum(first.s.max(axis=-1), second.s.max(axis=-1))
        u, s, vt = _svd(x, left=not tall)
        scaled = np.asarray(alphas)[None, :] * smax[:, None]
        return cls(first, second, (f1, f2), scaled, u, s, vt, (x1, x2) if tall else None)

    def _fit(self, y: np.ndarray):
        """(components kept (b,), X^T y (b, d, d') for tall fits else None) for targets y (b, m, d')."""
        y1, y2 = y[:, self.folds[0]], y[:, self.folds[1]]
        yy1, yy2 = np.sum(y1**2, axis=-2), np.sum(y2**2, axis=-2)
        f, g = self.first, self.second
        if self.x_folds is None:
            b1, c1 = np.swapaxes(f.u, -1, -2) @ y1, np.swapaxes(f.a, -1, -2) @ y2
            b2, c2 = np.swapaxes(g.u, -1, -2) @ y2, np.swapaxes(g.a, -1, -2) @ y1
            xty = None
        else:
            p1 = np.swapaxes(self.x_folds[0], -1, -2) @ y1  # (b, d, d')
            p2 = np.swapaxes(self.x_folds[1], -1, -2) @ y2
            b1, c1 = f.inv[..., None] * (f.vt @ p1), f.inv[..., None] * (f.vt @ p2)
            b2, c2 = g.inv[..., None] * (g.vt @ p2), g.inv[..., None] * (g.vt @ p1)
            xty = p1 + p2
        loss = 0.5 * (
            _cv_rmse(f, b1, c1, yy2, y2.shape[-2], self.scaled_alphas)
            + _cv_rmse(g, b2, c2, yy1, y1.shape[-2], self.scaled_alphas)
        )
        pick = np.argmin(loss, axis=1)  # first of equals, as skmatter's argmax of the negated score
        alpha = np.take_along_axis(self.scaled_alphas, pick[:, None], axis=1)
        return np.sum(self.s > alpha, axis=-1), xty

    def best(self, y: np.ndarray) -> np.ndarray:
        """(b,) the number of singular components kept by the cross-validated cutoff for targets y."""
        return self._fit(y)[0]

    def predict(self, y: np.ndarray, x_new: np.ndarray) -> np.ndarray:
        """Predictions at x_new (b, t, d) of the map fitted to targets y (b, m, d'): (b, t, d')."""
        n, xty = self._fit(y)
        inv = _masked_inverse(self.s, n)
        z = (x_new @ np.swapaxes(self.vt, -1, -2)) * inv[:, None, :]  # (b, t, r)
        if xty is not None:  # u^T y = S^-1 V^T X^T y
            return z @ (inv[..., None] * (self.vt @ xty))
        if z.shape[-2] < y.shape[-1]:  # few new rows (LFRE: one): weights on the fitted rows first
            return (z @ np.swapaxes(self.u, -1, -2)) @ y
        return z @ (np.swapaxes(self.u, -1, -2) @ y)


# ----------------------------------------------------------------------------------------------------
# one source, many targets
# ----------------------------------------------------------------------------------------------------


@dataclass
class SourceFit:
    """Everything GFRE and LFRE need of one source matrix, reused for every target.

    Build with ``SourceFit.build(x, train, test)``: x (n, d), train/test row indices. ``neighbours``
    (t, k_max) are the train rows nearest to each test row (scaled source, squared Euclidean, ties to
    the lower row), filled by ``with_neighbours``.
    """

    name: str
    x_train: np.ndarray
    x_test: np.ndarray
    alphas: np.ndarray
    ridge: _Ridge
    neighbours: np.ndarray | None = None
    lfre_rows: np.ndarray | None = None
    _local: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, x: np.ndarray, train: np.ndarray, test: np.ndarray, name: str = "source", alphas=ALPHAS):
        x_train, x_test = flexible_scale(np.asarray(x)[train], np.asarray(x)[test], name)
        ridge = _Ridge.build(x_train[None], np.asarray(alphas, dtype=np.float64), tall=True)
        return cls(name, x_train, x_test, np.asarray(alphas, dtype=np.float64), ridge)

    @property
    def dim(self) -> int:
        return self.x_train.shape[1]

    def with_neighbours(self, k_max: int, rows: np.ndarray | None = None, chunk: int = 64) -> SourceFit:
        """Find the k_max nearest train rows of the test rows ``rows`` (default all; LFRE is computed on
        these) in chunks (memory chunk x n_train)."""
        self.lfre_rows = np.arange(len(self.x_test)) if rows is None else np.asarray(rows)
        x_test = self.x_test[self.lfre_rows]
        n = len(self.x_train)
        if k_max > n:
            raise ReconstructionError(f"{self.name}: LFRE needs k={k_max} neighbours but has {n} train rows")
        sq_train = np.sum(self.x_train**2, axis=1)
        out = np.empty((len(x_test), k_max), dtype=np.int64)
        rows = np.arange(n)
        for lo in range(0, len(x_test), chunk):
            xt = x_test[lo : lo + chunk]
            d2 = sq_train[None, :] + np.sum(xt**2, axis=1)[:, None] - 2.0 * xt @ self.x_train.T
            part = (
                np.argpartition(d2, k_max - 1, axis=1)[:, :k_max]
                if k_max < n
                else np.tile(rows, (len(xt), 1))
            )
            # order the kept rows by (distance, row): ties to the lower row
            dist = np.take_along_axis(d2, part, axis=1)
            kth = dist.max(axis=1, keepdims=True)
            for i in np.flatnonzero(np.sum(d2 <= kth, axis=1) > k_max):  # a tie straddles the k-th place
                cand = np.flatnonzero(d2[i] <= kth[i])
                part[i] = cand[np.lexsort((cand, d2[i, cand]))][:k_max]
            dist = np.take_along_axis(d2, part, axis=1)
            order = np.lexsort((part, dist), axis=1)
            out[lo : lo + chunk] = np.take_along_axis(part, order, axis=1)
        self.neighbours = out
        self._local.clear()
        return self

    def local(self, k: int, lo: int, hi: int):
        """Batched local problems of test rows lo:hi with k neighbours: (ridge, local means, centred x)."""
        key = (k, lo, hi)
        if key not in self._local:
            if self.neighbours is None or self.neighbours.shape[1] < k:
                self.with_neighbours(k, self.lfre_rows)
            nb = self.neighbours[lo:hi, :k]
            lx = self.x_train[nb]  # (b, k, d)
            mean = lx.mean(axis=1, keepdims=True)
            self._local[key] = (nb, _Ridge.build(lx - mean, self.alphas), mean)
        return self._local[key]


def _target(y: np.ndarray, train: np.ndarray, test: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    return flexible_scale(np.asarray(y)[train], np.asarray(y)[test], name)


def gfre_pointwise(source: SourceFit, y_train: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """(t,) per test row ||y_i - W x_i|| of the global map, y scaled (``flexible_scale``)."""
    pred = source.ridge.predict(y_train[None], source.x_test[None])[0]
    return np.linalg.norm(y_test - pred, axis=1)


#: test rows whose local regressions are computed (and held in memory) together
LFRE_CHUNK = 128
#: ... or fewer, so that one chunk's neighbourhood matrix (chunk x k x width) holds at most this many floats
LFRE_CHUNK_FLOATS = 1 << 23


def lfre_chunk(k: int, width: int) -> int:
    """Test rows per LFRE batch for neighbourhoods of k rows of ``width`` columns (source or target)."""
    return int(max(8, min(LFRE_CHUNK, LFRE_CHUNK_FLOATS // max(1, k * width))))


def _lfre_chunk(source: SourceFit, y_train: np.ndarray, y_test: np.ndarray, k: int, lo: int, hi: int):
    """(hi - lo,) LFRE errors of LFRE rows lo:hi (positions in ``source.lfre_rows``); y_test holds every
    test row."""
    rows = source.lfre_rows[lo:hi]
    nb, ridge, x_mean = source.local(k, lo, hi)
    ly = y_train[nb]  # (b, k, d')
    y_mean = ly.mean(axis=1, keepdims=True)
    pred = y_mean + ridge.predict(ly - y_mean, source.x_test[rows, None, :] - x_mean)
    return np.linalg.norm(np.asarray(y_test)[rows] - pred[:, 0, :], axis=1)


def lfre_pointwise(
    source: SourceFit, y_train: np.ndarray, y_test: np.ndarray, k: int, chunk: int = LFRE_CHUNK
) -> np.ndarray:
    """(t',) per LFRE test row (``source.lfre_rows``, default every test row) the error of its local map
    from its k nearest train rows, y scaled; y_test holds every test row."""
    if source.lfre_rows is None:
        source.with_neighbours(k)
    n = len(source.lfre_rows)
    return np.concatenate(
        [_lfre_chunk(source, y_train, y_test, k, lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]
    )


def root_mean_square(errors: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(errors) ** 2)))


def reconstruction_errors(
    x: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    k: int | None = None,
    lfre: bool = True,
    names: tuple[str, str] = ("source", "target"),
) -> dict[str, float]:
    """GFRE and LFRE of reconstructing y (n, d') from x (n, d) for one split.

    k: LFRE neighbourhood (default min(d, d'), the paper's choice). Returns {"gfre", "lfre", "k"}.
    For many pairs build one ``SourceFit`` per source instead (``pair_errors``).
    """
    source = SourceFit.build(x, train, test, names[0])
    return pair_errors(source, *_target(y, train, test, names[1]), k=k, lfre=lfre)


def pair_errors(
    source: SourceFit,
    y_train: np.ndarray,
    y_test: np.ndarray,
    k: int | None = None,
    lfre: bool = True,
    gfre: bool = True,
) -> dict[str, float]:
    """{"gfre", "lfre", "k"} of a built source against one scaled target (``flexible_scale``); a measure
    not asked for is NaN."""
    k = min(source.dim, y_train.shape[1]) if k is None else int(k)
    out = {"gfre": np.nan, "k": k, "lfre": np.nan}
    if gfre:
        out["gfre"] = root_mean_square(gfre_pointwise(source, y_train, y_test))
    if lfre:
        if k < 2:
            raise ReconstructionError(f"{source.name}: LFRE needs k >= 2 neighbours (2-fold fits), got k={k}")
        out["lfre"] = root_mean_square(lfre_pointwise(source, y_train, y_test, k))
    return out


# ----------------------------------------------------------------------------------------------------
# test sets
# ----------------------------------------------------------------------------------------------------

#: crystal systems by space-group number (International Tables): upper bound of each range
CRYSTAL_SYSTEMS = (
    (2, "triclinic"),
    (15, "monoclinic"),
    (74, "orthorhombic"),
    (142, "tetragonal"),
    (167, "trigonal"),
    (194, "hexagonal"),
    (230, "cubic"),
)


def crystal_system(spacegroup) -> np.ndarray:
    """(n,) crystal system of each space-group number; ``"unknown"`` where missing or out of 1..230."""
    sg = np.asarray(spacegroup, dtype=np.float64)
    out = np.full(sg.shape, "unknown", dtype=object)
    lower = 1
    for upper, name in CRYSTAL_SYSTEMS:
        out[(sg >= lower) & (sg <= upper)] = name
        lower = upper + 1
    return out


def stratified_split(
    strata: np.ndarray, n_test: int, seed: int, max_train: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded test rows stratified by ``strata`` (n,) (scikit-learn's ``train_test_split``) and the train
    rows: the rest, or a seeded random ``max_train`` of them. Both sorted. A stratum too small to split
    is pooled with the others ("rare")."""
    from sklearn.model_selection import train_test_split

    strata = np.asarray(strata, dtype=object).copy()
    n = len(strata)
    if not 0 < n_test < n:
        raise ReconstructionError(f"a test set of {n_test} rows needs more than {n_test} rows; have {n}")
    names, counts = np.unique(strata.astype(str), return_counts=True)
    rare = set(names[counts < 2])
    if rare:
        # pooled; a pool of one row joins the largest stratum (else nothing could be stratified)
        pool = "rare" if len(rare) > 1 else str(names[np.argmax(counts)])
        strata[np.isin(strata.astype(str), list(rare))] = pool
    labels = strata.astype(str)
    try:
        train, test = train_test_split(np.arange(n), test_size=n_test, random_state=seed, stratify=labels)
    except ValueError:  # too many strata for the test size: plain random split
        train, test = train_test_split(np.arange(n), test_size=n_test, random_state=seed)
    train = np.sort(train)
    if max_train is not None and len(train) > max_train:
        train = np.sort(np.random.default_rng(seed).choice(train, max_train, replace=False))
    return train, np.sort(test)


def lfre_subset(n_test: int, n_lfre: int | None, seed: int) -> np.ndarray | None:
    """Positions (sorted) of a seeded ``n_lfre`` of ``n_test`` test rows that LFRE is computed on (OURS
    option for large runs); None (every test row) when ``n_lfre`` is 0/None or not smaller."""
    if not n_lfre or n_lfre >= n_test:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_test, int(n_lfre), replace=False))


def rows_used(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(used rows sorted, train and test as positions in them): read only the rows a split needs."""
    used = np.union1d(train, test)
    return used, np.searchsorted(used, train), np.searchsorted(used, test)


# ----------------------------------------------------------------------------------------------------
# every ordered pair of a set of spaces
# ----------------------------------------------------------------------------------------------------


def error_table(
    matrices: dict[str, np.ndarray],
    train: np.ndarray,
    test: np.ndarray,
    lfre: bool = True,
    k_max: int | None = None,
    workers: int = 1,
    log=None,
    gfre: bool = True,
    lfre_rows: np.ndarray | None = None,
    pairs=None,
) -> list[dict]:
    """GFRE and LFRE of every ordered pair (source, target) of ``matrices`` {name: (n, d)}, diagonal
    included, on one split. LFRE neighbourhood k = min(d_source, d_target), capped at ``k_max``; LFRE on
    the test rows ``lfre_rows`` (positions in ``test``; default all), GFRE on every test row.
    ``pairs``: unordered pairs of distinct names to compute, both directions (``metrics.computed_pairs``);
    None = every pair. The diagonal is always computed.

    Returns rows {source, target, gfre, lfre, k, n_train, n_test, seconds}; sources run ``workers`` at a
    time (threads: the linear algebra releases the GIL; BLAS single-threaded inside, as
    ``metrics.worker_pool``). Scaled targets are kept for the whole call.
    """
    import time

    from platonic_mlip.metrics import worker_pool

    names = list(matrices)
    targets = {m: _target(matrices[m], train, test, m) for m in names}
    wanted = None if pairs is None else {frozenset(p) for p in pairs}
    if wanted is not None:
        unknown = sorted(set().union(*wanted) - set(names)) if wanted else []
        if unknown:
            raise ReconstructionError(f"pairs name model(s) {unknown} not among the matrices {names}")

    def targets_of(s):
        return [t for t in names if wanted is None or t == s or frozenset((s, t)) in wanted]

    def k_of(s, t):
        k = min(matrices[s].shape[1], matrices[t].shape[1])
        return k if k_max is None else min(k, int(k_max))

    def one_source(s):
        t0 = time.perf_counter()
        source = SourceFit.build(matrices[s], train, test, s)
        ts = targets_of(s)
        if lfre:
            source.with_neighbours(max(k_of(s, t) for t in ts), lfre_rows)
        rows = []
        for t in ts:
            t1 = time.perf_counter()
            err = pair_errors(source, *targets[t], k=k_of(s, t), lfre=False, gfre=gfre)
            rows.append(
                dict(
                    source=s,
                    target=t,
                    gfre=err["gfre"],
                    lfre=np.nan,
                    k=k_of(s, t) if lfre else np.nan,
                    n_train=len(train),
                    n_test=len(test),
                    n_test_lfre=len(test if lfre_rows is None else lfre_rows) if lfre else 0,
                    seconds=time.perf_counter() - t1,
                )
            )
        if lfre:  # chunk by chunk of test rows, every target: one chunk's local fits in memory at a time
            for row in rows:
                if row["k"] < 2:
                    raise ReconstructionError(
                        f"{s}: LFRE needs k >= 2 neighbours (2-fold fits), got k={row['k']}"
                    )
            n = len(source.lfre_rows)
            squares = np.zeros(len(rows))
            width = max(matrices[m].shape[1] for m in ts)
            chunk = lfre_chunk(max(int(row["k"]) for row in rows), width)
            for lo in range(0, n, chunk):
                hi = min(lo + chunk, n)
                for row_i, (t, row) in enumerate(zip(ts, rows, strict=True)):
                    t1 = time.perf_counter()
                    squares[row_i] += np.sum(_lfre_chunk(source, *targets[t], int(row["k"]), lo, hi) ** 2)
                    row["seconds"] += time.perf_counter() - t1
                source._local.clear()
            for row, sq in zip(rows, squares, strict=True):
                row["lfre"] = float(np.sqrt(sq / n))
        if log:
            log(f"{s}: {len(ts)} targets in {time.perf_counter() - t0:.1f} s")
        return rows

    # the widest sources (the longest jobs) first, so that the workers end together
    order = sorted(names, key=lambda m: -matrices[m].shape[1])
    with worker_pool(workers) as pool:
        parts = dict(zip(order, pool.map(one_source, order), strict=True))
    return [row for s in names for row in parts[s]]


def summarise(rows, keys=("space", "source", "target"), measures=("gfre", "lfre"), level: float = 0.95):
    """Per ``keys`` group of a long table with a ``draw`` column (0 = the protocol's test set, 1..R
    redrawn): ``<m>`` (draw 0), ``<m>_mean``, ``<m>_std``, ``<m>_lo``/``<m>_hi`` (percentile interval of
    draws 1..R at ``level``; NaN without redrawn sets) and ``n_draws``. Returns a DataFrame."""
    import pandas as pd

    table = pd.DataFrame(rows)
    out = []
    tail = (1.0 - level) / 2.0
    for key, group in table.groupby(list(keys), sort=False):
        row = dict(zip(keys, key, strict=True))
        first = group[group["draw"] == 0]
        redrawn = group[group["draw"] > 0]
        for m in measures:
            vals = redrawn[m].to_numpy(dtype=float)
            vals = vals[np.isfinite(vals)]
            row[m] = float(first[m].iloc[0]) if len(first) else np.nan
            row[f"{m}_mean"] = float(vals.mean()) if len(vals) else np.nan
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else np.nan
            row[f"{m}_lo"] = float(np.quantile(vals, tail)) if len(vals) else np.nan
            row[f"{m}_hi"] = float(np.quantile(vals, 1.0 - tail)) if len(vals) else np.nan
        row["n_draws"] = int(len(redrawn))
        out.append(row)
    return pd.DataFrame(out)


def matrix(table, measure: str, names, source: str = "source", target: str = "target") -> np.ndarray:
    """(M, M) matrix of ``measure`` with rows = source and columns = target, in ``names`` order."""
    pos = {m: i for i, m in enumerate(names)}
    out = np.full((len(names), len(names)), np.nan)
    for s, t, v in zip(table[source], table[target], table[measure], strict=True):
        if s in pos and t in pos:
            out[pos[s], pos[t]] = v
    return out


def asymmetry(mat: np.ndarray) -> np.ndarray:
    """(M, M) ``mat - mat.T``: positive where reconstructing the column from the row is the harder way."""
    return np.asarray(mat) - np.asarray(mat).T
