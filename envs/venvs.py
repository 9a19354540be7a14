#!/usr/bin/env python3
"""Create the project's plain virtualenvs from the conda specs in ``envs/*.yaml``.

One environment per model family (mace-torch pins e3nn 0.4.4, sevenn needs e3nn >= 0.5, orb-models
changes torch's global dtype) plus ``analysis`` for Snakemake and the analysis. The list comes from the
family registry, ``src/platonic_mlip/families.py``. Standard library only,
so it runs on a bare Python 3.11.

    python envs/venvs.py create [ENV ...]   # create or update (skips envs whose stamp is current)
    python envs/venvs.py lock [ENV ...]     # re-resolve from the specs and rewrite envs/locks/ENV.txt
    python envs/venvs.py python ENV         # print the interpreter path of ENV
    python envs/venvs.py families           # print the model families (the Makefile's list)
    python envs/venvs.py env-of FAMILY      # print the environment a family runs in

Order of installation: torch first, pinned by ``envs/constraints.txt`` (otherwise pip pulls a newer
torch with several GB of CUDA wheels), then the locked requirements ``envs/locks/ENV.txt`` when present
(else the spec's pip list), then this project itself, editable and without dependencies.

The directory holding the venvs is ``.venvs`` in the repository, or ``$PLATONIC_VENVS``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ENVS_DIR = Path(__file__).resolve().parent
ROOT = ENVS_DIR.parent


def _load_families():
    """The family registry (``src/platonic_mlip/families.py``, standard library only), loaded by path."""
    import importlib.util

    path = ROOT / "src" / "platonic_mlip" / "families.py"
    spec = importlib.util.spec_from_file_location("_platonic_families", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAMILIES = _load_families()
ALL_ENVS = tuple(FAMILIES.envs())
CONSTRAINTS = ENVS_DIR / "constraints.txt"
STAMP = ".platonic-stamp"


def venv_root() -> Path:
    return Path(os.environ.get("PLATONIC_VENVS", ROOT / ".venvs")).resolve()


def python_of(name: str) -> Path:
    return venv_root() / name / "bin" / "python"


def pip_requirements(spec: Path) -> list[str]:
    """Return the ``pip:`` list of a conda environment file (our files' simple layout only)."""
    reqs: list[str] = []
    in_pip = False
    pip_indent = -1
    for raw in spec.read_text().splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if stripped in ("- pip:", "-pip:"):
            in_pip, pip_indent = True, indent
            continue
        if in_pip:
            if indent <= pip_indent:
                in_pip = False
                continue
            if not stripped.startswith("- "):
                raise SystemExit(f"{spec}: cannot read pip entry {raw!r}")
            reqs.append(stripped[2:].strip().strip("'\""))
    if not reqs:
        raise SystemExit(f"{spec}: no 'pip:' requirements found")
    return reqs


def torch_pin() -> str:
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip().startswith("torch"):
            return line.strip()
    raise SystemExit(f"{CONSTRAINTS}: no torch pin")


def lock_path(name: str) -> Path:
    return ENVS_DIR / "locks" / f"{name}.txt"


def stamp_of(name: str, with_lock: bool = True) -> str:
    """Digest of what an env is built from: spec, lock (when used), constraints.

    pyproject.toml is left out: the editable install of this project has no dependencies, so tool
    settings there must not force a rebuild.
    """
    h = hashlib.sha256()
    for p in (ENVS_DIR / f"{name}.yaml", lock_path(name), CONSTRAINTS):
        h.update(p.name.encode())
        use = p.exists() and (with_lock or p != lock_path(name))
        h.update(p.read_bytes() if use else b"-")
    return h.hexdigest()


def run(cmd: list[str]) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def pip(name: str, *args: str) -> None:
    run([python_of(name), "-m", "pip", "install", "--disable-pip-version-check", *args])


def create(name: str, use_lock: bool = True) -> None:
    spec = ENVS_DIR / f"{name}.yaml"
    if not spec.exists():
        raise SystemExit(f"unknown environment {name!r}; known: {', '.join(ALL_ENVS)}")
    target = venv_root() / name
    stamp = target / STAMP
    want = stamp_of(name, with_lock=use_lock)
    if stamp.exists() and stamp.read_text().strip() == want:
        print(f"[venvs] {name}: up to date ({target})")
        return
    if target.exists():
        print(f"[venvs] {name}: spec changed or incomplete install, rebuilding {target}")
        shutil.rmtree(target)
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    constraint = ["-c", str(CONSTRAINTS)]
    pip(name, *constraint, torch_pin())
    lock = lock_path(name)
    if use_lock and lock.exists():
        pip(name, *constraint, "-r", str(lock))
    else:
        pip(name, *constraint, *pip_requirements(spec))
    pip(name, "--no-deps", "--no-build-isolation", "-e", str(ROOT))
    stamp.write_text(want + "\n")  # written last: a half-built env is never taken as current
    print(f"[venvs] {name}: ready ({target})")


def lock(name: str) -> None:
    """Resolve ``name`` from its spec (reusing an env already built from the spec) and freeze it."""
    stamp = venv_root() / name / STAMP
    if not (stamp.exists() and stamp.read_text().strip() == stamp_of(name, with_lock=False)):
        if stamp.exists():
            stamp.unlink()
        lock_path(name).unlink(missing_ok=True)
        create(name, use_lock=False)
    frozen = subprocess.run(
        [str(python_of(name)), "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # keep the pin portable: the CPU build here, the CUDA build on a GPU machine
    lines = [re.sub(r"^(torch==[^+\s]+)\+\S+", r"\1", ln) for ln in frozen.splitlines() if ln.strip()]
    out = lock_path(name)
    out.parent.mkdir(exist_ok=True)
    header = f"# resolved by `python envs/venvs.py lock {name}` from envs/{name}.yaml (Python 3.11, Linux)\n"
    out.write_text(header + "\n".join(lines) + "\n")
    (venv_root() / name / STAMP).write_text(stamp_of(name) + "\n")
    print(f"[venvs] {name}: wrote {out.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("create", "lock", "python", "families", "env-of"))
    ap.add_argument("envs", nargs="*", help=f"environments (default: all of {', '.join(ALL_ENVS)})")
    args = ap.parse_args(argv)
    if args.action == "families":
        print(" ".join(FAMILIES.family_names()))
        return
    if args.action == "env-of":
        print(FAMILIES.family(args.envs[0])["env"])
        return
    names = args.envs or list(ALL_ENVS)
    for name in names:
        if name not in ALL_ENVS:
            raise SystemExit(f"unknown environment {name!r}; known: {', '.join(ALL_ENVS)}")
    if args.action == "python":
        print(python_of(names[0]))
        return
    for name in names:
        (create if args.action == "create" else lock)(name)


if __name__ == "__main__":
    main(sys.argv[1:])
