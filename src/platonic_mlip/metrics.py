"""Cross-model similarity metrics on row-aligned samples of two spaces.

Every function takes two arrays with the same rows (the same atoms) and possibly different widths:
``a`` of shape (n, d_a) and ``b`` of shape (n, d_b). Arithmetic is float64.

Known from the papers: mutual k-NN (Huh et al. 2024), exact optimal transport with POT between
Platonic spaces (Euclidean cost, uniform weights). Ours (documented in README and config): the
Procrustes score, the OT normalisation and the composite score.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import numpy as np

#: similarity scores in [0, 1] (1 = identical) that the composite may combine
SCORES = ("mknn", "cka", "procrustes_score", "ot_score")
#: mutual k-NN beyond element identity (``pairwise_table`` with ``elements``; ``beyond_element``)
BEYOND_ELEMENT = "mknn_beyond_element"


def sample_indices(n: int, size: int, seed: int = 42) -> np.ndarray:
    """The paper's metric sample: ``torch.randperm(n)[:size]`` after seeding with ``seed``.

    Uses a private torch generator (no global state); equal to ``torch.manual_seed(seed);
    torch.randperm(n)[:size]``. Returns all ``n`` indices (in that permuted order) when size >= n.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[: min(size, n)].numpy().astype(np.int64)


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"metrics need two 2-D arrays with the same rows, got {a.shape} and {b.shape}")


#: default tie tolerance of the k-NN (config ``metrics.knn_tie_tol``), absolute inner-product units
KNN_TIE_TOL = 1.0e-6


def knn_indices(x: np.ndarray, k: int, tie_tol: float = KNN_TIE_TOL, return_tied: bool = False):
    """(n, k) indices of each row's k nearest other rows by inner product (self excluded).

    Deterministic under ties (ours; symmetry-equivalent atoms have equal embeddings up to float32
    noise, and a plain partial sort would let that noise pick among them). The rule, per row i:

    1. similarities s_ij = x_i . x_j in float64 (cosines when the rows are unit-norm); s_ii = -inf,
       so a row is never its own neighbour;
    2. sort the s_ij in decreasing order; consecutive values that differ by at most ``tie_tol`` are
       tied and form one tie group (chained: a run of values with every step <= tie_tol is one group);
    3. order the candidates by tie group (most similar group first), then by ascending row index j;
       N(i) = the first k.

    Hence the lowest row indices win among tied candidates: the same rows in every model whose
    embeddings have the same ties, and float noise well below ``tie_tol`` cannot change the set (only
    a gap within noise of ``tie_tol`` itself can flip). Unlike rounding to a grid of ``tie_tol``, two
    values closer than ``tie_tol`` are never split. Rows whose k-th and (k+1)-th largest similarities
    differ by more than ``tie_tol`` get exactly the k largest (the plain top-k). ``tie_tol = 0`` ties
    only exactly equal values.

    Row i is *tied* when its k-th and (k+1)-th largest similarities differ by at most ``tie_tol``
    (the tie decides which of them is a neighbour). With ``return_tied`` also returns that (n,) bool
    mask. The order of the k indices within a row is unspecified (the metrics use sets).

    Cost: one partial sort per row (as without the rule), a sort of each row's 4k + 32 nearest, and a
    full sort of the rare rows whose boundary tie group reaches beyond those.
    """
    if tie_tol < 0 or not np.isfinite(tie_tol):
        raise ValueError(f"knn_indices: tie_tol={tie_tol} must be finite and >= 0")
    x = _f64(x)
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"knn_indices: k={k} must be between 1 and n-1={n - 1}")
    dist = x @ x.T
    np.negative(dist, out=dist)  # dist = -similarity: ascending = most similar first
    np.fill_diagonal(dist, np.inf)
    # candidates: each row's m nearest (a partial sort, as without the rule); the rule runs on them
    m = min(n, 4 * k + 32)
    cand = np.argpartition(dist, kth=m - 1, axis=1)[:, :m]
    idx, tied, spills = _knn_rule(np.take_along_axis(dist, cand, axis=1), cand, k, tie_tol, n)
    # rows whose boundary tie group may continue past the m candidates: the rule on the whole row
    rows = np.flatnonzero(spills) if m < n else np.empty(0, dtype=np.int64)
    for start in range(0, rows.size, 128):  # 128 rows at a time: bounded memory
        chunk = rows[start : start + 128]
        every = np.broadcast_to(np.arange(n), (chunk.size, n))
        idx[chunk] = _knn_rule(dist[chunk], every, k, tie_tol, n)[0]
    return (idx, tied) if return_tied else idx


