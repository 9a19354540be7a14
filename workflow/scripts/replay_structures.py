"""Replay structures of the fine-tuning experiment: run structures drawn with a seed (OURS).

The pretraining data of a foundation model are not at hand, so the arms that rehearse (multihead: the
original head trained on them; replay: sevenn's rehearsal) use structures of the run instead, labelled by
the pretrained model itself inside the fine-tuning job. ``--n`` structures with at most ``--max-atoms``
atoms and none of ``--exclude-elements`` are drawn with ``--seed``; written (unlabelled) as extended XYZ
with ``material_id`` in each frame's info line, atomically.
"""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import numpy as np

from platonic_mlip.cli import run
from platonic_mlip.io import atomic_path
from platonic_mlip.structures import load_structures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--structures", required=True, help="the run's structures.npz")
    ap.add_argument("--n", type=int, required=True, help="structures drawn (OURS)")
    ap.add_argument("--max-atoms", type=int, default=40, help="largest structure drawn (OURS)")
    ap.add_argument("--exclude-elements", nargs="*", default=[], help="structures with these are not drawn")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.n < 1:
        raise SystemExit(f"ERROR: config key 'finetune.replay.structures' is {args.n}: must be >= 1")
    atoms_list, ids = load_structures(args.structures)
    excluded = set(args.exclude_elements)
    pool = [
        i
        for i, a in enumerate(atoms_list)
        if len(a) <= args.max_atoms and not excluded & set(a.get_chemical_symbols())
    ]
    if len(pool) < args.n:
        raise SystemExit(
            f"ERROR: {args.structures}: only {len(pool)} structures with <= {args.max_atoms} atoms and "
            f"none of {sorted(excluded)}; config key 'finetune.replay.structures' asks for {args.n}"
        )
    pick = np.sort(np.random.default_rng(args.seed).choice(pool, size=args.n, replace=False))
    from ase.io import write

    frames = []
    for i in pick:
        a = atoms_list[int(i)]
        a.info["material_id"] = ids[int(i)]
        frames.append(a)
    with atomic_path(args.out, keep_suffix=True) as tmp:
        write(str(tmp), frames, format="extxyz")
    n_atoms = sum(len(a) for a in frames)
    print(f"replay: {len(frames)} structures, {n_atoms} atoms, from {len(pool)} eligible")


if __name__ == "__main__":
    run(main)
