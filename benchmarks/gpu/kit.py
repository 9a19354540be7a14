"""The GPU kit's shared logic: which wheels to carry, the size budget, the paper's predicted wall time.

Standard library only (``combine`` also needs PyYAML, which the image and every environment have), so it
runs under any ``python3``: here before the download, and on the GPU machine beside ``device.sh``.
See docs/gpu.md.

    python3 benchmarks/gpu/kit.py families     # the families whose jobs want a GPU (FAMILIES[f]["gpu"])
    python3 benchmarks/gpu/kit.py plan                  # what download.py would fetch, per family
    python3 benchmarks/gpu/kit.py wheels FAMILY [--wheels DIR] [--verify]   # wheel files of FAMILY
    python3 benchmarks/gpu/kit.py combine A.json B.json --out gpu_embed.json  # merge + predict
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import heapq
import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

KIT = Path(__file__).resolve().parent
SHIMS = KIT / "shims"
ROOT = KIT.parents[1]
LOCKS = ROOT / "envs" / "locks"
IMAGE_PACKAGES = KIT / "image_packages.txt"
WHEELS_DIR = ROOT / ".gpu_wheels"
MANIFEST = "manifest.json"
#: what the device tool carries at most: the working tree plus the carried paths
BUDGET_BYTES = 64 * 2**20
#: the image's interpreter (KINDS.md: Python 3.12.3) and the platform tags pip must match there
PYTHON_VERSION = "3.12"
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    *(f"manylinux_2_{n}_x86_64" for n in (24, 31, 34, 35, 17)),
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
#: never carried: the image's CUDA build of torch is the point of the machine
NEVER_CARRY = frozenset({"torch"})
#: carried even though the image has the package: the image's version is not the lock's and the model's
#: numbers depend on it (mace-torch 0.3.16 pins e3nn 0.4.4; sevenn 0.13.0 is locked with e3nn 0.6.0)
CARRY_ANYWAY = frozenset({"e3nn"})
#: the distributions a family's embedding imports (benchmark and naive route): measured by running
#: ``benchmarks/embed_speed.py`` on 2 structures in each family's environment and mapping ``sys.modules`` to
#: distributions (``importlib.metadata.packages_distributions``). A family missing here falls back to its
#: whole lock less DEV_ONLY.
RUNTIME: dict[str, tuple[str, ...]] = {
    "mace": (
        "ase",
        "cycler",
        "e3nn",
        "fonttools",
        "h5py",
        "kiwisolver",
        "lightning-utilities",
        "lmdb",
        "mace-torch",
        "matplotlib",
        "matscipy",
        "mpmath",
        "numpy",
        "opt-einsum-fx",
        "opt-einsum",
        "orjson",
        "packaging",
        "pandas",
        "pillow",
        "pyparsing",
        "python-dateutil",
        "scipy",
        "sympy",
        "torch-ema",
        "torchmetrics",
        "tqdm",
        "typing-extensions",
    ),  # fmt: skip
    "sevenn": (
        "ase",
        "braceexpand",
        "certifi",
        "charset-normalizer",
        "cloudpickle",
        "e3nn",
        "fsspec",
        "idna",
        "jinja2",
        "joblib",
        "markupsafe",
        "matscipy",
        "mpmath",
        "narwhals",
        "numpy",
        "opt-einsum-fx",
        "opt-einsum",
        "packaging",
        "pandas",
        "psutil",
        "python-dateutil",
        "requests",
        "scikit-learn",
        "scipy",
        "sevenn",
        "sympy",
        "threadpoolctl",
        "torch-geometric",
        "tqdm",
        "typing-extensions",
        "urllib3",
        "xxhash",
    ),  # fmt: skip
    "orb": (
        "ase",
        "certifi",
        "charset-normalizer",
        "dm-tree",
        "filelock",
        "httpx",
        "huggingface-hub",
        "idna",
        "mpmath",
        "numpy",
        "orb-models",
        "packaging",
        "python-dateutil",
        "requests",
        "scipy",
        "six",
        "sympy",
        "tqdm",
        "typing-extensions",
        "urllib3",
    ),  # fmt: skip
    "chgnet": (
        "ase",
        "charset-normalizer",
        "chgnet",
        "cycler",
        "cython",
        "fonttools",
        "h5py",
        "kiwisolver",
        "lxml",
        "matplotlib",
        "monty",
        "numpy",
        "nvidia-ml-py3",
        "orjson",
        "packaging",
        "palettable",
        "pillow",
        "pymatgen",
        "pymatgen-core",
        "pyparsing",
        "python-dateutil",
        "ruamel-yaml",
        "scipy",
        "spglib",
        "tabulate",
        "tqdm",
        "typing-extensions",
    ),  # fmt: skip
}
#: distributions replaced by the kit's shims (``benchmarks/gpu/shims``, on PYTHONPATH after the wheels): the
#: measured runtime sets above are without them. orb-models imports ``cached_path`` (which pulls boto3,
#: botocore, google-cloud-storage, ...: 25 MB of wheels) only to download weights: the shim fails on use, and
#: the benchmark's Orb models have random weights. chgnet imports ``nvidia_smi`` (nvidia-ml-py3, an sdist
#: only): the shim re-exports the image's ``pynvml`` (nvidia-ml-py), which is what nvidia_smi wraps.
SHIMMED = {"orb": ("cached-path",), "chgnet": ("nvidia-ml-py3",)}
#: files dropped from a wheel before it is carried (checkpoints the benchmark does not load), by package:
#: the two largest wheels would not fit in the budget whole (sevenn 43 MB, chgnet 14 MB)
TRIM: dict[str, tuple[str, ...]] = {
    "sevenn": (
        "sevenn/pretrained_potentials/SevenNet_MF_0/",
        "sevenn/pretrained_potentials/SevenNet_0__22May2024/",
    ),
    "chgnet": ("chgnet/pretrained/0.2.0/", "chgnet/pretrained/r2scan/"),
}
#: lock entries no embedding needs (tests, phonons): left out for a family without a RUNTIME entry
DEV_ONLY = frozenset({"pytest", "iniconfig", "pluggy", "pygments", "phonopy", "phonors", "symfc"})

#: the models each family's benchmark runs: key -> (registry model, architecture override or None). MACE
#: medium/large are random-weight MACE-MP-0 architectures registered by bench.py (MACE_ARCHITECTURES). A
#: GPU family missing here runs its contract model (FAMILIES[f]["contract"]["model"]).
BENCH_MODELS: dict[str, dict[str, tuple[str, str | None]]] = {
    "mace": {
        "mace-mp-0-small": ("dummy-mace-mp-0-small", None),
        "mace-mp-0-small@last": ("dummy-mace-mp-0-small@last", None),
        "mace-mp-0-medium": ("dummy-mace-mp-0-small", "medium"),
        "mace-mp-0-medium@last": ("dummy-mace-mp-0-small@last", "medium"),
        "mace-mp-0-large": ("dummy-mace-mp-0-small", "large"),
    },
    "sevenn": {"7net-0": ("7net-0", None), "7net-l3i5": ("7net-l3i5", None)},
    "orb": {
        "orb-v3-conservative": ("dummy-orb-v3", None),
        "orb-v3-direct": ("dummy-orb-v3", "orb_v3_direct_inf_omat"),
    },
    "chgnet": {"chgnet-0.3.0": ("chgnet-0.3.0", None)},
}
#: the paper config's checkpoints -> the benchmark key that stands in for them (same architecture; random
#: weights do not change the cost). Second entry: when the job also computes a deeper layer (@last/@all),
#: which runs every interaction block. 7net-omat has the 7net-l3i5 architecture; MACE-OMAT-0 medium the
#: MACE-MP-0 medium one (both assumptions of ours, see docs/gpu.md).
PAPER_PROXY: dict[str, tuple[str, str]] = {
    "mace-mp-0-small": ("mace-mp-0-small", "mace-mp-0-small@last"),
    "dummy-mace-mp-0-small": ("mace-mp-0-small", "mace-mp-0-small@last"),
    "mace-mp-0-medium": ("mace-mp-0-medium", "mace-mp-0-medium@last"),
    "mace-omat-0-medium": ("mace-mp-0-medium", "mace-mp-0-medium@last"),
    "mace-mp-0-large": ("mace-mp-0-large", "mace-mp-0-large"),
    "7net-omat": ("7net-l3i5", "7net-l3i5"),
    "7net-0": ("7net-0", "7net-0"),
    # the controls at 7net-0's architecture (docs/controls.md): the same network, other weights
    "dummy-7net-0": ("7net-0", "7net-0"),
    "denoise-7net-0": ("7net-0", "7net-0"),
    "distill-7net-0": ("7net-0", "7net-0"),
    "orb-v3-conservative-inf-omat": ("orb-v3-conservative", "orb-v3-conservative"),
    "orb-v3-direct-inf-omat": ("orb-v3-direct", "orb-v3-direct"),
    "chgnet-0.3.0": ("chgnet-0.3.0", "chgnet-0.3.0"),
}

#: the one command the device tool runs (docs/gpu.md quotes it; carry .gpu_wheels)
DEVICE_COMMAND = (
    'PYTHONUNBUFFERED=1 bash benchmarks/gpu/device.sh --device cuda --wheels .gpu_wheels --out "$OUT"'
)
DEVICE_CARRY = (".gpu_wheels",)
DEVICE_TIMEOUT_S = 420


class BudgetError(RuntimeError):
    """The wheels and the working tree together exceed what the device tool carries."""


def norm(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def load_families():
    """``src/platonic_mlip/families.py`` (standard library only), loaded by path."""
    path = ROOT / "src" / "platonic_mlip" / "families.py"
    spec = importlib.util.spec_from_file_location("_platonic_families_gpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gpu_families(families: dict | None = None) -> list[str]:
    """Families whose embedding jobs want a GPU, in registry order."""
    fams = load_families().FAMILIES if families is None else families
    return [name for name, entry in fams.items() if entry.get("gpu")]


def read_lock(path: Path) -> dict[str, tuple[str, str]]:
    """``name==version`` lines of a lock -> {normalised name: (name, version)}; comments skipped."""
    out = {}
    for raw in Path(path).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not version.strip():
            raise ValueError(f"{path}: not a name==version pin: {raw!r}")
        out[norm(name)] = (name.strip(), version.strip())
    return out


def read_image(path: Path = IMAGE_PACKAGES) -> dict[str, str | None]:
    """The image's packages: {normalised name: version or None where unknown}."""
    out = {}
    for raw in Path(path).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[norm(name)] = version.strip() or None
    return out