def _knn_rule(dist: np.ndarray, cols: np.ndarray, k: int, tie_tol: float, n: int):
    """``knn_indices``' rule on candidate lists: (r, m) distances (-similarity) and their row indices.

    Returns (r, k) neighbours, (r,) tied (k-th and (k+1)-th in one tie group) and (r,) spills (the
    k-th's tie group reaches the last candidate, so it may go on beyond the list). Needs m > k.
    """
    order = np.argsort(dist, axis=1)
    vals = np.take_along_axis(dist, order, axis=1)
    cols = np.take_along_axis(cols, order, axis=1)
    group = np.zeros(vals.shape, dtype=np.int64)  # tie group of each sorted position
    np.cumsum(np.diff(vals, axis=1) > tie_tol, axis=1, out=group[:, 1:])
    key = group * n + cols  # by group, then row index (< n): one distinct int64 per candidate
    first = np.argpartition(key, kth=k - 1, axis=1)[:, :k]
    edge = group[:, k - 1]
    return np.take_along_axis(cols, first, axis=1), group[:, k] == edge, group[:, -1] == edge


def mutual_knn(
    a: np.ndarray, b: np.ndarray, k: int = 10, normalize: bool = True, tie_tol: float = KNN_TIE_TOL
) -> float:
    """Mutual k-nearest-neighbour alignment of Huh et al. (2024).

    Neighbours by inner product with self excluded (cosine when ``normalize``: rows scaled to unit
    norm first, Huh et al.'s default); score = mean over points of |N_A(i) ∩ N_B(i)| / k, in [0, 1].
    Chance level for unrelated spaces is about k / (n - 1). Ties within ``tie_tol`` go to the lower
    row index (ours, see ``knn_indices``).
    """
    a, b = _f64(a), _f64(b)
    _check_pair(a, b)
    n = a.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"mutual_knn: k={k} must be between 1 and n-1={n - 1}")
    if normalize:
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    na, nb = knn_indices(a, k, tie_tol), knn_indices(b, k, tie_tol)
    mask = np.zeros((n, n), dtype=bool)
    rows = np.arange(n)[:, None]
    mask[rows, na] = True
    return float(mask[rows, nb].sum(axis=1).mean() / k)


def _centre(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=0, keepdims=True)


def linear_cka(a: np.ndarray, b: np.ndarray) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019), in [0, 1]."""
    a, b = _centre(_f64(a)), _centre(_f64(b))
    _check_pair(a, b)
    cross = np.linalg.norm(a.T @ b) ** 2
    denom = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    return float(cross / denom) if denom > 0 else 0.0


def procrustes(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Angular orthogonal-Procrustes distance (as in netrep) and our score in [0, 1].

    Centre columns, scale each space to unit Frobenius norm, zero-pad to equal width, find the best
    orthogonal map; the cosine of the angle between the aligned spaces is the nuclear norm of
    ``a.T @ b``. distance = arccos(cosine) in [0, pi/2]; score = 1 - distance / (pi/2) (ours).
    """
    a, b = _centre(_f64(a)), _centre(_f64(b))
    _check_pair(a, b)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise ValueError("procrustes: a space has zero variance")
    a, b = a / na, b / nb
    # padding with zero columns does not change the singular values of a.T @ b; skip it
    cosine = float(np.clip(np.linalg.svd(a.T @ b, compute_uv=False).sum(), 0.0, 1.0))
    dist = float(np.arccos(cosine))
    return {"procrustes_distance": dist, "procrustes_score": 1.0 - dist / (np.pi / 2)}


