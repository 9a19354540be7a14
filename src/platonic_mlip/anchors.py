"""Anchor selection: DIRECT sampling (maml) on a reference model's embeddings, or seeded random atoms.

Anchors are atom indices into the flat per-atom table; ``anchor_table`` also records
(material_id, atom_in_structure) so a selection stays meaningful on another dataset.
"""

from __future__ import annotations

import logging

import numpy as np


def direct_anchors(embeddings: np.ndarray, k: int, threshold_init: float = 0.3) -> np.ndarray:
    """DIRECT sampling with maml's own pipeline (``maml.sampling.direct``).

    Standardise features; PCA keeping components with eigenvalue > 1, scores weighted by explained
    variance ratio; Birch into ``k`` clusters (threshold lowered from ``threshold_init`` until ``k``
    subclusters exist); per cluster the point closest to its centre.

    Parameters
    ----------
    embeddings : (N, D) array of the reference model's per-atom embeddings.
    k : number of anchors (clusters), 1 <= k <= N.

    Returns
    -------
    (k,) int64 array of sorted, distinct atom indices. Deterministic: DIRECT has no random step.
    """
    from maml.sampling.direct import BirchClustering, DIRECTSampler, SelectKFromClusters

    x = np.asarray(embeddings, dtype=np.float64)
    if not 1 <= k <= len(x):
        raise ValueError(f"anchors: k={k} must be between 1 and the number of atoms ({len(x)})")
    logging.getLogger("maml").setLevel(logging.WARNING)
    sampler = DIRECTSampler(
        structure_encoder=False,
        clustering=BirchClustering(n=k, threshold_init=threshold_init),
        select_k_from_clusters=SelectKFromClusters(k=1),
    )
    result = sampler.fit_transform(x)
    idx = np.unique(np.asarray(result["selected_indexes"], dtype=np.int64))
    if len(idx) != k:
        raise RuntimeError(f"DIRECT returned {len(idx)} distinct anchors, expected {k}")
    return idx


def random_anchors(n_atoms: int, k: int, seed: int) -> np.ndarray:
    """``k`` distinct atom indices drawn uniformly with ``numpy.random.default_rng(seed)``, sorted."""
    if not 1 <= k <= n_atoms:
        raise ValueError(f"anchors: k={k} must be between 1 and the number of atoms ({n_atoms})")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_atoms, size=k, replace=False)).astype(np.int64)


def anchor_table(indices: np.ndarray, atoms):
    """Rows of the per-atom table (a DataFrame from ``structures.atom_table``) at ``indices``."""
    cols = ["atom_index", "material_id", "atom_in_structure", "Z", "element", "structure_index"]
    table = atoms.iloc[np.asarray(indices)][cols].reset_index(drop=True)
    table.insert(0, "anchor", np.arange(len(table)))
    return table


def indices_from_table(table, atoms) -> np.ndarray:
    """Map an anchor table's (material_id, atom_in_structure) pairs to atom indices of ``atoms``.

    Raises KeyError naming the first pair absent from ``atoms``.
    """
    key = {
        (m, int(a)): int(i)
        for m, a, i in zip(atoms["material_id"], atoms["atom_in_structure"], atoms["atom_index"], strict=True)
    }
    out = []
    for m, a in zip(table["material_id"], table["atom_in_structure"], strict=True):
        if (m, int(a)) not in key:
            raise KeyError(f"anchor (material_id {m}, atom {a}) is not in this dataset")
        out.append(key[(m, int(a))])
    return np.asarray(out, dtype=np.int64)
