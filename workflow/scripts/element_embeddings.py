"""Element-level embeddings (mean Platonic vector per element) of every model, and the correlation
between models of their element-element similarity matrices (paper Fig. 4e-f data)."""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.checks import MatrixError, checked_rows
from platonic_mlip.cli import run
from platonic_mlip.elements import cosine_matrix, element_means, similarity_correlation
from platonic_mlip.embed.base import valid_atoms
from platonic_mlip.io import save_npz, write_csv


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--platonic", nargs="+", required=True, help="Platonic embeddings (.npy), one per model")
    ap.add_argument("--atoms", required=True)
    ap.add_argument("--meta", nargs="*", default=[], help="embedding metadata of every model (skipped atoms)")
    ap.add_argument("--out-npz", required=True, help="numbers, counts and one (E, K) array per model")
    ap.add_argument("--out-csv", required=True, help="correlation of similarity matrices per model pair")
    args = ap.parse_args(argv)
    atoms = pd.read_csv(args.atoms)
    valid = valid_atoms(args.meta, len(atoms))
    numbers = atoms["Z"].to_numpy()
    vectors, sims = {}, {}
    elements = counts = None
    ids = atoms["material_id"].astype(str).to_numpy()
    for model, path in zip(args.models, args.platonic, strict=True):
        try:
            z = checked_rows(path, model, ids, expected_nan=~valid, what="Platonic space")
        except MatrixError as err:
            raise SystemExit(f"ERROR: {err}") from None
        elements, vectors[model], counts = element_means(z, numbers, valid)
        sims[model] = cosine_matrix(vectors[model])
    # model names may not be valid keyword names: arrays are stored by position, names alongside
    arrays = {f"vectors_{i}": v for i, v in enumerate(vectors.values())}
    save_npz(args.out_npz, numbers=elements, counts=counts, models=np.array(args.models), **arrays)
    write_csv(args.out_csv, similarity_correlation(sims))
    print(f"{len(elements)} elements x {len(args.models)} models")


if __name__ == "__main__":
    run(main)
