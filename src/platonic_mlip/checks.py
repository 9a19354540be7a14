"""Checks of the per-atom matrices (embeddings, Platonic spaces) where a step reads them.

A matrix row is one atom of the atom table. Rows of structures the embedding job skipped (elements
or geometries the model cannot embed, ``embed.on_unsupported: skip``) are NaN by design; any other
NaN or infinite value is an error that names the model, the rows and their material_ids.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: rows named in a message; the count says how many more there are
SHOWN = 5


class MatrixError(ValueError):
    """A matrix that cannot be used; the message names the file, the model and the rows."""


def open_matrix(path: str | Path, model: str, n_rows: int | None = None, what: str = "embeddings"):
    """Memory-map a ``.npy`` matrix and check its shape: (N, D) floats with N = ``n_rows``.

    Returns the read-only memmap; raises MatrixError naming ``path`` and ``model``.
    """
    try:
        x = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise MatrixError(f"{path} ({what} of model {model}): cannot be read: {err}") from err
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
        raise MatrixError(
            f"{path} ({what} of model {model}): expected a 2-D float matrix, got shape {x.shape} {x.dtype}"
        )
    if n_rows is not None and x.shape[0] != n_rows:
        raise MatrixError(
            f"{path} ({what} of model {model}): {x.shape[0]} rows, but the atom table has {n_rows} atoms"
        )
    return x


def skipped_mask(meta_path: str | Path, n_rows: int) -> np.ndarray:
    """(n_rows,) bool: the atoms one model's embedding job skipped (its metadata's ``skipped``)."""
    mask = np.zeros(n_rows, dtype=bool)
    with open(meta_path) as fh:
        for s in json.load(fh).get("skipped", []):
            mask[s["atom_start"] : s["atom_stop"]] = True
    return mask


def nonfinite_rows(x: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Indices (into ``x``) of the rows of an (n, d) array holding NaN or inf; read ``chunk`` rows at
    a time, so a memmap is never loaded whole."""
    bad = [
        start + np.flatnonzero(~np.isfinite(np.asarray(x[start : start + chunk])).all(axis=1))
        for start in range(0, x.shape[0], chunk)
    ]
    return np.concatenate(bad) if bad else np.zeros(0, dtype=np.int64)


def check_finite(
    x: np.ndarray,
    name: str,
    material_ids: Sequence[str],
    rows: np.ndarray | None = None,
    expected_nan: np.ndarray | None = None,
) -> None:
    """Raise MatrixError when rows of ``x`` hold NaN or inf where no value may be missing.

    Parameters
    ----------
    x : (n, d) array, the rows read (a memmap is fine).
    name : how the message names the matrix, e.g. ``"embeddings/7net-0.npy (model 7net-0)"``.
    material_ids : (N,) material_id of every atom of the atom table.
    rows : (n,) atom indices of the rows of ``x``; None means ``x`` is the whole table (n = N).
    expected_nan : (N,) bool, atoms whose rows are NaN by design (skipped structures); None = none.
    """
    bad = nonfinite_rows(x)
    atoms = bad if rows is None else np.asarray(rows)[bad]
    if expected_nan is not None:
        atoms = atoms[~expected_nan[atoms]]
    if not len(atoms):
        return
    shown = ", ".join(f"atom {a} ({material_ids[a]})" for a in atoms[:SHOWN])
    more = f" and {len(atoms) - SHOWN} more" if len(atoms) > SHOWN else ""
    structures = len({material_ids[a] for a in atoms})
    raise MatrixError(
        f"{name}: {len(atoms)} row(s) of {structures} structure(s) hold NaN or inf: {shown}{more}. "
        "The embedding job produced them (these structures were not skipped): check the model and "
        "these structures, then rerun"
    )


def checked_rows(
    path: str | Path,
    model: str,
    material_ids: Sequence[str],
    rows: np.ndarray | None = None,
    expected_nan: np.ndarray | None = None,
    what: str = "embeddings",
    dtype=None,
) -> np.ndarray:
    """Read rows of a per-atom matrix and check them (``open_matrix`` + ``check_finite``).

    ``rows`` None returns the checked memmap itself (whole matrix checked chunk by chunk); otherwise
    an in-memory (len(rows), D) array, as ``dtype`` when given.
    """
    x = open_matrix(path, model, len(material_ids), what)
    name = f"{path} ({what} of model {model})"
    if rows is None:
        check_finite(x, name, material_ids, None, expected_nan)
        return x
    out = np.asarray(x[np.asarray(rows)], dtype=dtype)
    check_finite(out, name, material_ids, rows, expected_nan)
    return out