def plan_family(
    family: str, lock: dict[str, tuple[str, str]], image: dict[str, str | None], runtime=None
) -> list[dict]:
    """What a family must carry: its runtime distributions at the lock's versions, less torch and what the
    image has (except CARRY_ANYWAY) and what a shim replaces (SHIMMED). Returns [{name, version, why}]
    sorted by name; raises ValueError when a runtime distribution is not in the lock."""
    runtime = RUNTIME.get(family) if runtime is None else runtime
    if runtime is None:
        wanted = [n for n in lock if n not in DEV_ONLY]
        source = "lock (no measured runtime set)"
    else:
        wanted = [norm(n) for n in runtime]
        source = "imported by the benchmark"
    out = []
    for n in sorted(set(wanted)):
        if n in NEVER_CARRY or n in SHIMMED.get(family, ()):
            continue
        if n in image and n not in CARRY_ANYWAY:
            continue
        if n not in lock:
            raise ValueError(f"family {family}: runtime package {n} is not in its lock")
        name, version = lock[n]
        why = source if n not in image else f"{source}; the image's version is not the lock's"
        out.append({"name": name, "version": version, "why": why})
    return out


def plan(families: list[str] | None = None, image_path: Path = IMAGE_PACKAGES) -> dict[str, list[dict]]:
    """{family: plan_family(...)} for the GPU families (their env's lock in envs/locks)."""
    fams = load_families().FAMILIES
    image = read_image(image_path)
    names = gpu_families(fams) if families is None else families
    return {f: plan_family(f, read_lock(LOCKS / f"{fams[f]['env']}.txt"), image) for f in names}