def optimal_transport(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Exact optimal transport (POT ``ot.emd``) between the point clouds ``a`` and ``b``.

    Uniform weights, Euclidean ground cost (``ot.dist(..., metric='euclidean')``); ``ot_cost`` =
    sum(P * C), the paper's quantity. Only meaningful when both spaces have the same coordinates
    (Platonic spaces with the same anchors). Ours: ``ot_normalised`` = ot_cost / mean(C), the cost
    relative to the independent (product) coupling, in [0, 1]; ``ot_score`` = 1 - ot_normalised.
    """
    import ot

    a, b = _f64(a), _f64(b)
    _check_pair(a, b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"optimal_transport needs spaces of equal width, got {a.shape[1]} and {b.shape[1]}")
    return _ot_from_cost(ot.dist(a, b, metric="euclidean"))


def composite(scores: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Our composite score: the weighted mean of the similarity scores present in ``scores``.

    ``weights`` maps score names (see SCORES) to non-negative weights; names absent from ``scores``
    (e.g. ``ot_score`` in raw space) are left out and the remaining weights renormalised.
    """
    used = {m: w for m, w in weights.items() if m in scores and w > 0}
    if not used:
        return float("nan")
    return float(sum(w * scores[m] for m, w in used.items()) / sum(used.values()))


def pair_metrics(
    a: np.ndarray,
    b: np.ndarray,
    k: int = 10,
    normalize_knn: bool = True,
    with_ot: bool = False,
    composite_weights: Mapping[str, float] | None = None,
    knn_tie_tol: float = KNN_TIE_TOL,
) -> dict[str, float]:
    """Every metric for one pair of row-aligned samples; returns {metric name: value}."""
    out = {
        "mknn": mutual_knn(a, b, k=k, normalize=normalize_knn, tie_tol=knn_tie_tol),
        "cka": linear_cka(a, b),
    }
    out.update(procrustes(a, b))
    if with_ot:
        out.update(optimal_transport(a, b))
    if composite_weights:
        out["composite"] = composite(out, composite_weights)
    return out


# --------------------------------------------------------------------------------------------------
# Every pair of models at once, with confidence intervals from redrawn atom samples (ours)
# --------------------------------------------------------------------------------------------------

#: the tidy table's columns; UNCERTAINTY_COLUMNS follow when intervals are asked for, then TIE_COLUMNS
TABLE_COLUMNS = ["model_a", "model_b", "space", "anchors", "metric", "value"]
UNCERTAINTY_COLUMNS = ["mean", "std", "ci_low", "ci_high", "ci_level", "n_repeats"]
#: share of the sample's rows whose k-NN set was decided by a tie (``knn_indices``), model_a and model_b
TIE_COLUMNS = ["mknn_tied_a", "mknn_tied_b"]


def resample_indices(n: int, size: int, repeats: int, seed: int = 0) -> np.ndarray:
    """Redrawn metric samples for the intervals of ``pairwise_table`` (ours; the paper has none).

    ``repeats`` independent samples of ``m = min(size, n)`` distinct indices of ``range(n)``, each
    drawn without replacement, in order, from one ``numpy.random.default_rng(seed)``; different
    samples may share atoms. Without replacement on purpose: a with-replacement bootstrap puts
    duplicated atoms in a sample, and a duplicate is its twin's exact nearest neighbour in every
    space, which inflates mutual k-NN (see docs/uncertainty.md).

    Returns
    -------
    (repeats, m) int64 array; shape (0, m) when ``repeats`` is 0.
    """
    if repeats < 0 or size < 1 or n < 1:
        raise ValueError(
            f"resample_indices: need n >= 1, size >= 1, repeats >= 0 (got {n}, {size}, {repeats})"
        )
    m = min(size, n)
    rng = np.random.default_rng(seed)
    out = np.empty((repeats, m), dtype=np.int64)
    for r in range(repeats):
        out[r] = rng.choice(n, size=m, replace=False)
    return out


class _Prepared:
    """One model's rows of one atom sample, prepared once and shared by all pairs with that model.

    Attributes
    ----------
    knn : (n, k) int64, each row's k nearest rows by inner product (cosine when normalised), self
        excluded: ``knn_indices`` as used by ``mutual_knn``.
    tied : share of the rows whose k-th and (k+1)-th similarities are tied (``knn_indices``).
    unit : (n, d) float64, columns centred and the matrix scaled to unit Frobenius norm (CKA and
        Procrustes both use ``unit_a.T @ unit_b``); None for a space with zero variance.
    gram : ``||unit.T @ unit||_F``, the CKA normaliser.
    rows : (n, d) float64 rows as given (optimal transport), or None when OT is not computed.
    """

    __slots__ = ("knn", "tied", "unit", "gram", "rows", "knn_null")

    def __init__(
        self,
        x: np.ndarray,
        k: int,
        normalize_knn: bool,
        keep_rows: bool,
        tie_tol: float = KNN_TIE_TOL,
        shuffle: np.ndarray | None = None,
    ):
        x = _f64(x)
        xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) if normalize_knn else x
        self.knn, tied = knn_indices(xn, k, tie_tol, return_tied=True)
        # the k-NN of the rows shuffled within elements (row i holds the vector of atom shuffle[i])
        self.knn_null = None if shuffle is None else knn_indices(xn[shuffle], k, tie_tol)
        self.tied = float(tied.mean())
        c = _centre(x)
        fro = np.linalg.norm(c)
        self.unit = c / fro if fro > 0 else None
        if self.unit is None:
            self.gram = 0.0
        else:  # ||U.T U||_F = ||U U.T||_F: take the smaller product
            u = self.unit
            self.gram = float(np.linalg.norm(u.T @ u if u.shape[1] <= u.shape[0] else u @ u.T))
        self.rows = x if keep_rows else None


