"""Per-structure properties of the run's structures, for the stitching readouts (``zero_shot_stitching.py``).

Writes ``--out``: material_id (the run's structures, in run order) and the numeric columns of ``PROPERTIES``
that the source has:

* an MP-20 (CDVAE) CSV (``mp20-csv``): its columns formation_energy_per_atom, band_gap, e_above_hull,
  where present; a value that is not a number (or a structure the CSV lacks) becomes NaN and is counted
  in the log;
* an extended XYZ file (``extxyz``): the frames' info keys of those names, where present; frames matched
  by the info key ``material_id`` or, without one, by the generated id ``<file stem>-<frame>`` (as the
  structures step names them);
* CIF files (``cif``, ``cif-dir``): no properties, a table of material_id only.

A table without a property makes stitching list that structure task as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.structures import FORMATS, StructureError, source_format

PROPERTIES = ("formation_energy_per_atom", "band_gap", "e_above_hull")


def run_ids(structures: str | None, atoms: str | None) -> list[str]:
    """material_id of the run's structures, in run order (from structures.npz or atoms.csv)."""
    if structures:
        with np.load(structures) as z:
            return [str(m) for m in z["material_ids"]]
    table = pd.read_csv(atoms, usecols=["structure_index", "material_id"], dtype={"material_id": str})
    return table.drop_duplicates("structure_index").sort_values("structure_index")["material_id"].tolist()


def to_float(value) -> float:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return float("nan")


def from_csv(path: Path) -> dict[str, dict[str, object]]:
    """{material_id: {property: raw value}} of the CSV's property columns (first row of a repeated id)."""
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "material_id" not in reader.fieldnames:
            raise SystemExit(f"ERROR: {path}: no material_id column")
        cols = [c for c in PROPERTIES if c in reader.fieldnames]
        out: dict[str, dict[str, object]] = {}
        for row in reader:
            mid = (row.get("material_id") or "").strip()
            if mid and mid not in out:
                out[mid] = {c: row.get(c) for c in cols}
    return out


def from_extxyz(path: Path, id_key: str = "material_id") -> dict[str, dict[str, object]]:
    from ase.io import read

    frames = read(path, index=":", format="extxyz")
    out: dict[str, dict[str, object]] = {}
    for i, atoms in enumerate(frames):
        mid = str(atoms.info[id_key]).strip() if id_key in atoms.info else f"{path.stem}-{i}"
        out.setdefault(mid, {c: atoms.info[c] for c in PROPERTIES if c in atoms.info})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True, help="the run's structure source (config structures.source)")
    ap.add_argument("--format", default="auto", choices=FORMATS, help="config structures.format")
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--structures", help="structures.npz of the run (material_ids, run order)")
    which.add_argument("--atoms", help="atom table of the run (atoms.csv)")
    ap.add_argument("--out", required=True, help="properties.csv")
    args = ap.parse_args(argv)
    ids = run_ids(args.structures, args.atoms)
    source = Path(args.source)
    try:
        fmt = source_format(source, args.format)
    except StructureError as err:
        raise SystemExit(f"ERROR: {err}") from None
    if not source.exists():
        raise SystemExit(f"ERROR: {source}: structure source not found")
    if fmt == "mp20-csv":
        values = from_csv(source)
    elif fmt == "extxyz":
        values = from_extxyz(source)
    else:
        values = {}
    cols = [c for c in PROPERTIES if any(c in v for v in values.values())]
    table = pd.DataFrame({"material_id": ids})
    missing = [m for m in ids if m not in values]
    if missing and cols:
        print(f"{source}: {len(missing)} structure(s) of the run not found (NaN): {', '.join(missing[:5])}")
    for c in cols:
        raw = [values.get(m, {}).get(c) for m in ids]
        table[c] = [to_float(v) for v in raw]
        bad = sum(1 for v, x in zip(raw, table[c], strict=True) if v is not None and np.isnan(x))
        if bad:
            print(f"{source}: {c}: {bad} value(s) that are not numbers (NaN)")
    write_csv(args.out, table)
    absent = [c for c in PROPERTIES if c not in cols]
    print(
        f"{len(ids)} structures ({fmt}): properties {', '.join(cols) or 'none'}"
        + (f"; not in the source: {', '.join(absent)}" if absent else "")
    )


if __name__ == "__main__":
    run(main)
