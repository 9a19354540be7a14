"""Structures embedded by every checkpoint of the fine-tuning experiment (paper Fig. 5a-c).

Three roles, in this order in ``--out-structures`` (structures.npz format):
``au_probe`` every frame of ``--au`` (Au bulk, rattled cells, slabs, clusters, dimers: an element the Cu data
never hold); ``cu_test`` every frame of ``--cu-test`` (held-out Cu structures); ``run`` the run structures
holding the atoms of the anchor set ``--anchors`` (so every checkpoint can also be projected onto its own
embeddings of the anchor atoms, beside the pretrained model's fixed anchor vectors).

``--out-atoms``: one row per atom: row, role, structure (index into the npz), material_id, kind (the
frame's ``kind``; ``run`` for run structures), element, Z, atom_in_structure, anchor (the anchor's
index for an anchor atom, else -1).
"""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.structures import load_structures, save_structures

ROLES = ("au_probe", "cu_test", "run")


def read_frames(path: str, role: str) -> list:
    from ase import Atoms
    from ase.io import read

    try:
        frames = read(path, index=":", format="extxyz")
    except FileNotFoundError as err:
        raise SystemExit(f"ERROR: {role} structures {path}: file not found") from err
    out = []
    for i, a in enumerate(frames):
        mid = str(a.info.get("material_id", f"{role}-{i}"))
        clean = Atoms(numbers=a.numbers, positions=a.positions, cell=a.cell[:], pbc=a.pbc)
        clean.info.update(material_id=mid, kind=str(a.info.get("kind", role)))
        out.append(clean)
    if not out:
        raise SystemExit(f"ERROR: {role} structures {path}: no frames")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--au", required=True, help="Au probe structures (extxyz from finetune_data)")
    ap.add_argument("--cu-test", required=True, help="held-out Cu structures (extxyz from finetune_data)")
    ap.add_argument("--structures", required=True, help="the run's structures.npz")
    ap.add_argument(
        "--anchors", required=True, help="the anchor set's CSV (atom_index, structure_index, ...)"
    )
    ap.add_argument("--out-structures", required=True)
    ap.add_argument("--out-atoms", required=True)
    args = ap.parse_args(argv)

    groups = {"au_probe": read_frames(args.au, "au_probe"), "cu_test": read_frames(args.cu_test, "cu_test")}
    anchors = pd.read_csv(args.anchors)
    missing = {"anchor", "structure_index", "atom_in_structure"} - set(anchors.columns)
    if missing:
        raise SystemExit(f"ERROR: {args.anchors}: missing column(s) {', '.join(sorted(missing))}")
    run_atoms, run_ids = load_structures(args.structures)
    wanted = sorted(set(int(s) for s in anchors["structure_index"]))
    bad = [s for s in wanted if not 0 <= s < len(run_atoms)]
    if bad:
        raise SystemExit(f"ERROR: {args.anchors}: structure_index {bad[0]} not in {args.structures}")
    anchor_structs = []
    for s in wanted:
        a = run_atoms[s].copy()
        a.info.update(material_id=run_ids[s], kind="run", structure_index=s)
        anchor_structs.append(a)
    groups["run"] = anchor_structs

    atoms_list, ids, rows = [], [], []
    anchor_at = {
        (int(r.structure_index), int(r.atom_in_structure)): int(r.anchor) for r in anchors.itertuples()
    }
    for role in ROLES:
        for a in groups[role]:
            s = len(atoms_list)
            mid = str(a.info["material_id"])
            for j, (z, el) in enumerate(zip(a.numbers, a.get_chemical_symbols(), strict=True)):
                key = (int(a.info.get("structure_index", -1)), j)
                rows.append(
                    dict(
                        role=role,
                        structure=s,
                        material_id=mid,
                        kind=str(a.info["kind"]),
                        element=el,
                        Z=int(z),
                        atom_in_structure=j,
                        anchor=anchor_at.get(key, -1) if role == "run" else -1,
                    )
                )
            atoms_list.append(a)
            ids.append(f"{role}:{mid}")
    table = pd.DataFrame(rows)
    table.insert(0, "row", np.arange(len(table)))
    found = sorted(table.loc[table["anchor"] >= 0, "anchor"])
    if found != sorted(anchors["anchor"].astype(int)):
        raise SystemExit(f"ERROR: {args.anchors}: anchor atoms not all found in their structures")
    save_structures(args.out_structures, atoms_list, ids)
    write_csv(args.out_atoms, table)
    counts = table.groupby("role").size().to_dict()
    print(f"finetune probes: {len(atoms_list)} structures, atoms per role {counts}")


if __name__ == "__main__":
    run(main)
