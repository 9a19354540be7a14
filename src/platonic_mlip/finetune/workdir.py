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
