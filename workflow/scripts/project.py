"""Project one model's embeddings onto its own anchor vectors: z_i = cos(e_i, a_k).

The embeddings are memory-mapped and the projection is written chunk by chunk into a memory-mapped
``.npy`` under a temporary name, renamed when complete: memory stays bounded whatever the number of atoms.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.projection import mean_embedding, project


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embeddings", required=True)
    ap.add_argument("--anchors", required=True, help="anchor table CSV (atom_index column)")
    ap.add_argument("--chunk", type=int, default=32768, help="rows projected at once")
    ap.add_argument(
        "--center", action="store_true", help="OURS: subtract the model's mean embedding before the cosine"
    )
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    emb = np.load(args.embeddings, mmap_mode="r")
    idx = pd.read_csv(args.anchors)["atom_index"].to_numpy()
    if idx.max() >= emb.shape[0]:
        raise SystemExit(f"ERROR: {args.anchors}: anchor atom {idx.max()} beyond {emb.shape[0]} rows")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        z = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(emb.shape[0], len(idx)))
        center = mean_embedding(emb, chunk=args.chunk) if args.center else None
        project(emb, idx, chunk=args.chunk, out=z, center=center)
        z.flush()
        shape = z.shape
        del z
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"{args.embeddings} -> {shape}")


if __name__ == "__main__":
    main()
