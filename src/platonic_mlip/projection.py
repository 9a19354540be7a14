"""The Platonic projection: cosine similarity of every atom's embedding to K anchor embeddings.

z_i = [cos(e_i, a_1), ..., cos(e_i, a_K)]  (Li & Walsh; Moschella et al. "relative representations").
No centring or whitening (the paper's choice); float64 arithmetic. As OURS, ``center`` subtracts a vector
(a model's mean embedding over the run's atoms, ``mean_embedding``) from every embedding and anchor before
the cosine: the anisotropy of a space (every vector sharing one large common direction) then no longer
pushes all cosines towards one value.

Memory: the rows are processed in chunks, so a memory-mapped (N, D) input is read block by block and,
with ``out`` a memory-mapped (N, K) array (``numpy.lib.format.open_memmap``), the whole projection never
sits in memory at once: the working set is about ``chunk * (D + K)`` float64 values (a few hundred MB at
the default chunk), whatever N.
"""

from __future__ import annotations

import numpy as np


def _unit_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, eps)


def project(
    embeddings: np.ndarray,
    anchor_indices: np.ndarray,
    chunk: int = 32768,
    out_dtype=np.float32,
    out: np.ndarray | None = None,
    center: np.ndarray | None = None,
) -> np.ndarray:
    """Project embeddings onto their own anchors.

    Parameters
    ----------
    embeddings : (N, D) array, one model's per-atom embeddings (any float dtype; may be a memmap).
    anchor_indices : (K,) int array of row indices into ``embeddings``.
    chunk : rows processed at once (bounds memory for large N; the result does not depend on it).
    out_dtype : dtype of the result when ``out`` is None; the arithmetic is float64.
    out : optional (N, K) array to write into (e.g. a writeable memmap); its dtype wins.
    center : optional (D,) vector subtracted from embeddings and anchors before the cosine (OURS).

    Returns
    -------
    (N, K) array of cosines in [-1, 1] (``out`` when given); row ``anchor_indices[k]`` has 1 in
    column k.
    """
    anchors = np.asarray(embeddings[np.asarray(anchor_indices)], dtype=np.float64)  # (K, D)
    return project_onto(embeddings, anchors, chunk, out_dtype, out, center)


def project_onto(
    embeddings: np.ndarray,
    anchors: np.ndarray,
    chunk: int = 32768,
    out_dtype=np.float32,
    out: np.ndarray | None = None,
    center: np.ndarray | None = None,
) -> np.ndarray:
    """Project embeddings onto given anchor vectors: the projection of structures that are not in the
    run (probe structures: rotated or perturbed copies) onto the run's anchors.

    ``embeddings`` (N, D), ``anchors`` (K, D) vectors of the same model (the run's anchor atoms),
    other arguments as ``project``. Returns (N, K) cosines; ``project(e, idx)`` equals
    ``project_onto(e, e[idx])``. Rows of NaN (skipped structures) stay NaN.
    """
    if chunk < 1:
        raise ValueError(f"project: chunk={chunk} must be >= 1")
    shift = 0.0 if center is None else np.asarray(center, dtype=np.float64).reshape(1, -1)
    anchors = _unit_rows(np.asarray(anchors, dtype=np.float64) - shift)  # (K, D)
    n = embeddings.shape[0]
    if out is None:
        out = np.empty((n, anchors.shape[0]), dtype=out_dtype)
    elif out.shape != (n, anchors.shape[0]):
        raise ValueError(f"project: out has shape {out.shape}, expected {(n, anchors.shape[0])}")
    for start in range(0, n, chunk):
        block = _unit_rows(np.asarray(embeddings[start : start + chunk], dtype=np.float64) - shift)
        out[start : start + chunk] = np.clip(block @ anchors.T, -1.0, 1.0)
    return out


def mean_embedding(embeddings: np.ndarray, chunk: int = 32768) -> np.ndarray:
    """(D,) float64 mean of the finite rows of (N, D) ``embeddings`` (rows of skipped structures are NaN)."""
    total = np.zeros(embeddings.shape[1], dtype=np.float64)
    count = 0
    for start in range(0, embeddings.shape[0], chunk):
        block = np.asarray(embeddings[start : start + chunk], dtype=np.float64)
        ok = np.isfinite(block).all(axis=1)
        total += block[ok].sum(axis=0)
        count += int(ok.sum())
    if count == 0:
        raise ValueError("mean_embedding: no finite rows")
    return total / count
