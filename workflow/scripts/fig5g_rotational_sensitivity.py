"""Fig. 5g: rotational sensitivity, how far a rigid rotation of a structure moves each atom's embedding.

For every model, space (raw and each Platonic space), rotated probe structure (``probe_structures.py``:
BaCeO3 and a sample of the run's structures, rotated about each axis by each angle) and atom: the
distance of the atom's vector from the same atom's vector in the unrotated (identity) copy, relative to
the space's embedding scale (``spaces.pair_scale`` over the run's atoms every model embedded,
``--scale-pairs`` pairs, ``--seed``). Platonic probe rows are the probes' embeddings projected onto the
run's anchor vectors.

Outputs: ``--out-csv`` per atom (model, label, trained, space, parent, parent_set, atom_in_structure,
element, n_rotations, max_rel_dev, rms_rel_dev); ``--out-summary`` per model, space and parent set
(``BaCeO3`` or ``mp20``): median and maximum over atoms of max_rel_dev, ``invariant`` (maximum <=
``--noise-tol``, OURS 1e-4: numerical noise only) and the verdict; ``--out-skipped`` (model, material_id,
reason): the rotation probes a model's embedding job skipped (listed in its probe metadata), and the
rotated copies left without a reference because their identity copy was skipped; ``--out-fig``: a panel
per model, deviation (log axis, floor 1e-9) against angle for the BaCeO3 atoms, raw solid, the first
Platonic space dashed.
"""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import pandas as pd

from platonic_mlip import rotation as rt
from platonic_mlip.checks import MatrixError
from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.plotting import save
from platonic_mlip.probes import BACEO3
from platonic_mlip.spaces import add_space_arguments, pair_scale, read_spaces

SKIP_COLUMNS = ("model", "material_id", "reason")


def skipped_rows(model: str, meta_path: str, table: pd.DataFrame) -> list[dict]:
    """Skip rows of one model: its skipped rotation probes, and rotated copies whose reference was skipped."""
    with open(meta_path) as fh:
        skipped = {s["material_id"]: s for s in json.load(fh).get("skipped", [])}
    rot = table[table["kind"] == "rotation"]
    rows = []
    for mid in rot["material_id"]:
        if mid in skipped:
            s = skipped[mid]
            reason = s.get("reason") or "skipped by the embedding job"
            if s.get("elements"):
                reason += f" (elements {', '.join(s['elements'])})"
            rows.append({"model": model, "material_id": mid, "reason": reason})
    for row in rt.rotation_pairs(table).itertuples(index=False):
        if row.ref_id in skipped and row.material_id not in skipped:
            reason = f"its unrotated copy {row.ref_id} was skipped: no reference to compare with"
            rows.append({"model": model, "material_id": row.material_id, "reason": reason})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--atoms", required=True, help="the run's atom table")
    ap.add_argument("--probe-table", required=True, help="probes.csv from probe_structures.py")
    ap.add_argument("--probe-atoms", required=True, help="the probes' atom table")
    add_space_arguments(ap)
    add_space_arguments(ap, prefix="probe-")
    ap.add_argument("--noise-tol", type=float, default=rt.NOISE_TOL, help="OURS: relative deviation = noise")
    ap.add_argument("--scale-pairs", type=int, default=20000, help="atom pairs of the embedding scale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--floor", type=float, default=rt.FLOOR, help="figure: lowest deviation drawn")
    ap.add_argument("--out-csv", required=True, help="per model, space and atom")
    ap.add_argument("--out-summary", required=True, help="per model, space and parent set")
    ap.add_argument("--out-skipped", required=True)
    ap.add_argument("--out-fig", nargs="+", required=True)
    ap.add_argument("--dpi", type=int, default=150)
    args = ap.parse_args(argv)

    ids = pd.read_csv(args.atoms, usecols=["material_id"], dtype=str)["material_id"].to_numpy()
    probe_atoms = pd.read_csv(args.probe_atoms, usecols=["material_id", "element"], dtype=str)
    table = pd.read_csv(args.probe_table, dtype={"material_id": str, "parent": str, "axis": str})
    table["axis"] = table["axis"].fillna("")
    if len(table) and int(table["atom_stop"].max()) != len(probe_atoms):
        raise SystemExit(
            f"ERROR: {args.probe_table} covers {int(table['atom_stop'].max())} atoms, {args.probe_atoms} "
            f"has {len(probe_atoms)}: not the same probe set"
        )
    try:
        run_spaces = read_spaces(args, ids)
        probe_spaces = read_spaces(args, probe_atoms["material_id"].to_numpy(), prefix="probe-")
        rt.rotation_pairs(table)
    except (MatrixError, ValueError) as err:
        raise SystemExit(f"ERROR: {err}") from None
    valid = run_spaces.valid().nonzero()[0]
    elements = probe_atoms["element"].to_numpy()

    sets = [s for s in (BACEO3, rt.MP20) if s in set(table["parent"].map(rt.parent_set))]
    atom_rows, summary_rows, skips, curves = [], [], [], {}
    for i, model in enumerate(run_spaces.models):
        skips += skipped_rows(model, args.probe_meta[i], table)
        model_curves = []
        for space in run_spaces.spaces:
            scale = pair_scale(run_spaces.get(space, model), valid, args.scale_pairs, args.seed)
            dev = rt.rotation_deviations(probe_spaces.get(space, model), table, scale, elements)
            atoms = rt.per_atom(dev)
            summary = rt.summarise(atoms, args.noise_tol, sets)
            summary.insert(0, "scale", scale)
            ident = {
                "model": model,
                "label": run_spaces.labels.get(model, model),
                "trained": model not in run_spaces.controls,
                "space": space,
            }
            for frame in (atoms, summary):
                for col, value in reversed(ident.items()):
                    frame.insert(0, col, value)
            atom_rows.append(atoms)
            summary_rows.append(summary)
            model_curves.append(dev.assign(space=space))
        curves[model] = pd.concat(model_curves, ignore_index=True)
    per_atom = pd.concat(atom_rows, ignore_index=True)
    summary = pd.concat(summary_rows, ignore_index=True)
    fig = rt.rotation_figure(
        curves,
        {m: run_spaces.label(m) for m in run_spaces.models},
        run_spaces.spaces,
        noise_tol=args.noise_tol,
        floor=args.floor,
        untrained=run_spaces.controls,
    )
    write_csv(args.out_skipped, pd.DataFrame(skips, columns=list(SKIP_COLUMNS)))
    write_csv(args.out_summary, summary)
    save(fig, *args.out_fig, dpi=args.dpi)
    write_csv(args.out_csv, per_atom)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(summary.drop(columns=["label", "verdict"]).to_string(index=False))
    if skips:
        print(f"{len(skips)} rotation probe(s) skipped; see {args.out_skipped}")


if __name__ == "__main__":
    run(main)
