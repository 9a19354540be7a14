"""The Platonic projection: cosine similarity of every atom's embedding to K anchor embeddings.

z_i = [cos(e_i, a_1), ..., cos(e_i, a_K)]  (Li & Walsh; Moschella et al. "relative representations").
No centring or whitening; float64 arithmetic.
"""

from __future__ import annotations

import numpy as np


def _unit_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, eps)


def project(
    embeddings: np.ndarray, anchor_indices: np.ndarray, chunk: int = 65536, out_dtype=np.float32
) -> np.ndarray:
    """Project embeddings onto their own anchors.

    Parameters
    ----------
    embeddings : (N, D) array, one model's per-atom embeddings (any float dtype; may be a memmap).
    anchor_indices : (K,) int array of row indices into ``embeddings``.
    chunk : rows processed at once (bounds memory for large N).
    out_dtype : dtype of the stored result; the arithmetic is float64.

    Returns
    -------
    (N, K) array of cosines in [-1, 1]; row ``anchor_indices[k]`` has 1 in column k.
    """
    anchors = _unit_rows(embeddings[np.asarray(anchor_indices)])  # (K, D)
    n = embeddings.shape[0]
    out = np.empty((n, anchors.shape[0]), dtype=out_dtype)
    for start in range(0, n, chunk):
        block = _unit_rows(embeddings[start : start + chunk])
        out[start : start + chunk] = np.clip(block @ anchors.T, -1.0, 1.0)
    return out