def tree_bytes(root: Path = ROOT) -> int:
    """Bytes of what travels besides the carried paths: tracked and untracked, not ignored files."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    return sum((root / f.decode()).stat().st_size for f in files if f and (root / f.decode()).is_file())


def check_budget(wheel_bytes: int, tree: int, budget: int = BUDGET_BYTES) -> int:
    """Headroom in bytes; raises BudgetError when wheels + tree exceed ``budget``."""
    headroom = budget - wheel_bytes - tree
    if headroom < 0:
        raise BudgetError(
            f"wheels {wheel_bytes / 2**20:.1f} MiB + working tree {tree / 2**20:.1f} MiB exceed the "
            f"{budget / 2**20:.0f} MiB the device tool carries by {-headroom / 2**20:.1f} MiB: drop a family "
            "(download.py --families) or a package"
        )
    return headroom


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def family_wheels(family: str, wheels: Path = WHEELS_DIR, verify: bool = False) -> list[Path]:
    """The wheel files of ``family`` listed in the manifest (sha256 checked when ``verify``)."""
    manifest = json.loads((wheels / MANIFEST).read_text())
    if family not in manifest["families"]:
        raise KeyError(f"family {family} has no wheels in {wheels / MANIFEST}")
    by_file = {w["file"]: w for w in manifest["wheels"]}
    out = []
    for name in manifest["families"][family]["files"]:
        path = wheels / name
        if verify and sha256_of(path) != by_file[name]["sha256"]:
            raise ValueError(f"{path}: sha256 differs from the manifest")
        out.append(path)
    return out


# --- the paper's embedding, predicted from measured rates ---
def shard_atoms(n_atoms: int, n_structures: int, shard_structures: int) -> list[float]:
    """Atoms per shard when shards hold ``shard_structures`` structures (the last the rest), at the mean
    structure size."""
    n_shards = max(1, math.ceil(n_structures / shard_structures))
    sizes = [shard_structures] * (n_shards - 1) + [n_structures - shard_structures * (n_shards - 1)]
    return [s * n_atoms / n_structures for s in sizes]


def predict_wall_time(
    rates: dict[str, float],
    n_atoms: int,
    n_structures: int,
    shard_structures: int,
    n_gpus: int = 1,
    startup_s: float | dict[str, float] = 0.0,
) -> dict:
    """Predicted wall time of embedding ``n_atoms`` atoms with every model of ``rates`` (atoms/s each).

    Jobs: one per model and shard (``shard_atoms``), each ``atoms / rate + startup_s`` (a number, or one per
    model: process start, imports, model load). ``n_gpus`` GPUs take jobs longest first, each to the least
    loaded GPU (what a scheduler with enough slots does at best). Returns gpu_seconds (all jobs),
    makespan_s (wall time on ``n_gpus``), unsharded_one_gpu_s (one job per model, one GPU), n_jobs,
    n_shards and per_model_s (one GPU, sharded).
    """
    if n_gpus < 1:
        raise ValueError("n_gpus must be >= 1")
    bad = {m: r for m, r in rates.items() if not (r > 0 and math.isfinite(r))}
    if bad:
        raise ValueError(f"rates must be positive and finite: {bad}")
    shards = shard_atoms(n_atoms, n_structures, shard_structures)

    def start(model: str) -> float:
        return float(startup_s.get(model, 0.0) if isinstance(startup_s, dict) else startup_s)

    jobs = [(a / rate + start(m), m) for m, rate in rates.items() for a in shards]
    loads = [0.0] * n_gpus
    for t, _ in sorted(jobs, reverse=True):
        heapq.heapreplace(loads, loads[0] + t)
    per_model = {m: sum(t for t, mm in jobs if mm == m) for m in rates}
    return {
        "n_gpus": n_gpus,
        "n_shards": len(shards),
        "n_jobs": len(jobs),
        "gpu_seconds": sum(t for t, _ in jobs),
        "makespan_s": max(loads),
        "unsharded_one_gpu_s": sum(n_atoms / r + start(m) for m, r in rates.items()),
        "per_model_s": per_model,
    }


def paper_jobs(config: Path = ROOT / "config" / "config.yaml") -> dict:
    """The paper config's GPU embedding: checkpoints (of families with ``gpu``) with their layers, atoms,
    structures, shard size. CPU jobs (the reference spaces) and control training are not counted."""
    import yaml

    sys.path.insert(0, str(ROOT / "src"))
    from platonic_mlip.families import FAMILIES
    from platonic_mlip.models import checkpoint_specs, resolve

    cfg = yaml.safe_load(Path(config).read_text())
    opts = cfg.get("model_options") or {}
    specs = {m: resolve(m, opts.get(m.partition("@")[0])) for m in cfg["models"]}
    specs = {m: s for m, s in specs.items() if FAMILIES[s["family"]]["gpu"]}
    jobs = checkpoint_specs(specs)
    return {
        "checkpoints": {c: list(j["layers"]) for c, j in jobs.items()},
        "n_atoms": int(cfg["structures"]["expected_atoms"]),
        "n_structures": int(cfg["structures"]["expected_structures"]),
        "shard_structures": int(cfg["embed"]["shard_structures"]),
        "batch_atoms": int(cfg["embed"]["batch_atoms"]),
    }


def proxy_of(checkpoint: str, layers: list[str]) -> str:
    """The benchmark key that stands in for a paper checkpoint computing ``layers``."""
    if checkpoint not in PAPER_PROXY:
        raise KeyError(f"no benchmark stands in for {checkpoint}; add it to kit.PAPER_PROXY")
    first, deeper = PAPER_PROXY[checkpoint]
    return deeper if any(layer not in (None, "first") for layer in layers) else first


def choose_batch_atoms(results: list[dict], keys: list[str]) -> int | None:
    """The sweep's batch size with the least summed time over ``keys`` (ties: the smaller); None without
    a sweep point common to all of them."""
    by_key = {r["key"]: r for r in results if r.get("sweep")}
    common = None
    for k in keys:
        sizes = {p["batch_atoms"] for p in by_key.get(k, {}).get("sweep", [])}
        common = sizes if common is None else common & sizes
    if not common:
        return None

    def cost(b):
        return sum(
            1.0 / next(p["atoms_per_s"] for p in by_key[k]["sweep"] if p["batch_atoms"] == b) for k in keys
        )

    return min(sorted(common), key=cost)


def combine(paths: list[Path], gpu_counts=(1, 2, 4, 8, 14), config: Path | None = None) -> dict:
    """Merge per-family benchmark JSONs and predict the paper's embedding from them."""
    families, results = {}, []
    for p in paths:
        data = json.loads(Path(p).read_text())
        families[data["family"]] = {k: v for k, v in data.items() if k != "results"}
        results.extend(data["results"])
    paper = paper_jobs(config) if config else paper_jobs()
    ok = {r["key"]: r for r in results if not r.get("error")}
    proxies = {c: proxy_of(c, layers) for c, layers in paper["checkpoints"].items()}
    missing = sorted({p for p in proxies.values() if p not in ok})
    prediction = {"paper": paper, "proxies": proxies, "missing": missing}
    if not missing:
        keys = sorted(set(proxies.values()))
        best = choose_batch_atoms(list(ok.values()), keys)
        prediction["batch_atoms"] = best

        def rate(k):
            if best is None:
                return ok[k]["ours"]["median_atoms_per_s"]
            return next(p["atoms_per_s"] for p in ok[k]["sweep"] if p["batch_atoms"] == best)

        rates = {c: rate(k) for c, k in proxies.items()}
        startup = {c: ok[k].get("startup_s", 0.0) for c, k in proxies.items()}
        prediction["rates_atoms_per_s"] = rates
        prediction["startup_s"] = startup
        prediction["by_gpus"] = [
            predict_wall_time(
                rates,
                paper["n_atoms"],
                paper["n_structures"],
                paper["shard_structures"],
                n_gpus=n,
                startup_s=startup,
            )
            for n in gpu_counts
        ]
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "families": families,
        "results": results,
        "prediction": prediction,
    }


