"""Paper Fig. 4f: how alike the models' element-element similarity matrices are (Pearson r)."""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.plotting import matrix_heatmap, save


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--correlations", required=True, help="element_embeddings correlation CSV")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--labels", default="{}", help="JSON {model: label}")
    ap.add_argument(
        "--controls", nargs="*", default=[], help="untrained models: placed last, labelled (untrained)"
    )
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out", nargs="+", required=True)
    args = ap.parse_args(argv)
    labels = json.loads(args.labels)
    table = pd.read_csv(args.correlations)
    pos = {m: i for i, m in enumerate(args.models)}
    mat = np.full((len(pos), len(pos)), np.nan)
    for a, b, r in zip(table["model_a"], table["model_b"], table["correlation"], strict=True):
        if a in pos and b in pos:
            mat[pos[a], pos[b]] = mat[pos[b], pos[a]] = r
    title = "Correlation of element-element cosine similarity matrices"
    fig = matrix_heatmap(
        mat,
        [labels.get(m, m) for m in args.models],
        title,
        vmin=-1.0,
        vmax=1.0,
        cmap="RdBu_r",
        cbar_label="Pearson r of the two models' element-element\nsimilarities (higher = more alike)",
        controls=[m in set(args.controls) for m in args.models],
    )
    save(fig, *args.out, dpi=args.dpi)


if __name__ == "__main__":
    run(main)
