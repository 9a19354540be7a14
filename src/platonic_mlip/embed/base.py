"""The family-agnostic part of embedding extraction: the Embedder interface and the batched driver."""

from __future__ import annotations

import importlib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class UnsupportedElementsError(ValueError):
    """Structures contain elements outside a model's element table."""


class ModelLoadError(RuntimeError):
    """A model's weights could not be loaded; the workflow prints the message, then the cause's traceback."""

    show_traceback = True  # platonic_mlip.cli prints the traceback after the one-line message


def model_load_error(spec: dict, err: BaseException) -> ModelLoadError:
    """``model <id> (family <f>): could not load weights <file>: <Type>: <message>`` for ``err``."""
    model = spec.get("checkpoint") or spec.get("name")
    source = spec.get("source")
    weights = {"random": "(random initialisation)", "constructed": "(constructed, no weights)"}.get(
        source, source
    )
    message = str(err).strip()
    what = f"{type(err).__name__}: {message}" if message else type(err).__name__
    family = spec.get("family")
    return ModelLoadError(f"model {model} (family {family}): could not load weights {weights}: {what}")


class Embedder(ABC):
    """One loaded model that maps structures to per-atom invariant features.

    Subclasses set ``self.spec`` (the resolved model spec, see ``platonic_mlip.models``), ``self.device``
    (a ``torch.device``) and ``self.dim`` (feature width), and implement the three methods below.

    Several layers in one pass: ``spec["layers"]`` lists the requested layers (``requested_layers``); an
    adapter of a family whose registry entry says ``multi_layer`` returns their columns side by side, in
    that order, and sets ``self.layer_dims`` ({layer: width}); ``self.dim`` is then the sum. An adapter
    that gives one layer leaves ``layer_dims`` unset (the base reports ``{layer: dim}``).

    The adapter *module* ``platonic_mlip.embed.<family>`` provides, besides ``load(spec, device)``:
    ``bundled_path(key)`` (the file of a checkpoint that ships in the package, for families with
    ``bundled`` keys), ``key_url(key)`` (the package's own download URL of a checkpoint key, for the
    weights layer) and ``NaiveRoute`` (the package's own calculator/descriptor route, one structure at a
    time: ``NaiveRoute(embedder, device, workdir)(atoms_list) -> (n_atoms, dim)`` features of the
    embedder's first layer, ``.description``, ``.close()``; the contract test and the speed benchmark
    compare against it; see ``NaiveRoute`` below).
    """

    spec: dict
    device: object
    dim: int
    layer_dims: dict | None = None

    @abstractmethod
    def supported_numbers(self) -> set[int] | None:
        """Atomic numbers the model can embed, or None when it takes every element."""

    @abstractmethod
    def embed_batch(self, atoms_list: Sequence) -> np.ndarray:
        """Features of every atom of a batch of ``ase.Atoms``.

        Returns an array of shape (sum of len(atoms) over the batch, dim), rows in structure order then
        ASE atom order, the requested layers' columns side by side. Forward pass only: no forces, no
        gradients; runs on ``self.device``.
        """

    @abstractmethod
    def info(self) -> dict:
        """Metadata: at least ``weights_source``, ``weights_sha256`` (None for random weights),
        ``layer`` (a human-readable description of which features), and ``versions`` (package -> version)."""

    def structure_problem(self, atoms) -> str | None:
        """Why the model cannot embed ``atoms`` although it covers its elements (e.g. an atom with no
        neighbour within a graph cutoff), or None. Checked for every structure before any forward pass;
        such structures are reported and skipped like unsupported elements (``embed.on_unsupported``)."""
        return None

    def layer_slices(self) -> dict[str, list[int]]:
        """{layer: [first column, stop column]} of each requested layer in ``embed_batch``'s output."""
        dims = self.layer_dims or {requested_layers(self.spec)[0]: self.dim}
        out, start = {}, 0
        for name, width in dims.items():
            out[name] = [start, start + int(width)]
            start += int(width)
        if start != self.dim:
            raise RuntimeError(f"layer widths {dims} do not add up to the feature width {self.dim}")
        return out


