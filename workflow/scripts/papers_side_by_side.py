"""Both papers' answers for the same model pairs, side by side, and where they disagree.

Li & Walsh (arXiv 2512.05349) measure alignment in the Platonic space (mutual k-NN, Procrustes, OT;
``pairwise.csv``); Chorna et al. (arXiv 2512.05717) measure how well one model's features rebuild
another's (GFRE, LFRE; ``reconstruction/atoms_summary.csv``). Per unordered pair of different models:
every measure, the reconstruction errors both ways and their mean (raw and in each Platonic space).

Rank correlation (Spearman, across pairs) of each alignment score with each reconstruction similarity
(1 - mean error, so that positive = the two views agree), over all pairs and over trained pairs only.
Disagreement: pairs ranked far apart by the Li & Walsh composite score and by the raw GFRE similarity
(rank difference, in ``--out``; the largest listed in ``--out-disagreements``).
"""

from __future__ import annotations

import argparse
import itertools
import json

import _paths  # noqa: F401
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from platonic_mlip.cli import run
from platonic_mlip.io import write_csv

#: Li & Walsh's scores read from pairwise.csv (higher = more alike), in the Platonic space and raw
ALIGNMENT = ("mknn", "procrustes_score", "ot_score", "composite")


def pair_table(pairwise, summary, models, anchors, controls, checkpoints):
    rows = []
    for a, b in itertools.combinations(models, 2):
        row = dict(model_a=a, model_b=b)
        row["kind"] = (
            "same checkpoint"
            if checkpoints.get(a, a) == checkpoints.get(b, b)
            else ("with an untrained control" if a in controls or b in controls else "trained")
        )
        for space, name in [("raw", "raw")] + [("platonic", s) for s in anchors]:
            sel = pairwise[
                (pairwise["space"] == space)
                & (pairwise["anchors"].fillna("") == ("" if space == "raw" else name))
            ]
            for metric in ALIGNMENT:
                hit = sel[
                    (sel["metric"] == metric)
                    & (
                        ((sel["model_a"] == a) & (sel["model_b"] == b))
                        | ((sel["model_a"] == b) & (sel["model_b"] == a))
                    )
                ]
                if len(hit):
                    row[f"{metric}_{name}"] = float(hit["value"].iloc[0])
        for space, part in summary.groupby("space", sort=False):
            both = part.set_index(["source", "target"])
            for measure in ("gfre", "lfre"):
                ab = both[measure].get((a, b), np.nan)
                ba = both[measure].get((b, a), np.nan)
                row[f"{measure}_{space}_ab"] = ab
                row[f"{measure}_{space}_ba"] = ba
                row[f"{measure}_{space}_mean"] = (
                    np.nanmean([ab, ba]) if np.isfinite([ab, ba]).any() else np.nan
                )
        rows.append(row)
    return pd.DataFrame(rows)


def correlations(table: pd.DataFrame) -> pd.DataFrame:
    align = [c for c in table if c.split("_")[0] in {"mknn", "procrustes", "ot", "composite"}]
    recon = [c for c in table if c.endswith("_mean") and c.split("_")[0] in ("gfre", "lfre")]
    out = []
    for subset, sel in (("all pairs", table), ("trained pairs", table[table["kind"] == "trained"])):
        for a in align:
            for r in recon:
                both = sel[[a, r]].dropna()
                rho = spearmanr(both[a], -both[r]).statistic if len(both) >= 3 else np.nan
                out.append(dict(pairs=subset, alignment=a, reconstruction=r, spearman=rho, n_pairs=len(both)))
    return pd.DataFrame(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairwise", required=True)
    ap.add_argument("--summary", required=True, help="reconstruction/atoms_summary.csv")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--labels", default="{}")
    ap.add_argument("--controls", nargs="*", default=[])
    ap.add_argument("--checkpoints", default="{}", help="JSON {model: checkpoint}")
    ap.add_argument("--anchor-sets", nargs="*", default=[])
    ap.add_argument("--top", type=int, default=5, help="disagreements listed")
    ap.add_argument("--out", required=True)
    ap.add_argument("--out-correlation", required=True)
    ap.add_argument("--out-disagreements", required=True)
    args = ap.parse_args(argv)
    pairwise = pd.read_csv(args.pairwise)
    summary = pd.read_csv(args.summary)
    labels = json.loads(args.labels)
    table = pair_table(
        pairwise, summary, args.models, args.anchor_sets, set(args.controls), json.loads(args.checkpoints)
    )
    table.insert(2, "label_a", table["model_a"].map(lambda m: labels.get(m, m)))
    table.insert(3, "label_b", table["model_b"].map(lambda m: labels.get(m, m)))
    corr = correlations(table)
    # where the views disagree: the composite score in the first Platonic space vs raw GFRE similarity
    first = args.anchor_sets[0] if args.anchor_sets else "raw"
    a_col, r_col = f"composite_{first}", "gfre_raw_mean"
    if a_col in table and r_col in table:
        table["rank_alignment"] = table[a_col].rank(ascending=False)
        table["rank_reconstruction"] = table[r_col].rank(ascending=True)
        table["rank_difference"] = table["rank_alignment"] - table["rank_reconstruction"]
        worst = table.reindex(table["rank_difference"].abs().sort_values(ascending=False).index).head(
            args.top
        )
        worst = worst[
            [
                "model_a",
                "model_b",
                "kind",
                a_col,
                r_col,
                "rank_alignment",
                "rank_reconstruction",
                "rank_difference",
            ]
        ].copy()
        worst["reading"] = np.where(
            worst["rank_difference"] > 0,
            "features rebuild each other better than their Platonic alignment ranks",
            "aligned in the Platonic space better than their features rebuild each other",
        )
    else:
        worst = pd.DataFrame(columns=["model_a", "model_b", "reading"])
    write_csv(args.out, table)
    write_csv(args.out_correlation, corr)
    write_csv(args.out_disagreements, worst)
    print(corr.to_string())


if __name__ == "__main__":
    run(main)
