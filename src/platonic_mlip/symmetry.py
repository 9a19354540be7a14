"""Paper Fig. 5f: do symmetry-equivalent atoms get the same embedding? Equivariant fraction, two-NN collapse
and TwoNN intrinsic dimension of a space.

The paper shows "the equivariant fraction of embeddings based on two-nearest-neighbour analysis" for the
cubic structures (space group 221) without giving a protocol. OURS, with its parameters:

1. **Equivalent sites.** spglib (``get_symmetry_dataset``, ``equivalent_atoms``) at tolerance ``symprec``
   (OURS, default :data:`DEFAULT_SYMPREC` = 0.01 A) gives each atom's crystallographic orbit. A structure
   spglib cannot analyse (no atoms, not periodic in all three directions, a degenerate cell, or spglib
   returns no dataset, e.g. a nearly degenerate cell or overlapping atoms) raises :class:`SymmetryError`;
   :func:`structure_orbits` skips it and lists it (material_id, reason); its atoms take no part in any
   subset.
2. **Equivariant fraction.** Pairs (i, j), i < j, of atoms of one structure in the same orbit
   (:func:`equivalent_pairs`). An exactly invariant embedding maps them onto one vector. A pair
   *coincides* when ``||e_i - e_j|| <= coincide_tol * scale``, where ``scale`` is the embedding scale of
   the space (``spaces.pair_scale``: RMS distance between random pairs of atoms of the run) and
   ``coincide_tol`` is OURS (default :data:`DEFAULT_COINCIDE_TOL` = 1e-4). The equivariant fraction is the
   fraction of equivalent pairs that coincide (:func:`coincidence_fraction`); the median distance of the
   equivalent pairs divided by ``scale`` says how far apart the others are.
3. **Two-NN collapse fraction.** The fraction of a subset's atoms whose nearest other atom of the subset
   (any structure; Euclidean in that space) lies within the same ``coincide_tol * scale``, i.e. at
   distance "0" (:func:`collapse_fraction`): what a two-nearest-neighbour analysis sees of the
   equivalent atoms (and of any other atoms the model cannot tell apart).
4. **TwoNN intrinsic dimension** (Facco et al. 2017, scikit-dimension ``skdim.id.TwoNN`` with its
   defaults: linear fit, the 10 % largest ratios r2/r1 discarded). TwoNN is undefined for duplicate
   points (r1 = 0) and dominated by near-duplicates, so it runs on the de-duplicated rows
   (:func:`unique_rows`: rows within ``coincide_tol * scale`` of each other are merged into one, the
   connected components of that graph, OURS) and reports how many unique points it used; fewer than
   :data:`MIN_TWONN_POINTS` unique points give NaN.

5. **Sampling** (OURS, for speed): the neighbour analysis (3, 4) is quadratic in the atoms; a script may
   run it on whole structures drawn at random within an atom budget (:func:`sample_structures`).

One neighbour search per subset and space (:func:`neighbours`, the :data:`DEFAULT_NEIGHBOURS` nearest
rows) serves 3 and 4; rows it cannot settle (more near-duplicates than it lists) are compared with every
row. Distances are exact (float64 differences of the rows found); the search itself runs on the centred
rows (``sklearn.neighbors.NearestNeighbors``, brute force), so that far-from-origin clouds keep their
small distances.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

#: OURS: spglib's symmetry tolerance (Angstrom)
DEFAULT_SYMPREC = 0.01
#: OURS: two embeddings coincide within this fraction of the embedding scale
DEFAULT_COINCIDE_TOL = 1e-4
#: OURS: TwoNN needs at least this many unique points, else NaN
MIN_TWONN_POINTS = 10
#: neighbours listed per row by one search (collapse, de-duplication and TwoNN read them)
DEFAULT_NEIGHBOURS = 20


class SymmetryError(ValueError):
    """A structure whose symmetry cannot be determined; the message says why."""


def structure_symmetry(atoms, symprec: float = DEFAULT_SYMPREC) -> tuple[np.ndarray, int]:
    """spglib's orbits of one structure: ((n,) int array, each atom's orbit representative (the index of
    the first atom of its orbit, spglib's ``equivalent_atoms``), the space group number).

    Raises SymmetryError for a structure that has no atoms, is not periodic in all three directions, has
    a degenerate cell (volume <= 1e-6 A^3), or that spglib cannot analyse (a nearly degenerate cell,
    overlapping atoms).
    """
    import spglib

    if len(atoms) == 0:
        raise SymmetryError("no atoms")
    if not np.all(atoms.pbc):
        raise SymmetryError(f"not periodic in all three directions (pbc {atoms.pbc.tolist()})")
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    volume = abs(float(np.linalg.det(cell)))
    if not volume > 1e-6:
        raise SymmetryError(f"degenerate cell (volume {volume:.3g} A^3)")
    try:
        with warnings.catch_warnings():  # spglib 2.x: deprecation warning of its old error handling
            warnings.simplefilter("ignore", DeprecationWarning)
            data = spglib.get_symmetry_dataset(
                (cell, atoms.get_scaled_positions(wrap=True), atoms.numbers), symprec=symprec
            )
    except Exception as err:  # spglib.SpglibError where spglib raises instead of returning None
        raise SymmetryError(f"spglib failed: {type(err).__name__}: {err}") from err
    if data is None:
        raise SymmetryError(
            f"spglib found no symmetry dataset at symprec {symprec} A (cell volume {volume:.3g} A^3: "
            "degenerate cell or overlapping atoms)"
        )
    return np.asarray(data.equivalent_atoms, dtype=np.int64), int(data.number)


def equivalent_sites(atoms, symprec: float = DEFAULT_SYMPREC) -> np.ndarray:
    """(n,) int array: each atom's orbit representative (atoms with the same value are
    symmetry-equivalent). Raises SymmetryError (see :func:`structure_symmetry`)."""
    return structure_symmetry(atoms, symprec)[0]


def structure_orbits(
    atoms_list: Sequence, material_ids: Sequence[str], symprec: float = DEFAULT_SYMPREC
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Orbits of every structure, in the flat atom order (structures in order, then atoms).

    Returns (orbits (N,) int: a run-wide orbit id, -1 for atoms of skipped structures;
    spacegroups (S,) int: spglib's space group number, -1 for skipped structures;
    skipped: [(material_id, reason)] of the structures spglib cannot analyse).
    """
    orbits, groups, skipped = [], [], []
    next_id = 0
    for atoms, mid in zip(atoms_list, material_ids, strict=True):
        try:
            eq, number = structure_symmetry(atoms, symprec)
        except SymmetryError as err:
            orbits.append(np.full(len(atoms), -1, dtype=np.int64))
            groups.append(-1)
            skipped.append((str(mid), f"symmetry not determined: {err}"))
            continue
        _, local = np.unique(eq, return_inverse=True)
        orbits.append(next_id + local.astype(np.int64))
        next_id += int(local.max()) + 1
        groups.append(number)
    flat = np.concatenate(orbits) if orbits else np.zeros(0, dtype=np.int64)
    return flat, np.asarray(groups, dtype=np.int64), skipped


