"""Join a checkpoint's embedding shards into one model's matrix aligned with the atom table; merge metadata.

A shard holds every layer the run asks of its checkpoint, side by side (``layer_slices`` in its metadata);
the model (``checkpoint`` or ``checkpoint@layer``) keeps the columns of its ``--layer``.
"""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import numpy as np

from platonic_mlip.checks import MatrixError, check_finite
from platonic_mlip.cli import run
from platonic_mlip.io import save_npy, write_json


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--npy", nargs="+", required=True, help="shard matrices, in shard order")
    ap.add_argument("--json", nargs="+", required=True, help="shard metadata, in shard order")
    ap.add_argument("--structures", required=True, help="structures.npz (gives the number of atoms)")
    ap.add_argument("--model", default=None, help="model id (default: the shards' checkpoint)")
    ap.add_argument("--layer", default=None, help="layer to keep (default: the shards' only layer)")
    ap.add_argument("--label", default=None, help="display label of the model")
    ap.add_argument("--out-npy", required=True)
    ap.add_argument("--out-json", required=True)
    args = ap.parse_args(argv)
    if len(args.npy) != len(args.json):
        raise SystemExit("ERROR: need one metadata file per shard")
    with np.load(args.structures) as z:
        n_atoms = int(z["n_atoms"].sum())
        atom_ids = np.repeat(z["material_ids"], z["n_atoms"])
    metas = [json.loads(open(p).read()) for p in args.json]
    arrays = [np.load(p, mmap_mode="r") for p in args.npy]
    dim = max(m["dim"] for m in metas)
    expect = 0
    for path, meta, arr in zip(args.npy, metas, arrays, strict=True):
        start, stop = meta["atom_range"]
        if start != expect or arr.shape[0] != stop - start:
            raise SystemExit(
                f"ERROR: {path}: shard covers atoms {start}..{stop} with {arr.shape[0]} rows; expected to "
                f"start at {expect}. Shards are inconsistent: delete them and rerun."
            )
        if arr.shape[0] and arr.shape[1] != dim:
            raise SystemExit(f"ERROR: {path}: width {arr.shape[1]}, other shards {dim}")
        expect = stop
    if expect != n_atoms:
        raise SystemExit(f"ERROR: shards cover {expect} atoms, the atom table has {n_atoms}")
    computed = [m for m in metas if m["n_atoms"]]
    first = computed[0] if computed else metas[0]
    slices = first.get("layer_slices") or {args.layer: [0, dim]}
    layer = args.layer if args.layer is not None else next(iter(slices))
    if layer not in slices:
        raise SystemExit(
            f"ERROR: {args.json[0]}: the shards of {first['model']!r} hold layers {', '.join(slices)}, "
            f"not {layer!r}; delete them and rerun"
        )
    lo, hi = slices[layer]
    feats = np.concatenate([np.asarray(a).reshape(-1, dim)[:, lo:hi] for a in arrays], axis=0)
    skipped = [s for m in metas for s in m["skipped"]]
    mask = np.zeros(len(feats), dtype=bool)
    for s in skipped:
        mask[s["atom_start"] : s["atom_stop"]] = True
    try:
        name = f"the embedding job of model {args.model or first['model']} ({', '.join(args.npy)})"
        check_finite(feats, name, atom_ids, None, mask)
    except MatrixError as err:
        raise SystemExit(f"ERROR: {err}") from None
    wall = sum(m["wall_time_s"] for m in metas)
    embedded = sum(m["n_atoms_embedded"] for m in metas)
    meta = {
        **{k: v for k, v in first.items() if k not in ("shard", "structure_range", "atom_range")},
        "n_shards": len(metas),
        "shards": [
            {k: m[k] for k in ("shard", "structure_range", "atom_range", "wall_time_s", "device")}
            for m in metas
        ],
        "skipped": skipped,
        "n_structures": sum(m["n_structures"] for m in metas),
        "n_atoms": int(len(feats)),
        "n_atoms_embedded": embedded,
        "n_atoms_skipped": int(mask.sum()),
        "n_batches": sum(m["n_batches"] for m in metas),
        "batches": [b for m in metas for b in m.get("batches", [])],
        "wall_time_s": wall,
        "atoms_per_s": embedded / wall if wall > 0 else float("nan"),
        "load_time_s": sum(m["load_time_s"] for m in metas),
        "dim": int(feats.shape[1]),
        "shape": list(feats.shape),
        "checkpoint": first["model"],
        "model": args.model or first["model"],
        "layer": layer,
        "label": args.label or args.model or first["model"],
        "layer_description": first.get("layer"),
    }
    save_npy(args.out_npy, feats.astype(np.float32, copy=False))
    write_json(args.out_json, meta)
    print(f"{meta['model']}: {feats.shape} from {len(metas)} shard(s), {mask.sum()} atoms skipped")


if __name__ == "__main__":
    run(main)
