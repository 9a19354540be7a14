"""Paper Fig. 3a: every Platonic metric vs the number of anchors K, DIRECT vs random anchors."""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import pandas as pd

from platonic_mlip.anchor_studies import summarise_sweep
from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.plotting import METRIC_TITLES, save, sweep_curves


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tables", nargs="+", required=True, help="anchor_sweep CSVs, one per K")
    ap.add_argument("--controls", nargs="*", default=[], help="untrained models, left out of the pair means")
    ap.add_argument("--labels", default="{}", help="JSON {model: label}, for the title")
    ap.add_argument("--run-k", type=int, default=None, help="K of the main pipeline (anchors.k): marked")
    ap.add_argument("--metrics", nargs="+", default=list(METRIC_TITLES))
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out-table", required=True, help="summary per K, method and metric (CSV)")
    ap.add_argument("--out", nargs="+", required=True, help="figure files (.png, .pdf)")
    args = ap.parse_args(argv)
    tables = [pd.read_csv(f) for f in args.tables]
    skipped = [f for f, t in zip(args.tables, tables, strict=True) if t.empty]  # K > atoms of the run
    if skipped:
        print(f"skipped (K larger than the number of atoms): {', '.join(skipped)}")
    if len(skipped) == len(tables):
        raise SystemExit("ERROR: every K of 'anchors.sweep.k' exceeds the number of atoms of this run")
    table = pd.concat([t for t in tables if not t.empty], ignore_index=True)
    controls = args.controls
    summary = summarise_sweep(table, exclude=controls)
    if summary.empty and controls:  # fewer than two trained models: average over every pair
        print("fewer than two trained models: the means include the untrained controls")
        controls = []
        summary = summarise_sweep(table)
    if summary.empty:
        raise SystemExit("ERROR: the K sweep needs at least two models (config key 'models')")
    write_csv(args.out_table, summary)
    labels = json.loads(args.labels)
    left_out = (
        f"\nuntrained controls left out: {', '.join(labels.get(m, m) for m in controls)}" if controls else ""
    )
    title = f"Metrics vs number of anchors (mean over {int(summary['n_pairs'].max())} model pairs){left_out}"
    metrics = [m for m in args.metrics if m in set(summary["metric"])]
    fig = sweep_curves(summary, metrics, title, run_k=args.run_k)
    save(fig, *args.out, dpi=args.dpi)


if __name__ == "__main__":
    run(main)
