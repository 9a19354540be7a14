"""Per-atom embeddings of one model for every structure: a float32 matrix and a metadata JSON.

Runs inside the model family's environment. Rows are aligned with the atom table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import _paths  # noqa: F401

from platonic_mlip.io import save_npy, write_json
from platonic_mlip.models import ConfigError, resolve
from platonic_mlip.structures import load_structures, sha256_of


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--options", default="{}", help="JSON of per-model options (config model_options)")
    ap.add_argument("--structures", required=True, help="structures.npz from parse_structures")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-atoms", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--out-npy", required=True)
    ap.add_argument("--out-json", required=True)
    args = ap.parse_args(argv)

    try:
        spec = resolve(args.model, json.loads(args.options))
    except ConfigError as err:
        raise SystemExit(f"ERROR: {err}") from None
    import torch

    from platonic_mlip.embed import UnsupportedElementsError, embed_structures, load_embedder

    if args.threads:
        torch.set_num_threads(args.threads)
    atoms_list, ids = load_structures(args.structures)
    t0 = time.perf_counter()
    embedder = load_embedder(spec, args.device)
    load_s = time.perf_counter() - t0
    batch_atoms = int(spec.get("batch_atoms") or args.batch_atoms)
    try:
        feats, stats = embed_structures(
            embedder, atoms_list, ids, batch_atoms=batch_atoms, progress=not args.no_progress
        )
    except (UnsupportedElementsError, ValueError) as err:
        raise SystemExit(f"ERROR: {err}") from None
    meta = {
        "model": args.model,
        "spec": spec,
        "family": spec["family"],
        "dim": int(feats.shape[1]),
        "dtype": str(feats.dtype),
        "shape": list(feats.shape),
        "device": str(embedder.device),
        "device_name": torch.cuda.get_device_name(embedder.device)
        if embedder.device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "structures_file": args.structures,
        "structures_sha256": sha256_of(args.structures),
        "load_time_s": load_s,
        "python": sys.version.split()[0],
        **stats,
        **embedder.info(),
    }
    save_npy(args.out_npy, feats)
    write_json(args.out_json, meta)  # written last: the pair is complete only when both exist
    print(f"{args.model}: {feats.shape} in {stats['wall_time_s']:.1f} s ({stats['atoms_per_s']:.0f} atoms/s)")


if __name__ == "__main__":
    main()
