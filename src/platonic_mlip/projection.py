"""The Platonic projection: cosine similarity of every atom's embedding to K anchor embeddings.

z_i = [cos(e_i, a_1), ..., cos(e_i, a_K)]  (Li & Walsh; Moschella et al. "relative representations").
No centring or whitening; float64 arithmetic.

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
) -> np.ndarray:
    """Project embeddings onto their own anchors.

    Parameters
    ----------
    embeddings : (N, D) array, one model's per-atom embeddings (any float dtype; may be a memmap).
    anchor_indices : (K,) int array of row indices into ``embeddings``.
    chunk : rows processed at once (bounds memory for large N; the result does not depend on it).
    out_dtype : dtype of the result when ``out`` is None; the arithmetic is float64.
    out : optional (N, K) array to write into (e.g. a writeable memmap); its dtype wins.

    Returns
    -------
    (N, K) array of cosines in [-1, 1] (``out`` when given); row ``anchor_indices[k]`` has 1 in
    column k.
    """
    if chunk < 1:
        raise ValueError(f"project: chunk={chunk} must be >= 1")
    anchors = _unit_rows(embeddings[np.asarray(anchor_indices)])  # (K, D)
    n = embeddings.shape[0]
    if out is None:
        out = np.empty((n, anchors.shape[0]), dtype=out_dtype)
    elif out.shape != (n, anchors.shape[0]):
        raise ValueError(f"project: out has shape {out.shape}, expected {(n, anchors.shape[0])}")
    for start in range(0, n, chunk):
        block = _unit_rows(embeddings[start : start + chunk])
        out[start : start + chunk] = np.clip(block @ anchors.T, -1.0, 1.0)
    return out