class NaiveRoute:
    """The package's own route to a model's features: its calculator or descriptor function, one structure
    at a time, with forces where the package computes them -- what a user of the package would write.

    Each adapter module subclasses it as ``NaiveRoute(embedder, device, workdir)`` (the loaded ``Embedder``,
    so both routes use the same weights; ``workdir`` for files the package needs). Calling it on a list of
    ``ase.Atoms`` returns (n_atoms, dim) float32 features of the embedder's (first) layer. The contract
    test checks our batched path against it; the speed benchmark times both.
    """

    description: str

    def __call__(self, atoms_list) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


def requested_layers(spec: dict) -> list[str]:
    """The layers a job computes: ``spec["layers"]``, else ``[spec["layer"]]`` (None: the family default)."""
    layers = spec.get("layers")
    if layers:
        return list(layers)
    return [spec.get("layer")]


def adapter(family: str):
    """The adapter module of a family (``platonic_mlip.families.FAMILIES[family]["adapter"]``)."""
    from platonic_mlip.families import family as family_entry

    return importlib.import_module(family_entry(family)["adapter"])


def local_weights(spec: dict, weights_file: str | None = None) -> tuple[dict, dict]:
    """Turn ``spec``'s weights source into the one local file its adapter loads (``platonic_mlip.weights``).

    Bundled keys become the package's file (the adapter's ``bundled_path``); downloaded and local sources
    become ``weights_file`` (the file the workflow fetched) or the planned path. The file is checked
    (``weights.check_file``: configured sha256 for every source, refusal of unchecksummed local files,
    digest recorded at download). Returns (a copy of ``spec`` whose ``source`` is that file, or
    ``random``; the plan with ``path`` and ``sha256``). Raises ``weights.WeightsError``.
    """
    import copy
    from pathlib import Path

    from platonic_mlip.weights import WeightsError, check_file, plan

    spec = copy.deepcopy(spec)
    weights = plan(spec, "")
    if weights["kind"] == "bundled":
        try:
            weights["path"] = str(adapter(spec["family"]).bundled_path(weights["key"]))
        except Exception as err:
            raise WeightsError(f"model {spec.get('checkpoint', spec.get('name'))!r}: {err}") from err
    elif weights["kind"] == "control" and not weights_file:
        raise WeightsError(
            f"model {spec.get('checkpoint', spec.get('name'))!r} is a trained control: its weights file "
            "comes from the workflow's train_control rule (give it as --weights-file)"
        )
    elif weights["kind"] not in ("random", "constructed"):
        weights["path"] = weights_file or weights["path"]
    if weights["path"]:
        weights["sha256"] = check_file(spec, weights["kind"], weights["path"])
        weights["path"] = str(Path(weights["path"]).resolve())
        spec["source"] = weights["path"]
    return spec, weights


def load_embedder(spec: dict, device: str = "auto") -> Embedder:
    """Load the model described by ``spec`` with its family's adapter (the family registry names it)."""
    module = adapter(spec["family"])
    dev = resolve_device(device)
    if dev.type == "cpu":
        tune_cpu_allocator()
    return module.load(spec, dev)


def load_calculator(spec: dict, device: str = "auto"):
    """An ASE calculator (energy, forces, stress) of the model described by ``spec``.

    The family's adapter builds it (``platonic_mlip.embed.<family>.calculator(spec, device)``) from the same
    checkpoint resolution as ``load_embedder``; pass a spec whose ``source`` went through ``local_weights``
    as the workflow does. ``device``: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ...
    """
    module = adapter(spec["family"])
    if not hasattr(module, "calculator"):
        raise NotImplementedError(
            f"family {spec['family']!r}: its adapter {module.__name__} has no calculator"
        )
    dev = resolve_device(device)
    if dev.type == "cpu":
        tune_cpu_allocator()
    return module.calculator(spec, dev)


# glibc mallopt parameters: keep freed heap memory for reuse instead of mmap/munmap per large tensor
_MALLOPT = {
    "M_TRIM_THRESHOLD": (-1, 1 << 30),
    "M_TOP_PAD": (-2, 256 << 20),
    "M_MMAP_THRESHOLD": (-3, 32 << 20),
}


