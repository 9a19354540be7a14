"""Structure sources (MP-20 CSV, extended XYZ, CIF files) -> ASE structures, an atom table, a
compact structure file.

The per-atom order is the paper's: structures in source order (CSV rows), then ASE atom order
within each structure.
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
from typing import NamedTuple

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


def fetch(url: str, dest: str | Path, sha256: str | None = None, **options) -> Path:
    """Download ``url`` to ``dest`` atomically: ``fetch_with_headers`` without the headers."""
    return fetch_with_headers(url, dest, sha256, **options)[0]


def fetch_with_headers(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
) -> tuple[Path, dict[str, str]]:
    """Download ``url`` to ``dest`` atomically (``dest`` appears only when complete and verified).

    Retries ``retries`` times with exponential backoff; with ``sha256`` the file must match or a
    StructureError names both digests. ``file://`` URLs and plain paths are copied the same way.
    The temporary file is removed on every failure; a full disk is not retried (``DiskFullError``).
    Returns ``(dest, headers)`` with the ETag, Last-Modified and Content-Length headers the server
    sent (those present), so that a run records which version of a remote file it used.
    """
    from platonic_mlip.io import atomic_path, is_disk_full

    dest = Path(dest)
    if "://" not in url:
        url = Path(url).resolve().as_uri()
    last: Exception | None = None
    headers: dict[str, str] = {}
    with atomic_path(dest) as tmp:  # removed on any failure; renamed onto dest when verified
        for attempt in range(1, retries + 1):
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(tmp, "wb") as fh:
                    headers = {
                        k: resp.headers[k]
                        for k in ("ETag", "Last-Modified", "Content-Length")
                        if resp.headers.get(k)
                    }
                    while block := resp.read(1 << 20):
                        fh.write(block)
                break
            except OSError as err:  # URLError, HTTPError and socket errors are OSErrors
                if is_disk_full(err):
                    raise  # not retried: atomic_path names the file
                last = err
                print(f"download {url}: attempt {attempt}/{retries} failed: {err}", file=sys.stderr)
                if attempt < retries:
                    time.sleep(backoff_s * 2 ** (attempt - 1))
        else:
            raise StructureError(f"could not download {url} after {retries} attempts: {last}")
        if sha256:
            got = sha256_of(tmp)
            if got.lower() != sha256.lower():
                raise StructureError(f"{url}: sha256 mismatch: expected {sha256}, got {got}")
    return dest, headers


# --------------------------------------------------------------------------------------------------
# Reading structures: the MP-20 CSV, extended XYZ, a CIF file, a folder of CIF files
# --------------------------------------------------------------------------------------------------

#: input formats of ``read_structures`` (config key ``structures.format``); ``auto`` goes by the name
FORMATS = ("auto", "mp20-csv", "extxyz", "cif", "cif-dir")
_SUFFIX_FORMATS = {".csv": "mp20-csv", ".xyz": "extxyz", ".extxyz": "extxyz", ".cif": "cif"}
#: OURS: closest allowed distance between two atoms (Angstrom); MP-20's closest pair is ~0.74 A (H2)
DEFAULT_MIN_DISTANCE = 0.5


class StructureSet(NamedTuple):
    """Structures read from a source, in source order.

    atoms : list of ase.Atoms; material_ids : list of str (unique); spacegroups : list of int (-1
    where the source has none); n_total : structures in the whole source (``limit`` ignored).
    """

    atoms: list
    material_ids: list
    spacegroups: list
    n_total: int


def source_format(source: str | Path, fmt: str = "auto") -> str:
    """The input format of ``source`` (a path or URL): ``fmt`` unless ``auto``, else by its name."""
    if fmt != "auto":
        if fmt not in FORMATS:
            raise StructureError(
                f"config key 'structures.format': {fmt!r} is not one of {', '.join(FORMATS)}"
            )
        return fmt
    text = str(source)
    if "://" not in text and Path(text).is_dir():
        return "cif-dir"
    suffix = Path(text.split("?", 1)[0]).suffix.lower()
    if suffix in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffix]
    raise StructureError(
        f"config key 'structures.source': cannot tell the format of {text} from its name (use .csv for "
        f"an MP-20/CDVAE CSV, .xyz/.extxyz, .cif, or a folder of .cif files), or set "
        f"'structures.format' to one of {', '.join(FORMATS[1:])}"
    )


def cif_files(folder: str | Path) -> list[Path]:
    """The ``*.cif`` files of a folder (not its subfolders), sorted by name: the structure order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StructureError(f"config key 'structures.source': folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".cif" and p.is_file())
    if not files:
        raise StructureError(f"{folder}: the folder has no .cif files")
    return files


def closest_pair(atoms, cutoff: float):
    """The closest two atoms (periodic images included) if closer than ``cutoff``, else None.

    Returns ``(i, j, distance)`` with i <= j (i == j: an atom and its own periodic image).
    """
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, cutoff)
    if not len(d):
        return None
    k = int(np.argmin(d))
    a, b = sorted((int(i[k]), int(j[k])))
    return a, b, float(d[k])


