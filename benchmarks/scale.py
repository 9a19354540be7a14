"""Scale benchmark: anchors, projection and pairwise metrics with intervals at the paper's size.

Builds synthetic per-atom embeddings for eight models shaped like the paper's study (282,847 atoms of the
MP-20 train split; four 128-dim and two 256-dim "foundation" models sharing one latent structure, plus two
128-dim untrained-like controls whose features follow the element only), writes them as float32 ``.npy`` to
a work directory, and then runs the analysis stages of the workflow on them, each stage in its own process
that calls the workflow scripts' ``main()`` (the scripts memory-map the ``.npy`` files as the workflow does):

anchors_direct  ``select_anchors.py --method direct``: DIRECT (maml) on the reference model, K anchors
anchors_random  ``select_anchors.py --method random``: K seeded random anchors
project         ``project.py`` for every model and both anchor sets (16 calls, one after the other)
metrics         ``pairwise_metrics.py``: every pair (self-pairs included) in raw space and in Platonic space
                for both anchor sets, on the paper's sample and ``--repeats`` redrawn samples

Per stage and size: wall time of the stage's process (Python start-up and imports included) and its peak
resident memory (``ru_maxrss`` of that process from ``os.wait4``; memory-mapped file pages that the process
touched count as resident). ``--runs`` > 1 repeats every stage and reports the median wall time (and the
largest peak). Growth with the number of atoms: the exponent b of a least-squares fit wall ~ N^b over the
sizes. Results: a Markdown table on stdout, ``--out`` (JSON) and ``--csv``.

    .venvs/analysis/bin/python benchmarks/scale.py --out results/benchmarks/scale.json \\
        --csv results/benchmarks/scale.csv
    .venvs/analysis/bin/python benchmarks/scale.py --quick --out /tmp/scale.json   # seconds, for tests

The synthetic data are not MP-20: DIRECT's Birch step in particular depends on how the points cluster, so
its time on real embeddings can differ (docs/scale.md).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"

#: (name, dim, kind): the paper's study shape. "model": shares the latent structure; "control": element only
MODELS = (
    ("mace-small", 128, "model"),
    ("mace-medium", 128, "model"),
    ("mace-omat", 128, "model"),
    ("sevennet", 128, "model"),
    ("orb-conservative", 256, "model"),
    ("orb-direct", 256, "model"),
    ("control-a", 128, "control"),
    ("control-b", 128, "control"),
)
REFERENCE = "mace-small"  # DIRECT runs on it (the paper: MACE-MP-0 small)
PAPER_ATOMS = 282_847
STAGES = (
    "anchors_direct",
    "anchors_random",
    "project",
    "metrics",
    "reconstruction_raw",
    "reconstruction_direct",
    "cumulants",
    "structure_reconstruction",
    "cumulant_orders",
)
N_ELEMENTS = 85
LATENT = 16
GEN_CHUNK = 32_768


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[PAPER_ATOMS, 70_000, 17_000], help="atom counts")
    p.add_argument("--k", type=int, default=100, help="anchors per set (default 100, the paper's K)")
    p.add_argument("--n-sample", type=int, default=1000, help="atoms per metric sample (default 1000)")
    p.add_argument("--repeats", type=int, default=20, help="redrawn samples for the intervals (default 20)")
    p.add_argument("--workers", type=int, default=2, help="threads of the metrics stage (default 2)")
    p.add_argument("--runs", type=int, default=1, help="runs of every stage per size; median wall reported")
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic embeddings")
    p.add_argument("--rec-n-test", type=int, default=1000, help="reconstruction test atoms/structures (1000)")
    p.add_argument(
        "--rec-repeats", type=int, default=3, help="redrawn reconstruction test sets (paper config: 3)"
    )
    p.add_argument(
        "--rec-max-train-atoms", type=int, default=50_000, help="train atoms at most (paper config: 50,000)"
    )
    p.add_argument("--rec-lfre-test", type=int, default=0, help="LFRE test atoms (0 = all test atoms)")
    p.add_argument("--rec-lfre-repeats", type=int, default=1, help="redrawn sets with LFRE (paper config: 1)")
    p.add_argument("--rec-max-train", type=int, default=5000, help="train structures at most (paper config)")
    p.add_argument(
        "--rec-struct-lfre-test", type=int, default=250, help="LFRE test structures (paper config: 250)"
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny run (2,500 atoms, K 20, 200-atom samples, 3 repeats)"
    )
    p.add_argument("--workdir", type=Path, help="where the .npy files go (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--out", type=Path, help="JSON file to write")
    p.add_argument("--csv", type=Path, help="CSV file to write (one row per size and stage)")
    p.add_argument("--run-stage", nargs=3, metavar=("SCRIPT", "CALLS", "RESULT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.k, args.n_sample, args.repeats = [2_500], 20, 200, 3
        args.rec_n_test, args.rec_lfre_test, args.rec_repeats = 100, 50, 0
        args.rec_struct_lfre_test = 50
    return args


# --- synthetic embeddings ---------------------------------------------------------------------------
def synthesise(workdir: Path, n_atoms: int, seed: int) -> dict:
    """Write ``atoms.csv`` and one float32 ``embeddings/<model>.npy`` (n_atoms, dim) per model.

    Structures of 1-20 atoms (mean ~10.5, as MP-20's 10.4); elements Zipf-distributed over 85 kinds.
    Latent u_i (16-dim) = element centre + 0.5 x structure offset + 0.3 x atom noise. A "model" maps
    u_i plus its own 0.3 x noise through tanh of a random linear map to its width (so models agree on the
    geometry but not on coordinates); a "control" sees the element only (random element vectors plus
    noise), like an untrained network. Written in chunks (memory stays ~ GEN_CHUNK x 256 floats).
    Returns {"n_structures", "seconds", "bytes"}.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, n_atoms])
    sizes = rng.integers(1, 21, size=n_atoms // 5 + 10)
    ends = np.cumsum(sizes)
    n_struct = int(np.searchsorted(ends, n_atoms) + 1)
    sizes = sizes[:n_struct].copy()
    sizes[-1] -= int(ends[n_struct - 1] - n_atoms)
    structure = np.repeat(np.arange(n_struct), sizes)
    in_structure = np.arange(n_atoms) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    freq = 1.0 / np.arange(1, N_ELEMENTS + 1) ** 1.1
    z = rng.choice(np.arange(1, N_ELEMENTS + 1), size=n_atoms, p=freq / freq.sum())
    centres = rng.normal(size=(N_ELEMENTS + 1, LATENT))
    offsets = rng.normal(size=(n_struct, LATENT))
    (workdir / "embeddings").mkdir(parents=True, exist_ok=True)
    with open(workdir / "atoms.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["atom_index", "structure_index", "material_id", "atom_in_structure", "Z", "element"])
        for i in range(n_atoms):
            w.writerow([i, structure[i], f"syn-{structure[i]}", in_structure[i], z[i], f"E{z[i]}"])
    total = 0
    for m, (name, dim, kind) in enumerate(MODELS):
        mrng = np.random.default_rng([seed, n_atoms, m])
        weight = mrng.normal(size=(LATENT, dim)) / np.sqrt(LATENT)
        bias = 0.3 * mrng.normal(size=dim)
        element_vectors = mrng.normal(size=(N_ELEMENTS + 1, dim))
        path = workdir / "embeddings" / f"{name}.npy"
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_atoms, dim))
        for c, start in enumerate(range(0, n_atoms, GEN_CHUNK)):
            sl = slice(start, min(start + GEN_CHUNK, n_atoms))
            crng = np.random.default_rng([seed, n_atoms, m, c])
            if kind == "model":
                u = centres[z[sl]] + 0.5 * offsets[structure[sl]]
                u = u + 0.3 * np.random.default_rng([seed, n_atoms, c]).normal(size=u.shape)  # shared
                u = u + 0.3 * crng.normal(size=u.shape)  # this model's own
                x = np.tanh(2.0 * u @ weight + bias)
            else:
                x = np.tanh(element_vectors[z[sl]] + 0.5 * crng.normal(size=(sl.stop - sl.start, dim)))
            out[sl] = x + 0.05 * crng.normal(size=x.shape)
        out.flush()
        del out
        total += path.stat().st_size
        (workdir / "embeddings" / f"{name}.json").write_text(json.dumps({"skipped": []}))
    return {"n_structures": n_struct, "seconds": time.perf_counter() - t0, "bytes": total}


