"""Paper Fig. 1 (and Fig. 3b/c): 2-D PCA of each model's embeddings, atoms coloured by chemical family.

PC signs are aligned to the first model's scores (``plotting.align_signs``). Fig. 3b/c pass the Platonic
spaces of one anchor set and ``--anchors <set>``, which names the set in the default title.
"""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import pandas as pd

from platonic_mlip.checks import MatrixError, checked_rows
from platonic_mlip.cli import run
from platonic_mlip.embed.base import drawn_atoms
from platonic_mlip.plotting import anchor_set_label, model_label, pca_grid, save


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--labels", default="{}", help="JSON {model: label}")
    ap.add_argument("--embeddings", nargs="+", required=True, help="raw embeddings (.npy), one per model")
    ap.add_argument("--atoms", required=True)
    ap.add_argument("--meta", nargs="*", default=[], help="embedding metadata of every model (skipped atoms)")
    ap.add_argument("--max-points", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--controls", nargs="*", default=[], help="untrained models: labelled (untrained)")
    ap.add_argument(
        "--anchors", default=None, help="anchor set of Platonic embeddings: the default title names it"
    )
    ap.add_argument(
        "--title", default=None, help="default: raw embeddings, or the anchor set's Platonic ones"
    )
    ap.add_argument(
        "--side-by-side",
        nargs="*",
        default=None,
        help="Platonic spaces (.npy), one per model: each model's raw map beside its Platonic one (ours)",
    )
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out", nargs="+", required=True, help="output files (.png, .pdf)")
    args = ap.parse_args(argv)
    labels = json.loads(args.labels)
    title = args.title or (
        f"Platonic embeddings, {anchor_set_label(args.anchors)} anchors (PCA)"
        if args.anchors
        else "Raw embeddings (PCA)"
    )
    atoms = pd.read_csv(args.atoms)
    rows = drawn_atoms(args.meta, len(atoms), args.max_points, args.seed)
    ids = atoms["material_id"].astype(str).to_numpy()
    try:
        spaces = {}
        for i, (m, f) in enumerate(zip(args.models, args.embeddings, strict=True)):
            name = model_label(m, labels, args.controls)
            if args.side_by_side is None:
                spaces[name] = checked_rows(f, m, ids, rows)
                continue
            plat = f"Platonic ({anchor_set_label(args.anchors)})" if args.anchors else "Platonic"
            spaces[f"{name}: raw"] = checked_rows(f, m, ids, rows)
            spaces[f"{name}: {plat}"] = checked_rows(
                args.side_by_side[i], m, ids, rows, what="Platonic space"
            )
    except MatrixError as err:
        raise SystemExit(f"ERROR: {err}") from None
    except IndexError:
        raise SystemExit("ERROR: --side-by-side needs one Platonic file per model") from None
    if args.side_by_side is not None and not args.title:
        anchors = anchor_set_label(args.anchors or "")
        title = f"Raw (left) and Platonic, {anchors} anchors (right), per model (PCA)"
    fig = pca_grid(spaces, atoms["Z"].to_numpy()[rows], f"{title}: {len(rows)} atoms")
    save(fig, *args.out, dpi=args.dpi)


if __name__ == "__main__":
    run(main)
