"""Paper Fig. 4a-d: heatmaps of one pairwise metric, raw vs Platonic space."""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import pandas as pd

from platonic_mlip.plotting import heatmaps, save

TITLES = {
    "mknn": "Mutual k-NN alignment",
    "procrustes_score": "Procrustes score (1 - angle / 90 deg)",
    "ot_normalised": "Optimal transport cost / mean cost (lower = closer)",
    "composite": "Composite score (ours)",
    "cka": "Linear CKA",
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairwise", required=True)
    ap.add_argument("--metric", required=True, choices=sorted(TITLES))
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--labels", default="{}", help="JSON {model: label}")
    ap.add_argument("--anchors", default="direct")
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out", nargs="+", required=True)
    args = ap.parse_args(argv)
    table = pd.read_csv(args.pairwise, keep_default_na=False, na_values=[""])
    table["anchors"] = table["anchors"].fillna("")
    labels = json.loads(args.labels)
    spaces = ("platonic",) if args.metric.startswith("ot_") else ("raw", "platonic")
    kw = dict(vmin=0.0, vmax=1.0)
    if args.metric == "ot_normalised":
        kw["cmap"] = "viridis_r"
    fig = heatmaps(
        table,
        args.metric,
        args.models,
        [labels.get(m, m) for m in args.models],
        args.anchors,
        TITLES[args.metric],
        spaces=spaces,
        **kw,
    )
    save(fig, *args.out, dpi=args.dpi)


if __name__ == "__main__":
    main()
