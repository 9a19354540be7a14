"""MP-20 split CSVs (CDVAE format) -> ASE structures, a per-atom table and a compact structure file.

The per-atom order is the paper's: structures in CSV row order, then ASE atom order within each CIF.
"""

from __future__ import annotations

import csv
import hashlib
import io
import sys
import time
import urllib.request
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REQUIRED_COLUMNS = ("material_id", "cif")
SPACEGROUP_COLUMN = "spacegroup.number"
ATOM_COLUMNS = (
    "atom_index",
    "structure_index",
    "material_id",
    "atom_in_structure",
    "Z",
    "element",
    "spacegroup",
)


class StructureError(ValueError):
    """Bad structure input; the message names the file, row and material_id."""


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` atomically (``dest`` appears only when complete and verified).

    Retries ``retries`` times with exponential backoff; with ``sha256`` the file must match or a
    StructureError names both digests. ``file://`` URLs and plain paths are copied the same way.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    if "://" not in url:
        url = Path(url).resolve().as_uri()
    last: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(tmp, "wb") as fh:
                while block := resp.read(1 << 20):
                    fh.write(block)
            break
        except OSError as err:  # URLError, HTTPError and socket errors are OSErrors
            last = err
            print(f"download {url}: attempt {attempt}/{retries} failed: {err}", file=sys.stderr)
            if attempt < retries:
                time.sleep(backoff_s * 2 ** (attempt - 1))
    else:
        tmp.unlink(missing_ok=True)
        raise StructureError(f"could not download {url} after {retries} attempts: {last}")
    if sha256:
        got = sha256_of(tmp)
        if got.lower() != sha256.lower():
            tmp.unlink(missing_ok=True)
            raise StructureError(f"{url}: sha256 mismatch: expected {sha256}, got {got}")
    tmp.replace(dest)
    return dest


def read_split_csv(path: str | Path, limit: int | None = None):
    """Parse an MP-20 split CSV (CDVAE columns) with ASE, in file order.

    Returns (atoms_list, material_ids, spacegroups); spacegroups holds -1 where the column is absent.
    ``limit`` keeps only the first ``limit`` rows. Raises StructureError naming the file, data row
    (1-based, header excluded) and material_id of the first row that cannot be used.
    """
    from ase.io import read

    path = Path(path)
    if not path.exists():
        raise StructureError(f"{path}: structure CSV not found")
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise StructureError(f"{path}: the CSV is empty (no header, no rows)")
        missing = [c for c in REQUIRED_COLUMNS if c not in reader.fieldnames]
        if missing:
            raise StructureError(
                f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(reader.fieldnames)}"
            )
        atoms_list, ids, sgs = [], [], []
        seen: dict[str, int] = {}
        for row_no, row in enumerate(reader, start=1):
            if limit is not None and row_no > limit:
                break
            mid = (row.get("material_id") or "").strip()
            where = f"{path}: data row {row_no} (material_id {mid or '<empty>'})"
            if not mid:
                raise StructureError(f"{where}: empty material_id")
            if mid in seen:
                raise StructureError(f"{where}: duplicate material_id (first at data row {seen[mid]})")
            seen[mid] = row_no
            cif = row.get("cif") or ""
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    atoms = read(io.StringIO(cif), format="cif")
            except Exception as err:  # ASE raises many types on bad CIFs
                raise StructureError(f"{where}: CIF does not parse: {type(err).__name__}: {err}") from err
            if len(atoms) == 0:
                raise StructureError(f"{where}: CIF has no atoms")
            sg_raw = (row.get(SPACEGROUP_COLUMN) or "").strip()
            try:
                sg = int(float(sg_raw)) if sg_raw else -1
            except ValueError as err:
                raise StructureError(f"{where}: bad {SPACEGROUP_COLUMN} {sg_raw!r}") from err
            atoms_list.append(atoms)
            ids.append(mid)
            sgs.append(sg)
    if not atoms_list:
        raise StructureError(f"{path}: the CSV has a header but no structures")
    return atoms_list, ids, sgs


def atom_table(atoms_list: Sequence, material_ids: Sequence[str], spacegroups: Sequence[int]):
    """Per-atom table (pandas DataFrame) with columns ATOM_COLUMNS, one row per atom in flat order."""
    import pandas as pd

    n = np.array([len(a) for a in atoms_list])
    struct = np.repeat(np.arange(len(atoms_list)), n)
    numbers = np.concatenate([a.numbers for a in atoms_list]).astype(np.int64)
    symbols = np.concatenate([a.get_chemical_symbols() for a in atoms_list])
    return pd.DataFrame(
        {
            "atom_index": np.arange(int(n.sum())),
            "structure_index": struct,
            "material_id": np.asarray(material_ids, dtype=object)[struct],
            "atom_in_structure": np.concatenate([np.arange(k) for k in n]),
            "Z": numbers,
            "element": symbols,
            "spacegroup": np.asarray(spacegroups, dtype=np.int64)[struct],
        }
    )


def save_structures(path: str | Path, atoms_list: Sequence, material_ids: Sequence[str]) -> None:
    """Write structures exactly (float64 positions and cells) to a compressed ``.npz``."""
    n = np.array([len(a) for a in atoms_list], dtype=np.int64)
    arrays = dict(
        n_atoms=n,
        numbers=np.concatenate([a.numbers for a in atoms_list]).astype(np.int64),
        positions=np.concatenate([a.positions for a in atoms_list]).astype(np.float64),
        cells=np.stack([np.asarray(a.cell[:], dtype=np.float64) for a in atoms_list]),
        pbc=np.stack([a.pbc for a in atoms_list]).astype(bool),
        material_ids=np.asarray(material_ids, dtype=str),
    )
    path = Path(path)
    tmp = path.with_name(path.name + ".part.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def load_structures(path: str | Path, start: int = 0, stop: int | None = None):
    """Read structures written by ``save_structures``; returns (atoms_list, material_ids).

    ``start``/``stop`` select a contiguous range of structures (for sharded jobs).
    """
    from ase import Atoms

    with np.load(path) as z:
        n = z["n_atoms"]
        offsets = np.concatenate([[0], np.cumsum(n)])
        stop = len(n) if stop is None else min(stop, len(n))
        numbers, positions = z["numbers"], z["positions"]
        cells, pbc, ids = z["cells"], z["pbc"], z["material_ids"]
        atoms_list = [
            Atoms(
                numbers=numbers[offsets[i] : offsets[i + 1]],
                positions=positions[offsets[i] : offsets[i + 1]],
                cell=cells[i],
                pbc=pbc[i],
            )
            for i in range(start, stop)
        ]
        return atoms_list, [str(m) for m in ids[start:stop]]
