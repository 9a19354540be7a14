"""Element-level embeddings in the shared space (paper Fig. 4e-f).

An element's vector is the mean of the Platonic vectors of its atoms. Comparing models through the
element-element similarity matrices needs no alignment of their coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def element_means(
    z, numbers: np.ndarray, valid: np.ndarray | None = None, chunk: int = 65536
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean row of ``z`` per element.

    Parameters
    ----------
    z : (N, K) array (a memmap is fine: read ``chunk`` rows at a time).
    numbers : (N,) atomic numbers of the rows.
    valid : optional (N,) bool mask of rows to use (e.g. atoms every model embedded).

    Returns
    -------
    (E,) atomic numbers present (sorted), (E, K) float64 means, (E,) atom counts.
    """
    numbers = np.asarray(numbers)
    valid = np.ones(len(numbers), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if len(numbers) != z.shape[0] or len(valid) != z.shape[0]:
        raise ValueError(f"element_means: {z.shape[0]} rows but {len(numbers)} atomic numbers")
    elements = np.unique(numbers[valid])
    pos = np.searchsorted(elements, numbers)
    sums = np.zeros((len(elements), z.shape[1]))
    counts = np.zeros(len(elements), dtype=np.int64)
    for start in range(0, len(numbers), chunk):
        sel = valid[start : start + chunk]
        block = np.asarray(z[start : start + chunk], dtype=np.float64)[sel]
        where = pos[start : start + chunk][sel]
        np.add.at(sums, where, block)
        counts += np.bincount(where, minlength=len(elements))
    return elements, sums / counts[:, None], counts


def cosine_matrix(x: np.ndarray) -> np.ndarray:
    """(E, E) cosine similarities between the rows of ``x`` (E, K)."""
    x = np.asarray(x, dtype=np.float64)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return np.clip(unit @ unit.T, -1.0, 1.0)


def similarity_correlation(matrices: Mapping[str, np.ndarray]):
    """Pearson correlation between models' element-element similarity matrices.

    ``matrices`` maps model -> (E, E) similarity matrix over the same elements in the same order.
    Only the off-diagonal upper triangle enters. Returns a tidy DataFrame model_a, model_b,
    correlation (self-pairs included, = 1).
    """
    import pandas as pd

    names = list(matrices)
    sizes = {m.shape for m in matrices.values()}
    if len(sizes) != 1:
        raise ValueError(f"similarity matrices differ in shape: {sorted(sizes)}")
    iu = np.triu_indices(next(iter(sizes))[0], k=1)
    flat = {m: np.asarray(matrices[m])[iu] for m in names}
    rows = []
    for i, a in enumerate(names):
        for b in names[i:]:
            rows.append((a, b, float(np.corrcoef(flat[a], flat[b])[0, 1])))
    return pd.DataFrame(rows, columns=["model_a", "model_b", "correlation"])
