"""Paper Fig. 3a data, one K: every Platonic metric with K DIRECT anchors and with K random anchors
for each of several seeds, on the paper's atom sample."""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.anchor_studies import paper_sample, platonic_metrics
from platonic_mlip.anchors import direct_anchors, random_anchors
from platonic_mlip.checks import MatrixError, checked_rows
from platonic_mlip.cli import run
from platonic_mlip.embed.base import valid_atoms
from platonic_mlip.io import write_csv
from platonic_mlip.metrics import KNN_TIE_TOL

COLUMNS = ["k", "method", "seed", "model_a", "model_b", "metric", "value"]


def add_metric_args(ap: argparse.ArgumentParser) -> None:
    """Options shared with the other anchor studies: the sample and the metrics."""
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--embeddings", nargs="+", required=True, help="raw embeddings (.npy), one per model")
    ap.add_argument("--atoms", required=True)
    ap.add_argument("--meta", nargs="*", default=[], help="embedding metadata of every model (skipped atoms)")
    ap.add_argument("--n-sample", type=int, default=1000)
    ap.add_argument("--sample-seed", type=int, default=42)
    ap.add_argument("--knn-k", type=int, default=10)
    ap.add_argument("--no-knn-normalize", action="store_true")
    ap.add_argument(
        "--knn-tie-tol",
        type=float,
        default=KNN_TIE_TOL,
        help="k-NN similarities within this are tied; lower sample row wins (metrics.knn_tie_tol)",
    )
    ap.add_argument("--composite-weights", default="{}", help="JSON {score: weight}")
    ap.add_argument("--threshold-init", type=float, default=0.3)


def load_inputs(args):
    """(atom table, valid atom indices, sample atom indices, {model: memmap}, metric options)."""
    atoms = pd.read_csv(args.atoms)
    if len(args.models) != len(args.embeddings):
        raise SystemExit("ERROR: need one embeddings file per model")
    mask = valid_atoms(args.meta, len(atoms))
    ids = atoms["material_id"].astype(str).to_numpy()
    try:  # the whole matrix, chunk by chunk: NaN only where some model skipped the structure
        embs = {
            m: checked_rows(f, m, ids, expected_nan=~mask)
            for m, f in zip(args.models, args.embeddings, strict=True)
        }
    except MatrixError as err:
        raise SystemExit(f"ERROR: {err}") from None
    valid = np.flatnonzero(mask)
    sample = paper_sample(valid, args.n_sample, args.sample_seed)
    opts = dict(
        k=args.knn_k,
        normalize_knn=not args.no_knn_normalize,
        knn_tie_tol=args.knn_tie_tol,
        composite_weights=json.loads(args.composite_weights),
    )
    return atoms, valid, sample, embs, opts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    add_metric_args(ap)
    ap.add_argument("--k", type=int, required=True, help="number of anchors")
    ap.add_argument("--reference-model", required=True, help="DIRECT runs on this model's embeddings")
    ap.add_argument("--random-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    atoms, valid, sample, embs, opts = load_inputs(args)
    if args.reference_model not in embs:
        raise SystemExit(f"ERROR: reference model {args.reference_model!r} is not among --models")
    if args.k < 2:
        raise SystemExit(f"ERROR: config key 'anchors.sweep.k': K={args.k} must be at least 2")
    if args.k > len(valid):  # a small run (structures.limit) with the paper's grid: K cannot be drawn
        print(f"WARNING: K={args.k} > {len(valid)} atoms: skipped (config key 'anchors.sweep.k')")
        write_csv(args.out, pd.DataFrame(columns=[*COLUMNS, "n_sample"]))
        return
    sets = [
        ("direct", -1, valid[direct_anchors(embs[args.reference_model][valid], args.k, args.threshold_init)])
    ]
    sets += [("random", s, valid[random_anchors(len(valid), args.k, s)]) for s in args.random_seeds]
    tables = []
    for method, seed, anchors in sets:
        t = platonic_metrics(embs, sample, anchors, method, **opts)
        t.insert(0, "seed", seed)
        t.insert(0, "method", method)
        t.insert(0, "k", args.k)
        tables.append(t)
    table = pd.concat(tables, ignore_index=True).drop(columns=["space", "anchors"])
    table["n_sample"] = len(sample)
    write_csv(args.out, table)
    print(f"K={args.k}: {len(sets)} anchor sets x {len(embs)} models, {len(table)} rows")


if __name__ == "__main__":
    run(main)
