"""Atypical structures: how far a structure's atoms lie from the run's other atoms in a space (OURS).

The paper shows that a structure unlike the training data stands out in the shared space; it gives no
protocol. Ours, with its parameters (config ``diagnostics.atypical``):

* **Reference set**: per model, the atoms of the run's structures that are not held out
  (``probes/holdout.csv``) and that the model embedded (rows not NaN).
* **Atom score**: the mean Euclidean distance from an atom to its ``knn_k`` nearest reference atoms
  (OURS: ``knn_k = 5``; ``sklearn.neighbors.NearestNeighbors``, brute force), divided by the space's
  embedding scale (``spaces.pair_scale`` over the reference atoms, OURS: 20,000 pairs, seed 0), so that
  the scores of different spaces (raw of every model, every Platonic space) can be compared.
  **Leave-one-structure-out**: the atoms of the query's own structure never count as its neighbours
  (a reference structure would otherwise find itself at distance 0). The search asks for ``knn_k`` plus
  the most atoms any reference structure has, drops those of the query's group and keeps the ``knn_k``
  nearest left; their distances are recomputed exactly (float64) from the vectors, so two identical
  structures get identical scores. A perturbed probe copy is grouped with its parent run structure.
* **Structure score**: the mean of its atoms' scores.
* **Proof that the score detects atypical structures**: each held-out structure has perturbed copies
  (``probes.csv`` rows with ``kind == "perturbation"``: rattled, strained, ...; ``variant`` names the
  perturbation, ``parent`` the original). Per model, space and perturbation: ROC AUC
  (``sklearn.metrics.roc_auc_score``) of the score separating the perturbed copies (positives) from all
  held-out originals (negatives, scored from the run's matrices): 1 = every copy more atypical than every
  original, 0.5 = chance (and the answer for copies identical to their originals). With it
  ``auc_parents``, the AUC of the copies' own originals against the same negatives: the AUC a perturbation
  that changed nothing would get (a subset of perturbed parents that happens to be atypical lifts it above
  0.5). And the paired **win rate**, free of that draw: the fraction of perturbed copies scoring above
  their own parent (a tie counts one half, as in the AUC).
* **Top list**: per model, the ``top`` (OURS: 20) most atypical run structures in the raw space and the
  first Platonic space, with the number of models that have the same structure in their top list
  (consensus).

Skips: a structure a model's embedding job skipped (NaN rows) is not scored in that model; a skipped
perturbed copy or held-out original is left out of that model's AUC. The script lists every one of them
(model, material_id, reason) in its skipped table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: the perturbation probes in ``probes.csv``' ``kind`` column
PERTURBATION = "perturbation"
#: kinds of scored structures in the score table
RUN, HOLDOUT, PERTURBED = "run", "holdout", "perturbed"

AUC_COLUMNS = ["space", "perturbation", "n_positive", "n_negative", "auc", "win_rate", "auc_parents"]


def knn_scores(
    reference: np.ndarray,
    queries: np.ndarray,
    k: int,
    query_groups: np.ndarray | None = None,
    reference_groups: np.ndarray | None = None,
    chunk: int = 1024,
) -> np.ndarray:
    """(Q,) mean Euclidean distance of each query to its ``k`` nearest reference rows.

    Parameters
    ----------
    reference : (R, D) finite rows (the reference atoms).
    queries : (Q, D) finite rows.
    k : number of neighbours.
    query_groups, reference_groups : (Q,) and (R,) integer group ids (structures), or both None. A query
        never counts reference rows of its own group as neighbours (leave-one-structure-out).
    chunk : queries whose neighbour distances are recomputed exactly at once (memory: about
        ``chunk * (k + largest group) * D`` float64 values).

    Raises ValueError when a query has fewer than ``k`` reference rows outside its group.
    """
    from sklearn.neighbors import NearestNeighbors

    reference = np.asarray(reference, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.float64)
    if reference.ndim != 2 or queries.ndim != 2 or reference.shape[1] != queries.shape[1]:
        raise ValueError(f"knn_scores: shapes {reference.shape} and {queries.shape} do not match")
    n_ref = len(reference)
    if k < 1:
        raise ValueError(f"knn_scores: k = {k}, must be at least 1")
    if not len(queries):
        return np.zeros(0)
    grouped = query_groups is not None and reference_groups is not None
    if grouped:
        query_groups = np.asarray(query_groups)
        reference_groups = np.asarray(reference_groups)
        if query_groups.shape != (len(queries),) or reference_groups.shape != (n_ref,):
            raise ValueError("knn_scores: query_groups/reference_groups must have one entry per row")
        ref_ids, ref_counts = np.unique(reference_groups, return_counts=True)
        size = dict(zip(ref_ids.tolist(), ref_counts.tolist(), strict=True))
        own = np.array([size.get(g, 0) for g in query_groups.tolist()])
        largest = int(ref_counts.max()) if len(ref_counts) else 0
    else:
        own = np.zeros(len(queries), dtype=np.int64)
        largest = 0
    short = n_ref - own < k
    if short.any():
        i = int(np.flatnonzero(short)[0])
        raise ValueError(
            f"knn_scores: {int(short.sum())} query row(s) have fewer than k = {k} reference rows outside "
            f"their own structure (e.g. row {i}: {n_ref - own[i]} of {n_ref})"
        )
    n_search = min(n_ref, k + largest)
    nn = NearestNeighbors(n_neighbors=n_search, algorithm="brute").fit(reference)
    neighbours = nn.kneighbors(queries, return_distance=False)  # (Q, n_search)
    out = np.empty(len(queries))
    for start in range(0, len(queries), chunk):
        q, idx = queries[start : start + chunk], neighbours[start : start + chunk]
        diff = q[:, None, :] - reference[idx]
        dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        if grouped:
            dist[reference_groups[idx] == query_groups[start : start + chunk, None]] = np.inf
        dist.sort(axis=1)
        out[start : start + chunk] = dist[:, :k].mean(axis=1)
    return out


def structure_scores(
    atom_scores: np.ndarray, atom_start: Sequence[int], atom_stop: Sequence[int]
) -> np.ndarray:
    """(S,) mean of ``atom_scores`` (A,) over each structure's rows ``[atom_start, atom_stop)``.

    A structure with a NaN atom (skipped) scores NaN. Each mean is taken on its own rows, so identical
    structures at different offsets get identical scores.
    """
    atom_scores = np.asarray(atom_scores, dtype=np.float64)
    return np.array(
        [atom_scores[a:b].mean() if b > a else np.nan for a, b in zip(atom_start, atom_stop, strict=True)]
    )


def space_atom_scores(
    run: np.ndarray,
    probe: np.ndarray,
    reference_rows: np.ndarray,
    run_groups: np.ndarray,
    probe_groups: np.ndarray,
    k: int,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Atom scores of one model in one space, relative to the embedding scale.

    run : (N, D) the run's matrix (NaN rows: skipped); probe : (P, D) the probe structures' matrix.
    reference_rows : (R,) rows of ``run`` forming the reference set (finite).
    run_groups : (N,) structure of each run row; probe_groups : (P,) the group of each probe row (its
    parent's structure, or an id no run structure has). scale : the space's embedding scale.

    Returns ((N,), (P,)) scores, NaN on non-finite rows.
    """
    run = np.asarray(run, dtype=np.float64)
    probe = np.asarray(probe, dtype=np.float64).reshape(-1, run.shape[1])
    reference_rows = np.asarray(reference_rows)
    queries = np.concatenate([run, probe])
    groups = np.concatenate([np.asarray(run_groups), np.asarray(probe_groups)])
    ok = np.isfinite(queries).all(axis=1)
    scores = np.full(len(queries), np.nan)
    scores[ok] = (
        knn_scores(run[reference_rows], queries[ok], k, groups[ok], np.asarray(run_groups)[reference_rows])
        / scale
    )
    return scores[: len(run)], scores[len(run) :]


