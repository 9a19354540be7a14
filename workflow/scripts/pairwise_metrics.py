"""Every pair of models in raw and Platonic space: mutual k-NN, CKA, Procrustes, OT, composite.

``value`` is each metric on the paper's sample (``--n-sample`` atoms, ``torch.randperm`` seeded with
``--seed``). With ``--repeats R`` > 0 (ours) the same metrics are recomputed on R samples of the same size
redrawn without replacement from the valid atoms (seeded with ``--resample-seed``); the table then carries
their mean, std and percentile interval at ``--level`` (docs/uncertainty.md). Only the rows of the samples
are read from the (memory-mapped) embeddings.

The workflow runs one job per space (rule ``pairwise_space``: ``--raw`` alone, or one anchor set alone) and
joins them with ``merge_pairwise.py``; given both, the script computes every space in one process.
"""

from __future__ import annotations

import argparse
import json
import time

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.checks import MatrixError, checked_rows
from platonic_mlip.cli import add_pair_options, chosen_pairs, run
from platonic_mlip.embed.base import valid_atoms
from platonic_mlip.io import write_csv
from platonic_mlip.metrics import KNN_TIE_TOL, pairwise_table, resample_indices, sample_indices


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument(
        "--raw", nargs="*", default=[], help="raw embeddings (.npy), one per model, in order (none: no raw)"
    )
    ap.add_argument("--anchor-sets", nargs="*", default=[])
    ap.add_argument(
        "--platonic", nargs="*", default=[], help="Platonic embeddings (.npy), set by set, models in order"
    )
    ap.add_argument("--atoms", required=True)
    ap.add_argument("--n-sample", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--no-knn-normalize", action="store_true")
    ap.add_argument(
        "--knn-tie-tol",
        type=float,
        default=KNN_TIE_TOL,
        help="k-NN similarities within this are tied; lower sample row wins (metrics.knn_tie_tol)",
    )
    ap.add_argument(
        "--beyond-element",
        action="store_true",
        help="add mknn_beyond_element: mutual k-NN beyond a within-element shuffle (metrics.beyond_element)",
    )
    ap.add_argument("--composite-weights", default="{}", help="JSON {score: weight}")
    ap.add_argument("--repeats", type=int, default=0, help="redrawn samples for the intervals (0 = none)")
    ap.add_argument("--level", type=float, default=0.95, help="coverage of the percentile interval")
    ap.add_argument("--resample-seed", type=int, default=0, help="seed of the redrawn samples")
    ap.add_argument("--workers", type=int, default=1, help="threads over models and pairs")
    add_pair_options(ap)
    ap.add_argument("--meta", nargs="*", default=[], help="embedding metadata of every model (skipped atoms)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--out-sample", required=True)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    pairs = chosen_pairs(args, args.models)
    atoms = pd.read_csv(args.atoms)
    # the paper's sample (torch.randperm) drawn over the atoms every model embedded
    valid = np.flatnonzero(valid_atoms(args.meta, len(atoms)))
    pos = sample_indices(len(valid), args.n_sample, args.seed)
    idx = valid[pos]
    # ours: redrawn samples of the same size, without replacement, for the intervals
    repeats = args.repeats
    if repeats and args.n_sample >= len(valid):
        print(
            f"note: config key 'metrics.n_sample' ({args.n_sample}) is at or above the {len(valid)} atoms "
            "every model embedded: each redrawn sample would be all of them, so no interval can be "
            "estimated; the interval columns are left empty (n_repeats 0). Lower metrics.n_sample for them"
        )
        repeats = 0
    redrawn = resample_indices(len(valid), args.n_sample, repeats, args.resample_seed)
    # read each file once, at the union of all samples (sorted: sequential reads of the memmap)
    union = np.unique(np.concatenate([pos, redrawn.ravel()]))
    rows = valid[union]
    local_sample, local_redrawn = np.searchsorted(union, pos), np.searchsorted(union, redrawn)
    opts = dict(
        k=args.k,
        normalize_knn=not args.no_knn_normalize,
        knn_tie_tol=args.knn_tie_tol,
        composite_weights=json.loads(args.composite_weights),
        sample=local_sample,
        resamples=local_redrawn,
        level=args.level,
        workers=args.workers,
        elements=atoms["element"].astype(str).to_numpy()[rows] if args.beyond_element else None,
        element_seed=args.resample_seed,
        pairs=pairs,
    )

    ids = atoms["material_id"].astype(str).to_numpy()

    def load(path, model, what):
        try:
            return checked_rows(path, model, ids, rows, what=what, dtype=np.float64)
        except MatrixError as err:
            raise SystemExit(f"ERROR: {err}") from None

    n_models = len(args.models)
    if len(args.raw) not in (0, n_models) or len(args.platonic) != n_models * len(args.anchor_sets):
        raise SystemExit(
            "ERROR: need one raw file per model (or none) and one Platonic file per model and anchor set; "
            f"got {len(args.raw)} raw and {len(args.platonic)} Platonic files for {n_models} models and "
            f"anchor sets {args.anchor_sets}"
        )
    if not args.raw and not args.anchor_sets:
        raise SystemExit("ERROR: no space to compare: give --raw files and/or --anchor-sets with --platonic")
    tables = []
    if args.raw:
        raw = {m: load(f, m, "embeddings") for m, f in zip(args.models, args.raw, strict=True)}
        tables.append(pairwise_table(raw, "raw", "", **opts))
        del raw
        print(f"raw: {time.perf_counter() - t0:.1f} s", flush=True)
    for s, aset in enumerate(args.anchor_sets):
        files = args.platonic[s * n_models : (s + 1) * n_models]
        plat = {m: load(f, m, f"{aset} Platonic space") for m, f in zip(args.models, files, strict=True)}
        tables.append(pairwise_table(plat, "platonic", aset, **opts))
        print(f"platonic/{aset}: {time.perf_counter() - t0:.1f} s", flush=True)
    table = pd.concat(tables, ignore_index=True)
    table["n_sample"] = len(idx)
    write_csv(args.out_sample, atoms.iloc[idx][["atom_index", "material_id", "atom_in_structure", "element"]])
    write_csv(args.out, table)
    print(
        f"{len(table)} rows over {len(args.models)} models, sample of {len(idx)} atoms, {repeats} "
        f"redrawn samples; {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    run(main)
