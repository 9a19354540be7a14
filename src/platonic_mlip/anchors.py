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


#: atoms in the full MP-20 train split (27,136 structures), the array the published anchors index
PAPER_N_ATOMS = 282_847


def read_published(path) -> np.ndarray:
    """Anchor atom indices from a text file: one integer per line, ``#`` comments and blank lines ignored.

    Returns the (K,) int64 indices in file order. Raises ValueError naming the file and line of a
    value that is not a non-negative integer, or of a repeated index.
    """
    from pathlib import Path

    out, seen = [], set()
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not text.isdigit():
            raise ValueError(f"{path}, line {n}: {text!r} is not a non-negative atom index")
        if int(text) in seen:
            raise ValueError(f"{path}, line {n}: atom index {text} appears twice")
        seen.add(int(text))
        out.append(int(text))
    if not out:
        raise ValueError(f"{path}: no anchor indices")
    return np.asarray(out, dtype=np.int64)


def check_published(indices: np.ndarray, n_atoms: int, path="published anchors") -> None:
    """The published indices point into the 282,847-atom full split; refuse any other atom table."""
    if n_atoms != PAPER_N_ATOMS:
        raise ValueError(
            f"{path} index the full MP-20 train split ({PAPER_N_ATOMS:,} atoms); this run's atom "
            f"table has {n_atoms:,} atoms (config keys 'structures.limit' / 'structures.source')"
        )
    if indices.min() < 0 or indices.max() >= n_atoms:
        raise ValueError(f"{path}: index {int(indices.max())} is beyond the {n_atoms:,} atoms")


def overlap_report(ours: np.ndarray, published: np.ndarray, atoms) -> dict:
    """How our anchor selection compares with the published one, atom by atom and coarser.

    ``ours`` and ``published`` are atom indices into ``atoms`` (the per-atom table). Reports the shared
    atoms (exact index matches), shared structures (an anchor of each in the same structure) and the
    overlap of their element multisets (sum over elements of the smaller count), each with the
    fraction of the published set they cover.
    """
    ours, published = np.unique(ours), np.unique(published)
    common = np.intersect1d(ours, published)
    s_ours = set(atoms["structure_index"].to_numpy()[ours].tolist())
    s_pub = set(atoms["structure_index"].to_numpy()[published].tolist())
    e_ours = atoms["element"].to_numpy()[ours]
    e_pub = atoms["element"].to_numpy()[published]
    elements = sorted(set(e_ours) | set(e_pub))
    count_ours = {e: int((e_ours == e).sum()) for e in elements}
    count_pub = {e: int((e_pub == e).sum()) for e in elements}
    shared_elements = sum(min(count_ours[e], count_pub[e]) for e in elements)
    k = len(published)
    return {
        "n_ours": int(len(ours)),
        "n_published": int(k),
        "shared_atoms": int(len(common)),
        "shared_atoms_fraction": len(common) / k,
        "shared_atom_indices": common.tolist(),
        "jaccard_atoms": len(common) / len(np.union1d(ours, published)),
        "shared_structures": len(s_ours & s_pub),
        "shared_structures_fraction": len(s_ours & s_pub) / len(s_pub),
        "element_overlap": int(shared_elements),
        "element_overlap_fraction": shared_elements / k,
        "elements_ours": count_ours,
        "elements_published": count_pub,
    }