# --- stages -----------------------------------------------------------------------------------------
def stage_calls(stage: str, workdir: Path, args) -> tuple[str, list[list[str]]]:
    """(workflow script, list of argv) of one stage on the files under ``workdir``."""
    emb = {name: str(workdir / "embeddings" / f"{name}.npy") for name, _, _ in MODELS}
    atoms = str(workdir / "atoms.csv")
    anchors = {s: str(workdir / "anchors" / f"{s}.csv") for s in ("direct", "random")}
    platonic = {(s, n): str(workdir / "platonic" / s / f"{n}.npy") for s in anchors for n in emb}
    if stage in ("anchors_direct", "anchors_random"):
        method = stage.split("_")[1]
        argv = ["--method", method, "--k", str(args.k), "--atoms", atoms, "--out", anchors[method]]
        if method == "direct":
            argv += ["--embeddings", emb[REFERENCE], "--reference-model", REFERENCE]
        return "select_anchors.py", [argv]
    if stage == "project":
        calls = [
            ["--embeddings", emb[n], "--anchors", anchors[s], "--out", platonic[(s, n)]]
            for s in anchors
            for n in emb
        ]
        return "project.py", calls
    if stage == "metrics":
        names = [n for n, _, _ in MODELS]
        argv = ["--models", *names, "--raw", *[emb[n] for n in names], "--anchor-sets", *anchors]
        argv += ["--platonic", *[platonic[(s, n)] for s in anchors for n in names], "--atoms", atoms]
        argv += ["--n-sample", str(args.n_sample), "--repeats", str(args.repeats)]
        argv += ["--workers", str(args.workers), "--composite-weights"]
        argv += [json.dumps({"mknn": 1, "procrustes_score": 1, "ot_score": 1})]
        argv += ["--out", str(workdir / "metrics" / "pairwise.csv")]
        argv += ["--out-sample", str(workdir / "metrics" / "sample.csv")]
        return "pairwise_metrics.py", [argv]
    names = [n for n, _, _ in MODELS]
    meta = [str(workdir / "embeddings" / f"{n}.json") for n in names]
    rec = workdir / "reconstruction"
    if stage.startswith("reconstruction_"):
        space = stage.split("_", 1)[1]
        files = [emb[n] if space == "raw" else platonic[(space, n)] for n in names]
        argv = ["--atoms", atoms, "--space", space, "--models", *names, "--matrices", *files, "--meta", *meta]
        argv += ["--n-test", str(args.rec_n_test), "--repeats", str(args.rec_repeats), "--workers", "2"]
        argv += ["--lfre-test", str(args.rec_lfre_test), "--stratify", "none"]
        argv += ["--max-train", str(args.rec_max_train_atoms), "--lfre-repeats", str(args.rec_lfre_repeats)]
        argv += ["--out", str(rec / f"{space}.csv"), "--out-split", str(rec / f"{space}_split.csv")]
        return "feature_reconstruction.py", [argv]
    blocks = [str(rec / "cumulants" / f"{n}.npy") for n in names]
    if stage == "cumulants":
        argv = ["--atoms", atoms, "--models", *names, "--raw", *[emb[n] for n in names], "--meta", *meta]
        argv += ["--out", *blocks, "--out-structures", str(rec / "structures.csv")]
        argv += ["--out-dropped", str(rec / "dropped.csv")]
        return "structure_cumulants.py", [argv]
    if stage in ("structure_reconstruction", "cumulant_orders"):
        # across the eight models at order 8; orders 1..8 within the reference model (paper config)
        chosen = names if stage == "structure_reconstruction" else [REFERENCE]
        files = [blocks[names.index(n)] for n in chosen]
        argv = ["--models", *chosen, "--cumulants", *files, "--structures", str(rec / "structures.csv")]
        argv += ["--n-test", str(args.rec_n_test), "--workers", "2", "--max-train", str(args.rec_max_train)]
        argv += ["--lfre-test", str(args.rec_struct_lfre_test)]
        argv += ["--out", str(rec / f"{stage}.csv"), "--out-fig", str(rec / f"{stage}.png")]
        return f"{stage}.py", [argv]
    raise ValueError(stage)