def _ot_from_cost(cost_matrix: np.ndarray, identical: bool = False) -> dict[str, float]:
    """``optimal_transport``'s numbers from an (n, n) Euclidean cost matrix (uniform weights).

    ``identical``: both point clouds are the same rows; the identity coupling (cost = trace / n) is
    then optimal (C >= 0 with a zero diagonal up to rounding) and the exact solver is skipped.
    """
    n = cost_matrix.shape[0]
    if identical:
        cost = float(np.trace(cost_matrix)) / n
    else:
        # POT's network simplex releases the GIL (pairs run in parallel threads); on the demo's Platonic
        # samples it was 3-6x faster than scipy's linear_sum_assignment, which holds the GIL
        import ot

        w = np.full(n, 1.0 / n)
        plan = ot.emd(w, w, cost_matrix, numItermax=10_000_000)
        cost = float((plan * cost_matrix).sum())
    mean_cost = float(cost_matrix.mean())
    normalised = cost / mean_cost if mean_cost > 0 else 0.0
    return {"ot_cost": cost, "ot_normalised": normalised, "ot_score": 1.0 - normalised}


def _pair_from_prepared(
    pa: _Prepared,
    pb: _Prepared,
    identical: bool,
    with_ot: bool,
    composite_weights: Mapping[str, float] | None,
) -> dict[str, float]:
    """``pair_metrics`` from two prepared samples (same numbers up to float rounding)."""
    n, k = pa.knn.shape
    # |N_A(i) ∩ N_B(i)| for every row at once: the k entries of a row are distinct
    hits = np.count_nonzero(pa.knn[:, :, None] == pb.knn[:, None, :])
    out = {"mknn": float(hits / n / k)}
    if pa.knn_null is not None:
        # each model against the other shuffled within elements, both ways (a symmetric null)
        null = 0.5 * (_overlap(pa.knn, pb.knn_null) + _overlap(pa.knn_null, pb.knn))
        out[BEYOND_ELEMENT] = beyond_element(out["mknn"], null)
    if pa.unit is None or pb.unit is None:
        raise ValueError("procrustes: a space has zero variance")
    cross = pa.unit.T @ pb.unit  # (d_a, d_b)
    denom = pa.gram * pb.gram
    out["cka"] = float(np.sum(cross * cross) / denom) if denom > 0 else 0.0
    cosine = float(np.clip(np.linalg.svd(cross, compute_uv=False).sum(), 0.0, 1.0))
    dist = float(np.arccos(cosine))
    out.update({"procrustes_distance": dist, "procrustes_score": 1.0 - dist / (np.pi / 2)})
    if with_ot:
        import ot

        a, b = pa.rows, pb.rows
        if a.shape[1] != b.shape[1]:
            raise ValueError(
                f"optimal_transport needs spaces of equal width, got {a.shape[1]} and {b.shape[1]}"
            )
        out.update(_ot_from_cost(ot.dist(a, b, metric="euclidean"), identical=identical))
    if composite_weights:
        out["composite"] = composite(out, composite_weights)
    return out


