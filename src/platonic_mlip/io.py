"""Atomic writers: an output appears under its final name only once it is complete.

Every writer goes through :func:`atomic_path`: the data go to a hidden temporary file next to the
output (``.<name>.<pid>.part``), renamed onto the final name when complete. Whatever stops the write (an
error, a full disk, Ctrl-C, SIGTERM through ``platonic_mlip.cli``) removes the temporary file, so a failed
job neither leaves a partial output nor keeps holding the disk space it had taken. A full disk (``ENOSPC``,
or ``EDQUOT`` for a quota) raises :class:`DiskFullError`, whose message names the output being written.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

#: errno values that mean the disk (or the user's quota on it) is full
DISK_FULL = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)


class DiskFullError(OSError):
    """A write failed for lack of space; ``str()`` is ``no space left on device writing <path>``."""

    def __init__(self, path: str | Path, err: OSError | None = None):
        code = err.errno if err is not None and err.errno else errno.ENOSPC
        super().__init__(code, os.strerror(code), str(path))
        self.path = str(path)

    def __str__(self) -> str:
        quota = " (disk quota exceeded)" if self.errno == getattr(errno, "EDQUOT", None) else ""
        return f"no space left on device writing {self.path}{quota}"


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is an ``OSError`` for a full disk or an exceeded quota."""
    return isinstance(err, OSError) and err.errno in DISK_FULL


def temp_path(path: str | Path, keep_suffix: bool = False) -> Path:
    """The hidden temporary name of ``path`` in its directory: ``.<name>.<pid>.part``.

    ``keep_suffix`` gives ``.<stem>.<pid>.part<suffix>`` instead, for writers that choose the format from the
    file's suffix (matplotlib) or append one that is missing (``np.savez`` with a file name).
    """
    path = Path(path)
    if keep_suffix:
        return path.with_name(f".{path.stem}.{os.getpid()}.part{path.suffix}")
    return path.with_name(f".{path.name}.{os.getpid()}.part")


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` to; rename it onto ``path`` when the block completes.

    The parent directory is created. On any exception (``KeyboardInterrupt`` and the ``cli`` signal exit
    included) the temporary file is removed and the exception goes on, except that an ``OSError`` for a full
    disk becomes :class:`DiskFullError` naming ``path``::

        with atomic_path(out) as tmp:
            np.save(tmp, array)
    """
    path = Path(path)
    tmp = temp_path(path, keep_suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path, keep_suffix)
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if is_disk_full(err) and not isinstance(err, DiskFullError):
            raise DiskFullError(path, err) from err
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def remove_stale_temporaries(path: str | Path, keep_suffix: bool = False) -> list[Path]:
    """Remove the temporaries of ``path`` left by processes that no longer run (a SIGKILL cannot be caught).

    Only names of :func:`temp_path`'s form whose process id is not running on this host are removed, so a
    retried job frees the space its killed attempt held. Returns the removed paths.
    """
    path = Path(path)
    head, tail = (path.stem, path.suffix) if keep_suffix else (path.name, "")
    pattern = re.compile(rf"\.{re.escape(head)}\.(\d+)\.part{re.escape(tail)}")
    removed = []
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match and int(match[1]) != os.getpid() and not _running(int(match[1])):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or an impossible pid): leave its file alone
    return True


def preallocate(path: str | Path) -> None:
    """Reserve the disk blocks of a (sparse) file, so that a full disk fails here with ``ENOSPC``.

    Writing into a memory map of a sparse file on a full disk kills the process with SIGBUS instead of an
    error; call this right after creating the map. A file system without ``posix_fallocate`` is left as is.
    """
    if not hasattr(os, "posix_fallocate"):  # pragma: no cover - macOS
        return
    with open(path, "r+b") as fh:
        size = os.fstat(fh.fileno()).st_size
        try:
            os.posix_fallocate(fh.fileno(), 0, size)
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
                raise


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` via a temporary file and an atomic rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def save_npz(path: str | Path, **arrays) -> None:
    """Write named arrays as an uncompressed ``.npz`` via a temporary file and an atomic rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


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