def equivalent_pairs(orbits: np.ndarray) -> np.ndarray:
    """(P, 2) int array of the pairs (i, j), i < j, with ``orbits[i] == orbits[j] >= 0``.

    ``orbits`` : (N,) int, an orbit id per atom (-1: no orbit, in no pair). Vectorised: atoms sorted by
    orbit, each paired with the later atoms of its orbit. Pairs are ordered by orbit, then i, then j.
    """
    orbits = np.asarray(orbits)
    idx = np.flatnonzero(orbits >= 0)
    if len(idx) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    order = idx[np.argsort(orbits[idx], kind="stable")]
    lab = orbits[order]
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    ends = np.r_[starts[1:], len(lab)]
    stop = np.repeat(ends, ends - starts)  # the end of each sorted atom's orbit block
    count = stop - 1 - np.arange(len(lab))  # later atoms of the same orbit
    first = np.repeat(np.arange(len(lab)), count)
    offset = np.arange(len(first)) - np.repeat(np.cumsum(count) - count, count)
    second = first + 1 + offset
    pairs = np.stack([order[first], order[second]], axis=1).astype(np.int64)
    return np.sort(pairs, axis=1)


def sample_structures(n_atoms: np.ndarray, chosen: np.ndarray, max_atoms: int, seed: int = 0) -> np.ndarray:
    """(S,) bool: the ``chosen`` structures ((S,) bool) when they hold at most ``max_atoms`` atoms
    (``n_atoms``: (S,) atoms per structure; ``max_atoms`` <= 0: no limit), else whole structures drawn
    in a random order (``numpy.random.default_rng(seed)``) while the atoms fit (at least one)."""
    chosen = np.asarray(chosen, dtype=bool)
    n_atoms = np.asarray(n_atoms)
    if max_atoms <= 0 or n_atoms[chosen].sum() <= max_atoms:
        return chosen.copy()
    order = np.random.default_rng(seed).permutation(np.flatnonzero(chosen))
    fits = np.cumsum(n_atoms[order]) <= max_atoms
    fits[0] = True
    out = np.zeros(len(chosen), dtype=bool)
    out[order[fits]] = True
    return out


