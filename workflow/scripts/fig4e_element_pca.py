"""Paper Fig. 4e: PCA of each model's element-level Platonic embeddings, by chemical family and by period."""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import numpy as np

from platonic_mlip.cli import run
from platonic_mlip.plotting import element_pca, model_label, save


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--elements", required=True, help="element_embeddings .npz")
    ap.add_argument("--labels", default="{}", help="JSON {model: label}")
    ap.add_argument("--controls", nargs="*", default=[], help="untrained models: labelled (untrained)")
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out", nargs="+", required=True)
    args = ap.parse_args(argv)
    labels = json.loads(args.labels)
    with np.load(args.elements) as z:
        models = [str(m) for m in z["models"]]
        vectors = {model_label(m, labels, args.controls): z[f"vectors_{i}"] for i, m in enumerate(models)}
        numbers = z["numbers"]
    if len(numbers) < 3:
        raise SystemExit(f"ERROR: {args.elements}: {len(numbers)} elements, a PCA map needs at least 3")
    title = f"Element embeddings (mean Platonic vector of {len(numbers)} elements)"
    save(element_pca(vectors, numbers, title), *args.out, dpi=args.dpi)


if __name__ == "__main__":
    run(main)
