"""Faults are reported in one line and lose nothing: failed writes, signals, crashes and killed jobs."""

import errno
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, require_env

from platonic_mlip import io

HOOK = ROOT / "workflow" / "scripts" / "on_failure.sh"


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if ".part" in p.name)


def _partial_then(exc):
    """A stand-in for np.save / np.savez / Path.write_text: writes some bytes, then raises ``exc``."""

    def fake(target, *args, **kwargs):
        if hasattr(target, "write"):
            target.write(b"\x93NUMPY partial")
        else:
            with open(target, "wb") as fh:
                fh.write(b"partial")
        raise exc

    return fake


WRITERS = {
    "save_npy": ("np.save", lambda path: io.save_npy(path, np.zeros(3))),
    "save_npz": ("np.savez", lambda path: io.save_npz(path, a=np.zeros(3))),
    "write_json": ("Path.write_text", lambda path: io.write_json(path, {"a": 1})),
}


def _patch(monkeypatch, target, exc):
    if target == "np.save":
        monkeypatch.setattr(np, "save", _partial_then(exc))
    elif target == "np.savez":
        monkeypatch.setattr(np, "savez", _partial_then(exc))
    else:
        import pathlib

        fake = _partial_then(exc)
        monkeypatch.setattr(pathlib.Path, "write_text", lambda self, *a, **k: fake(self))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=["ENOSPC", "EDQUOT"])
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_full_disk_removes_the_temporary_and_names_the_output(tmp_path, monkeypatch, writer, code):
    target, write = WRITERS[writer]
    _patch(monkeypatch, target, OSError(code, os.strerror(code)))
    out = tmp_path / "sub" / "out.bin"
    with pytest.raises(OSError) as info:
        write(out)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("no space left on device writing ") and str(out) in message
    assert info.value.errno == code
    assert leftovers(out.parent) == [] and not out.exists()


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_interrupt_mid_write_removes_the_temporary(tmp_path, monkeypatch, writer):
    target, write = WRITERS[writer]
    _patch(monkeypatch, target, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        write(tmp_path / "out.bin")
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.bin").exists()


def test_other_errors_pass_unchanged_and_leave_nothing(tmp_path):
    with pytest.raises(ZeroDivisionError), io.atomic_path(tmp_path / "x.txt") as tmp:
        tmp.write_text("half")
        1 / 0  # noqa: B018
    assert list(tmp_path.iterdir()) == []
    with io.atomic_path(tmp_path / "y.png", keep_suffix=True) as tmp:
        assert tmp.name.startswith(".y.") and tmp.name.endswith(".part.png")
        tmp.write_text("ok")
    assert [p.name for p in tmp_path.iterdir()] == ["y.png"]


def test_a_retry_removes_the_temporary_of_a_killed_attempt(tmp_path):
    """A SIGKILLed writer cannot clean up: the next write of the same output removes its temporary."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.npy.{dead.pid}.part"
    stale.write_bytes(b"x" * 1000)
    alive = tmp_path / f".out.npy.{os.getppid()}.part"  # a running process's write is left alone
    alive.write_bytes(b"y")
    other = tmp_path / f".other.npy.{dead.pid}.part"
    other.write_bytes(b"z")
    io.save_npy(tmp_path / "out.npy", np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name, "out.npy"])


def test_a_failed_figure_leaves_no_temporary(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from platonic_mlip import plotting

    fig = plotting._plt().figure()

    def savefig(path, **kwargs):
        open(path, "wb").write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fig, "savefig", savefig)
    with pytest.raises(OSError, match="no space left on device writing .*fig.png"):
        plotting.save(fig, str(tmp_path / "fig.png"))
    assert list(tmp_path.iterdir()) == []


def test_projection_on_a_full_disk_leaves_no_temporary(tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.syspath_prepend(str(ROOT / "workflow" / "scripts"))
    import project as script

    emb = tmp_path / "emb.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32))
    pd.DataFrame({"atom_index": [0, 3, 5]}).to_csv(tmp_path / "anchors.csv", index=False)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(script, "project_onto", full)
    out = tmp_path / "out" / "z.npy"
    argv = ["--embeddings", str(emb), "--anchors", str(tmp_path / "anchors.csv"), "--out", str(out)]
    with pytest.raises(OSError, match=f"no space left on device writing {re.escape(str(out))}"):
        script.main(argv)
    assert list(out.parent.iterdir()) == []


# --- platonic_mlip.cli.run: the first line of stderr says what happened -----------------------------------

CHILD = """\
import errno, sys, time
sys.path.insert(0, {src!r})
import numpy as np
from platonic_mlip import io
from platonic_mlip.cli import run


def main():
    what = sys.argv[1]
    print("working", flush=True)
    if what == "ours":
        from platonic_mlip.weights import WeightsError
        raise WeightsError("model 'x': sha256 mismatch")
    if what == "exit":
        raise SystemExit("ERROR: config key 'a.b' is missing")
    if what == "nospace":
        np.save = lambda fh, a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
        io.save_npy(sys.argv[2], np.zeros(3))
    if what == "nospace-raw":
        raise OSError(errno.ENOSPC, "No space left on device", sys.argv[2])
    if what == "memory":
        raise MemoryError("Unable to allocate 12.0 GiB for an array")
    if what == "bug":
        return {{}}["missing"]
    if what == "load":
        from platonic_mlip.embed.base import model_load_error
        spec = {{"checkpoint": "m1", "family": "mace", "source": "/w/m1.model"}}
        try:
            raise ValueError("invalid load key")
        except ValueError as err:
            raise model_load_error(spec, err) from err
    if what == "sleep":
        with io.atomic_path(sys.argv[2]) as tmp:
            tmp.write_bytes(b"half written")
            print("ready", flush=True)
            time.sleep(60)
    return 0


if __name__ == "__main__":
    run(main)
"""


@pytest.fixture
def child(tmp_path):
    path = tmp_path / "child.py"
    path.write_text(CHILD.format(src=str(ROOT / "src")))
    return path


def run_child(child, *args):
    res = subprocess.run([sys.executable, str(child), *args], capture_output=True, text=True, timeout=60)
    return res.returncode, res.stderr.splitlines()


@pytest.mark.parametrize(
    "what, first, one_line",
    [
        ("ours", "ERROR: model 'x': sha256 mismatch", True),
        ("exit", "ERROR: config key 'a.b' is missing", True),
        ("memory", "ERROR: out of memory (MemoryError: Unable to allocate 12.0 GiB for an array)", False),
        ("bug", "ERROR: KeyError: 'missing'", False),
    ],
)
def test_run_says_what_happened_in_the_first_line(child, what, first, one_line):
    rc, lines = run_child(child, what)
    assert rc == 1
    assert lines[0].startswith(first), lines
    if one_line:
        assert len(lines) == 1, lines
    else:
        assert lines[1] == "Traceback (most recent call last):", lines


@pytest.mark.parametrize("what", ["nospace", "nospace-raw"])
def test_run_reports_a_full_disk_with_the_path(child, tmp_path, what):
    out = tmp_path / "results" / "x.npy"
    rc, lines = run_child(child, what, str(out))
    assert rc == 1
    assert lines[0] == f"ERROR: no space left on device writing {out}", lines
    if what == "nospace":
        assert len(lines) == 1 and leftovers(out.parent) == []


def test_a_model_that_cannot_load_names_model_family_and_file_then_the_traceback(child):
    rc, lines = run_child(child, "load")
    assert rc == 1
    assert lines[0] == (
        "ERROR: model m1 (family mace): could not load weights /w/m1.model: ValueError: invalid load key"
    )
    assert lines[1] == "Traceback (most recent call last):"
    assert "ValueError: invalid load key" in lines and "ModelLoadError" in "\n".join(lines)


def test_sigterm_says_killed_and_removes_the_temporary(child, tmp_path):
    out = tmp_path / "results" / "big.npy"
    proc = subprocess.Popen(
        [sys.executable, str(child), "sleep", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "working\n" and proc.stdout.readline() == "ready\n"
        assert leftovers(out.parent)  # the temporary exists while the write runs
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.splitlines()[0] == (
        "KILLED: child.py received SIGTERM (Snakemake cancelled the job, or a scheduler time limit)"
    )
    assert leftovers(out.parent) == [] and not out.exists()


# --- the rules' failure hook (ON_FAILURE in workflow/rules/common.smk) ------------------------------------


def hook(status, log, *args):
    return subprocess.run(["bash", str(HOOK), str(status), str(log), *args], capture_output=True, text=True)


def test_hook_marks_a_killed_job_in_its_log_and_on_the_console(tmp_path):
    log = tmp_path / "results" / "run" / "logs" / "embed" / "m" / "0000.log"
    log.parent.mkdir(parents=True)
    log.write_text("loading model\nbatch 3/10\r")  # a progress bar cut off by the kill
    res = hook(137, log)
    assert res.returncode == 137
    killed = "KILLED: exit status 137 = SIGKILL (out of memory or a time limit?)"
    assert log.read_text().splitlines()[-1] == killed
    assert res.stderr == f"embed/m/0000: {killed} (full log: {log})\n"


def test_hook_prints_the_first_error_line(tmp_path):
    log = tmp_path / "logs" / "project.log"
    log.parent.mkdir()
    log.write_text("warning: x\nERROR: model m (family f): could not load weights w: E: y\nTraceback ...\n")
    res = hook(1, log)
    assert res.returncode == 1 and "KILLED" not in log.read_text()
    assert (
        res.stderr
        == f"project: ERROR: model m (family f): could not load weights w: E: y (full log: {log})\n"
    )
    log.write_text("no reason given\nlast words\n\n")
    assert hook(2, log, "myrule").stderr == f"myrule: last words (full log: {log})\n"


def test_the_rule_pattern_keeps_the_status_of_a_sigkilled_command(tmp_path):
    """`set -euo pipefail; cmd > log 2>&1 || hook $? log`, as Snakemake runs it, with a SIGKILLed python."""
    log = tmp_path / "logs" / "job.log"
    log.parent.mkdir()
    kill = (
        f"{sys.executable} -c 'import os, signal; print(1, flush=True); os.kill(os.getpid(), signal.SIGKILL)'"
    )
    cmd = f"set -euo pipefail; {kill} > {log} 2>&1 || bash {HOOK} $? {log}; echo not reached"
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    assert res.returncode == 137 and "not reached" not in res.stdout
    assert log.read_text() == "1\nKILLED: exit status 137 = SIGKILL (out of memory or a time limit?)\n"
    assert "job: KILLED: exit status 137 = SIGKILL" in res.stderr


# structures.smk and its two scripts switch over separately
PENDING_RULES: set[str] = set()
PENDING_SCRIPTS: set[str] = set()


def test_every_rule_and_script_uses_the_failure_handling():
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert re.search(r"^ON_FAILURE = .*on_failure\.sh.*\$\? \{\{log:q\}\}", common, re.M)
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        if smk.name in PENDING_RULES:
            continue
        text = smk.read_text()
        redirects = len(re.findall(r"> \{log\} 2>&1\"", text))
        hooked = len(re.findall(r"> \{log\} 2>&1\"\s*f\"\{ON_FAILURE\}\"", text))
        assert redirects == hooked, smk.name
    for script in sorted((ROOT / "workflow" / "scripts").glob("[a-z]*.py")):
        if script.name not in PENDING_SCRIPTS:
            assert script.read_text().rstrip().endswith("run(main)"), script.name


# --- the workflow: a failed job's one-line reason reaches the Snakemake console ----------------------------


def test_a_failed_job_shows_its_reason_on_the_console(tmp_path):
    from test_workflow import run_config, write_config

    require_env("mace")
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"this is not a MACE model" * 10)
    cfg = write_config(
        tmp_path / "c.yaml",
        run_name="c",
        **{
            "structures.limit": 2,
            "models": ["mace-mp-0-small", "7net-0"],
            "anchors.reference_model": "7net-0",
            "model_options": {"mace-mp-0-small": {"source": str(bad), "trust_weights_file": True}},
        },
    )
    t0 = time.time()
    res = run_config(cfg, tmp_path, "results/c/embeddings/mace-mp-0-small.json")
    assert res.returncode != 0
    log = tmp_path / "results" / "c" / "logs" / "embed" / "mace-mp-0-small" / "0000.log"
    reason = f"ERROR: model mace-mp-0-small (family mace): could not load weights {bad}: "
    line = next((x for x in res.stderr.splitlines() if x.startswith("embed/mace-mp-0-small/0000: ")), "")
    assert line.startswith(f"embed/mace-mp-0-small/0000: {reason}"), res.stderr[-3000:]
    assert line.endswith(f"(full log: {log.relative_to(tmp_path)})")
    text = log.read_text()
    assert reason in text and "Traceback (most recent call last)" in text
    assert not list((tmp_path / "results").rglob("*.part*"))
    assert time.time() - t0 < 120
