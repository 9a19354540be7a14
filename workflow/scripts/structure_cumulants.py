"""Cumulant structure descriptors of Chorna et al. (arXiv 2512.05717) for every model of the run.

Per structure and raw feature column: cumulants kappa_1..kappa_8 of its atoms' values (population
moments, the correct kappa_8), each block sign(kappa)|kappa|^(1/k) (``platonic_mlip.cumulants``). The
order-n descriptor of a structure is blocks 1..n; the files keep all blocks.

Structures with fewer than ``--min-atoms`` atoms (single-atom cells) are excluded and listed in
``--out-dropped``; so are structures a model's embedding job skipped (reason in the table). The kept
structures are the same, in the same order, for every model.

Outputs: ``--out`` one (S, max_order, D) float32 .npy per model (in ``--models`` order);
``--out-structures`` (row, structure_index, material_id, n_atoms, spacegroup, stratum) of the kept
structures; ``--out-dropped`` (structure_index, material_id, n_atoms, reason).
"""

from __future__ import annotations

import argparse
import time

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.checks import MatrixError, checked_rows
from platonic_mlip.cli import run
from platonic_mlip.cumulants import MAX_ORDER, structure_cumulants
from platonic_mlip.embed.base import valid_atoms
from platonic_mlip.io import save_npy, write_csv
from platonic_mlip.reconstruction import crystal_system


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--atoms", required=True)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--raw", nargs="+", required=True, help="raw embeddings per model, in order")
    ap.add_argument("--meta", nargs="+", required=True, help="embedding metadata per model")
    ap.add_argument("--max-order", type=int, default=MAX_ORDER)
    ap.add_argument("--min-atoms", type=int, default=2)
    ap.add_argument("--out", nargs="+", required=True, help="one .npy per model, in order")
    ap.add_argument("--out-structures", required=True)
    ap.add_argument("--out-dropped", required=True)
    args = ap.parse_args(argv)
    n = len(args.models)
    if not (len(args.raw) == len(args.meta) == len(args.out) == n):
        raise SystemExit(f"ERROR: need one --raw, --meta and --out per model ({n} models)")
    t0 = time.perf_counter()
    atoms = pd.read_csv(args.atoms)
    ids = atoms["material_id"].astype(str).to_numpy()
    valid = valid_atoms(args.meta, len(atoms))
    per = atoms.groupby("structure_index", sort=False)
    table = pd.DataFrame(
        {
            "structure_index": per.size().index,
            "material_id": per["material_id"].first().to_numpy(),
            "n_atoms": per.size().to_numpy(),
            "spacegroup": per["spacegroup"].first().to_numpy() if "spacegroup" in atoms else np.nan,
            "embedded": pd.Series(valid).groupby(atoms["structure_index"], sort=False).all().to_numpy(),
        }
    )
    small = table["n_atoms"] < args.min_atoms
    dropped = table[small | ~table["embedded"]].copy()
    dropped["reason"] = np.where(
        small[dropped.index], f"fewer than {args.min_atoms} atoms", "a model's embedding job skipped it"
    )
    kept = table[~small & table["embedded"]].reset_index(drop=True)
    rows = np.flatnonzero(atoms["structure_index"].isin(kept["structure_index"]).to_numpy())
    groups = atoms["structure_index"].to_numpy()[rows]
    for model, path, out in zip(args.models, args.raw, args.out, strict=True):
        try:
            x = checked_rows(path, model, ids, rows, dtype=np.float64)
        except MatrixError as err:
            raise SystemExit(f"ERROR: {err}") from None
        result = structure_cumulants(x, groups, args.max_order, args.min_atoms)
        if not np.array_equal(result.kept, kept["structure_index"].to_numpy()):
            raise SystemExit(f"ERROR: model {model}: structures out of order in {path}")
        save_npy(out, result.blocks.astype(np.float32))
        print(f"{model}: {result.blocks.shape} in {time.perf_counter() - t0:.1f} s", flush=True)
    kept.insert(0, "row", np.arange(len(kept)))
    kept["stratum"] = crystal_system(pd.to_numeric(kept["spacegroup"], errors="coerce").to_numpy())
    write_csv(args.out_dropped, dropped[["structure_index", "material_id", "n_atoms", "reason"]])
    write_csv(args.out_structures, kept.drop(columns="embedded"))
    print(f"{len(kept)} structures kept, {len(dropped)} dropped; {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    run(main)