def tune_cpu_allocator() -> dict | None:
    """Make glibc reuse freed large blocks instead of mmap/munmap per tensor.

    MLIP forward passes on CPU allocate per-edge tensors of tens to hundreds of MB; glibc serves them
    with fresh ``mmap`` calls and returns them at ``free``, so each batch pays page faults again (half
    the time of a SevenNet forward on CPU). Raising the mmap threshold and keeping freed memory costs up
    to ~1 GB of resident memory and never changes results. Process-wide; set PLATONIC_NO_MALLOPT=1 to
    skip it.

    Returns {option: accepted} or None where it does not apply (not glibc, or PLATONIC_NO_MALLOPT=1).
    """
    import ctypes
    import ctypes.util
    import platform

    if os.environ.get("PLATONIC_NO_MALLOPT") == "1" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return {name: bool(mallopt(param, value)) for name, (param, value) in _MALLOPT.items()}


def resolve_device(device: str = "auto"):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def unsupported_structures(
    supported: set[int] | None, atoms_list: Sequence, material_ids: Sequence[str], problem=None
) -> list[dict]:
    """Structures a model cannot embed: [{structure, material_id, elements, reason}], in order.

    ``elements`` lists the elements outside ``supported`` (None: every element is covered); ``problem``
    (e.g. ``Embedder.structure_problem``) maps a structure to a reason it cannot be embedded, or None.
    """
    out = []
    for i, (atoms, mid) in enumerate(zip(atoms_list, material_ids, strict=True)):
        missing = [] if supported is None else sorted({int(z) for z in atoms.numbers} - set(supported))
        if missing:
            symbols = [_symbol(z) for z in missing]
            reason = f"elements not covered: {', '.join(symbols)}"
            out.append({"structure": i, "material_id": mid, "elements": symbols, "reason": reason})
            continue
        why = problem(atoms) if problem is not None else None
        if why:
            out.append({"structure": i, "material_id": mid, "elements": [], "reason": why})
    return out


def unembeddable(embedder: Embedder, atoms_list: Sequence, material_ids: Sequence[str]) -> list[dict]:
    """``unsupported_structures`` with the embedder's element table and ``structure_problem``."""
    return unsupported_structures(
        embedder.supported_numbers(), atoms_list, material_ids, problem=embedder.structure_problem
    )


def describe_unsupported(bad: list[dict], model: str, limit: int = 20) -> str:
    def why(b):
        return ", ".join(b["elements"]) if b["elements"] else b.get("reason", "?")

    shown = "; ".join(f"{b['material_id']} ({why(b)})" for b in bad[:limit])
    more = f"; ... {len(bad) - limit} more" if len(bad) > limit else ""
    what = "the elements of" if all(b["elements"] for b in bad) else "(elements or graph of)"
    return f"model {model!r} cannot embed {what} {len(bad)} structure(s): {shown}{more}"


def check_elements(
    supported: set[int] | None, atoms_list: Sequence, material_ids: Sequence[str], model: str
) -> None:
    """Raise UnsupportedElementsError listing every structure with an element the model lacks."""
    bad = unsupported_structures(supported, atoms_list, material_ids)
    if bad:
        raise UnsupportedElementsError(describe_unsupported(bad, model))


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


def shard_range(n_atoms: Sequence[int], batch_atoms: int, shard: int, shard_structures: int) -> range:
    """Structures of shard ``shard`` when shards hold about ``shard_structures`` structures each.

    Shard boundaries are snapped forward to the boundaries of the *global* batches
    (``batches_by_atoms(n_atoms, batch_atoms)``), so a sharded run computes exactly the batches of an
    unsharded one and the gathered features are identical. Every structure lies in exactly one shard;
    shards past the end are empty.
    """
    bounds = [b.start for b in batches_by_atoms(n_atoms, batch_atoms)] + [len(n_atoms)]

    def snap(i: int) -> int:
        return next(b for b in bounds if b >= min(i, len(n_atoms)))

    return range(snap(shard * shard_structures), snap((shard + 1) * shard_structures))


