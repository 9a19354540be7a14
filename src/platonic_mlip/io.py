"""Atomic writers: an output appears under its final name only once it is complete."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.part")


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    tmp.replace(path)


def save_npz(path: str | Path, **arrays) -> None:
    """Write named arrays as an uncompressed ``.npz`` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    tmp.replace(path)


def write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    tmp.write_text(text)
    tmp.replace(path)


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_csv(path: str | Path, frame) -> None:
    """Write a pandas DataFrame without its index."""
    write_text(path, frame.to_csv(index=False))


def _json_default(obj):
    if isinstance(obj, np.integer | np.floating):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
