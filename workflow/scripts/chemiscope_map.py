"""A chemiscope dataset (ours) of the run's structures over their Platonic maps: open it in chemiscope
(https://chemiscope.org, or chemiscope.show in Jupyter), click a point and see the atom in its crystal."""

from __future__ import annotations

import argparse
import gzip
import json

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.checks import MatrixError, checked_rows
from platonic_mlip.chemistry import family_label
from platonic_mlip.cli import run
from platonic_mlip.embed.base import drawn_atoms
from platonic_mlip.interactive import chemiscope_input
from platonic_mlip.io import atomic_path
from platonic_mlip.plotting import aligned_pcas, anchor_set_label, model_label
from platonic_mlip.structures import load_structures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--labels", default="{}", help="JSON {model: display label}")
    ap.add_argument("--controls", nargs="*", default=[])
    ap.add_argument("--platonic", nargs="+", required=True, help="one Platonic space per model, in order")
    ap.add_argument("--anchor-set", default="direct")
    ap.add_argument("--structures", required=True, help="structures.npz")
    ap.add_argument("--atoms", required=True)
    ap.add_argument("--meta", nargs="*", default=[])
    ap.add_argument("--max-points", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="a .json.gz file")
    args = ap.parse_args(argv)
    import chemiscope

    if len(args.platonic) != len(args.models):
        raise SystemExit("ERROR: need one Platonic file per model")
    labels = json.loads(args.labels)
    atoms = pd.read_csv(args.atoms)
    rows = drawn_atoms(args.meta, len(atoms), args.max_points, args.seed)
    ids = atoms["material_id"].astype(str).to_numpy()
    try:
        spaces = {
            model_label(m, labels, args.controls): checked_rows(p, m, ids, rows)
            for m, p in zip(args.models, args.platonic, strict=True)
        }
    except MatrixError as err:
        raise SystemExit(f"ERROR: {err}") from None
    maps = {name: xy for name, (xy, _, _) in aligned_pcas(spaces).items()}
    sub = atoms.iloc[rows]
    structures, _ = load_structures(args.structures)
    used = np.unique(sub["structure_index"].to_numpy())
    local = {s: i for i, s in enumerate(used.tolist())}
    sites = [(local[s], a) for s, a in zip(sub["structure_index"], sub["atom_in_structure"], strict=True)]
    categories = {
        "chemical family": [family_label(int(z)) for z in sub["Z"]],
        "element": sub["element"].tolist(),
        "material_id": sub["material_id"].tolist(),
    }
    frames, environments, properties, settings = chemiscope_input(
        [structures[s] for s in used], sites, maps, categories
    )
    name = f"Platonic maps ({anchor_set_label(args.anchor_set)} anchors) of {len(args.models)} models"
    data = chemiscope.create_input(
        structures=frames,
        properties=properties,
        environments=environments,
        settings=settings,
        metadata={"name": name, "description": "platonic-mlip: PCA of each model's Platonic space"},
    )
    with atomic_path(args.out) as tmp, gzip.open(tmp, "wb", 9) as fh:
        fh.write(json.dumps(data).encode("utf8"))
    print(f"{len(frames)} structures, {len(environments)} atoms, {len(maps)} maps -> {args.out}")


if __name__ == "__main__":
    run(main)
