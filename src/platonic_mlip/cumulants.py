"""Cumulant structure descriptors of per-atom features (Chorna et al., arXiv 2512.05717).

A structure's atoms each carry a D-dimensional feature vector; the structure is summarised, feature by
feature, by the cumulants of its atoms' values treated as an equally weighted discrete distribution
(population moments, 1/n, not unbiased estimators):

* central moments ``mu_k = (1/n) sum_i (x_i - mean)^k`` for k = 2..8;
* cumulants ``kappa_1 = mean``, ``kappa_2 = mu2``, ``kappa_3 = mu3``, ``kappa_4 = mu4 - 3 mu2^2``,
  ``kappa_5 = mu5 - 10 mu3 mu2``, ``kappa_6 = mu6 - 15 mu4 mu2 - 10 mu3^2 + 30 mu2^3``,
  ``kappa_7 = mu7 - 21 mu5 mu2 - 35 mu4 mu3 + 210 mu3 mu2^2``,
  ``kappa_8 = mu8 - 28 mu2 mu6 - 56 mu3 mu5 - 35 mu4^2 + 420 mu2^2 mu4 + 560 mu2 mu3^2 - 630 mu2^4``
  (each re-derived from ``K(t) = log M(t)`` with sympy);
* block k is ``sign(kappa_k) |kappa_k|^(1/k)`` (block 1, the mean, unchanged), so every block has the
  units of the feature;
* the order-n descriptor is blocks 1..n concatenated block-major: shape (n * D,).

The authors' released code swaps two coefficients of kappa_8 (560 mu2^2 mu4 + 420 mu2 mu3^2);
``kappa8_released`` reproduces that error so its effect can be shown. Since
``released - correct = 140 mu2 (mu2 mu4 - mu3^2) >= 140 mu2^4`` (Pearson's inequality
``mu2 mu4 >= mu3^2 + mu2^3``), the released kappa_8 is too large for every non-constant feature.

Single-atom structures have all cumulants of order >= 2 equal to 0 and are dropped by
``structure_cumulants``, which reports which structure ids were kept and which dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ORDER = 8


def groups_from_offsets(offsets) -> np.ndarray:
    """Structure ids (N,) from offsets (S+1,): rows ``offsets[s]:offsets[s+1]`` belong to structure s."""
    offsets = np.asarray(offsets)
    if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must be a non-decreasing 1-D array starting at 0")
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def _check_inputs(X, groups) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    groups = np.asarray(groups)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (N atoms, D features), got shape {X.shape}")
    if groups.ndim != 1:
        raise ValueError(f"groups must be 1-D (N,), got shape {groups.shape}")
    if len(groups) != len(X):
        raise ValueError(f"X has {len(X)} rows but groups has {len(groups)} entries")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if len(bad):
        shown = ", ".join(map(str, bad[:20])) + (", ..." if len(bad) > 20 else "")
        raise ValueError(f"X has {len(bad)} row(s) with NaN or inf values, at row indices [{shown}]")
    return X, groups


def _group_index(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Structure ids (S,) in order of first appearance, each row's structure index (N,), counts (S,)."""
    ids, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first, kind="stable")
    rank = np.empty(len(ids), dtype=np.intp)
    rank[by_appearance] = np.arange(len(ids))
    index = rank[inverse.reshape(-1)]
    counts = np.bincount(index, minlength=len(ids))
    return ids[by_appearance], index, counts


