"""Embedding speed: the naive per-structure route vs our batched forward-only path, in one run.

Run it with the interpreter of the models' family (one family per call)::

    .venvs/sevenn/bin/python benchmarks/embed_speed.py --models 7net-0 7net-l3i5 \
        --structures 100 --repeats 3 --batch-atoms 500 --out results/benchmarks/embed_speed_sevenn.json
    .venvs/mace/bin/python benchmarks/embed_speed.py --models dummy-mace-mp-0-small ...
    .venvs/orb/bin/python benchmarks/embed_speed.py --models dummy-orb-v3 ...
    .venvs/orb/bin/python benchmarks/embed_speed.py --models dummy-orb-v3 \
        --architecture orb_v3_direct_inf_omat ...   # the same random control, direct architecture

For every model, on the same first N structures of the MP-20 sample (``--csv``, ``--structures``):

naive  what a user of the package would write: the package's own ASE calculator, one structure at a time,
       which computes energy and forces (and stress where the calculator does) -- MACE:
       ``MACECalculator.get_descriptors(atoms, invariants_only=True, num_layers=1)`` on the model saved as a
       ``.model`` file; SevenNet: ``SevenNetCalculator`` + ``atoms.get_forces()`` with a forward pre-hook on
       ``reduce_input_to_hidden`` capturing its input (``calc.reset()`` per structure: it caches results);
       Orb: ``ORBCalculator`` + ``atoms.get_forces()`` with a forward hook on the trunk capturing
       ``node_features`` (conservative models: energy head, then forces and stress by autograd; direct
       models: energy, force, stress and confidence heads, no autograd). The calculator gets its own copy of
       the model with trainable parameters, as the package's loaders leave them, and the matmul precision
       orb's loaders set (``float32-high``). CHGNet: ``CHGNet.predict_structure`` per structure (energy,
       forces, stress, magmoms), a forward hook on the layer (``return_atom_feas=True`` for ``conv3``).
       Each route is the adapter's ``NaiveRoute`` (``platonic_mlip.embed.<family>``).
ours   ``platonic_mlip.embed.base.embed_structures`` on the family's ``Embedder``: structures batched by atom
       count (``--batch-atoms``), forward pass only, no forces.

Both routes are warmed up once (``--warmup`` structures, default all), then run ``--repeats`` times
interleaved (naive, ours, naive, ours, ...) so that background load hits both alike. Reported per model:
atoms/s of every repetition, the medians, the ratio of the medians (ours / naive), and the largest absolute
difference between the two routes' features over all repetitions (the benchmark compares like with like).
Timing covers the whole route (graph construction, forward, copy to numpy); on CUDA the device is
synchronised before the clock stops. The JSON (``--out``) holds everything; one Markdown table row per model
is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from platonic_mlip.cli import run  # noqa: E402
from platonic_mlip.io import write_text  # noqa: E402

DEFAULT_CSV = ROOT / "resources" / "mp20_sample" / "train.csv"
HEADER = (
    "| model | family | structures | atoms | repeats | batch atoms | naive atoms/s (median) "
    "| ours atoms/s (median) | ratio | max abs diff |\n|---|---|---|---|---|---|---|---|---|---|"
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--models", nargs="+", required=True, help="model names (platonic_mlip.models), one family"
    )
    p.add_argument("--structures", type=int, default=100, help="first N structures of --csv (default 100)")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions per route (default 3)")
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="structures in the untimed warm-up of each route (default: all of them; TorchScript kernels "
        "of e3nn/sevenn re-specialise on new shapes during a first pass)",
    )
    p.add_argument("--batch-atoms", type=int, default=500, help="atoms per batch of our path (default 500)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="MP-20 split CSV (default: bundled sample)")
    p.add_argument(
        "--architecture",
        help="build the models with this architecture instead of their own (random-weight models, e.g. "
        "orb_v3_direct_inf_omat for the direct Orb-v3 network); the table names it after the model",
    )
    p.add_argument("--out", type=Path, help="JSON file to write")
    return p.parse_args(argv)


# --- timing ---
def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def bench_model(name: str, args, atoms, ids, device, workdir: Path) -> dict:
    from platonic_mlip.embed.base import adapter, embed_structures, load_embedder
    from platonic_mlip.models import resolve

    spec = resolve(name)
    label = name
    if args.architecture:
        spec["architecture"] = args.architecture
        label = f"{name} ({args.architecture})"
    family = spec["family"]
    emb = load_embedder(spec, str(device))
    naive = adapter(family).NaiveRoute(emb, device, workdir)
    n_atoms = int(sum(len(a) for a in atoms))

    def ours(subset=atoms, sub_ids=ids):
        feats, _ = embed_structures(emb, subset, sub_ids, batch_atoms=args.batch_atoms, progress=False)
        return feats

    # warm-up (lazy initialisation, code generation, allocator), untimed
    w = len(atoms) if args.warmup is None else max(1, min(args.warmup, len(atoms)))
    naive(atoms[:w])
    ours(atoms[:w], ids[:w])

    rates = {"naive": [], "ours": []}
    max_diff = 0.0
    for rep in range(args.repeats):
        f_naive, t_naive = timed(lambda: naive(atoms), device)
        f_ours, t_ours = timed(ours, device)
        if f_naive.shape != f_ours.shape:
            raise RuntimeError(f"{name}: naive features {f_naive.shape} vs ours {f_ours.shape}")
        max_diff = max(max_diff, float(np.abs(f_naive - f_ours).max()))
        rates["naive"].append(n_atoms / t_naive)
        rates["ours"].append(n_atoms / t_ours)
        print(
            f"  {label} rep {rep + 1}/{args.repeats}: naive {rates['naive'][-1]:.1f} atoms/s, "
            f"ours {rates['ours'][-1]:.1f} atoms/s",
            file=sys.stderr,
            flush=True,
        )
    naive.close()
    med_naive, med_ours = statistics.median(rates["naive"]), statistics.median(rates["ours"])
    return {
        "model": label,
        "architecture": spec.get("architecture"),
        "family": family,
        "n_structures": len(atoms),
        "n_atoms": n_atoms,
        "repeats": args.repeats,
        "batch_atoms": args.batch_atoms,
        "dim": int(emb.dim),
        "layer": emb.info().get("layer"),
        "naive": {
            "route": naive.description,
            "atoms_per_s": rates["naive"],
            "median_atoms_per_s": med_naive,
        },
        "ours": {
            "route": f"embed_structures(batch_atoms={args.batch_atoms}): batched, forward only",
            "atoms_per_s": rates["ours"],
            "median_atoms_per_s": med_ours,
        },
        "ratio_of_medians": med_ours / med_naive,
        "ratio_per_repeat": [o / n for o, n in zip(rates["ours"], rates["naive"], strict=True)],
        "max_abs_diff": max_diff,
    }


def table_row(r: dict) -> str:
    return (
        f"| {r['model']} | {r['family']} | {r['n_structures']} | {r['n_atoms']} | {r['repeats']} "
        f"| {r['batch_atoms']} | {r['naive']['median_atoms_per_s']:.1f} "
        f"| {r['ours']['median_atoms_per_s']:.1f} "
        f"| {r['ratio_of_medians']:.2f}x | {r['max_abs_diff']:.1e} |"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from platonic_mlip.embed.base import resolve_device
    from platonic_mlip.models import resolve
    from platonic_mlip.structures import read_split_csv

    families = {resolve(m)["family"] for m in args.models}
    if len(families) != 1:
        sys.exit(f"--models must all be of one family (one environment per run), got {sorted(families)}")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    atoms, ids, _ = read_split_csv(args.csv, limit=args.structures)
    results = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no tensor product accelerator", deprecations of the packages
        for name in args.models:
            results.append(bench_model(name, args, atoms, ids, device, Path(tmp)))
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "csv": str(args.csv),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "warmup_structures": args.warmup,
    }
    with contextlib.suppress(OSError):
        meta["loadavg_end"] = os.getloadavg()
    payload = {"meta": meta, "results": results}
    if args.out:
        write_text(args.out, json.dumps(payload, indent=2) + "\n")
    print(HEADER)
    for r in results:
        print(table_row(r))
    return 0


if __name__ == "__main__":
    run(main)
