"""The paper's claims tested on this run: one row per claim, metric and anchor set, with our verdict.

Reads the pairwise metrics (claims 1-3), the per-K anchor-sweep tables (claims 3 and 4) and the
element-level embeddings (claim 5); writes ``claims.csv`` and ``claims.html``. The rules behind each
verdict are ours (the paper states none): ``platonic_mlip.claims``.
"""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.claims import ClaimParams, Roster, claims_table, render_html, with_blocks
from platonic_mlip.cli import run
from platonic_mlip.io import write_csv, write_text

PAIRWISE_COLUMNS = {"model_a", "model_b", "space", "anchors", "metric", "value"}
SWEEP_COLUMNS = {"k", "method", "seed", "model_a", "model_b", "metric", "value"}
ROTATION_COLUMNS = {"model", "space", "parent_set", "max_max_rel_dev", "invariant"}
SYMMETRY_COLUMNS = {"subset", "model", "space", "n_equivalent_pairs", "equivariant_fraction"}


def read_table(path: str, columns: set[str], what: str) -> pd.DataFrame:
    """A CSV with at least ``columns``; SystemExit naming the file otherwise."""
    try:
        table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise SystemExit(f"ERROR: cannot read the {what} {path}: {err}") from None
    missing = sorted(columns - set(table.columns))
    if missing:
        raise SystemExit(f"ERROR: the {what} {path} lacks column(s) {', '.join(missing)}")
    return table


def read_sweep(paths: list[str]) -> pd.DataFrame | None:
    """The per-K sweep tables concatenated (a K skipped for too few atoms has a header only)."""
    tables = [read_table(p, SWEEP_COLUMNS, "anchor-sweep table") for p in paths]
    tables = [t for t in tables if len(t)]
    return pd.concat(tables, ignore_index=True) if tables else None


def read_elements(path: str, models: list[str]) -> dict:
    """{"numbers", "counts", "vectors": {model: (E, K)}} from ``element_embeddings.npz``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = [str(m) for m in npz["models"]]
            data = {"numbers": npz["numbers"], "counts": npz["counts"]}
            data["vectors"] = {m: npz[f"vectors_{i}"] for i, m in enumerate(names)}
    except (OSError, KeyError, ValueError) as err:
        raise SystemExit(f"ERROR: cannot read the element embeddings {path}: {err}") from None
    missing = [m for m in models if m not in data["vectors"]]
    if missing:
        raise SystemExit(
            f"ERROR: {path} has no element vectors for model(s) {', '.join(missing)} (it has {names})"
        )
    return data


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairwise", required=True, help="metrics/pairwise.csv")
    ap.add_argument("--sweep", nargs="*", default=[], help="metrics/anchor_sweep/k<K>.csv (none: no sweep)")
    ap.add_argument("--elements", default=None, help="elements/element_embeddings.npz")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--controls", nargs="*", default=[], help="models that are not trained")
    ap.add_argument("--roles", default=None, help="JSON {model: role} (platonic_mlip.models.ROLES)")
    ap.add_argument("--families", required=True, help="JSON {model: family}")
    ap.add_argument("--anchor-sets", nargs="+", required=True, help="the run's anchor sets, primary first")
    ap.add_argument("--run-k", type=int, default=None, help="the run's number of anchors (anchors.k)")
    ap.add_argument("--direct", default="direct", help="anchor set claim 3 tests")
    ap.add_argument("--random", default="random", help="anchor set claim 3 tests against")
    defaults = ClaimParams()
    ap.add_argument("--min-pair-share", type=float, default=defaults.min_pair_share)
    ap.add_argument("--convergence-rel-tol", type=float, default=defaults.convergence_rel_tol)
    ap.add_argument("--convergence-abs-tol", type=float, default=defaults.convergence_abs_tol)
    ap.add_argument("--min-sweep-k", type=int, default=defaults.min_sweep_k)
    ap.add_argument("--n-neighbours", type=int, default=defaults.n_neighbours)
    ap.add_argument("--f-block", choices=["exclude", "class"], default=defaults.f_block)
    ap.add_argument("--min-atoms", type=int, default=defaults.min_atoms)
    ap.add_argument("--bootstrap", type=int, default=defaults.bootstrap)
    ap.add_argument("--level", type=float, default=defaults.level)
    ap.add_argument("--seed", type=int, default=defaults.seed)
    ap.add_argument(
        "--rotation", default=None, help="diagnostics/fig5g_rotational_sensitivity_summary.csv (claims 6)"
    )
    ap.add_argument("--symmetry", default=None, help="diagnostics/fig5f_equivariant_fraction.csv (claim 7)")
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-html", required=True)
    args = ap.parse_args(argv)

    try:
        roles = json.loads(args.roles) if args.roles else None
        roster = Roster.make(args.models, args.controls, json.loads(args.families), roles)
    except (ValueError, json.JSONDecodeError) as err:
        raise SystemExit(f"ERROR: --models/--controls/--families/--roles: {err}") from None
    params = ClaimParams(
        min_pair_share=args.min_pair_share,
        convergence_rel_tol=args.convergence_rel_tol,
        convergence_abs_tol=args.convergence_abs_tol,
        min_sweep_k=args.min_sweep_k,
        n_neighbours=args.n_neighbours,
        f_block=args.f_block,
        min_atoms=args.min_atoms,
        bootstrap=args.bootstrap,
        level=args.level,
        seed=args.seed,
    )
    pairwise = read_table(args.pairwise, PAIRWISE_COLUMNS, "pairwise-metrics table")
    blocks = set(with_blocks(pairwise)["block"])
    absent = [s for s in args.anchor_sets if s not in blocks]
    if absent:
        raise SystemExit(
            f"ERROR: {args.pairwise} has no rows for anchor set(s) {', '.join(absent)} "
            f"(it has {', '.join(sorted(blocks))})"
        )
    in_table = set(pairwise["model_a"]) | set(pairwise["model_b"])
    unknown = [m for m in args.models if m not in in_table]
    if unknown:
        raise SystemExit(f"ERROR: {args.pairwise} has no rows for model(s) {', '.join(unknown)}")
    sweep = read_sweep(args.sweep)
    elements = read_elements(args.elements, args.models) if args.elements else None
    try:
        claims = claims_table(
            pairwise,
            roster,
            args.anchor_sets[0],
            sweep=sweep,
            elements=elements,
            run_k=args.run_k,
            direct=args.direct,
            random=args.random,
            params=params,
            rotation=read_table(args.rotation, ROTATION_COLUMNS, "rotation summary")
            if args.rotation
            else None,
            symmetry=read_table(args.symmetry, SYMMETRY_COLUMNS, "symmetry table") if args.symmetry else None,
        )
    except KeyError as err:
        files = [args.pairwise, *args.sweep, *([args.elements] if args.elements else [])]
        raise SystemExit(f"ERROR: inputs {', '.join(files)} are incomplete: {err.args[0]}") from None
    note = (
        "ours: the metric's mean over redrawn atom samples, averaged over the pairs; interval: the mean of "
        "the pairs' interval bounds (atom sampling only). A claim 'A beats B' is supported when A's interval "
        "lies above B's (and, for the same pairs compared two ways, at least "
        f"{params.min_pair_share:.0%} of the pairs on their own intervals). All thresholds are ours "
        "(platonic_mlip.claims); the paper states none."
    )
    write_csv(args.out_csv, claims)
    write_text(args.out_html, render_html(claims, note=note))
    counts = claims["verdict"].value_counts().to_dict()
    print(f"{len(claims)} claim rows: {counts}")


if __name__ == "__main__":
    run(main)
