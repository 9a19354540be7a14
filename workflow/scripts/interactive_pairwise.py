"""Interactive heatmaps of the pairwise metrics (ours): every metric and space in one offline HTML page,
the value and its interval on hover."""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.interactive import pairwise_figure, write_page
from platonic_mlip.plotting import model_label


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairwise", required=True, help="metrics/pairwise.csv")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--labels", default="{}", help="JSON {model: display label}")
    ap.add_argument("--controls", nargs="*", default=[])
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    table = pd.read_csv(args.pairwise, keep_default_na=False, na_values=[""])
    labels = json.loads(args.labels)
    trained = [m for m in args.models if m not in args.controls]
    order = trained + [m for m in args.models if m in args.controls]  # controls last, as in Fig. 4
    shown = [model_label(m, labels, args.controls) for m in order]
    title = (
        "Pairwise metrics (hover: the value on the paper's sample, mean and interval over redrawn samples)"
    )
    write_page(pairwise_figure(table, order, shown, title), args.out)
    print(f"{len(order)} models -> {args.out}")


if __name__ == "__main__":
    run(main)