def auc_win(positive: np.ndarray, negative: np.ndarray, parents: np.ndarray) -> tuple[float, float]:
    """ROC AUC of ``positive`` (P,) scores against ``negative`` (N,) scores, and the paired win rate.

    ``parents`` (P,) is the score of each positive's own original (NaN: not scored). The win rate is the
    mean over pairs with a parent of 1 (copy above parent), 1/2 (tie), 0 (below); NaN without pairs.
    The AUC is NaN without positives or without negatives.
    """
    from sklearn.metrics import roc_auc_score

    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    auc = np.nan
    if len(positive) and len(negative):
        y = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
        auc = float(roc_auc_score(y, np.r_[positive, negative]))
    parents = np.asarray(parents, float)
    paired = np.isfinite(parents)
    win = np.nan
    if paired.any():
        p, q = positive[paired], parents[paired]
        win = float(np.mean((p > q) + 0.5 * (p == q)))
    return auc, win


def auc_table(scores: pd.DataFrame, perturbations: Sequence[str]) -> pd.DataFrame:
    """AUC and win rate per model, space and perturbation.

    ``scores`` : the score table (model, space, material_id, kind, variant, parent, score); NaN scores
    (skipped structures) are left out. ``perturbations`` : every perturbation of the probe table (a
    perturbation with no scored copy in a model still gets its row, with NaN AUC).
    Returns columns model, space, perturbation, n_positive, n_negative, auc, win_rate, auc_parents: the
    AUC of the copies' own originals against the same negatives, the level ``auc`` starts from when the
    perturbation changes nothing (0.5 only when the perturbed parents are a typical draw of the held-out
    structures).
    """
    rows = []
    scored = scores[np.isfinite(scores["score"].to_numpy(dtype=float))]
    for (model, space), sub in scores.groupby(["model", "space"], sort=False):
        sub = scored[(scored["model"] == model) & (scored["space"] == space)]
        negative = sub.loc[sub["kind"] == HOLDOUT, "score"].to_numpy(float)
        originals = sub[sub["kind"].isin([RUN, HOLDOUT])].set_index("material_id")["score"]
        for name in perturbations:
            pos = sub[(sub["kind"] == PERTURBED) & (sub["variant"] == name)]
            parents = originals.reindex(pos["parent"]).to_numpy(float)
            auc, win = auc_win(pos["score"].to_numpy(float), negative, parents)
            baseline, _ = auc_win(parents[np.isfinite(parents)], negative, parents[:0])
            rows.append([model, space, name, len(pos), len(negative), auc, win, baseline])
    return pd.DataFrame(rows, columns=["model", *AUC_COLUMNS])


