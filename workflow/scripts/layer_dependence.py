"""How each paper's answer changes with the layer the features come from.

Li & Walsh read MACE after its first interaction block; Chorna et al. read every model's last layer (the
input of the energy readout). A model of a run is a checkpoint plus a layer (``name@layer``), so a run
can hold one checkpoint at both. For every checkpoint present at two or more layers, and every other
model B of the run: each paper's measures of (checkpoint@layer_1, B) beside (checkpoint@layer_2, B):
mutual k-NN, Procrustes and OT scores in the Platonic space (Li & Walsh), GFRE and LFRE both ways in raw
space (Chorna et al.). ``--out`` has one row per checkpoint, layer pair, measure and other model;
``--out-summary`` per checkpoint, layer pair and measure: mean value at each layer, mean absolute change,
and the Spearman correlation over the other models (does the layer reorder who is most alike?).
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

LI_WALSH = ("mknn", "procrustes_score", "ot_score")
CHORNA = ("gfre", "lfre")


def alignment(pairwise, metric, space, anchors, a, b):
    sel = pairwise[(pairwise["metric"] == metric) & (pairwise["space"] == space)]
    if space == "platonic":
        sel = sel[sel["anchors"] == anchors]
    hit = sel[
        ((sel["model_a"] == a) & (sel["model_b"] == b)) | ((sel["model_a"] == b) & (sel["model_b"] == a))
    ]
    return float(hit["value"].iloc[0]) if len(hit) else np.nan


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairwise", required=True)
    ap.add_argument("--summary", required=True, help="reconstruction/atoms_summary.csv")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--layers", default="{}", help="JSON {model: [checkpoint, layer]}")
    ap.add_argument("--anchors", default="direct", help="the Platonic space of Li & Walsh's measures")
    ap.add_argument("--out", required=True)
    ap.add_argument("--out-summary", required=True)
    args = ap.parse_args(argv)
    pairwise, summary = pd.read_csv(args.pairwise), pd.read_csv(args.summary)
    layers = json.loads(args.layers)
    raw = summary[summary["space"] == "raw"].set_index(["source", "target"])
    by_ckpt = {}
    for m in args.models:
        ckpt, layer = layers.get(m, [m, ""])
        by_ckpt.setdefault(ckpt, []).append((layer, m))
    rows = []
    for ckpt, variants in by_ckpt.items():
        for (l1, m1), (l2, m2) in itertools.combinations(variants, 2):
            others = [b for b in args.models if layers.get(b, [b])[0] != ckpt]
            for b in others:
                base = dict(checkpoint=ckpt, layer_1=l1, layer_2=l2, model_1=m1, model_2=m2, other=b)
                for metric in LI_WALSH:
                    v1 = alignment(pairwise, metric, "platonic", args.anchors, m1, b)
                    v2 = alignment(pairwise, metric, "platonic", args.anchors, m2, b)
                    rows.append(
                        base
                        | dict(
                            paper="Li & Walsh",
                            measure=f"{metric} (Platonic {args.anchors})",
                            value_1=v1,
                            value_2=v2,
                        )
                    )
                for measure in CHORNA:
                    for direction, (x1, x2) in {
                        "checkpoint -> other": ((m1, b), (m2, b)),
                        "other -> checkpoint": ((b, m1), (b, m2)),
                    }.items():
                        v1 = raw[measure].get(x1, np.nan) if measure in raw else np.nan
                        v2 = raw[measure].get(x2, np.nan) if measure in raw else np.nan
                        rows.append(
                            base
                            | dict(
                                paper="Chorna et al.",
                                measure=f"{measure} raw, {direction}",
                                value_1=v1,
                                value_2=v2,
                            )
                        )
    table = pd.DataFrame(
        rows,
        columns=[
            "checkpoint",
            "layer_1",
            "layer_2",
            "model_1",
            "model_2",
            "other",
            "paper",
            "measure",
            "value_1",
            "value_2",
        ],
    )
    table["change"] = table["value_2"] - table["value_1"]
    out = []
    for key, group in table.groupby(["checkpoint", "layer_1", "layer_2", "paper", "measure"], sort=False):
        both = group[["value_1", "value_2"]].dropna()
        rho = spearmanr(both["value_1"], both["value_2"]).statistic if len(both) >= 3 else np.nan
        out.append(
            dict(zip(["checkpoint", "layer_1", "layer_2", "paper", "measure"], key, strict=True))
            | dict(
                mean_1=both["value_1"].mean(),
                mean_2=both["value_2"].mean(),
                mean_abs_change=(both["value_2"] - both["value_1"]).abs().mean(),
                spearman_over_others=rho,
                n_others=len(both),
            )
        )
    columns = ["checkpoint", "layer_1", "layer_2", "paper", "measure", "mean_1", "mean_2", "mean_abs_change"]
    summary_table = pd.DataFrame(out, columns=[*columns, "spearman_over_others", "n_others"])
    write_csv(args.out, table)
    write_csv(args.out_summary, summary_table)
    if summary_table.empty:
        print("no checkpoint appears at two layers in this run: nothing to compare (add e.g. name@last)")
    else:
        print(summary_table.to_string())


if __name__ == "__main__":
    run(main)
