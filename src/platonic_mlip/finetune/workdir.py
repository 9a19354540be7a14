"""What every family's fine-tuning shares: its errors and the pinned work directory.

A work directory holds one run (``run.json``: settings, input digests, versions). A rerun with the same
fingerprint resumes; ``EXTENSIBLE`` settings may grow (training goes on); anything else is refused with
``StaleWorkdirError`` (the workflow then starts afresh). No heavy imports: usable in any environment.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

RUN_JSON = "run.json"
#: settings that may change between a killed run and its rerun (training simply goes on)
EXTENSIBLE = ("epochs", "checkpoint_every")
INPUTS = ("train", "val", "replay")


class FineTuneError(RuntimeError):
    """A fine-tuning run that cannot start or go on; the message says why and what to do."""


class LabelError(FineTuneError, ValueError):
    """A data file whose frame lacks an energy or forces (or has non-finite ones)."""


class StaleWorkdirError(FineTuneError):
    """A work directory holding a run of other settings or inputs (the workflow starts it afresh)."""


class DivergedError(FineTuneError):
    """Training produced a non-finite loss or weights."""


def sha256(path) -> str:
    from platonic_mlip.weights import sha256_of

    return sha256_of(path)


def fingerprint(settings, pretrained_path: str, versions: dict, **extra) -> dict:
    """The settings (a dataclass; ``extra`` replaces fields that do not serialise as they are), the
    pretrained file's digest, each input's path and digest, and the package versions."""
    fp = {**dataclasses.asdict(settings), **extra}
    fp["pretrained_sha256"] = sha256(pretrained_path)
    for key in INPUTS:
        path = getattr(settings, key)
        fp[key] = str(Path(path).resolve()) if path else None
        fp[f"{key}_sha256"] = sha256(path) if path else None
    fp["versions"] = versions
    return fp


def check_fingerprint(workdir: Path, fp: dict) -> None:
    """Raise StaleWorkdirError when ``workdir`` holds a run whose fingerprint differs from ``fp`` in
    anything but the extensible settings and the input paths (they may move; their digests may not)."""
    path = Path(workdir) / RUN_JSON
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    ignore = set(EXTENSIBLE) | set(INPUTS)
    diff = sorted(k for k in set(old) | set(fp) if k not in ignore and old.get(k) != fp.get(k))
    if diff:
        shown = "; ".join(f"{k}: {old.get(k)!r} -> {fp.get(k)!r}" for k in diff[:6])
        raise StaleWorkdirError(
            f"work directory {workdir} holds a fine-tuning run with other settings or inputs ({shown}); "
            "delete it to start again, or use another work directory"
        )


def pin_workdir(workdir, fp: dict) -> Path:
    """Create ``workdir`` (resolved), refuse it when it holds another run (``check_fingerprint``), and
    pin ``fp`` in its ``run.json``; returns the resolved path."""
    from platonic_mlip.io import write_json

    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    check_fingerprint(workdir, fp)
    write_json(workdir / RUN_JSON, fp)
    return workdir


def check_elements(atoms_list, known, role: str, path, model: str) -> None:
    """Raise FineTuneError naming the file, frame and elements when a frame holds an element outside
    ``known`` (atomic numbers: the pretrained model's element table)."""
    from ase.data import chemical_symbols

    known = {int(z) for z in known}
    for i, atoms in enumerate(atoms_list):
        bad = sorted({int(z) for z in atoms.numbers} - known)
        if bad:
            raise FineTuneError(
                f"{role} file {path}, frame {i}: element(s) {', '.join(chemical_symbols[z] for z in bad)} "
                f"are not in the element table of {model}"
            )


def prepare_data(settings, workdir: Path, known, label, write, log, replay: bool = True) -> dict:
    """Clean copies of the inputs in ``<workdir>/data``, each written once (a resumed run reuses them).

    ``settings``: the family's Settings (train, val, replay, replay_labels, pretrained); ``known``: the
    pretrained model's atomic numbers; ``label(atoms_list)``: the pretrained model's labels of the replay
    structures; ``write(path, atoms_list)``: the family's file format; ``replay``: whether this arm uses the
    replay set. Returns {role: path, "counts": {role: frames}}. Raises LabelError / FineTuneError naming
    the file and frame."""
    import time

    from platonic_mlip.finetune.sevenn import read_labelled, read_structures

    ddir = Path(workdir) / "data"
    ddir.mkdir(parents=True, exist_ok=True)
    out, counts = {}, {}
    for role in ("train", "val"):
        src = getattr(settings, role)
        if not src:
            continue
        atoms = read_labelled(src, role)
        check_elements(atoms, known, role, src, settings.pretrained)
        dst = ddir / f"{role}.extxyz"
        if not dst.is_file():
            write(dst, atoms)
        out[role], counts[role] = str(dst), len(atoms)
    if settings.replay and replay:
        dst = ddir / "replay.extxyz"
        if settings.replay_labels == "file":
            atoms = read_labelled(settings.replay, "replay")
        else:
            atoms = read_structures(settings.replay, "replay")
        check_elements(atoms, known, "replay", settings.replay, settings.pretrained)
        if not dst.is_file():
            if settings.replay_labels == "pretrained":
                t0 = time.perf_counter()
                atoms = label(atoms)
                dt = time.perf_counter() - t0
                log(f"replay: {len(atoms)} structures labelled by {settings.pretrained} in {dt:.1f} s")
            write(dst, atoms)
        out["replay"], counts["replay"] = str(dst), len(atoms)
    out["counts"] = counts
    return out


def label_with_calculator(atoms_list, calc) -> list:
    """A model's own energy, forces and (fully periodic cells) stress on each structure, as clean Atoms
    carrying those labels (``calc``: the pretrained model's ASE calculator)."""
    from platonic_mlip.finetune.sevenn import clean_atoms

    out = []
    for atoms in atoms_list:
        a = clean_atoms(atoms)
        a.calc = calc
        energy = a.get_potential_energy()
        forces = a.get_forces()
        stress = a.get_stress() if a.pbc.all() else None
        out.append(clean_atoms(a, energy, forces, stress))
        calc.reset()
    return out