def pair_distances(x: np.ndarray, pairs: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """(P,) float64: the distances ``||x[i] - x[j]||`` of the (P, 2) ``pairs`` of rows of (n, d) ``x``."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    out = np.empty(len(pairs))
    for s in range(0, len(pairs), chunk):
        p = pairs[s : s + chunk]
        diff = np.asarray(x[p[:, 0]], dtype=np.float64) - np.asarray(x[p[:, 1]], dtype=np.float64)
        out[s : s + chunk] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def coincidence_fraction(x: np.ndarray, pairs: np.ndarray, tol: float) -> float:
    """Fraction of the (P, 2) ``pairs`` of rows of (n, d) ``x`` at distance <= ``tol``; NaN without pairs."""
    if len(pairs) == 0:
        return float("nan")
    return float(np.mean(pair_distances(x, pairs) <= tol))


def neighbours(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of each row of (n, d) ``x``: ((n, k) float64 distances, ascending;
    (n, k) int row indices). The search runs on the centred float64 rows (brute force); the distances
    returned are exact differences of the rows found. Requires n > k."""
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(x, dtype=np.float64)
    if len(x) <= k:
        raise ValueError(f"neighbours: {len(x)} rows, need more than k = {k}")
    centred = x - x.mean(axis=0)
    idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(centred).kneighbors(return_distance=False)
    dist = np.empty(idx.shape)
    step = max(1, (1 << 22) // max(1, k * x.shape[1]))  # rows per chunk: ~32 MB of differences
    for s in range(0, len(x), step):
        diff = x[s : s + step, None, :] - x[idx[s : s + step]]
        dist[s : s + step] = np.sqrt(np.einsum("nkd,nkd->nk", diff, diff))
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)


def nearest_distances(x: np.ndarray, k: int = 1) -> np.ndarray:
    """(n, k) float64: distances from each row of (n, d) ``x`` to its ``k`` nearest other rows, ascending."""
    return neighbours(x, k)[0]


def collapse_fraction(x: np.ndarray, tol: float) -> float:
    """Fraction of the rows of (n, d) ``x`` whose nearest other row lies within ``tol``; NaN for n < 2."""
    if len(x) < 2:
        return float("nan")
    return float(np.mean(nearest_distances(x, 1)[:, 0] <= tol))


def unique_rows(x: np.ndarray, tol: float, nbrs: tuple | None = None) -> np.ndarray:
    """(m,) sorted row indices of (n, d) ``x``, one per group of rows within ``tol`` of each other (the
    connected components of the graph "distance <= tol"; the first row of each component stays).

    ``nbrs`` : ``neighbours(x, k)`` when already computed. A row whose k-th neighbour is farther than
    ``tol`` has all its edges in that list; the other rows are compared with every row.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 2:
        return np.arange(n)
    dist, idx = nbrs if nbrs is not None else neighbours(x, min(DEFAULT_NEIGHBOURS, n - 1))
    close = dist <= tol
    if not close.any():
        return np.arange(n)
    rows, cols = np.nonzero(close)
    src, dst = [rows], [idx[rows, cols]]
    full = np.flatnonzero(close[:, -1])  # every listed neighbour within tol: there may be more
    if len(full):
        from scipy.spatial.distance import cdist

        for s in range(0, len(full), 256):
            rows = full[s : s + 256]
            d = cdist(x[rows], x)  # exact, no Gram-matrix shortcut
            d[np.arange(len(rows)), rows] = np.inf
            r, c = np.nonzero(d <= tol)
            src.append(rows[r])
            dst.append(c)
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    _, first = np.unique(comp, return_index=True)
    return np.sort(first)


def kept_neighbour_distances(x: np.ndarray, keep: np.ndarray, nbrs: tuple) -> np.ndarray:
    """(m, 2) float64: distances from each kept row (``keep``, (m,) indices into (n, d) ``x``) to its two
    nearest other kept rows. Read from ``nbrs = neighbours(x, k)`` where two kept rows are listed; the
    other rows get a search among the kept rows of their own. Requires m >= 3."""
    x = np.asarray(x, dtype=np.float64)
    dist, idx = nbrs
    is_kept = np.zeros(len(x), dtype=bool)
    is_kept[keep] = True
    listed = is_kept[idx[keep]]  # (m, k): which listed neighbours are kept rows
    first_two = np.cumsum(listed, axis=1) <= 2
    out = np.full((len(keep), 2), np.nan)
    enough = listed.sum(axis=1) >= 2
    sel = listed & first_two & enough[:, None]
    out[enough] = dist[keep][sel].reshape(-1, 2)
    missing = np.flatnonzero(~enough)
    if len(missing):
        from scipy.spatial.distance import cdist

        kx = x[keep]
        for s in range(0, len(missing), 256):
            rows = missing[s : s + 256]
            d = cdist(kx[rows], kx)  # exact, no Gram-matrix shortcut
            d[np.arange(len(rows)), rows] = np.inf
            out[rows] = np.sort(np.partition(d, 1, axis=1)[:, :2], axis=1)
    return out


def twonn_from_distances(r: np.ndarray) -> float:
    """TwoNN dimension (``skdim.id.TwoNN`` defaults: linear fit, 10 % largest ratios discarded) from the
    (n, 2) distances of n points to their first and second nearest neighbours."""
    import skdim

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # skdim drops exact duplicates (r1 = 0) with a warning
        return float(skdim.id.TwoNN(dist=True).fit(np.asarray(r, dtype=np.float64)).dimension_)


def twonn_dimension(
    x: np.ndarray, tol: float = 0.0, min_points: int = MIN_TWONN_POINTS, nbrs: tuple | None = None
) -> tuple[float, int]:
    """TwoNN intrinsic dimension (Facco et al. 2017) of the rows of (n, d) ``x`` after merging rows within
    ``tol`` (:func:`unique_rows`; ``nbrs`` as there).

    Returns (dimension, number of unique rows used); the dimension is NaN with fewer than ``min_points``
    (at least 3) unique rows.
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float("nan"), int(len(x))
    if nbrs is None:
        nbrs = neighbours(x, min(DEFAULT_NEIGHBOURS, len(x) - 1))
    keep = unique_rows(x, tol, nbrs)
    if len(keep) < max(min_points, 3):
        return float("nan"), int(len(keep))
    return twonn_from_distances(kept_neighbour_distances(x, keep, nbrs)), int(len(keep))


def space_diagnostics(
    x: np.ndarray, pairs: np.ndarray, scale: float, coincide_tol: float, sample: np.ndarray | None = None
) -> dict:
    """Every Fig. 5f number of one subset in one space.

    x : (n, d) the subset's rows; pairs : (P, 2) equivalent pairs, indices into ``x``; scale : the
    space's embedding scale; coincide_tol : coincidence tolerance relative to ``scale``; sample : (m,)
    rows of ``x`` for the collapse fraction and TwoNN (None: all rows).
    Returns {n_equivalent_pairs, equivariant_fraction, median_pair_distance_rel, neighbour_atoms,
    collapse_fraction, twonn_dimension, twonn_points}. One neighbour search serves the collapse fraction
    and TwoNN.
    """
    x = np.asarray(x, dtype=np.float64)
    tol = coincide_tol * scale
    d = pair_distances(x, pairs)
    xs = x if sample is None else x[np.asarray(sample)]
    out = {
        "n_equivalent_pairs": int(len(d)),
        "equivariant_fraction": float(np.mean(d <= tol)) if len(d) else float("nan"),
        "median_pair_distance_rel": float(np.median(d) / scale) if len(d) else float("nan"),
        "neighbour_atoms": int(len(xs)),
        "collapse_fraction": float("nan"),
        "twonn_dimension": float("nan"),
        "twonn_points": int(len(xs)),
    }
    if len(xs) < 2:
        return out
    nbrs = neighbours(xs, min(DEFAULT_NEIGHBOURS, len(xs) - 1))
    out["collapse_fraction"] = float(np.mean(nbrs[0][:, 0] <= tol))
    out["twonn_dimension"], out["twonn_points"] = twonn_dimension(xs, tol, nbrs=nbrs)
    return out
