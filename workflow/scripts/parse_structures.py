"""Parse every CIF of a split CSV with ASE (file order); write structures, atom table and a summary."""

from __future__ import annotations

import argparse
import collections

import _paths  # noqa: F401

from platonic_mlip.io import write_csv, write_json
from platonic_mlip.structures import StructureError, atom_table, read_split_csv, save_structures, sha256_of


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--expected-structures", type=int, default=None)
    ap.add_argument("--expected-atoms", type=int, default=None)
    ap.add_argument("--out-structures", required=True)
    ap.add_argument("--out-atoms", required=True)
    ap.add_argument("--out-summary", required=True)
    args = ap.parse_args(argv)
    try:
        atoms_list, ids, sgs = read_split_csv(args.csv, limit=args.limit)
    except StructureError as err:
        raise SystemExit(f"ERROR: {err}") from None
    table = atom_table(atoms_list, ids, sgs)
    n_struct, n_atoms = len(atoms_list), len(table)
    if args.limit is None:  # counts describe the whole split; a limited run is a slice of it
        for what, got, want, key in (
            ("structures", n_struct, args.expected_structures, "expected_structures"),
            ("atoms", n_atoms, args.expected_atoms, "expected_atoms"),
        ):
            if want is not None and got != want:
                raise SystemExit(
                    f"ERROR: {args.csv}: parsed {got} {what}, but config key 'structures.{key}' says {want}"
                )
    save_structures(args.out_structures, atoms_list, ids)
    write_csv(args.out_atoms, table)
    counts = collections.Counter(table["element"])
    write_json(
        args.out_summary,
        {
            "source_csv": args.csv,
            "source_sha256": sha256_of(args.csv),
            "limit": args.limit,
            "n_structures": n_struct,
            "n_atoms": n_atoms,
            "n_elements": len(counts),
            "atoms_per_structure": {
                "min": int(table.groupby("structure_index").size().min()),
                "max": int(table.groupby("structure_index").size().max()),
            },
            "element_counts": dict(sorted(counts.items())),
        },
    )
    print(f"{n_struct} structures, {n_atoms} atoms, {len(counts)} elements")


if __name__ == "__main__":
    main()