def _moments(X: np.ndarray, index: np.ndarray, counts: np.ndarray, max_order: int):
    S, D = len(counts), X.shape[1]
    mean = np.zeros((S, D))
    mu = np.zeros((S, max_order + 1, D))
    mu[:, 0] = 1.0
    if S == 0:
        return mean, mu
    order = np.argsort(index, kind="stable")
    Xs = X[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n = counts[:, None].astype(np.float64)
    mean = np.add.reduceat(Xs, starts, axis=0) / n
    dev = Xs - np.repeat(mean, counts, axis=0)
    # one refinement pass: the rounding error of the first mean is removed from the deviations
    correction = np.add.reduceat(dev, starts, axis=0) / n
    mean += correction
    dev -= np.repeat(correction, counts, axis=0)
    power = dev.copy()
    for k in range(2, max_order + 1):
        power *= dev
        mu[:, k] = np.add.reduceat(power, starts, axis=0) / n
    return mean, mu


def central_moments(X, groups, max_order: int = MAX_ORDER) -> tuple[np.ndarray, np.ndarray]:
    """Per-structure means and population central moments of each feature.

    ``X`` (N, D) per-atom features; ``groups`` (N,) integer structure id of each row (rows of one
    structure need not be contiguous). Structures are ordered by the first appearance of their id.
    Returns ``mean`` (S, D) and ``mu`` (S, max_order + 1, D) with ``mu[:, k] = (1/n_s) sum (x - mean)^k``,
    so ``mu[:, 0] = 1`` and ``mu[:, 1] = 0``. Deviations from the structure mean are formed before taking
    powers (no raw-moment expansion), all in float64.
    """
    if max_order < 1:
        raise ValueError(f"max_order must be >= 1, got {max_order}")
    X, groups = _check_inputs(X, groups)
    _, index, counts = _group_index(groups)
    return _moments(X, index, counts, max_order)


def cumulants_from_moments(mean, mu, max_order: int = MAX_ORDER) -> np.ndarray:
    """Cumulants kappa (S, max_order, D) from ``mean`` (S, D) and central moments ``mu``.

    ``mu`` is (S, >= max_order + 1, D) as from ``central_moments``.
    ``kappa[:, k - 1]`` is kappa_k; kappa_1 is the mean. Supports ``1 <= max_order <= 8``.
    """
    mean, mu = np.asarray(mean, dtype=np.float64), np.asarray(mu, dtype=np.float64)
    if not 1 <= max_order <= MAX_ORDER:
        raise ValueError(f"max_order must be in 1..{MAX_ORDER}, got {max_order}")
    if mu.ndim != 3 or mu.shape[1] < max_order + 1:
        raise ValueError(f"mu must have shape (S, >= {max_order + 1}, D), got {mu.shape}")
    m = [mu[:, k] for k in range(mu.shape[1])]
    formulas = {
        1: lambda: mean,
        2: lambda: m[2],
        3: lambda: m[3],
        4: lambda: m[4] - 3 * m[2] ** 2,
        5: lambda: m[5] - 10 * m[3] * m[2],
        6: lambda: m[6] - 15 * m[4] * m[2] - 10 * m[3] ** 2 + 30 * m[2] ** 3,
        7: lambda: m[7] - 21 * m[5] * m[2] - 35 * m[4] * m[3] + 210 * m[3] * m[2] ** 2,
        8: lambda: (
            m[8]
            - 28 * m[2] * m[6]
            - 56 * m[3] * m[5]
            - 35 * m[4] ** 2
            + 420 * m[2] ** 2 * m[4]
            + 560 * m[2] * m[3] ** 2
            - 630 * m[2] ** 4
        ),
    }
    return np.stack([formulas[k]() for k in range(1, max_order + 1)], axis=1)


def kappa8_released(mu) -> np.ndarray:
    """kappa_8 (S, D) as computed by the authors' released code, from ``mu`` (S, >= 9, D).

    Reproduces that code's ERROR: the coefficients of mu2^2 mu4 and mu2 mu3^2 are swapped
    (560 and 420 instead of the correct 420 and 560). ``kappa8_released - kappa_8`` equals
    ``140 mu2 (mu2 mu4 - mu3^2)``, which is > 0 for any non-constant feature. For comparison only.
    """
    m = np.asarray(mu, dtype=np.float64)
    m2, m3, m4, m5, m6, m8 = (m[:, k] for k in (2, 3, 4, 5, 6, 8))
    return m8 - 28 * m2 * m6 - 56 * m3 * m5 - 35 * m4**2 + 560 * m2**2 * m4 + 420 * m2 * m3**2 - 630 * m2**4


def cumulant_blocks(kappa) -> np.ndarray:
    """Blocks (S, K, D) from cumulants ``kappa`` (S, K, D): block k = sign(kappa_k) |kappa_k|^(1/k).

    Block 1 (the mean) is returned unchanged.
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    k = np.arange(1, kappa.shape[1] + 1, dtype=np.float64)[None, :, None]
    return np.sign(kappa) * np.abs(kappa) ** (1.0 / k)


@dataclass(frozen=True)
class CumulantResult:
    """Cumulant blocks of the kept structures.

    ``blocks`` (S_kept, max_order, D); ``kept`` (S_kept,) structure ids in order of first appearance;
    ``dropped`` ids of structures with fewer than ``min_atoms`` atoms (same order); ``n_atoms``
    (S_kept,) atoms per kept structure.
    """

    blocks: np.ndarray
    kept: np.ndarray
    dropped: np.ndarray
    n_atoms: np.ndarray

    def descriptor(self, order: int) -> np.ndarray:
        """Order-``order`` descriptors (S_kept, order * D); see ``descriptor``."""
        return descriptor(self.blocks, order)


def structure_cumulants(X, groups, max_order: int = MAX_ORDER, min_atoms: int = 2) -> CumulantResult:
    """Cumulant blocks per structure of per-atom features ``X`` (N, D) grouped by ``groups`` (N,).

    Structures with fewer than ``min_atoms`` atoms are dropped (listed in ``dropped``).
    """
    if not 1 <= max_order <= MAX_ORDER:
        raise ValueError(f"max_order must be in 1..{MAX_ORDER}, got {max_order}")
    if min_atoms < 1:
        raise ValueError(f"min_atoms must be >= 1, got {min_atoms}")
    X, groups = _check_inputs(X, groups)
    ids, index, counts = _group_index(groups)
    keep = counts >= min_atoms
    rows = keep[index]
    kept_index = np.cumsum(keep) - 1
    mean, mu = _moments(X[rows], kept_index[index[rows]], counts[keep], max(max_order, 2))
    blocks = cumulant_blocks(cumulants_from_moments(mean, mu, max_order))
    return CumulantResult(blocks=blocks, kept=ids[keep], dropped=ids[~keep], n_atoms=counts[keep])


def descriptor(blocks, order: int) -> np.ndarray:
    """Order-``order`` descriptors (S, order * D): blocks 1..order of ``blocks`` (S, K, D), block-major."""
    blocks = np.asarray(blocks)
    if blocks.ndim != 3:
        raise ValueError(f"blocks must have shape (S, K, D), got {blocks.shape}")
    K = blocks.shape[1]
    if not (isinstance(order, int | np.integer) and 1 <= order <= K):
        raise ValueError(f"order must be an integer in 1..{K}, got {order!r}")
    return blocks[:, :order].reshape(len(blocks), order * blocks.shape[2])
