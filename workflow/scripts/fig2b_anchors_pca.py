"""Paper Fig. 2b: the anchors over the PCA map of the reference model's embeddings."""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.checks import MatrixError, checked_rows
from platonic_mlip.cli import run
from platonic_mlip.embed.base import drawn_atoms
from platonic_mlip.plotting import anchor_set_label, anchors_on_pca, save


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--embeddings", required=True, help="the reference model's raw embeddings (.npy)")
    ap.add_argument("--reference-label", default="reference model")
    ap.add_argument("--atoms", required=True)
    ap.add_argument("--meta", nargs="*", default=[], help="embedding metadata of every model (skipped atoms)")
    ap.add_argument("--anchors", nargs="+", required=True, help="anchor tables (CSV), one per set")
    ap.add_argument("--max-points", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out", nargs="+", required=True)
    args = ap.parse_args(argv)
    atoms = pd.read_csv(args.atoms)
    rows = drawn_atoms(args.meta, len(atoms), args.max_points, args.seed)
    sets = {}
    for path in args.anchors:
        t = pd.read_csv(path)
        sets[f"{anchor_set_label(str(t['method'].iloc[0]))} ({len(t)})"] = t["atom_index"].to_numpy()
    # the background sample plus every anchor (anchors may fall outside the drawn sample)
    rows = np.union1d(rows, np.concatenate(list(sets.values())))
    ids = atoms["material_id"].astype(str).to_numpy()
    try:
        emb = checked_rows(args.embeddings, args.reference_label, ids, rows)
    except MatrixError as err:
        raise SystemExit(f"ERROR: {err}") from None
    marks = {name: np.searchsorted(rows, idx) for name, idx in sets.items()}
    title = f"Anchors on the PCA map of {args.reference_label} ({len(rows)} atoms)"
    fig = anchors_on_pca(emb, atoms["Z"].to_numpy()[rows], marks, title)
    save(fig, *args.out, dpi=args.dpi)


if __name__ == "__main__":
    run(main)
