"""Feature reconstruction errors of Chorna et al. (arXiv 2512.05717) at atom level, in one space.

For every ordered pair of models (source -> target, both directions, diagonal included; with
``--control-pairs same_role`` only the pairs ``metrics.computed_pairs`` keeps): GFRE and LFRE of
rebuilding the target's per-atom vectors from the source's (``platonic_mlip.reconstruction``: the
definitions and settings of scikit-matter, LFRE neighbourhood k = min(widths)). The space is the models'
raw embeddings or one Platonic space (``--space``; one matrix per model in ``--matrices``).

Test atoms (``--n-test``, the paper's 1,000) are drawn among the atoms every model embedded, stratified
by crystal system from the space group (OURS: MP-20 has no MAD subsets; ``--stratify none`` draws them
plainly), seeded; train = the rest, or a seeded ``--max-train`` of them (OURS cap for large runs). Draw 0
uses ``--seed``; draws 1..``--repeats`` redraw the test set with seeds seed+1.. for the intervals.
``--lfre-test`` (OURS, demo) computes LFRE on a seeded subset of that many test atoms (GFRE on all);
``--lfre-repeats`` (OURS, demo) computes LFRE on draw 0 and only the first that many redrawn sets.

Output ``--out`` (space, draw, source, target, gfre, lfre, k, n_train, n_test, n_test_lfre, seconds) and
``--out-split`` (the test atoms of draw 0: atom_index, material_id, element, stratum).
"""

from __future__ import annotations

import argparse
import time

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.checks import MatrixError, checked_rows
from platonic_mlip.cli import add_pair_options, chosen_pairs, run
from platonic_mlip.embed.base import valid_atoms
from platonic_mlip.io import write_csv
from platonic_mlip.reconstruction import (
    ReconstructionError,
    crystal_system,
    error_table,
    lfre_subset,
    rows_used,
    stratified_split,
)


def strata_of(atoms: pd.DataFrame, how: str) -> np.ndarray:
    """(n,) stratum of every atom: its crystal system (from ``spacegroup``) or one stratum."""
    if how == "none" or "spacegroup" not in atoms:
        return np.full(len(atoms), "all", dtype=object)
    return crystal_system(pd.to_numeric(atoms["spacegroup"], errors="coerce").to_numpy())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--atoms", required=True, help="the run's atom table (structures/atoms.csv)")
    ap.add_argument("--space", required=True, help="'raw' or the Platonic space's name")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--matrices", nargs="+", required=True, help="one (N, D) .npy per model, in order")
    ap.add_argument("--meta", nargs="+", required=True, help="embedding metadata per model (skipped atoms)")
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stratify", choices=("crystal_system", "none"), default="crystal_system")
    ap.add_argument("--max-train", type=int, default=0, help="0 = every non-test atom")
    ap.add_argument("--no-lfre", action="store_true")
    ap.add_argument("--lfre-test", type=int, default=0, help="LFRE on this many of the test atoms; 0 = all")
    ap.add_argument("--repeats", type=int, default=0, help="redrawn test sets for the intervals")
    ap.add_argument(
        "--lfre-repeats", type=int, default=-1, help="LFRE on the first this many redrawn sets too (-1 = all)"
    )
    ap.add_argument("--workers", type=int, default=1)
    add_pair_options(ap)
    ap.add_argument("--out", required=True)
    ap.add_argument("--out-split", required=True)
    args = ap.parse_args(argv)
    if len(args.matrices) != len(args.models) or len(args.meta) != len(args.models):
        raise SystemExit(
            f"ERROR: {len(args.matrices)} matrices and {len(args.meta)} metadata files for "
            f"{len(args.models)} models ({', '.join(args.models)})"
        )
    pairs = chosen_pairs(args, args.models)
    t0 = time.perf_counter()
    atoms = pd.read_csv(args.atoms)
    ids = atoms["material_id"].astype(str).to_numpy()
    valid = np.flatnonzero(valid_atoms(args.meta, len(atoms)))
    what = "embeddings" if args.space == "raw" else f"Platonic space {args.space}"

    def load(rows):
        """Every model's matrix at ``rows`` (float64, checked), read from the memory-mapped files."""
        out = {}
        for model, path in zip(args.models, args.matrices, strict=True):
            try:
                out[model] = checked_rows(path, model, ids, rows, what=what, dtype=np.float64)
            except MatrixError as err:
                raise SystemExit(f"ERROR: {err}") from None
        return out

    strata = strata_of(atoms.iloc[valid], args.stratify)
    n_test = args.n_test
    if not 0 < n_test <= len(valid) // 2:
        raise SystemExit(
            f"ERROR: config key 'reconstruction.n_test' ({n_test}) must be at most half of the {len(valid)} "
            "atoms every model embedded, so that the train set is the larger"
        )
    print(f"{args.space}: {len(args.models)} models, {len(valid)} atoms, {n_test} test atoms", flush=True)
    rows = []
    for draw in range(args.repeats + 1):
        seed = args.seed + draw
        train, test = stratified_split(strata, n_test, seed, args.max_train or None)
        if draw == 0:
            split = atoms.iloc[valid[test]][["atom_index", "material_id", "element"]].copy()
            split["stratum"] = strata[test]
        # read only this draw's rows (a capped train set keeps memory small on large runs)
        used, train_at, test_at = rows_used(train, test)
        matrices = load(valid[used])
        lfre_rows = lfre_subset(len(test), args.lfre_test, seed)
        try:
            part = error_table(
                matrices,
                train_at,
                test_at,
                lfre=not args.no_lfre and (args.lfre_repeats < 0 or draw <= args.lfre_repeats),
                workers=args.workers,
                lfre_rows=lfre_rows,
                log=lambda m: print(m, flush=True),
                pairs=pairs,
            )
        except ReconstructionError as err:
            raise SystemExit(f"ERROR: {args.space} space: {err}") from None
        del matrices
        for row in part:
            row.update(space=args.space, draw=draw)
        rows += part
        print(f"draw {draw} (seed {seed}): {time.perf_counter() - t0:.1f} s", flush=True)
    columns = ["space", "draw", "source", "target", "gfre", "lfre", "k", "n_train", "n_test", "n_test_lfre"]
    write_csv(args.out_split, split)
    write_csv(args.out, pd.DataFrame(rows)[[*columns, "seconds"]])
    print(f"{len(rows)} rows in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    run(main)
