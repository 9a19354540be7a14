"""Element analogies by embedding arithmetic ("interpretable embedding arithmetic"; protocol OURS).

The paper shows that element vectors can be added and subtracted meaningfully; it gives no protocol.
Ours, in every space of every model:

* **centroids** -- an element's vector is the mean vector of its atoms (rows of the atom table the
  model embedded); elements with fewer than ``min_atoms`` atoms (OURS: 5) are left out;
* **analogy set** -- every pair (A, B) of present elements in the same IUPAC group
  (``chemistry.group_of``; the f-block has none) with B one period below A (e.g. Na -> K, S -> Se).
  The pairs of one *period transition* p -> p+1 share the "one period down" offset;
* **query** -- for the pair (A, B) of transition p, the offset is learned leave-one-out from the other
  pairs of the same transition, ``mean(c(B') - c(A'))``; the prediction is ``c(A) + offset``; it is
  *retrieved* as the nearest element centroid (Euclidean) among all centroids except A's own, and is
  correct if that is B. Queries whose transition has no other pair are not scored;
* **accuracy** -- the fraction of correct queries;
* **zero-offset baseline** -- the same retrieval from c(A) itself (no arithmetic): how often B is simply
  A's nearest other element. The arithmetic adds something only where it beats this;
* **shuffled-label baseline** -- the same with the element labels of the atoms permuted (element counts,
  hence the element and analogy sets, are kept): each centroid is then the mean of random atoms;
* **cross-model transfer** -- the offset is learned on model S's centroids and added to model T's
  centroid of A; retrieval among T's centroids. Meaningful only where the two models' vectors share
  coordinates: in a Platonic space (cosines to the same anchor atoms) they do; raw embeddings of
  different models do not, and where their widths differ the sum is undefined.

Chance level is about 1 / (number of elements - 1).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from platonic_mlip.chemistry import group_of, period_of

#: OURS: elements with fewer atoms than this have no centroid
MIN_ATOMS = 5
#: OURS: label permutations of the shuffled baseline
SHUFFLES = 20


class Pairs(NamedTuple):
    """The analogy set over ``elements`` (E,) atomic numbers: pair i is elements[source[i]] ->
    elements[target[i]] (same group, next period); ``transition[i]`` is the source's period."""

    elements: np.ndarray
    source: np.ndarray
    target: np.ndarray
    transition: np.ndarray

    def __len__(self) -> int:
        return len(self.source)