def run_stage_here(script: str, calls_file: str, result_file: str) -> int:
    """Inside the stage's process: import the workflow script and call its main() for every argv."""
    import contextlib as _cl
    import importlib
    import io

    sys.path.insert(0, str(SCRIPTS))
    module = importlib.import_module(Path(script).stem)
    times = []
    for argv in json.loads(Path(calls_file).read_text()):
        t0 = time.perf_counter()
        with _cl.redirect_stdout(io.StringIO()):
            module.main(argv)
        times.append(time.perf_counter() - t0)
    Path(result_file).write_text(json.dumps({"call_seconds": times}))
    return 0


def run_stage(stage: str, workdir: Path, args) -> dict:
    """Run one stage in a child process; wall time, peak RSS (os.wait4) and per-call times."""
    script, calls = stage_calls(stage, workdir, args)
    calls_file, result_file = workdir / f".{stage}.calls.json", workdir / f".{stage}.result.json"
    calls_file.write_text(json.dumps(calls))
    log = workdir / f"{stage}.log"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--run-stage",
        script,
        str(calls_file),
        str(result_file),
    ]
    load = _loadavg()
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"stage {stage} failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
    calls_s = json.loads(result_file.read_text())["call_seconds"]
    return {
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "calls": len(calls_s),
        "call_seconds": calls_s,
        "loadavg_1min_before": load,
        "loadavg_1min_after": _loadavg(),
    }


