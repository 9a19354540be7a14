"""Per-atom embeddings of one checkpoint for one shard of the structures: a float32 matrix and metadata JSON.

Runs inside the model family's environment. Every requested layer of the checkpoint (``--layers``) comes out
of one forward pass; their columns stand side by side (``layer_slices`` in the metadata). Rows are aligned
with the shard's slice of the atom table (``atom_range`` in the metadata); ``gather_embeddings.py`` joins the
shards and takes each model's layer. The weights go through ``platonic_mlip.weights`` (checksums, the
refusal of unchecksummed local files) before the adapter sees them. Structures with elements
the model does not cover are reported before any forward pass; ``--on-unsupported skip`` leaves their
rows NaN and lists them in the metadata, ``fail`` (default) stops.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

# MKL's conditional numerical reproducibility: the same batch gives the same bits whatever the memory
# alignment of its buffers (set before torch loads MKL; a user's own MKL_CBWR wins)
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

import _paths  # noqa: F401
import numpy as np

from platonic_mlip.cli import run
from platonic_mlip.io import is_disk_full, save_npy, write_json
from platonic_mlip.models import ConfigError, checkpoint_specs, resolve
from platonic_mlip.structures import load_structures, sha256_of
from platonic_mlip.weights import WeightsError


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="checkpoint name (registry model without @layer)")
    ap.add_argument("--layers", default="", help="comma-separated layers (default: the model's layer)")
    ap.add_argument("--options", default="{}", help="JSON of per-model options (config model_options)")
    ap.add_argument("--weights-file", default=None, help="the local weights file (url/key/local sources)")
    ap.add_argument("--structures", required=True, help="structures.npz from parse_structures")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-atoms", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--shard", type=int, default=0, help="shard index (0-based)")
    ap.add_argument("--shard-structures", type=int, default=0, help="structures per shard; 0 = one shard")
    ap.add_argument("--on-unsupported", choices=("fail", "skip"), default="fail")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--out-npy", required=True)
    ap.add_argument("--out-json", required=True)
    args = ap.parse_args(argv)

    try:
        options = json.loads(args.options)
        ids = [f"{args.model}@{layer}" for layer in args.layers.split(",") if layer] or [args.model]
        spec = checkpoint_specs({m: resolve(m, options) for m in ids})[args.model]
    except ConfigError as err:
        raise SystemExit(f"ERROR: {err}") from None
    import torch

    from platonic_mlip.embed.base import (
        UnsupportedElementsError,
        describe_unsupported,
        embed_structures,
        load_embedder,
        local_weights,
        model_load_error,
        resolve_device,
        shard_range,
        unembeddable,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        spec, weights = local_weights(spec, args.weights_file)
    except WeightsError as err:
        raise SystemExit(f"ERROR: {err}") from None
    batch_atoms = int(spec.get("batch_atoms") or args.batch_atoms)
    with np.load(args.structures) as z:
        n_atoms_all = z["n_atoms"]
    offsets = np.concatenate([[0], np.cumsum(n_atoms_all)])
    size = args.shard_structures or len(n_atoms_all)
    rng = shard_range(n_atoms_all, batch_atoms, args.shard, size) if args.shard_structures else None
    if rng is None:
        if args.shard:
            raise SystemExit(f"ERROR: shard {args.shard} requested without --shard-structures")
        rng = range(0, len(n_atoms_all))
    atoms_list, ids = load_structures(args.structures, rng.start, rng.stop)

    t0 = time.perf_counter()
    try:
        embedder = load_embedder(spec, args.device) if len(rng) else None
    except Exception as err:  # the one-line reason names the model, its family and the weights file
        if isinstance(err, MemoryError) or is_disk_full(err):
            raise  # reported as such by platonic_mlip.cli
        raise model_load_error(spec, err) from err
    load_s = time.perf_counter() - t0
    skipped, skip = [], []
    if embedder is not None:
        bad = unembeddable(embedder, atoms_list, ids)
        if bad:
            message = describe_unsupported(bad, args.model)
            if args.on_unsupported == "fail":
                raise SystemExit(
                    f"ERROR: {message}. Set config key 'embed.on_unsupported: skip' to leave them out."
                )
            print(f"WARNING: {message}; skipped (rows left NaN)", file=sys.stderr)
            skip = [b["structure"] for b in bad]
            for b in bad:
                g = rng.start + b["structure"]
                skipped.append(
                    {
                        "structure_index": int(g),
                        "material_id": b["material_id"],
                        "elements": b["elements"],
                        "reason": b["reason"],
                        "atom_start": int(offsets[g]),
                        "atom_stop": int(offsets[g + 1]),
                    }
                )
        try:
            feats, stats = embed_structures(
                embedder, atoms_list, ids, batch_atoms=batch_atoms, progress=not args.no_progress, skip=skip
            )
        except (UnsupportedElementsError, ValueError) as err:
            raise SystemExit(f"ERROR: {err}") from None
        dim, device = embedder.dim, embedder.device
        info = embedder.info()
    else:  # a shard past the end of a short split: nothing to compute
        dim = int(spec.get("dim") or 0)
        feats = np.empty((0, dim), dtype=np.float32)
        stats = {"n_structures": 0, "n_atoms": 0, "n_atoms_embedded": 0, "wall_time_s": 0.0}
        stats.update(n_batches=0, batch_atoms=batch_atoms, atoms_per_s=float("nan"))
        device, info = resolve_device(args.device), {}
    meta = {
        "model": args.model,
        "spec": spec,
        "layers": spec["layers"],
        "layer_slices": embedder.layer_slices() if embedder is not None else None,
        "weights": weights,
        "family": spec["family"],
        "shard": args.shard,
        "shard_structures": args.shard_structures,
        "structure_range": [rng.start, rng.stop],
        "atom_range": [int(offsets[rng.start]), int(offsets[rng.stop])],
        "on_unsupported": args.on_unsupported,
        "skipped": skipped,
        "dim": int(dim),
        "dtype": str(feats.dtype),
        "shape": list(feats.shape),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "mkl_cbwr": os.environ.get("MKL_CBWR"),
        "structures_file": args.structures,
        "structures_sha256": sha256_of(args.structures),
        "load_time_s": load_s,
        "python": sys.version.split()[0],
        **stats,
        **info,
    }
    # batch ranges in global structure indices, so shards of one run can be checked against another
    meta["batches"] = [[rng.start + a, rng.start + b] for a, b in stats.get("batches", [])]
    save_npy(args.out_npy, feats)
    write_json(args.out_json, meta)  # written last: the pair is complete only when both exist
    print(f"{args.model} shard {args.shard}: {feats.shape} in {stats['wall_time_s']:.1f} s")


if __name__ == "__main__":
    run(main)
