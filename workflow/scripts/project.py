"""Project one model's embeddings onto its own anchor vectors: z_i = cos(e_i, a_k).

The embeddings are memory-mapped and the projection is written chunk by chunk into a memory-mapped
``.npy`` under a temporary name, renamed when complete: memory stays bounded whatever the number of atoms.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.checks import MatrixError, checked_rows, skipped_mask
from platonic_mlip.cli import run
from platonic_mlip.io import atomic_path, preallocate
from platonic_mlip.projection import mean_embedding, project_onto


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embeddings", required=True)
    ap.add_argument("--anchors", required=True, help="anchor table CSV (atom_index column)")
    ap.add_argument("--chunk", type=int, default=32768, help="rows projected at once")
    ap.add_argument(
        "--center", action="store_true", help="OURS: subtract the model's mean embedding before the cosine"
    )
    ap.add_argument("--atoms", default=None, help="atom table CSV (names the rows of a bad matrix)")
    ap.add_argument("--model", default=None, help="model id (messages; default: the file's name)")
    ap.add_argument("--meta", default=None, help="the embeddings' metadata JSON (its skipped atoms are NaN)")
    ap.add_argument(
        "--anchor-embeddings",
        default=None,
        help="the run's embeddings of the same model: anchors (and --center's mean) come from its rows, "
        "for structures outside the run (probe structures)",
    )
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    model = args.model or Path(args.embeddings).stem
    if args.atoms:
        ids = pd.read_csv(args.atoms, usecols=["material_id"], dtype=str)["material_id"].to_numpy()
    else:
        ids = np.asarray(["?"] * np.load(args.embeddings, mmap_mode="r").shape[0])
    try:  # NaN only in the rows of the structures its embedding job skipped
        skipped = skipped_mask(args.meta, len(ids)) if args.meta else None
        emb = checked_rows(args.embeddings, model, ids, expected_nan=skipped)
    except MatrixError as err:
        raise SystemExit(f"ERROR: {err}") from None
    idx = pd.read_csv(args.anchors)["atom_index"].to_numpy()
    source = emb if args.anchor_embeddings is None else np.load(args.anchor_embeddings, mmap_mode="r")
    if idx.max() >= source.shape[0]:
        raise SystemExit(f"ERROR: {args.anchors}: anchor atom {idx.max()} beyond {source.shape[0]} rows")
    anchors = np.asarray(source[idx], dtype=np.float64)
    if not np.isfinite(anchors).all():
        raise SystemExit(f"ERROR: {args.anchors}: an anchor row of model {model} is not finite")
    if anchors.shape[1] != emb.shape[1]:
        raise SystemExit(
            f"ERROR: {args.anchor_embeddings}: {anchors.shape[1]} columns, "
            f"{args.embeddings} has {emb.shape[1]}"
        )
    with atomic_path(args.out) as tmp:
        z = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(emb.shape[0], len(idx)))
        preallocate(tmp)  # a full disk fails here, not with SIGBUS inside the memory map
        center = mean_embedding(source, chunk=args.chunk) if args.center else None
        project_onto(emb, anchors, chunk=args.chunk, out=z, center=center)
        z.flush()
        shape = z.shape
        del z
    print(f"{args.embeddings} -> {shape}")


if __name__ == "__main__":
    run(main)