def hill_formula(elements: Sequence[str]) -> str:
    """Chemical formula of a list of element symbols in Hill order (C, H, then alphabetical; no carbon:
    all alphabetical), counts of 1 omitted: ``["O", "Si", "O"] -> "O2Si"``."""
    count = Counter(elements)
    order = sorted(count)
    if "C" in count:
        order = ["C", *(["H"] if "H" in count else []), *[e for e in order if e not in ("C", "H")]]
    return "".join(f"{e}{count[e] if count[e] > 1 else ''}" for e in order)


def top_table(scores: pd.DataFrame, top: int, spaces: Sequence[str]) -> pd.DataFrame:
    """The ``top`` highest-scoring run structures (kind run or holdout) per model in each of ``spaces``.

    Returns the score table's rows (model, space, material_id, kind, score) with ``rank`` (1 = most
    atypical) and ``n_models_top``: in how many models' top lists of the same space the structure is.
    """
    real = scores[scores["kind"].isin([RUN, HOLDOUT]) & scores["space"].isin(list(spaces))]
    real = real[np.isfinite(real["score"].to_numpy(float))]
    parts = []
    for _, sub in real.groupby(["model", "space"], sort=False):
        best = sub.sort_values(["score", "material_id"], ascending=[False, True], kind="stable").head(top)
        parts.append(best.assign(rank=np.arange(1, len(best) + 1)))
    if not parts:
        return pd.DataFrame(columns=[*scores.columns, "rank", "n_models_top"])
    out = pd.concat(parts, ignore_index=True)
    out["n_models_top"] = out.groupby(["space", "material_id"])["model"].transform("nunique")
    return out
