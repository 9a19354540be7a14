"""The family-agnostic part of embedding extraction: the Embedder interface and the batched driver."""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class UnsupportedElementsError(ValueError):
    """Structures contain elements outside a model's element table."""


class Embedder(ABC):
    """One loaded model that maps structures to per-atom invariant features.

    Subclasses set ``self.spec`` (the resolved model spec, see ``platonic_mlip.models``), ``self.device``
    (a ``torch.device``) and ``self.dim`` (feature width), and implement the three methods below.
    """

    spec: dict
    device: object
    dim: int

    @abstractmethod
    def supported_numbers(self) -> set[int] | None:
        """Atomic numbers the model can embed, or None when it takes every element."""

    @abstractmethod
    def embed_batch(self, atoms_list: Sequence) -> np.ndarray:
        """Features of every atom of a batch of ``ase.Atoms``.

        Returns an array of shape (sum of len(atoms) over the batch, dim), rows in structure order then
        ASE atom order. Forward pass only: no forces, no gradients; runs on ``self.device``.
        """

    @abstractmethod
    def info(self) -> dict:
        """Metadata: at least ``weights_source``, ``weights_sha256`` (None for random weights),
        ``layer`` (a human-readable description of which features), and ``versions`` (package -> version)."""


def load_embedder(spec: dict, device: str = "auto") -> Embedder:
    """Load the model described by ``spec`` with its family's loader (``platonic_mlip.embed.<family>``)."""
    module = importlib.import_module(f"platonic_mlip.embed.{spec['family']}")
    return module.load(spec, resolve_device(device))


def resolve_device(device: str = "auto"):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def check_elements(
    supported: set[int] | None, atoms_list: Sequence, material_ids: Sequence[str], model: str
) -> None:
    """Raise UnsupportedElementsError listing every structure with an element the model lacks."""
    if supported is None:
        return
    bad = []
    for atoms, mid in zip(atoms_list, material_ids, strict=True):
        missing = sorted(set(atoms.get_chemical_symbols()) - {_symbol(z) for z in supported})
        if missing:
            bad.append(f"{mid} ({', '.join(missing)})")
    if bad:
        shown = "; ".join(bad[:20]) + (f"; ... {len(bad) - 20} more" if len(bad) > 20 else "")
        raise UnsupportedElementsError(
            f"model {model!r} does not cover the elements of {len(bad)} structure(s): {shown}"
        )


def _symbol(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[z]


def batches_by_atoms(n_atoms: Sequence[int], max_atoms: int) -> list[range]:
    """Split structures, in order, into consecutive batches of at most ``max_atoms`` atoms.

    A structure larger than ``max_atoms`` forms a batch of its own. Returns ranges of structure indices.
    """
    out, start, total = [], 0, 0
    for i, n in enumerate(n_atoms):
        if total and total + n > max_atoms:
            out.append(range(start, i))
            start, total = i, 0
        total += n
    if start < len(n_atoms):
        out.append(range(start, len(n_atoms)))
    return out


def embed_structures(
    embedder: Embedder,
    atoms_list: Sequence,
    material_ids: Sequence[str],
    batch_atoms: int = 2000,
    progress: bool = True,
) -> tuple[np.ndarray, dict]:
    """Embed every atom of ``atoms_list`` in batches of about ``batch_atoms`` atoms.

    Returns (features, stats): features is float32 of shape (total atoms, embedder.dim), rows aligned
    with the structures' atoms in order; stats holds wall time and atoms/s. Raises ValueError naming the
    material_id when a batch yields NaN or infinite values, or a row count that does not match.
    """
    import torch

    name = embedder.spec.get("name", "?")
    check_elements(embedder.supported_numbers(), atoms_list, material_ids, name)
    n_atoms = [len(a) for a in atoms_list]
    total = int(sum(n_atoms))
    out = np.empty((total, embedder.dim), dtype=np.float32)
    batches = batches_by_atoms(n_atoms, batch_atoms)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="atom", desc=f"embed {name}", mininterval=5.0)
    row = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for idx in batches:
            feats = np.asarray(embedder.embed_batch([atoms_list[i] for i in idx]), dtype=np.float32)
            expect = sum(n_atoms[i] for i in idx)
            if feats.shape != (expect, embedder.dim):
                raise ValueError(
                    f"model {name!r}: batch of structures {material_ids[idx.start]}..{material_ids[idx[-1]]} "
                    f"gave features of shape {feats.shape}, expected ({expect}, {embedder.dim})"
                )
            if not np.isfinite(feats).all():
                bad_row = int(np.flatnonzero(~np.isfinite(feats).all(axis=1))[0])
                offsets = np.cumsum([0] + [n_atoms[i] for i in idx])
                which = idx[int(np.searchsorted(offsets, bad_row, side="right")) - 1]
                raise ValueError(
                    f"model {name!r}: non-finite embedding for material_id {material_ids[which]} "
                    f"(structure {which})"
                )
            out[row : row + expect] = feats
            row += expect
            if bar is not None:
                bar.update(expect)
    if embedder.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    stats = {
        "n_structures": len(atoms_list),
        "n_atoms": total,
        "n_batches": len(batches),
        "batch_atoms": batch_atoms,
        "wall_time_s": wall,
        "atoms_per_s": total / wall if wall > 0 else float("nan"),
    }
    return out, stats