def element_shuffle(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n,) labels -> (n,) permutation that moves rows only among rows of the same label."""
    labels = np.asarray(labels)
    perm = np.arange(labels.size)
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        perm[rows] = rng.permutation(rows)
    return perm


def beyond_element(score: float, null: float) -> float:
    """Chance-corrected agreement (score - null) / (1 - null): 0 = what element identity alone gives, 1 =
    perfect agreement; 0 when the null is already perfect agreement (nothing beyond element to measure)."""
    return float((score - null) / (1.0 - null)) if 1.0 - null > 1e-12 else 0.0


def _overlap(na: np.ndarray, nb: np.ndarray) -> float:
    """Mean over rows of |N_a(i) ∩ N_b(i)| / k for two (n, k) neighbour-index arrays."""
    n, k = na.shape
    return float(np.count_nonzero(na[:, :, None] == nb[:, None, :]) / n / k)


class _Serial:
    """The ``map`` of an executor, run in the calling thread (workers = 1)."""

    @staticmethod
    def map(fn, items):
        return map(fn, items)


@contextlib.contextmanager
def worker_pool(workers: int):
    """Yields something with ``map``: a thread pool (numpy's BLAS and POT release the GIL) or serial.

    BLAS runs single-threaded inside (the workers share the cores; this also makes the results
    independent of ``workers``: a multithreaded BLAS sums in another order).
    """
    from concurrent.futures import ThreadPoolExecutor

    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            pass
        yield stack.enter_context(ThreadPoolExecutor(max_workers=workers)) if workers > 1 else _Serial()


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


#: config key ``metrics.control_pairs`` (OURS): which pairs of two controls the all-pairs tables compute
CONTROL_PAIRS = ("all", "same_role")


def computed_pairs(
    models: Sequence[str], roles: Mapping[str, str] | None = None, control_pairs: str = "all"
) -> list[tuple[str, str]]:
    """Unordered pairs of distinct models an all-pairs table computes, in model order.

    Every pair with a trained model (role ``trained``; a model absent from ``roles`` is trained) is
    computed. ``control_pairs`` (``CONTROL_PAIRS``): ``all`` computes every pair of two controls too;
    ``same_role`` only pairs of two controls of one role (both untrained, both element baselines, both
    physics references). No claim reads a pair of controls of different roles; they fill only the
    control block of the Fig. 4 heatmaps, which is left blank for them.
    """
    if control_pairs not in CONTROL_PAIRS:
        raise ValueError(f"control_pairs={control_pairs!r}: one of {list(CONTROL_PAIRS)}")
    roles = dict(roles or {})
    out = []
    for i, a in enumerate(models):
        for b in models[i + 1 :]:
            ra, rb = roles.get(a, "trained"), roles.get(b, "trained")
            if control_pairs == "all" or "trained" in (ra, rb) or ra == rb:
                out.append((a, b))
    return out


def pairwise_table(
    spaces: Mapping[str, np.ndarray],
    space: str,
    anchors: str = "",
    k: int = 10,
    normalize_knn: bool = True,
    composite_weights: Mapping[str, float] | None = None,
    *,
    sample: np.ndarray | None = None,
    resamples: np.ndarray | None = None,
    level: float = 0.95,
    workers: int = 1,
    knn_tie_tol: float = KNN_TIE_TOL,
    elements: np.ndarray | None = None,
    element_seed: int = 0,
    pairs: Sequence[tuple[str, str]] | None = None,
):
    """Tidy DataFrame of every metric for every unordered pair of models (self-pairs included).

    Parameters
    ----------
    spaces : model name -> (N, d_model) row-aligned array (rows = the same atoms in every model; a
        memmap is fine, only the indexed rows are read). Without ``sample`` and ``resamples`` the
        arrays are the metric sample itself (the original behaviour).
    space : ``raw`` or ``platonic``; optimal transport is computed in Platonic space only.
    anchors : label of the anchor set (empty in raw space).
    k, normalize_knn, composite_weights : as in ``pair_metrics``.
    sample : (n,) row indices of the sample that gives ``value`` (the paper's sample); None = all N
        rows.
    resamples : (R, m) row indices, one redrawn sample per row (``resample_indices``; normally
        m = n). When given, the table carries the uncertainty columns (NaN when R = 0).
    level : coverage of the percentile interval, 0 < level < 1.
    workers : threads over models and pairs (numpy's BLAS and POT's exact solver release the GIL);
        the result does not depend on it.
    knn_tie_tol : similarities within this of each other are tied in the k-NN (``knn_indices``).
    elements : (N,) element labels of the rows (OURS): adds the metric ``mknn_beyond_element``, the
        mutual k-NN corrected for what element identity alone explains. Per draw, one permutation of
        the sample moving atoms only among atoms of their element (``element_shuffle``, seeded by
        ``element_seed`` and the draw); null = mean of mknn(A, B shuffled) and mknn(A shuffled, B);
        score = (mknn - null) / (1 - null) (``beyond_element``). An element-only space scores 0; the
        intervals over redrawn samples include the shuffle's own spread.
    pairs : unordered pairs of distinct model names to compute (``computed_pairs``); None = every pair.
        Self-pairs are always computed; a pair left out has no rows.

    Returns
    -------
    DataFrame with one row per (pair, metric) and columns model_a, model_b, space, anchors, metric,
    value; with ``resamples`` also mean, std (ddof 1), ci_low, ci_high (the (1 - level)/2 and
    (1 + level)/2 quantiles, numpy's linear interpolation), ci_level and n_repeats, all over the R
    redrawn samples (``value`` is not among them); last ``mknn_tied_a`` and ``mknn_tied_b`` (ours):
    the share of the sample's rows (the sample of ``value``) whose k-th and (k+1)-th neighbour
    similarities are tied in model_a's and model_b's space (``knn_indices``), i.e. whose k-NN set
    the index tie-break decided; a property of the pair's samples, the same on each metric's row.

    Cost: per sample, each model's k-NN sets and centred, unit-norm matrix are computed once (not
    once per pair); per pair one (d_a, d_b) product serves CKA and Procrustes, and the exact OT
    solver is skipped for self-pairs (the identity coupling is optimal). (1 + R) samples in all.
    """
    import pandas as pd

    if not 0.0 < level < 1.0:
        raise ValueError(f"pairwise_table: level={level} must be strictly between 0 and 1")
    names = list(spaces)
    if not names:
        raise ValueError("pairwise_table: no spaces")
    shapes = {m: np.shape(spaces[m]) for m in names}
    n_rows = shapes[names[0]][0] if len(shapes[names[0]]) == 2 else -1
    if any(len(s) != 2 or s[0] != n_rows for s in shapes.values()):
        raise ValueError(f"metrics need 2-D arrays with the same rows, got {shapes}")
    draws = [np.arange(n_rows) if sample is None else np.asarray(sample, dtype=np.int64)]
    if resamples is not None:
        resamples = np.asarray(resamples, dtype=np.int64)
        if resamples.ndim != 2:
            raise ValueError(f"pairwise_table: resamples must be (R, m), got shape {resamples.shape}")
        draws += list(resamples)
    for idx in draws:
        if not 1 <= k < len(idx):
            raise ValueError(f"mutual_knn: k={k} must be between 1 and n-1={len(idx) - 1}")
    with_ot = space == "platonic"
    wanted = None
    if pairs is not None:
        unknown = sorted({m for pair in pairs for m in pair} - set(names))
        if unknown:
            raise ValueError(f"pairwise_table: pairs name model(s) {unknown} not among the spaces {names}")
        wanted = {frozenset(pair) for pair in pairs}
    pairs = [
        (i, j)
        for i in range(len(names))
        for j in range(i, len(names))
        if i == j or wanted is None or frozenset((names[i], names[j])) in wanted
    ]

    if elements is not None:
        elements = np.asarray(elements)
        if elements.shape != (n_rows,):
            raise ValueError(f"pairwise_table: elements must be ({n_rows},), got shape {elements.shape}")
    per_draw = []  # per draw: one {metric: value} per pair
    with worker_pool(workers) as pool:
        for d, idx in enumerate(draws):
            shuffle = None
            if elements is not None:
                shuffle = element_shuffle(elements[idx], np.random.default_rng([int(element_seed), d]))
            prepared = list(
                pool.map(
                    lambda m, idx=idx, shuffle=shuffle: _Prepared(
                        np.asarray(spaces[m][idx]),
                        k,
                        normalize_knn,
                        keep_rows=with_ot,
                        tie_tol=knn_tie_tol,
                        shuffle=shuffle,
                    ),
                    names,
                )
            )
            if not per_draw:  # the sample of ``value``
                tied = [p.tied for p in prepared]
            per_draw.append(
                list(
                    pool.map(
                        lambda ij, prepared=prepared: _pair_from_prepared(
                            prepared[ij[0]], prepared[ij[1]], ij[0] == ij[1], with_ot, composite_weights
                        ),
                        pairs,
                    )
                )
            )

    rows = []
    n_rep = len(draws) - 1
    for p, (i, j) in enumerate(pairs):
        for metric, value in per_draw[0][p].items():
            row = [names[i], names[j], space, anchors, metric, value]
            if resamples is not None:
                if n_rep:
                    vals = np.array([per_draw[r][p][metric] for r in range(1, len(draws))])
                    std = float(vals.std(ddof=1)) if n_rep > 1 else float("nan")
                    row += [float(vals.mean()), std, *_percentile_interval(vals, level), level, n_rep]
                else:
                    row += [float("nan")] * 4 + [level, 0]
            rows.append(row + [tied[i], tied[j]])
    columns = TABLE_COLUMNS + (UNCERTAINTY_COLUMNS if resamples is not None else []) + TIE_COLUMNS
    return pd.DataFrame(rows, columns=columns)