def summary_lines(combined: dict) -> list[str]:
    """A short text summary of a combined result (the log's last lines)."""
    out = [
        "| model | family | device | ours atoms/s | naive atoms/s | ratio | peak MB (ours) | diff vs CPU |"
    ]
    for r in combined["results"]:
        if r.get("error"):
            out.append(f"| {r['key']} | {r.get('family')} | - | error: {r['error'][:80]} |")
            continue
        peak = r.get("peak_mem_mb", {}).get("ours")
        cpu = r.get("cpu_check", {}).get("max_abs_diff")
        out.append(
            f"| {r['key']} | {r['family']} | {r['device']} | {r['ours']['median_atoms_per_s']:.0f} "
            f"| {r['naive']['median_atoms_per_s']:.0f} | {r['ratio_of_medians']:.2f} "
            f"| {'-' if peak is None else f'{peak:.0f}'} | {'-' if cpu is None else f'{cpu:.1e}'} |"
        )
    pred = combined["prediction"]
    if pred.get("by_gpus"):
        out.append(f"paper embedding predicted (batch_atoms {pred['batch_atoms']}):")
        for p in pred["by_gpus"]:
            out.append(
                f"  {p['n_gpus']} GPU(s): {p['makespan_s'] / 60:.1f} min wall ({p['n_jobs']} jobs, "
                f"{p['gpu_seconds'] / 3600:.2f} GPU-h)"
            )
    else:
        out.append(f"no prediction: missing benchmarks {pred.get('missing')}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("families")
    sub.add_parser("plan")
    w = sub.add_parser("wheels")
    w.add_argument("family")
    w.add_argument("--wheels", type=Path, default=WHEELS_DIR)
    w.add_argument("--verify", action="store_true")
    c = sub.add_parser("combine")
    c.add_argument("inputs", nargs="*", type=Path)
    c.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "families":
        print(" ".join(gpu_families()))
    elif args.cmd == "plan":
        print(json.dumps(plan(), indent=1))
    elif args.cmd == "wheels":
        print(" ".join(str(p) for p in family_wheels(args.family, args.wheels, args.verify)))
    else:
        combined = combine(args.inputs)
        args.out.write_text(json.dumps(combined, indent=1) + "\n")
        print("\n".join(summary_lines(combined)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