def _loadavg() -> float | None:
    with contextlib.suppress(OSError):
        return os.getloadavg()[0]
    return None


def growth_exponent(sizes, walls) -> float | None:
    """b of the least-squares fit log(wall) = a + b log(N) (None with fewer than two sizes)."""
    pts = [(n, w) for n, w in zip(sizes, walls, strict=True) if w and w > 0]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def bench_size(n_atoms: int, args, base: Path) -> dict:
    workdir = base / f"n{n_atoms}"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    gen = synthesise(workdir, n_atoms, args.seed)
    print(
        f"[{n_atoms} atoms] synthetic data: {gen['n_structures']} structures, "
        f"{gen['bytes'] / 1e9:.2f} GB, {gen['seconds']:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    stages = {}
    for stage in args.stages:
        runs = [run_stage(stage, workdir, args) for _ in range(args.runs)]
        walls = [r["wall_s"] for r in runs]
        stages[stage] = {
            "wall_s": statistics.median(walls),
            "wall_s_runs": walls,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "calls": runs[0]["calls"],
            "call_seconds_median": statistics.median(s for r in runs for s in r["call_seconds"]),
            "loadavg_1min": [r["loadavg_1min_before"] for r in runs] + [runs[-1]["loadavg_1min_after"]],
        }
        print(
            f"[{n_atoms} atoms] {stage}: {stages[stage]['wall_s']:.1f} s, "
            f"peak {stages[stage]['peak_rss_mb']:.0f} MB",
            file=sys.stderr,
            flush=True,
        )
    total = sum(s["wall_s"] for s in stages.values())
    peak = max((s["peak_rss_mb"] for s in stages.values()), default=0.0)
    if not args.keep:
        shutil.rmtree(workdir)
    return {
        "n_atoms": n_atoms,
        "synthetic": gen,
        "stages": stages,
        "total_wall_s": total,
        "peak_rss_mb": peak,
    }


def markdown(results: list[dict], stages, growth: dict) -> str:
    sizes = [r["n_atoms"] for r in results]
    head = (
        "| stage | "
        + " | ".join(f"{n:,} atoms: wall s / peak MB" for n in sizes)
        + " | growth b (wall ~ N^b) |"
    )
    lines = [head, "|---" * (len(sizes) + 2) + "|"]
    for stage in [*stages, "total"]:
        cells = []
        for r in results:
            if stage == "total":
                cells.append(f"**{r['total_wall_s']:.1f}** / **{r['peak_rss_mb']:.0f}**")
            else:
                s = r["stages"][stage]
                cells.append(f"{s['wall_s']:.1f} / {s['peak_rss_mb']:.0f}")
        b = growth.get(stage)
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {'' if b is None else f'{b:.2f}'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.run_stage:
        return run_stage_here(*args.run_stage)
    sizes = sorted(set(args.sizes))
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with contextlib.ExitStack() as stack:
        if args.workdir:
            base = args.workdir
            base.mkdir(parents=True, exist_ok=True)
        else:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="platonic-scale-")))
        results = [bench_size(n, args, base) for n in sizes]
    growth = {
        stage: growth_exponent(sizes, [r["stages"][stage]["wall_s"] for r in results])
        for stage in args.stages
    }
    growth["total"] = growth_exponent(sizes, [r["total_wall_s"] for r in results])
    meta = {
        "date": started,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_total_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9,
        "models": [{"name": n, "dim": d, "kind": k} for n, d, k in MODELS],
        "reference_model": REFERENCE,
        "k": args.k,
        "n_sample": args.n_sample,
        "repeats": args.repeats,
        "workers": args.workers,
        "runs": args.runs,
        "seed": args.seed,
        "stages": list(args.stages),
        "parent_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    payload = {"meta": meta, "results": results, "growth_exponent": growth}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["n_atoms", "stage", "wall_s", "peak_rss_mb", "cpu_s", "calls", "runs"])
            for r in results:
                for stage, s in r["stages"].items():
                    w.writerow(
                        [r["n_atoms"], stage, f"{s['wall_s']:.3f}", f"{s['peak_rss_mb']:.1f}"]
                        + [f"{s['cpu_s']:.3f}", s["calls"], args.runs]
                    )
                w.writerow(
                    [
                        r["n_atoms"],
                        "total",
                        f"{r['total_wall_s']:.3f}",
                        f"{r['peak_rss_mb']:.1f}",
                        "",
                        "",
                        args.runs,
                    ]
                )
    print(markdown(results, args.stages, growth))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    from platonic_mlip.cli import run

    run(main)
