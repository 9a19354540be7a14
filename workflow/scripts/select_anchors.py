"""Choose K anchor atoms: DIRECT sampling on a reference model's embeddings, seeded random atoms, or the
indices published with the paper (full MP-20 train split only)."""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.anchors import (
    anchor_table,
    check_published,
    direct_anchors,
    random_anchors,
    read_published,
)
from platonic_mlip.checks import MatrixError, checked_rows
from platonic_mlip.cli import run
from platonic_mlip.embed.base import valid_atoms
from platonic_mlip.io import write_csv


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--method", choices=("direct", "random", "published"), required=True)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--atoms", required=True, help="atom table (atoms.csv)")
    ap.add_argument("--embeddings", help="reference model embeddings (.npy), for direct")
    ap.add_argument("--reference-model", default="")
    ap.add_argument("--threshold-init", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--published", help="file of published anchor indices, for --method published")
    ap.add_argument("--meta", nargs="*", default=[], help="embedding metadata of every model (skipped atoms)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    atoms = pd.read_csv(args.atoms)
    # anchors must be atoms that every model embedded (none skipped for unsupported elements)
    valid = np.flatnonzero(valid_atoms(args.meta, len(atoms)))
    try:
        if args.method == "direct":
            mask = np.zeros(len(atoms), dtype=bool)
            mask[valid] = True
            ids = atoms["material_id"].astype(str).to_numpy()
            model = args.reference_model or "reference"
            try:
                emb = checked_rows(args.embeddings, model, ids, expected_nan=~mask)
            except MatrixError as err:
                raise SystemExit(f"ERROR: {err}") from None
            idx = valid[direct_anchors(emb[valid], args.k, threshold_init=args.threshold_init)]
        elif args.method == "random":
            idx = valid[random_anchors(len(valid), args.k, args.seed)]
    except ValueError as err:
        raise SystemExit(f"ERROR: config key 'anchors.k': {err}") from None
    if args.method == "published":
        try:
            idx = read_published(args.published)
            check_published(idx, len(atoms), f"anchors of {args.published} (config key 'anchors.published')")
        except (OSError, ValueError) as err:
            raise SystemExit(f"ERROR: {err}") from None
        bad = np.setdiff1d(idx, valid)
        if len(bad):
            mid = atoms["material_id"].iloc[int(bad[0])]
            raise SystemExit(
                f"ERROR: published anchor atom {int(bad[0])} (material_id {mid}) was skipped by a model "
                "(embed.on_unsupported: skip); published anchors need every model to embed them"
            )
    table = anchor_table(idx, atoms)
    table["method"] = args.method
    table["reference_model"] = args.reference_model if args.method == "direct" else ""
    table["source"] = args.published if args.method == "published" else ""
    table["seed"] = args.seed if args.method == "random" else -1
    write_csv(args.out, table)
    print(f"{args.method}: {len(idx)} anchors over {len(np.unique(table['element']))} elements")


if __name__ == "__main__":
    run(main)
