"""Interactive PCA maps (ours): every model's raw and Platonic spaces in one offline HTML page, atoms
coloured by chemical family, element / material_id / formula on hover."""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import pandas as pd

from platonic_mlip.checks import MatrixError, checked_rows
from platonic_mlip.cli import run
from platonic_mlip.embed.base import drawn_atoms
from platonic_mlip.interactive import formulas, maps_figure, write_page
from platonic_mlip.plotting import anchor_set_label, model_label


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--labels", default="{}", help="JSON {model: display label}")
    ap.add_argument("--controls", nargs="*", default=[])
    ap.add_argument("--raw", nargs="+", required=True, help="raw embeddings (.npy), one per model")
    ap.add_argument("--anchor-sets", nargs="*", default=[])
    ap.add_argument("--platonic", nargs="*", default=[], help="Platonic spaces, set by set, models in order")
    ap.add_argument("--atoms", required=True)
    ap.add_argument("--meta", nargs="*", default=[])
    ap.add_argument("--max-points", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    n = len(args.models)
    if len(args.raw) != n or len(args.platonic) != n * len(args.anchor_sets):
        raise SystemExit("ERROR: need one raw file per model and one Platonic file per model and anchor set")
    labels = json.loads(args.labels)
    atoms = pd.read_csv(args.atoms)
    rows = drawn_atoms(args.meta, len(atoms), args.max_points, args.seed)
    ids = atoms["material_id"].astype(str).to_numpy()
    sub = atoms.iloc[rows]
    formula = formulas(atoms["structure_index"].to_numpy(), atoms["element"].tolist())
    hover = [
        f"{e} · {m} · {formula[s]} (atom {a})"
        for e, m, s, a in zip(
            sub["element"], sub["material_id"], sub["structure_index"], sub["atom_index"], strict=True
        )
    ]
    files = {"raw embeddings": args.raw}
    for i, aset in enumerate(args.anchor_sets):
        files[f"Platonic ({anchor_set_label(aset)})"] = args.platonic[i * n : (i + 1) * n]
    try:
        spaces = {
            space: {
                model_label(m, labels, args.controls): checked_rows(p, m, ids, rows)
                for m, p in zip(args.models, paths, strict=True)
            }
            for space, paths in files.items()
        }
    except MatrixError as err:
        raise SystemExit(f"ERROR: {err}") from None
    title = f"PCA maps of {n} models, {len(rows)} atoms (choose a space and a model; hover for the atom)"
    write_page(maps_figure(spaces, sub["Z"].to_numpy(), hover, title), args.out)
    print(f"{len(spaces)} spaces x {n} models, {len(rows)} atoms -> {args.out}")


if __name__ == "__main__":
    run(main)