def embed_structures(
    embedder: Embedder,
    atoms_list: Sequence,
    material_ids: Sequence[str],
    batch_atoms: int = 2000,
    progress: bool = True,
    skip: Sequence[int] = (),
) -> tuple[np.ndarray, dict]:
    """Embed every atom of ``atoms_list`` in batches of about ``batch_atoms`` atoms.

    Returns (features, stats): features is float32 of shape (total atoms, embedder.dim), rows aligned
    with the structures' atoms in order; stats holds wall time and atoms/s. Structures whose indices are
    in ``skip`` are not computed and their rows are NaN; any other structure with an element the model
    lacks raises UnsupportedElementsError before the first batch. Raises ValueError naming the
    material_id when a batch yields NaN or infinite values, or a row count that does not match.
    ``stats["batches"]`` lists the [start, stop) structure ranges of the forward batches.
    """
    import torch

    name = embedder.spec.get("name", "?")
    skip = set(skip)
    keep = [i for i in range(len(atoms_list)) if i not in skip]
    bad = unembeddable(embedder, [atoms_list[i] for i in keep], [material_ids[i] for i in keep])
    if bad:
        raise UnsupportedElementsError(describe_unsupported(bad, name))
    n_atoms = [len(a) for a in atoms_list]
    offsets = np.concatenate([[0], np.cumsum(n_atoms)]).astype(np.int64)
    total = int(offsets[-1])
    out = np.full((total, embedder.dim), np.nan, dtype=np.float32)
    # batches are formed over all structures (so skipping never changes the others' batches)
    batches = batches_by_atoms(n_atoms, batch_atoms)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="atom", desc=f"embed {name}", mininterval=5.0)
    # A batch's float32 result must not depend on what its process ran before (else a sharded run
    # would not reproduce an unsharded one). Seen in about 1 of 20 processes: 7net-l3i5's first batch of
    # a process came out up to 3e-3 away from the same batch run later. So TorchScript graphs (e3nn's
    # compiled tensor products) run without the profiling executor's optimisations (~10% slower), and
    # one structure is embedded and discarded before any result is kept (its time: warmup_s).
    t_warm = time.perf_counter()
    if keep:
        with torch.no_grad(), torch.jit.optimized_execution(False):
            embedder.embed_batch([atoms_list[keep[0]]])
    t0 = time.perf_counter()
    with torch.no_grad(), torch.jit.optimized_execution(False):
        for batch in batches:
            idx = [i for i in batch if i not in skip]
            if not idx:
                continue
            feats = np.asarray(embedder.embed_batch([atoms_list[i] for i in idx]), dtype=np.float32)
            sizes = [n_atoms[i] for i in idx]
            expect = sum(sizes)
            if feats.shape != (expect, embedder.dim):
                raise ValueError(
                    f"model {name!r}: batch of structures {material_ids[idx[0]]}..{material_ids[idx[-1]]} "
                    f"gave features of shape {feats.shape}, expected ({expect}, {embedder.dim})"
                )
            if not np.isfinite(feats).all():
                bad_row = int(np.flatnonzero(~np.isfinite(feats).all(axis=1))[0])
                which = idx[int(np.searchsorted(np.cumsum(sizes), bad_row, side="right"))]
                raise ValueError(
                    f"model {name!r}: non-finite embedding for material_id {material_ids[which]} "
                    f"(structure {which})"
                )
            pos = 0
            for i, n in zip(idx, sizes, strict=True):
                out[offsets[i] : offsets[i + 1]] = feats[pos : pos + n]
                pos += n
            if bar is not None:
                bar.update(expect)
    if embedder.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    computed = int(sum(n_atoms[i] for i in keep))
    stats = {
        "n_structures": len(atoms_list),
        "n_atoms": total,
        "n_atoms_embedded": computed,
        "n_batches": len(batches),
        "batches": [[b.start, b.stop] for b in batches],
        "batch_atoms": batch_atoms,
        "wall_time_s": wall,
        "warmup_s": t0 - t_warm,
        "atoms_per_s": computed / wall if wall > 0 else float("nan"),
    }
    return out, stats


def valid_atoms(meta_paths: Sequence, n_atoms: int) -> np.ndarray:
    """(n_atoms,) bool mask of atoms embedded by every model (none of the metadata lists them skipped).

    ``meta_paths`` are the gathered embedding metadata JSONs (their ``skipped`` entries carry
    ``atom_start``/``atom_stop``).
    """
    import json

    mask = np.ones(n_atoms, dtype=bool)
    for path in meta_paths:
        with open(path) as fh:
            for s in json.load(fh).get("skipped", []):
                mask[s["atom_start"] : s["atom_stop"]] = False
    return mask


def drawn_atoms(meta_paths: Sequence, n_atoms: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted atom indices to draw in a map: the atoms every model embedded (``valid_atoms``), or a
    random ``max_points`` of them (``numpy.random.default_rng(seed)``, without replacement)."""
    rows = np.flatnonzero(valid_atoms(meta_paths, n_atoms))
    if len(rows) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_points, replace=False))
    return rows
