"""Cross-model similarity metrics on row-aligned samples of two spaces.

Every function takes two arrays with the same rows (the same atoms) and possibly different widths:
``a`` of shape (n, d_a) and ``b`` of shape (n, d_b). Arithmetic is float64.

Known from the papers: mutual k-NN (Huh et al. 2024), exact optimal transport with POT between
Platonic spaces (Euclidean cost, uniform weights). Ours (documented in README and config): the
Procrustes score, the OT normalisation and the composite score.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: similarity scores in [0, 1] (1 = identical) that the composite may combine
SCORES = ("mknn", "cka", "procrustes_score", "ot_score")


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


def knn_indices(x: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of each row's k largest inner products with the other rows (self excluded)."""
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    return np.argpartition(-sim, kth=k - 1, axis=1)[:, :k]


def mutual_knn(a: np.ndarray, b: np.ndarray, k: int = 10, normalize: bool = True) -> float:
    """Mutual k-nearest-neighbour alignment of Huh et al. (2024).

    Neighbours by inner product with self excluded (cosine when ``normalize``: rows scaled to unit
    norm first, Huh et al.'s default); score = mean over points of |N_A(i) ∩ N_B(i)| / k, in [0, 1].
    Chance level for unrelated spaces is about k / (n - 1).
    """
    a, b = _f64(a), _f64(b)
    _check_pair(a, b)
    n = a.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"mutual_knn: k={k} must be between 1 and n-1={n - 1}")
    if normalize:
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    na, nb = knn_indices(a, k), knn_indices(b, k)
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
    n = a.shape[0]
    w = np.full(n, 1.0 / n)
    cost_matrix = ot.dist(a, b, metric="euclidean")
    plan = ot.emd(w, w, cost_matrix, numItermax=10_000_000)
    cost = float((plan * cost_matrix).sum())
    mean_cost = float(cost_matrix.mean())
    normalised = cost / mean_cost if mean_cost > 0 else 0.0
    return {"ot_cost": cost, "ot_normalised": normalised, "ot_score": 1.0 - normalised}


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
) -> dict[str, float]:
    """Every metric for one pair of row-aligned samples; returns {metric name: value}."""
    out = {"mknn": mutual_knn(a, b, k=k, normalize=normalize_knn), "cka": linear_cka(a, b)}
    out.update(procrustes(a, b))
    if with_ot:
        out.update(optimal_transport(a, b))
    if composite_weights:
        out["composite"] = composite(out, composite_weights)
    return out


def pairwise_table(
    spaces: Mapping[str, np.ndarray],
    space: str,
    anchors: str = "",
    k: int = 10,
    normalize_knn: bool = True,
    composite_weights: Mapping[str, float] | None = None,
):
    """Tidy DataFrame of every metric for every unordered pair of models (self-pairs included).

    ``spaces`` maps model name -> (n, d) row-aligned sample. ``space`` is ``raw`` or ``platonic``;
    optimal transport is computed in Platonic space only. Columns: model_a, model_b, space, anchors,
    metric, value.
    """
    import pandas as pd

    names = list(spaces)
    rows = []
    for i, ma in enumerate(names):
        for mb in names[i:]:
            values = pair_metrics(
                spaces[ma],
                spaces[mb],
                k=k,
                normalize_knn=normalize_knn,
                with_ot=space == "platonic",
                composite_weights=composite_weights,
            )
            rows += [(ma, mb, space, anchors, m, v) for m, v in values.items()]
    return pd.DataFrame(rows, columns=["model_a", "model_b", "space", "anchors", "metric", "value"])