def check_geometry(atoms, where: str, min_distance: float | None = DEFAULT_MIN_DISTANCE, what: str = "atoms"):
    """Raise StructureError (prefixed by ``where``) for a structure no model should embed.

    Checks: at least one atom; finite positions and cell; a periodic structure has a cell of three
    independent vectors; no two atoms (or an atom and its periodic image) closer than
    ``min_distance`` Angstrom (None or 0 skips that check).
    """
    if len(atoms) == 0:
        raise StructureError(f"{where}: no atoms")
    if not np.isfinite(atoms.positions).all() or not np.isfinite(atoms.cell[:]).all():
        raise StructureError(f"{where}: positions or cell are not finite (NaN or inf)")
    if atoms.pbc.any() and abs(atoms.cell.volume) < 1e-6:
        raise StructureError(
            f"{where}: periodic, but the cell has no volume (cell parameters {atoms.cell.cellpar().round(4)})"
        )
    if min_distance:
        pair = closest_pair(atoms, min_distance)
        if pair is not None:
            i, j, d = pair
            sym = atoms.get_chemical_symbols()
            who = (
                f"{what[:-1]} {i} ({sym[i]}) and its periodic image"
                if i == j
                else f"{what} {i} ({sym[i]}) and {j} ({sym[j]})"
            )
            raise StructureError(
                f"{where}: {who} are {d:.3f} A apart, closer than config key 'structures.min_distance' "
                f"({min_distance} A): coincident or nearly coincident atoms"
            )


def _cif_blocks(text: str):
    from ase.io.cif import parse_cif

    return [b for b in parse_cif(io.StringIO(text)) if b.has_structure()]


def _atoms_of_block(block, where: str, min_distance: float | None):
    """Atoms of one CIF data block; listed sites are checked before the symmetry expansion, which
    silently merges coincident sites."""
    listed = block.get_unsymmetrized_structure()
    check_geometry(listed, where, min_distance, what="sites")
    atoms = block.get_atoms()
    check_geometry(atoms, where, min_distance)
    return atoms


def _parse_cif_text(text: str, where: str, min_distance: float | None):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blocks = _cif_blocks(text)
            if not blocks:
                raise StructureError(f"{where}: CIF does not parse: no data block with atoms")
            if len(blocks) > 1:
                raise StructureError(
                    f"{where}: expected one structure in the CIF, found {len(blocks)} data blocks with atoms"
                )
            return _atoms_of_block(blocks[0], where, min_distance)
    except StructureError:
        raise
    except Exception as err:  # ASE raises many types on bad CIFs
        raise StructureError(f"{where}: CIF does not parse: {type(err).__name__}: {err}") from err


def _spacegroup(value, where: str) -> int:
    raw = str(value).strip() if value is not None else ""
    try:
        return int(float(raw)) if raw else -1
    except ValueError as err:
        raise StructureError(f"{where}: bad {SPACEGROUP_COLUMN} {raw!r}") from err


class _Ids:
    """Unique material ids, with the place each was first seen."""

    def __init__(self):
        self.seen: dict[str, str] = {}

    def add(self, mid: str, where: str, place: str) -> None:
        if not mid:
            raise StructureError(f"{where}: empty material_id")
        if mid in self.seen:
            raise StructureError(f"{where}: duplicate material_id (first at {self.seen[mid]})")
        self.seen[mid] = place


def read_split_csv(
    path: str | Path,
    limit: int | None = None,
    min_distance: float | None = DEFAULT_MIN_DISTANCE,
    name: str | None = None,
):
    """Parse an MP-20 split CSV (CDVAE columns) with ASE, in file order.

    Returns (atoms_list, material_ids, spacegroups); spacegroups holds -1 where the column is absent.
    ``limit`` keeps only the first ``limit`` rows. Raises StructureError naming the file (``name``
    when given: the user's source rather than a copy), data row (1-based, header excluded) and
    material_id of the first row that cannot be used (see ``check_geometry``).
    """
    return tuple(_read_csv(path, limit, min_distance, name)[:3])


def _read_csv(path, limit, min_distance, name) -> StructureSet:
    path = Path(path)
    name = name or str(path)
    if not path.exists():
        raise StructureError(f"{name}: structure CSV not found")
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: a byte-order mark is not a column
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise StructureError(f"{name}: the CSV is empty (no header, no rows)")
        missing = [c for c in REQUIRED_COLUMNS if c not in reader.fieldnames]
        if missing:
            raise StructureError(
                f"{name}: missing column(s) {', '.join(missing)}; found {', '.join(reader.fieldnames)}"
            )
        atoms_list, ids, sgs = [], [], []
        seen = _Ids()
        n_total = 0
        for row_no, row in enumerate(reader, start=1):
            n_total = row_no
            if limit is not None and row_no > limit:
                continue  # counted, not parsed: expected_structures describes the whole file
            mid = (row.get("material_id") or "").strip()
            where = f"{name}: data row {row_no} (material_id {mid or '<empty>'})"
            seen.add(mid, where, f"data row {row_no}")
            atoms_list.append(_parse_cif_text(row.get("cif") or "", where, min_distance))
            ids.append(mid)
            sgs.append(_spacegroup(row.get(SPACEGROUP_COLUMN), where))
    if not atoms_list:
        raise StructureError(f"{name}: the CSV has a header but no structures")
    return StructureSet(atoms_list, ids, sgs, n_total)


