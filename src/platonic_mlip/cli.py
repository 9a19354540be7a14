"""How a workflow script ends when something goes wrong: one line saying what happened, then the detail.

Every script ends with::

    if __name__ == "__main__":
        run(main)

:func:`run` calls ``main()`` and turns its failure into a first line that a person (and the rule's failure
hook, ``workflow/scripts/on_failure.sh``, which shows it on the Snakemake console) can read:

``KILLED: <script> received SIGTERM (...)``   SIGTERM/SIGINT/SIGHUP: written at once; the script then unwinds
                                             (temporary files are removed) and exits with 128 + the signal
``ERROR: <message>``                         the package's own errors (classes defined in ``platonic_mlip``)
                                             and ``SystemExit("ERROR: ...")``, which stays as it was
``ERROR: no space left on device writing <path>``   ``OSError`` ENOSPC / EDQUOT
``ERROR: out of memory (...)``               ``MemoryError`` (and torch's ``OutOfMemoryError``, GPU memory)
``ERROR: <Type>: <message>``                 anything else, followed by the full traceback

An error with a true ``show_traceback`` attribute (``embed.base.ModelLoadError``) is followed by its
traceback too. Exit statuses stay nonzero: 1 for errors, 128 + signal number for a signal. A SIGKILL (the
out-of-memory killer, a scheduler) cannot be caught by the process; the rule's shell hook reports it.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from platonic_mlip.io import DiskFullError, is_disk_full

#: why a signal usually reaches a workflow job
SIGNAL_REASONS = {
    "SIGTERM": "Snakemake cancelled the job, or a scheduler time limit",
    "SIGINT": "interrupted, e.g. Ctrl-C",
    "SIGHUP": "the terminal or session closed",
}


class Terminated(BaseException):
    """Raised in the main thread by the signal handler, so that ``finally`` blocks (temporary files) run."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def script_name() -> str:
    return Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"


def killed_line(script: str, signum: int) -> str:
    name = signal.Signals(signum).name
    reason = SIGNAL_REASONS.get(name)
    return f"KILLED: {script} received {name}" + (f" ({reason})" if reason else "")


def install_signal_handlers(script: str | None = None) -> None:
    """SIGTERM, SIGINT and SIGHUP write the KILLED line to stderr at once, then raise :class:`Terminated`.

    A signal that the process inherited as ignored (``nohup``, a background job) stays ignored. A second
    signal while the first unwinds exits at once.
    """
    script = script or script_name()

    def handler(signum, frame):
        if getattr(handler, "fired", False):
            os._exit(128 + signum)
        handler.fired = True
        _write_stderr(killed_line(script, signum) + "\n")
        raise Terminated(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, handler)


def _write_stderr(text: str) -> None:
    """Write to fd 2 directly: safe inside a signal handler that interrupted a write to ``sys.stderr``."""
    data = text.encode("utf-8", "replace")
    while data:
        try:
            data = data[os.write(2, data) :]
        except OSError:
            return


def _is_ours(err: BaseException) -> bool:
    """Whether ``err`` is one of the package's error classes (defined in a ``platonic_mlip`` module)."""
    return any(cls.__module__.split(".")[0] == "platonic_mlip" for cls in type(err).__mro__[:-1])


def describe(err: BaseException) -> tuple[str, str | None]:
    """(the one-line reason, starting ``ERROR:`` or ``KILLED:``; the detail to print after it, or None)."""
    full = "".join(traceback.format_exception(err))
    if isinstance(err, Terminated):
        return killed_line(script_name(), err.signum), None
    if isinstance(err, KeyboardInterrupt):
        return f"KILLED: {script_name()} interrupted (KeyboardInterrupt)", full
    if isinstance(err, DiskFullError):
        return f"ERROR: {err}", None
    if is_disk_full(err):
        if err.filename:
            return f"ERROR: {DiskFullError(err.filename, err)}", full
        return f"ERROR: no space left on device ({err})", full
    if isinstance(err, MemoryError):
        return f"ERROR: out of memory ({_type_message(err)}); give the job more memory (mem_mb)", full
    if type(err).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"ERROR: out of GPU memory ({first}); lower embed.batch_atoms", full
    if _is_ours(err):
        message = str(err) or type(err).__name__
        return f"ERROR: {message}", full if getattr(err, "show_traceback", False) else None
    return f"ERROR: {_type_message(err)}", full


def _type_message(err: BaseException) -> str:
    message = str(err)
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def exit_status(err: BaseException) -> int:
    if isinstance(err, Terminated):
        return 128 + err.signum
    if isinstance(err, KeyboardInterrupt):
        return 128 + signal.SIGINT
    return 1


def report(err: BaseException, file=None) -> int:
    """Write the reason of ``err`` (and its detail) to ``file`` (stderr); return the exit status."""
    file = file or sys.stderr
    headline, detail = describe(err)
    if not isinstance(err, Terminated):  # the signal handler already wrote it
        print(headline, file=file)
    if detail:
        print(detail.rstrip("\n"), file=file)
    file.flush()
    return exit_status(err)


def run(main: Callable, *args, **kwargs):
    """Run ``main(*args, **kwargs)`` as a script; exit with its return value, or report its failure.

    ``SystemExit`` passes unchanged (``raise SystemExit("ERROR: ...")`` already prints one line and exits 1;
    argparse exits 2). Never returns.
    """
    install_signal_handlers()
    faulthandler.enable()  # a crash in native code (SIGSEGV, SIGBUS, SIGABRT) prints the Python stack
    try:
        status = main(*args, **kwargs)
    except SystemExit:
        raise
    except BaseException as err:
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or a full disk: report anyway
            sys.stdout.flush()
        status = report(err)
    raise SystemExit(status)


def add_pair_options(ap) -> None:
    """``--roles`` and ``--control-pairs`` of the all-pairs scripts (config key ``metrics.control_pairs``)."""
    from platonic_mlip.metrics import CONTROL_PAIRS

    ap.add_argument("--roles", default=None, help="JSON {model: role} (platonic_mlip.models.ROLES)")
    ap.add_argument(
        "--control-pairs",
        choices=CONTROL_PAIRS,
        default="all",
        help="pairs of two controls: all, or only two of one role (metrics.control_pairs)",
    )


def chosen_pairs(args, models) -> list[tuple[str, str]]:
    """The pairs of distinct ``models`` to compute (``metrics.computed_pairs``) from ``add_pair_options``'
    arguments; exits naming the model when ``--roles`` names one that is not in ``models``."""
    import json

    from platonic_mlip.metrics import computed_pairs

    roles = json.loads(args.roles) if args.roles else {}
    unknown = sorted(set(roles) - set(models))
    if unknown:
        raise SystemExit(f"ERROR: --roles names model(s) {unknown} not in --models {list(models)}")
    return computed_pairs(list(models), roles, args.control_pairs)
