"""Join the per-space tables of ``pairwise_metrics.py`` (rule ``pairwise_space``) into one table.

The tables are stacked in the order given (raw first, then the anchor sets); every space must have used
the same metric sample of atoms, checked here, and that sample is written once.
"""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.io import write_csv


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tables", nargs="+", required=True, help="per-space tables, in the table's order")
    ap.add_argument("--samples", nargs="+", required=True, help="their metric samples, in the same order")
    ap.add_argument("--out", required=True)
    ap.add_argument("--out-sample", required=True)
    args = ap.parse_args(argv)
    if len(args.tables) != len(args.samples):
        raise SystemExit(f"ERROR: {len(args.tables)} tables but {len(args.samples)} samples")
    tables = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in args.tables]
    samples = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in args.samples]
    for path, table in zip(args.tables, tables, strict=True):
        if table.empty:
            raise SystemExit(f"ERROR: {path}: empty pairwise table")
    for path, sample in zip(args.samples[1:], samples[1:], strict=True):
        if not sample.equals(samples[0]):
            raise SystemExit(
                f"ERROR: {path}: the metric sample differs from {args.samples[0]}; every space must be "
                "compared on the same atoms (rerun the per-space jobs with one config)"
            )
    write_csv(args.out_sample, samples[0])
    write_csv(args.out, pd.concat(tables, ignore_index=True))
    print(f"{sum(map(len, tables))} rows from {len(tables)} spaces")


if __name__ == "__main__":
    run(main)
