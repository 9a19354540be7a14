"""Paper Fig. 4a-d: heatmaps of one pairwise metric, raw vs Platonic space.

The cells show ``value`` (the metric on the paper's sample) or, when the table carries intervals from
redrawn samples (``n_repeats`` > 0), their ``mean`` (``--statistic auto``, the default; ours). The
intervals themselves are in the table of ``pairwise_ci_table.py``.
"""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.plotting import heatmaps, save

TITLES = {
    "mknn": "Mutual k-NN alignment",
    "procrustes_score": "Procrustes score (1 - angle / 90 deg)",
    "ot_normalised": "Optimal transport cost / mean cost (lower = closer)",
    "composite": "Composite score (ours)",
    "cka": "Linear CKA",
}


def choose_statistic(table: pd.DataFrame, statistic: str) -> tuple[pd.DataFrame, str]:
    """The table with ``value`` replaced by ``mean`` where asked, and a note for the title.

    ``auto`` picks ``mean`` when the table has redrawn samples (column ``n_repeats`` > 0).
    """
    repeats = int(table["n_repeats"].max()) if "n_repeats" in table and len(table) else 0
    if statistic == "auto":
        statistic = "mean" if repeats > 0 else "value"
    if statistic == "value":
        return table, ""
    if repeats == 0:
        raise SystemExit("ERROR: --statistic mean needs a table with redrawn samples (metrics.uncertainty)")
    n = f" of {int(table['n_sample'].iloc[0])} atoms" if "n_sample" in table else ""
    return table.assign(value=table["mean"]), f"\nmean over {repeats} redrawn samples{n}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairwise", required=True)
    ap.add_argument("--metric", required=True, choices=sorted(TITLES))
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--labels", default="{}", help="JSON {model: label}")
    ap.add_argument("--anchors", default="direct")
    ap.add_argument(
        "--controls", nargs="*", default=[], help="untrained models: placed last, labelled (untrained)"
    )
    ap.add_argument(
        "--statistic",
        choices=("auto", "value", "mean"),
        default="auto",
        help="cell value: the paper's sample (value), the mean over redrawn samples (mean), or mean "
        "when the table has redrawn samples (auto)",
    )
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out", nargs="+", required=True)
    args = ap.parse_args(argv)
    table = pd.read_csv(args.pairwise, keep_default_na=False, na_values=[""])
    table["anchors"] = table["anchors"].fillna("")
    table, note = choose_statistic(table, args.statistic)
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
        TITLES[args.metric] + note,
        spaces=spaces,
        controls=args.controls,
        **kw,
    )
    save(fig, *args.out, dpi=args.dpi)


if __name__ == "__main__":
    run(main)