def _read_extxyz(path, limit, min_distance, name, id_key) -> StructureSet:
    from ase.io import read

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = read(path, index=":", format="extxyz")
    except Exception as err:
        raise StructureError(f"{name}: extended XYZ does not parse: {type(err).__name__}: {err}") from err
    if not frames:
        raise StructureError(f"{name}: the file has no structures")
    has_id = [id_key in f.info for f in frames]
    if any(has_id) and not all(has_id):
        first = has_id.index(False)
        raise StructureError(
            f"{name}: frame {first} has no '{id_key}' in its info line while other frames do "
            "(config key 'structures.id_key'): give every frame an id, or none (ids are then generated)"
        )
    stem = Path(name.split("?", 1)[0]).stem
    seen = _Ids()
    atoms_list, ids, sgs = [], [], []
    for i, atoms in enumerate(frames[:limit]):
        mid = str(atoms.info[id_key]).strip() if has_id[0] else f"{stem}-{i}"
        where = f"{name}: frame {i} (material_id {mid or '<empty>'})"
        seen.add(mid, where, f"frame {i}")
        check_geometry(atoms, where, min_distance)
        atoms_list.append(atoms)
        ids.append(mid)
        sgs.append(_spacegroup(atoms.info.get(SPACEGROUP_COLUMN, atoms.info.get("spacegroup")), where))
    return StructureSet(atoms_list, ids, sgs, len(frames))


def _read_cif_file(path, limit, min_distance, name) -> StructureSet:
    """Every data block of one CIF file; material ids are the block names (``data_<id>``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blocks = _cif_blocks(Path(path).read_text(encoding="utf-8-sig"))
    except Exception as err:
        raise StructureError(f"{name}: CIF does not parse: {type(err).__name__}: {err}") from err
    if not blocks:
        raise StructureError(f"{name}: the CIF has no structure")
    seen = _Ids()
    atoms_list, ids = [], []
    for i, block in enumerate(blocks[:limit]):
        mid = block.name.strip()
        where = f"{name}: data block {i + 1} (material_id {mid or '<empty>'})"
        seen.add(mid, where, f"data block {i + 1}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                atoms_list.append(_atoms_of_block(block, where, min_distance))
        except StructureError:
            raise
        except Exception as err:
            raise StructureError(f"{where}: CIF does not parse: {type(err).__name__}: {err}") from err
        ids.append(mid)
    return StructureSet(atoms_list, ids, [-1] * len(ids), len(blocks))


def _read_cif_dir(folder, limit, min_distance, name) -> StructureSet:
    """One structure per ``*.cif`` file of a folder, in name order; material ids are the file stems."""
    files = cif_files(folder)
    atoms_list, ids = [], []
    for path in files[:limit]:
        where = f"{path}: (material_id {path.stem})"
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            raise StructureError(f"{where}: cannot read: {err}") from err
        atoms_list.append(_parse_cif_text(text, where, min_distance))
        ids.append(path.stem)
    return StructureSet(atoms_list, ids, [-1] * len(ids), len(files))


def read_structures(
    source: str | Path,
    fmt: str = "auto",
    *,
    limit: int | None = None,
    min_distance: float | None = DEFAULT_MIN_DISTANCE,
    id_key: str = "material_id",
    name: str | None = None,
) -> StructureSet:
    """Read structures from a local file or folder in any of ``FORMATS``, validated the same way.

    - ``mp20-csv``: the CDVAE CSV (columns material_id, cif, optional spacegroup.number).
    - ``extxyz``: every frame of an extended XYZ file; material ids from the info key ``id_key``,
      or ``<file stem>-<frame>`` (0-based) when no frame has one; spacegroup from the info key
      ``spacegroup.number`` when present.
    - ``cif``: every data block of one CIF file; ids are the block names.
    - ``cif-dir``: every ``*.cif`` file of a folder, in name order; ids are the file stems.

    ``limit`` keeps the first ``limit`` structures; ``name`` is how messages name the source (e.g.
    the URL a local copy came from). Every structure passes ``check_geometry``.
    """
    fmt = source_format(source, fmt)
    name = name or str(source)
    if fmt == "mp20-csv":
        return _read_csv(source, limit, min_distance, name)
    if fmt == "cif-dir":
        return _read_cif_dir(source, limit, min_distance, name)
    if not Path(source).is_file():
        raise StructureError(f"{name}: structure file not found")
    if fmt == "extxyz":
        return _read_extxyz(source, limit, min_distance, name, id_key)
    return _read_cif_file(source, limit, min_distance, name)


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
    from platonic_mlip.io import atomic_path

    with atomic_path(path, keep_suffix=True) as tmp:
        np.savez_compressed(tmp, **arrays)


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
