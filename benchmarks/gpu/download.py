"""Download, here and once, the wheels the GPU machine lacks for every GPU model family (docs/gpu.md).

    python3 benchmarks/gpu/download.py                 # -> .gpu_wheels/*.whl + .gpu_wheels/manifest.json
    python3 benchmarks/gpu/download.py --families mace sevenn   # fewer families when the budget is short

What is fetched (``kit.plan``): each GPU family's runtime distributions at the exact versions of its lock
``envs/locks/<env>.txt``, less torch (the image's CUDA build is used) and less what the image has
(``image_packages.txt``), except ``kit.CARRY_ANYWAY``. Wheels only, for CPython 3.12 on manylinux x86-64
(``pip download --no-deps --only-binary=:all:``), into one folder shared by the families; the manifest names
each family's files (two versions of one package, e.g. e3nn, never go into one family's install), their
sizes and sha256, the requirements a wheel declares that neither the carried wheels nor the image provide,
and the size budget: wheels + the tracked working tree must stay within 64 MiB (the device tool's limit).
Exits non-zero when a wheel cannot be had or the budget is exceeded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kit  # noqa: E402

#: the environment of the image's interpreter, for the wheels' requirement markers
MARKER_ENV = {
    "python_version": kit.PYTHON_VERSION,
    "python_full_version": kit.PYTHON_VERSION + ".3",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "extra": "",
}


def _marker_class():
    try:
        from packaging.markers import Marker
    except ImportError:  # pip vendors packaging
        from pip._vendor.packaging.markers import Marker
    return Marker


def wheel_name_version(file: str) -> tuple[str, str]:
    """(normalised name, version) from a wheel file name."""
    parts = Path(file).name[: -len(".whl")].split("-")
    return kit.norm(parts[0]), parts[1]


def requirements(wheel: Path) -> list[str]:
    """Normalised names of the requirements ``wheel`` declares for the image's interpreter (no extras)."""
    Marker = _marker_class()
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode("utf-8", "replace")
    out = []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req, _, marker = line[len("Requires-Dist:") :].partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(MARKER_ENV):
            continue
        out.append(kit.norm(re.split(r"[\s\[<>=!~;(]", req.strip(), maxsplit=1)[0]))
    return out


def pip_download(name: str, version: str, dest: Path) -> Path:
    """Fetch one wheel (no dependencies) for the image's interpreter; returns its file."""
    have = [p for p in dest.glob("*.whl") if wheel_name_version(p.name) == (kit.norm(name), version)]
    if have:
        return have[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
    cmd += ["--python-version", kit.PYTHON_VERSION, "--implementation", "cp"]
    for plat in kit.PLATFORMS:
        cmd += ["--platform", plat]
    cmd += ["-d", str(dest), f"{name}=={version}"]
    print("+", " ".join(cmd[3:]), flush=True)
    subprocess.run(cmd, check=True)
    have = [p for p in dest.glob("*.whl") if wheel_name_version(p.name) == (kit.norm(name), version)]
    if len(have) != 1:
        raise SystemExit(f"pip download {name}=={version}: expected one wheel in {dest}, found {have}")
    return have[0]


def trim(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    """Rewrite the wheel ``path`` without the members under ``prefixes`` (and their RECORD lines); returns
    the dropped members (none when it was trimmed before)."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        drop = [i.filename for i in infos if i.filename.startswith(prefixes)]
        if not drop:
            return []
        tmp = path.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
            for info in infos:
                if info.filename in drop:
                    continue
                data = zf.read(info)
                if info.filename.endswith(".dist-info/RECORD"):
                    lines = data.decode().splitlines(keepends=True)
                    data = "".join(ln for ln in lines if not ln.startswith(prefixes)).encode()
                out.writestr(info, data)
    tmp.replace(path)
    return drop


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=kit.WHEELS_DIR, help="wheel folder (default .gpu_wheels)")
    ap.add_argument("--families", nargs="+", help="GPU families to fetch (default: all of them)")
    args = ap.parse_args(argv)
    plans = kit.plan(args.families)
    image = kit.read_image()
    args.dest.mkdir(parents=True, exist_ok=True)
    wheels: dict[str, dict] = {}
    families = {}
    for family, items in plans.items():
        files = []
        for item in items:
            path = pip_download(item["name"], item["version"], args.dest)
            if path.name not in wheels:
                pypi_sha = kit.sha256_of(path)
                dropped = trim(path, kit.TRIM.get(kit.norm(item["name"]), ()))
                wheels[path.name] = {
                    "file": path.name,
                    "name": item["name"],
                    "version": item["version"],
                    "bytes": path.stat().st_size,
                    "sha256": kit.sha256_of(path),
                    "requires": requirements(path),
                    "trimmed": dropped,
                    "sha256_before_trim": pypi_sha if dropped else None,
                }
            files.append(path.name)
        carried = {wheel_name_version(f)[0] for f in files}
        provided = carried | set(image) | kit.NEVER_CARRY
        unresolved = sorted({r for f in files for r in wheels[f]["requires"]} - provided)
        families[family] = {
            "files": files,
            "bytes": sum(wheels[f]["bytes"] for f in files),
            "packages": items,
            "unresolved_requirements": unresolved,
        }
    stray = sorted(p.name for p in args.dest.glob("*.whl") if p.name not in wheels)
    total = sum(w["bytes"] for w in wheels.values()) + sum((args.dest / s).stat().st_size for s in stray)
    tree = kit.tree_bytes()
    manifest = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": kit.PYTHON_VERSION,
        "platforms": list(kit.PLATFORMS),
        "image_packages": str(kit.IMAGE_PACKAGES.relative_to(kit.ROOT)),
        "families": families,
        "wheels": sorted(wheels.values(), key=lambda w: w["file"]),
        "stray_wheels": stray,
        "wheels_bytes": total,
        "tree_bytes": tree,
        "budget_bytes": kit.BUDGET_BYTES,
        "headroom_bytes": kit.BUDGET_BYTES - total - tree,
    }
    (args.dest / kit.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    for family, f in families.items():
        warn = f" (not carried, not in the image: {', '.join(f['unresolved_requirements'])})"
        print(
            f"{family}: {len(f['files'])} wheels, {f['bytes'] / 2**20:.1f} MiB"
            + warn * bool(f["unresolved_requirements"])
        )
    print(
        f"wheels {total / 2**20:.1f} MiB + tracked tree {tree / 2**20:.1f} MiB; "
        f"manifest {args.dest / kit.MANIFEST}"
    )
    if stray:
        print(f"warning: wheels not in the plan (delete them): {', '.join(stray)}")
    headroom = kit.check_budget(total, tree)
    print(f"headroom {headroom / 2**20:.1f} MiB of {kit.BUDGET_BYTES / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
