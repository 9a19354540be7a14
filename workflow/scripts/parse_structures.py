"""Read the structures (MP-20 CSV, extended XYZ, CIF file or folder of CIF files), validate them and
write the exact structures, the per-atom table and a summary."""

from __future__ import annotations

import argparse
import collections
import hashlib
from pathlib import Path

import _paths  # noqa: F401

from platonic_mlip.cli import run
from platonic_mlip.io import write_csv, write_json
from platonic_mlip.structures import (
    FORMATS,
    StructureError,
    atom_table,
    cif_files,
    read_structures,
    save_structures,
    sha256_of,
)


def source_digest(path: Path) -> str:
    """sha256 of a file; of a folder, the sha256 of its '<name> <sha256>' lines (its CIF files)."""
    if not path.is_dir():
        return sha256_of(path)
    lines = "".join(f"{p.name} {sha256_of(p)}\n" for p in cif_files(path))
    return hashlib.sha256(lines.encode()).hexdigest()


def check_counts(args, parsed, n_atoms):
    """expected_structures describes the whole source; expected_atoms is checkable only unlimited."""
    checks = {"expected_structures": (parsed.n_total, args.expected_structures)}
    if args.limit is None:
        checks["expected_atoms"] = (n_atoms, args.expected_atoms)
    elif args.expected_atoms is not None:
        print(
            f"note: config key 'structures.expected_atoms' ({args.expected_atoms}) not checked: "
            f"'structures.limit' ({args.limit}) parses only part of the source"
        )
    for key, (got, want) in checks.items():
        if want is not None and got != want:
            what = key.split("_")[1]
            raise StructureError(
                f"{args.name}: has {got} {what}, but config key 'structures.{key}' says {want}"
            )
    return {k: v[1] is not None for k, v in checks.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", required=True, help="the file or folder to read")
    ap.add_argument("--name", default=None, help="how messages name the source (default: --source)")
    ap.add_argument("--format", default="auto", choices=FORMATS)
    ap.add_argument("--id-key", default="material_id")
    ap.add_argument("--min-distance", type=float, default=0.5, help="Angstrom; 0 = no check")
    ap.add_argument("--sha256", default=None, help="required digest of a local source file")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--expected-structures", type=int, default=None)
    ap.add_argument("--expected-atoms", type=int, default=None)
    ap.add_argument("--out-structures", required=True)
    ap.add_argument("--out-atoms", required=True)
    ap.add_argument("--out-summary", required=True)
    args = ap.parse_args(argv)
    args.name = args.name or args.source
    source = Path(args.source)
    try:
        if not source.exists():
            raise StructureError(f"{args.name}: not found")
        digest = source_digest(source)
        if args.sha256 and digest.lower() != args.sha256.lower():
            raise StructureError(
                f"{args.name}: sha256 mismatch: config key 'structures.sha256' says {args.sha256}, "
                f"the file has {digest}"
            )
        parsed = read_structures(
            source,
            args.format,
            limit=args.limit,
            min_distance=args.min_distance or None,
            id_key=args.id_key,
            name=args.name,
        )
        table = atom_table(parsed.atoms, parsed.material_ids, parsed.spacegroups)
        checked = check_counts(args, parsed, len(table))
    except StructureError as err:
        raise SystemExit(f"ERROR: {err}") from None
    save_structures(args.out_structures, parsed.atoms, parsed.material_ids)
    write_csv(args.out_atoms, table)
    counts = collections.Counter(table["element"])
    sizes = table.groupby("structure_index").size()
    write_json(
        args.out_summary,
        {
            "source": args.name,
            "source_format": args.format,
            "source_sha256": digest,
            "limit": args.limit,
            "min_distance": args.min_distance or None,
            "n_structures_in_source": parsed.n_total,
            "n_structures": len(parsed.atoms),
            "n_atoms": len(table),
            "n_elements": len(counts),
            "counts_checked": checked,
            "atoms_per_structure": {"min": int(sizes.min()), "max": int(sizes.max())},
            "element_counts": dict(sorted(counts.items())),
        },
    )
    print(f"{args.name}: {len(parsed.atoms)} structures, {len(table)} atoms, {len(counts)} elements")


if __name__ == "__main__":
    run(main)
