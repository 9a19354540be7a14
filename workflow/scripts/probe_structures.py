"""Probe structures (rotated and perturbed copies) for the rotation test (Fig. 5g) and the atypical test.

Rotations: cubic BaCeO3 (Pm-3m, lattice parameter ``--bacec-a``, OURS 4.44 A) and ``--mp20-structures``
(OURS 4) structures of the run drawn with the seed; per parent one unrotated copy (variant ``identity``,
the reference) and one rigid rotation (cell vectors and Cartesian positions together) per axis in
``--axes`` (OURS 0,0,1 and 1,1,1) and angle in ``--angles`` (OURS 15 30 45 60 90 135 180 degrees).

Perturbations (OURS): ``--holdout-fraction`` (0.2) of the run's structures, drawn with the seed, are held
out (``--out-holdout``: the atypical reference leaves them out); ``--n-perturbed`` (30) of those get one
copy per perturbation in ``--perturbations`` (rattle with ``--rattle-sigma`` 0.1 A, isotropic
``--strain`` 0.08, swap_within_group, swap_across_groups, remove_atom; ``platonic_mlip.probes``).

Outputs: ``--out-structures`` (structures.npz format), ``--out-atoms`` (the atom table of the probes,
spacegroup -1), ``--out-table`` (one row per probe: probe_index, material_id, parent, kind, variant,
axis, angle_deg, n_atoms, atom_start, atom_stop, detail), ``--out-holdout`` (material_id,
structure_index) and ``--out-skipped`` (default ``probes_skipped.csv`` next to ``--out-table``): every
perturbation that could not be made (no replacement element in the run, a single-atom structure,
rattle draws that kept failing the geometry check), with columns material_id (the probe id it would
have had), parent, kind, variant, reason. Deterministic given ``--seed``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip import probes as pr
from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.structures import DEFAULT_MIN_DISTANCE, atom_table, load_structures, save_structures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--structures", required=True, help="the run's structures.npz")
    ap.add_argument("--atoms", required=True, help="the run's atom table (atoms.csv)")
    ap.add_argument("--axes", nargs="+", default=list(pr.DEFAULT_AXES), help="rotation axes, e.g. 0,0,1")
    ap.add_argument("--angles", nargs="+", type=float, default=list(pr.DEFAULT_ANGLES), help="degrees")
    ap.add_argument("--mp20-structures", type=int, default=4, help="run structures rotated (OURS)")
    ap.add_argument(
        "--bacec-a", "--baceo3-a", dest="bacec_a", type=float, default=pr.BACEO3_A, help="BaCeO3 a (A)"
    )
    ap.add_argument("--holdout-fraction", type=float, default=0.2, help="held-out structures (OURS)")
    ap.add_argument("--n-perturbed", type=int, default=30, help="held-out structures perturbed (OURS)")
    ap.add_argument("--perturbations", nargs="*", default=list(pr.PERTURBATIONS), choices=pr.PERTURBATIONS)
    ap.add_argument("--rattle-sigma", type=float, default=pr.RATTLE_SIGMA, help="A (OURS)")
    ap.add_argument("--strain", type=float, default=pr.STRAIN, help="isotropic strain (OURS)")
    ap.add_argument("--min-distance", type=float, default=DEFAULT_MIN_DISTANCE, help="geometry check (A)")
    ap.add_argument("--attempts", type=int, default=pr.ATTEMPTS, help="rattle draws before a skip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-structures", required=True)
    ap.add_argument("--out-atoms", required=True)
    ap.add_argument("--out-table", required=True)
    ap.add_argument("--out-holdout", required=True)
    ap.add_argument("--out-skipped", default=None, help="default: probes_skipped.csv next to --out-table")
    args = ap.parse_args(argv)

    if args.mp20_structures < 0 or args.n_perturbed < 0:
        raise SystemExit("ERROR: --mp20-structures and --n-perturbed must be >= 0")
    if not 0.0 <= args.holdout_fraction < 1.0:
        raise SystemExit(f"ERROR: --holdout-fraction {args.holdout_fraction}: must be in [0, 1)")
    structures, ids = load_structures(args.structures)
    table = pd.read_csv(args.atoms, usecols=["material_id", "Z"], dtype={"material_id": str})
    n_atoms = sum(len(a) for a in structures)
    if len(table) != n_atoms:
        raise SystemExit(
            f"ERROR: {args.atoms} has {len(table)} atoms, {args.structures} {n_atoms}: not the same run"
        )
    run_elements = sorted(set(table["Z"].astype(int)))

    parents = [(pr.BACEO3, pr.bacec_o3(args.bacec_a))]
    picked = pr.rotation_parent_indices(len(structures), args.mp20_structures, args.seed)
    parents += [(ids[i], structures[i]) for i in picked]
    try:
        rotations = pr.rotation_probes(parents, args.axes, args.angles)
    except ValueError as err:
        raise SystemExit(f"ERROR: --axes/--angles: {err}") from None

    held = pr.holdout_indices(len(structures), args.holdout_fraction, args.seed)
    chosen = pr.perturbed_indices(held, args.n_perturbed, args.seed)
    if args.n_perturbed > len(held):
        print(f"WARNING: --n-perturbed {args.n_perturbed} > {len(held)} held-out structures: all perturbed")
    perturbed, skips = pr.perturbation_probes(
        [(int(i), ids[i], structures[i]) for i in chosen],
        args.perturbations,
        args.seed,
        run_elements,
        rattle_sigma=args.rattle_sigma,
        strain_value=args.strain,
        min_distance=args.min_distance,
        attempts=args.attempts,
    )
    probes = rotations + perturbed
    try:
        frame = pr.probe_table(probes)
    except ValueError as err:
        raise SystemExit(f"ERROR: {err}") from None
    atoms_list = [p.atoms for p in probes]
    out_skipped = args.out_skipped or str(Path(args.out_table).with_name("probes_skipped.csv"))
    save_structures(args.out_structures, atoms_list, frame["material_id"].tolist())
    write_csv(args.out_atoms, atom_table(atoms_list, frame["material_id"].tolist(), [-1] * len(probes)))
    write_csv(
        args.out_holdout,
        pd.DataFrame({"material_id": [ids[i] for i in held], "structure_index": held.astype(np.int64)}),
    )
    write_csv(out_skipped, pr.skip_table(skips))
    write_csv(args.out_table, frame)  # written last: the set is complete when the table exists
    kinds = frame.groupby("kind")["n_atoms"].agg(["count", "sum"])
    print(
        f"{len(frame)} probe structures ({int(frame['n_atoms'].sum())} atoms): "
        + ", ".join(f"{k} {int(r['count'])} ({int(r['sum'])} atoms)" for k, r in kinds.iterrows())
        + f"; {len(held)} held out, {len(chosen)} perturbed, {len(skips)} perturbation(s) skipped"
    )
    for s in skips:
        print(f"skipped {s.material_id}: {s.reason}")


if __name__ == "__main__":
    run(main)
