"""One family's embedding benchmark for the GPU kit (run in that family's environment; docs/gpu.md).

    PYTHONPATH=src python benchmarks/gpu/bench.py --family mace --device cuda --out mace.json
    ... --check-imports      # import the adapter and the model package only, then exit

Per model of ``kit.BENCH_MODELS[family]`` (the family's contract model when it has no entry):

1. naive route vs our batched path on the first ``--structures`` sample structures, ``--repeats`` interleaved
   repetitions after a warm-up (``benchmarks/embed_speed.bench_model``, imported): atoms/s, ratio, max abs
   difference between the routes; peak device memory of that measurement;
2. peak memory and time of the naive route alone on the same structures;
3. a sweep of our path's ``batch_atoms`` (``--sweep``) over ``--sweep-copies`` copies of the whole sample
   (one warm-up batch, then one timed pass per size): atoms/s, batches, peak memory each;
4. the largest absolute difference of our path's features on the device vs on the CPU (first
   ``--cpu-check`` structures; tolerance ``CPU_TOL`` times max(1, largest |feature|));
5. ``startup_s``: interpreter start to loaded model (imports + load), what every embedding job pays.

Peak memory is ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (MB); null on the CPU.
The JSON is rewritten after every model, so a family stopped by its timeout keeps what it finished.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import datetime  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

KIT = Path(__file__).resolve().parent
ROOT = KIT.parents[1]
for p in (ROOT / "src", KIT.parent, KIT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import kit  # noqa: E402

#: features on the device vs the CPU: max abs difference <= CPU_TOL * max(1, max |feature|) (float32)
CPU_TOL = 1e-4
#: random-weight MACE-MP-0 medium and large (hidden irreps 128x0e+128x1o, 128x0e+128x1o+128x2e), otherwise
#: as the small one in platonic_mlip.embed.mace.RANDOM_ARCHITECTURES (2 interactions, r_max 6, max_ell 3,
#: correlation 3, 10 Bessel functions, 16x0e readout MLP). Source: the MACE-MP-0 paper (Batatia et al.,
#: arXiv 2401.00096: the three sizes differ in the symmetry of the hidden features, L = 0, 1, 2, 128 channels)
#: and the model names of mace's own table (2023-12-10-mace-128-L0, 2023-12-03-mace-128-L1). avg_num_neighbors
#: is the small model's (same data, same r_max); it scales messages and does not change the cost.
MACE_ARCHITECTURES = {"medium": "128x0e+128x1o", "large": "128x0e+128x1o+128x2e"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--family", required=True)
    p.add_argument("--models", nargs="+", help="keys of kit.BENCH_MODELS[family] (default: all)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    p.add_argument("--structures", type=int, default=64, help="naive-vs-ours structures (default 64)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--warmup", type=int, default=16, help="warm-up structures per route (default 16)")
    p.add_argument("--batch-atoms", type=int, default=4000, help="our path in step 1 (paper config: 4000)")
    p.add_argument("--sweep", type=int, nargs="*", default=[500, 2000, 4000, 8000, 16000])
    p.add_argument("--sweep-copies", type=int, default=2, help="copies of the sample in the sweep")
    p.add_argument("--sweep-structures", type=int, help="only the first N sample structures in the sweep")
    p.add_argument("--cpu-check", type=int, default=8, help="structures compared with the CPU (0: none)")
    p.add_argument("--threads", type=int, default=4, help="torch CPU threads (paper config: 4)")
    p.add_argument("--csv", type=Path, default=ROOT / "resources" / "mp20_sample" / "train.csv")
    p.add_argument("--out", type=Path)
    p.add_argument("--check-imports", action="store_true")
    return p.parse_args(argv)


def models_of(family: str) -> dict[str, tuple[str, str | None]]:
    if family in kit.BENCH_MODELS:
        return kit.BENCH_MODELS[family]
    contract = kit.load_families().FAMILIES[family]["contract"]["model"]
    return {contract: (contract, None)}


def register_mace_architectures() -> None:
    from platonic_mlip.embed import mace

    for name, irreps in MACE_ARCHITECTURES.items():
        mace.RANDOM_ARCHITECTURES.setdefault(
            name, {**mace.RANDOM_ARCHITECTURES["small"], "hidden_irreps": irreps}
        )


class Memory:
    def __init__(self, device):
        import torch

        self.torch, self.cuda = torch, device.type == "cuda"

    def reset(self):
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()

    def peak_mb(self):
        return self.torch.cuda.max_memory_allocated() / 2**20 if self.cuda else None


def bench_one(key, name, arch, args, atoms, ids, sweep_atoms, sweep_ids, device, workdir) -> dict:
    import numpy as np
    import torch
    from embed_speed import bench_model, timed

    from platonic_mlip.embed.base import adapter, embed_structures, load_embedder
    from platonic_mlip.models import resolve

    mem = Memory(device)
    n = min(args.structures, len(atoms))
    ns = argparse.Namespace(
        architecture=arch, batch_atoms=args.batch_atoms, repeats=args.repeats, warmup=args.warmup
    )
    mem.reset()
    rec = bench_model(name, ns, atoms[:n], ids[:n], device, workdir)
    peaks = {"both_routes": mem.peak_mb()}
    rec.update(key=key, device=str(device))

    spec = resolve(name)
    if arch:
        spec["architecture"] = arch
    t0 = time.perf_counter()
    emb = load_embedder(spec, str(device))
    rec["load_s"] = time.perf_counter() - t0
    rec["startup_s"] = rec["load_s"] + rec.get("imports_s", 0.0)
    naive = adapter(spec["family"]).NaiveRoute(emb, device, workdir)
    mem.reset()
    _, t_naive = timed(functools.partial(naive, atoms[:n]), device)
    peaks["naive"] = mem.peak_mb()
    rec["naive"]["alone_atoms_per_s"] = rec["n_atoms"] / t_naive
    naive.close()
    del naive

    sweep = []
    total = sum(len(a) for a in sweep_atoms)
    for b in args.sweep:
        first = next(
            (i for i in range(len(sweep_atoms)) if sum(len(a) for a in sweep_atoms[: i + 1]) >= b), None
        )
        warm = sweep_atoms[: (first or len(sweep_atoms) - 1) + 1]
        embed_structures(emb, warm, sweep_ids[: len(warm)], batch_atoms=b, progress=False)
        mem.reset()
        _, stats = embed_structures(emb, sweep_atoms, sweep_ids, batch_atoms=b, progress=False)
        sweep.append(
            {
                "batch_atoms": b,
                "n_atoms": total,
                "n_batches": stats["n_batches"],
                "atoms_per_s": stats["atoms_per_s"],
                "wall_s": stats["wall_time_s"],
                "peak_mem_mb": mem.peak_mb(),
            }
        )
        print(f"  {key} batch_atoms {b}: {stats['atoms_per_s']:.0f} atoms/s", file=sys.stderr, flush=True)
    rec["sweep"] = sweep
    mem.reset()
    k = min(args.cpu_check, n)
    if k:
        f_dev, _ = embed_structures(emb, atoms[:k], ids[:k], batch_atoms=args.batch_atoms, progress=False)
        peaks["ours"] = mem.peak_mb()
        del emb
        if device.type == "cuda":
            torch.cuda.empty_cache()
        emb_cpu = load_embedder(spec, "cpu")
        f_cpu, _ = embed_structures(emb_cpu, atoms[:k], ids[:k], batch_atoms=args.batch_atoms, progress=False)
        diff = float(np.abs(f_dev - f_cpu).max())
        scale = float(np.abs(f_cpu).max())
        rec["cpu_check"] = {
            "structures": k,
            "atoms": int(f_cpu.shape[0]),
            "max_abs_diff": diff,
            "max_abs_feature": scale,
            "tolerance": CPU_TOL * max(1.0, scale),
            "within_tolerance": diff <= CPU_TOL * max(1.0, scale),
        }
        del emb_cpu
    else:
        del emb
    rec["peak_mem_mb"] = peaks
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rec


def main(argv=None) -> int:
    args = parse_args(argv)
    family = args.family
    adapter_name = kit.load_families().FAMILIES[family]["adapter"]
    import importlib

    import torch

    importlib.import_module(adapter_name)
    if family == "mace":
        register_mace_architectures()
    imports_s = time.perf_counter() - T_START
    if args.check_imports:
        print(f"{family}: imports ok ({adapter_name}, torch {torch.__version__}, {imports_s:.1f} s)")
        return 0
    from platonic_mlip.structures import read_split_csv

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    atoms, ids, _ = read_split_csv(args.csv)
    sweep_atoms = atoms[: args.sweep_structures] * args.sweep_copies
    sweep_ids = [f"{m}#{c}" for c in range(args.sweep_copies) for m in ids[: args.sweep_structures]]
    meta = {
        "family": family,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "imports_s": imports_s,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": [],
    }
    wanted = models_of(family)
    for key in args.models or list(wanted):
        name, arch = wanted[key]
        t0 = time.perf_counter()
        print(
            f"[{family}] {key}: {name}" + (f" (architecture {arch})" if arch else ""),
            file=sys.stderr,
            flush=True,
        )
        try:
            with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rec = bench_one(key, name, arch, args, atoms, ids, sweep_atoms, sweep_ids, device, Path(tmp))
            rec["startup_s"] += imports_s
        except Exception as err:  # one model's failure must not lose the others
            traceback.print_exc()
            rec = {"key": key, "model": name, "family": family, "error": f"{type(err).__name__}: {err}"}
        rec["elapsed_s"] = time.perf_counter() - t0
        meta["results"].append(rec)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(meta, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