def analogy_pairs(elements) -> Pairs:
    """Every (A, B) of ``elements`` (atomic numbers) with group_of(A) == group_of(B) (not None) and
    period_of(B) == period_of(A) + 1, ordered by transition, group."""
    elements = np.asarray(elements, dtype=np.int64)
    key = {}
    for i, z in enumerate(elements.tolist()):
        g = group_of(z)
        if g is not None:
            key[(g, period_of(z))] = i
    src, tgt, trans = [], [], []
    for (g, p), i in sorted(key.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        j = key.get((g, p + 1))
        if j is not None:
            src.append(i)
            tgt.append(j)
            trans.append(p)
    src, tgt, trans = (np.asarray(v, dtype=np.int64) for v in (src, tgt, trans))
    return Pairs(elements, src, tgt, trans)


def indicator(labels: np.ndarray, n_classes: int):
    """(n_classes, n) sparse matrix averaging rows by label: ``indicator(l, E) @ x`` are the class means."""
    from scipy import sparse

    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = 1.0 / np.maximum(counts, 1.0)[labels]
    return sparse.csr_matrix((weights, (labels, np.arange(len(labels)))), shape=(n_classes, len(labels)))


def element_centroids(x: np.ndarray, numbers, min_atoms: int = MIN_ATOMS):
    """Mean row of ``x`` (n, D) per element of ``numbers`` (n,), for elements with >= ``min_atoms`` rows.

    Returns (E,) atomic numbers (sorted), (E, D) float64 centroids, (E,) atom counts. ``x`` holds only
    the rows to use (no NaN).
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) != x.shape[0]:
        raise ValueError(f"element_centroids: {x.shape[0]} rows but {len(numbers)} atomic numbers")
    elements, inverse, counts = np.unique(numbers, return_inverse=True, return_counts=True)
    cent = np.asarray(indicator(inverse, len(elements)) @ np.asarray(x, dtype=np.float64))
    keep = counts >= min_atoms
    return elements[keep], cent[keep], counts[keep]


def loo_offsets(centroids: np.ndarray, pairs: Pairs) -> tuple[np.ndarray, np.ndarray]:
    """(P, D) leave-one-out offsets: for pair i, the mean of c(B') - c(A') over the other pairs of its
    transition; and (P,) bool, whether pair i has at least one other pair (else its offset is NaN)."""
    c = np.asarray(centroids, dtype=np.float64)
    diffs = c[pairs.target] - c[pairs.source]
    offsets = np.full_like(diffs, np.nan)
    usable = np.zeros(len(pairs), dtype=bool)
    for t in np.unique(pairs.transition):
        sel = np.flatnonzero(pairs.transition == t)
        if len(sel) < 2:
            continue
        total = diffs[sel].sum(axis=0)
        offsets[sel] = (total[None, :] - diffs[sel]) / (len(sel) - 1)
        usable[sel] = True
    return offsets, usable


def nearest(points: np.ndarray, centroids: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """(Q,) index of the centroid (E, D) nearest to each point (Q, D), never ``exclude[q]``."""
    p = np.asarray(points, dtype=np.float64)
    c = np.asarray(centroids, dtype=np.float64)
    d2 = np.sum(p**2, axis=1)[:, None] - 2.0 * p @ c.T + np.sum(c**2, axis=1)[None, :]
    d2[np.arange(len(p)), exclude] = np.inf
    return np.argmin(d2, axis=1)


def analogy_accuracy(
    centroids: np.ndarray, pairs: Pairs, offsets_from: np.ndarray | None = None, zero_offset: bool = False
) -> tuple[int, float, np.ndarray]:
    """Leave-one-out analogy retrieval over ``pairs``.

    ``centroids`` (E, D): the space the queries start from and retrieve in. ``offsets_from`` (E, D):
    the centroids the offsets are learned from (another model's, for cross-model transfer); default
    ``centroids``. ``zero_offset`` retrieves from c(A) itself (the no-arithmetic baseline) over the same
    queries. Returns (number of scored queries, accuracy (NaN if none), (P,) retrieved element
    index per pair, -1 where not scored).
    """
    c = np.asarray(centroids, dtype=np.float64)
    src = c if offsets_from is None else np.asarray(offsets_from, dtype=np.float64)
    if src.shape != c.shape:
        raise ValueError(f"analogy_accuracy: offsets from a {src.shape} space, centroids {c.shape}")
    offsets, usable = loo_offsets(src, pairs)
    if zero_offset:
        offsets = np.zeros_like(offsets)
    retrieved = np.full(len(pairs), -1, dtype=np.int64)
    q = np.flatnonzero(usable)
    if not len(q):
        return 0, float("nan"), retrieved
    retrieved[q] = nearest(c[pairs.source[q]] + offsets[q], c, pairs.source[q])
    return len(q), float(np.mean(retrieved[q] == pairs.target[q])), retrieved


def permutations(n: int, shuffles: int, seed: int) -> list[np.ndarray]:
    """``shuffles`` seeded permutations of n rows (``numpy.random.default_rng(seed)``), shared by every
    model and space so that their baselines use the same label shuffles."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(shuffles)]


def shuffled_accuracies(x: np.ndarray, numbers, perms, min_atoms: int = MIN_ATOMS) -> np.ndarray:
    """Analogy accuracy with the element labels of the rows of ``x`` permuted, one value per permutation.

    A permutation keeps every element's atom count, so the elements, the analogy set and the number of
    queries are those of the unshuffled labels.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    x = np.asarray(x, dtype=np.float64)
    elements, inverse, counts = np.unique(numbers, return_inverse=True, return_counts=True)
    keep = counts >= min_atoms
    pairs = analogy_pairs(elements[keep])
    out = np.full(len(perms), np.nan)
    for i, perm in enumerate(perms):
        cent = np.asarray(indicator(inverse[perm], len(elements)) @ x)[keep]
        out[i] = analogy_accuracy(cent, pairs)[1]
    return out


def summarise(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lower, upper) of ``values``: the central ``level`` range (percentiles)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    return float(v.mean()), float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))
