"""How the Platonic metrics change when DIRECT runs on another reference model's embeddings."""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
from anchor_sweep import add_metric_args, load_inputs

from platonic_mlip.anchor_studies import platonic_metrics, reference_sensitivity
from platonic_mlip.anchors import direct_anchors
from platonic_mlip.cli import run
from platonic_mlip.io import write_csv


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    add_metric_args(ap)
    ap.add_argument("--k", type=int, required=True, help="number of anchors (anchors.k)")
    ap.add_argument(
        "--references", nargs="+", required=True, help="reference models, the configured one first"
    )
    ap.add_argument("--out", required=True, help="per pair and metric (CSV)")
    ap.add_argument("--out-summary", required=True, help="per reference model and metric (CSV)")
    args = ap.parse_args(argv)
    atoms, valid, sample, embs, opts = load_inputs(args)
    missing = [r for r in args.references if r not in embs]
    if missing:
        raise SystemExit(f"ERROR: config key 'anchors.reference_models': {missing} not among the models")
    tables = {}
    for ref in args.references:
        anchors = valid[direct_anchors(embs[ref][valid], args.k, args.threshold_init)]
        tables[ref] = platonic_metrics(embs, sample, anchors, f"direct:{ref}", **opts)
        print(f"DIRECT on {ref}: {len(anchors)} anchors")
    detail, summary = reference_sensitivity(tables, args.references[0])
    write_csv(args.out, detail)
    write_csv(args.out_summary, summary)
    print(summary.to_string(index=False))


if __name__ == "__main__":
    run(main)
