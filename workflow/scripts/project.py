"""Project one model's embeddings onto its own anchor vectors: z_i = cos(e_i, a_k)."""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.io import save_npy
from platonic_mlip.projection import project


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--embeddings", required=True)
    ap.add_argument("--anchors", required=True, help="anchor table CSV (atom_index column)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    emb = np.load(args.embeddings, mmap_mode="r")
    idx = pd.read_csv(args.anchors)["atom_index"].to_numpy()
    if idx.max() >= emb.shape[0]:
        raise SystemExit(f"ERROR: {args.anchors}: anchor atom {idx.max()} beyond {emb.shape[0]} rows")
    z = project(emb, idx)
    save_npy(args.out, z)
    print(f"{args.embeddings} -> {z.shape}")


if __name__ == "__main__":
    main()
