"""Anchor studies (paper Figs. 2-3): how the cross-model metrics depend on the anchors.

The metrics are computed on the paper's atom sample only, so a study needs just the sample rows and
the anchor rows of each model's embeddings, never a whole Platonic matrix: ``platonic_sample`` gives
exactly the rows of ``projection.project`` at the sample atoms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .metrics import pairwise_table
from .projection import project


def platonic_sample(embeddings, sample: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Platonic coordinates of the ``sample`` atoms under the anchor atoms ``anchors``.

    ``embeddings`` is one model's (N, D) array (a memmap is fine: only the needed rows are read);
    ``sample`` (n,) and ``anchors`` (K,) are atom indices. Returns (n, K) float32, equal to
    ``project(embeddings, anchors)[sample]``.
    """
    sample, anchors = np.asarray(sample), np.asarray(anchors)
    rows = np.concatenate([np.asarray(embeddings[sample]), np.asarray(embeddings[anchors])])
    return project(rows, np.arange(len(sample), len(rows)))[: len(sample)]


def platonic_metrics(
    embeddings: Mapping[str, np.ndarray],
    sample: np.ndarray,
    anchors: np.ndarray,
    label: str,
    **metric_options,
):
    """Every pairwise metric between the models' Platonic spaces under one anchor set.

    ``embeddings`` maps model -> (N, D) array; ``sample`` and ``anchors`` are atom indices.
    ``metric_options`` go to ``metrics.pairwise_table`` (k, normalize_knn, knn_tie_tol,
    composite_weights).
    Returns its tidy table with ``anchors`` = ``label`` and ``space`` = ``platonic``.
    """
    spaces = {m: platonic_sample(e, sample, anchors) for m, e in embeddings.items()}
    return pairwise_table(spaces, "platonic", label, **metric_options)


def cross_pairs(table, exclude: Sequence[str] = ()):
    """Rows of a pairwise table for distinct models, neither of them in ``exclude`` (e.g. controls)."""
    keep = (table["model_a"] != table["model_b"]) & ~table["model_a"].isin(exclude)
    return table[keep & ~table["model_b"].isin(exclude)]


def summarise_sweep(table, exclude: Sequence[str] = ()):
    """Per K, anchor method and metric: the mean over model pairs, then its spread over seeds.

    ``table`` has columns k, method, seed, model_a, model_b, metric, value (one K-sweep run).
    Returns columns k, method, metric, mean, std, min, max, n_seeds, n_pairs, where mean/std/min/max
    are over seeds of the pair-averaged metric (DIRECT has one "seed": it has no random step).
    """
    cross = cross_pairs(table, exclude)
    per_seed = cross.groupby(["k", "method", "metric", "seed"], as_index=False).agg(
        value=("value", "mean"), n_pairs=("value", "size")
    )
    out = per_seed.groupby(["k", "method", "metric"], as_index=False).agg(
        mean=("value", "mean"),
        std=("value", "std"),
        min=("value", "min"),
        max=("value", "max"),
        n_seeds=("seed", "nunique"),
        n_pairs=("n_pairs", "max"),
    )
    out["std"] = out["std"].fillna(0.0)
    return out


def reference_sensitivity(tables: Mapping[str, object], primary: str):
    """How much each metric moves when DIRECT runs on another reference model.

    ``tables`` maps reference model -> the pairwise table of Platonic metrics with DIRECT anchors
    chosen on that model's embeddings; ``primary`` is the configured reference model. Returns
    (detail, summary): detail has one row per (reference, pair, metric) with value, primary_value
    and delta = value - primary_value; summary has per (reference, metric) the mean and max of
    |delta| over distinct model pairs.
    """
    import pandas as pd

    key = ["model_a", "model_b", "metric"]
    base = tables[primary][key + ["value"]].rename(columns={"value": "primary_value"})
    detail = []
    for ref, table in tables.items():
        if ref == primary:
            continue
        t = table[key + ["value"]].merge(base, on=key, how="inner")
        t.insert(0, "reference_model", ref)
        t["delta"] = t["value"] - t["primary_value"]
        detail.append(t)
    columns = ["reference_model", *key, "value", "primary_value", "delta"]
    detail = pd.concat(detail, ignore_index=True) if detail else pd.DataFrame(columns=columns)
    cross = detail[detail["model_a"] != detail["model_b"]].assign(abs_delta=lambda d: d["delta"].abs())
    summary = cross.groupby(["reference_model", "metric"], as_index=False).agg(
        mean_abs_delta=("abs_delta", "mean"),
        max_abs_delta=("abs_delta", "max"),
        n_pairs=("abs_delta", "size"),
    )
    summary.insert(1, "primary_reference", primary)
    return detail, summary


def paper_sample(valid: np.ndarray, n_sample: int, seed: int = 42) -> np.ndarray:
    """The atoms of the paper's metric sample drawn among the ``valid`` atom indices (sorted (V,))."""
    from .metrics import sample_indices

    valid = np.asarray(valid)
    return valid[sample_indices(len(valid), n_sample, seed)]
