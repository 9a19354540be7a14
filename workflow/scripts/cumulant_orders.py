"""How much each cumulant order adds, within one model (Chorna et al., arXiv 2512.05717).

For every model: the structure descriptors of orders 1..max (blocks 1..n of ``structure_cumulants``)
reconstruct one another, GFRE and LFRE for every ordered pair of orders (source order -> target order),
split by structure: ``--n-test`` test structures stratified by crystal system, seeded, train = the rest.
LFRE neighbourhood k = min(widths, ``--lfre-k-max``) (OURS cap: the order-8 widths exceed the number of
structures of a small run). Since order n holds order n-1, GFRE(n -> n-1) is ~0 and GFRE(n-1 -> n) is
what block n adds that a linear map of blocks 1..n-1 cannot give.

Output ``--out`` (model, source_order, target_order, gfre, lfre, k, n_train, n_test, n_test_lfre: LFRE on
that many, ``--lfre-test``) and ``--out-fig`` png/pdf: per model GFRE and LFRE of order n -> the highest
order and of order n-1 -> n.
"""

from __future__ import annotations

import argparse
import json
import time

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.cumulants import descriptor
from platonic_mlip.io import write_csv
from platonic_mlip.plotting import _plt, mark_untrained, save
from platonic_mlip.reconstruction import (
    ReconstructionError,
    error_table,
    lfre_subset,
    rows_used,
    stratified_split,
)


def structure_split(structures: pd.DataFrame, n_test: int, seed: int, max_train: int = 0):
    """Train and test rows of the kept structures (stratified by crystal system; train capped at a seeded
    ``max_train`` when > 0); SystemExit if too few."""
    if not 0 < n_test <= len(structures) // 2:
        raise SystemExit(
            f"ERROR: config key 'reconstruction.structures.n_test' ({n_test}) must be at most half of the "
            f"{len(structures)} structures with two or more atoms"
        )
    strata = structures["stratum"].fillna("unknown").to_numpy(dtype=object)
    return stratified_split(strata, n_test, seed, max_train or None)


def split_blocks(args, structures: pd.DataFrame):
    """The split of both structure-level scripts: (train, test positions in ``used``, LFRE rows, used rows).
    Only the used rows of each blocks file are read (``read_blocks``)."""
    train, test = structure_split(structures, args.n_test, args.seed, args.max_train)
    used, train_at, test_at = rows_used(train, test)
    return train_at, test_at, lfre_subset(len(test), args.lfre_test, args.seed), used


def structure_errors(args, spaces: dict, train, test, lfre_rows) -> list[dict]:
    """``error_table`` of the descriptors ``spaces`` with the structure-level options of ``args``."""
    return error_table(
        spaces,
        train,
        test,
        lfre=not args.no_lfre,
        k_max=args.lfre_k_max,
        workers=args.workers,
        lfre_rows=lfre_rows,
    )


def read_blocks(path: str, used: np.ndarray) -> np.ndarray:
    """(len(used), orders, d) float64 cumulant blocks of the used structures (memory-mapped read)."""
    return np.asarray(np.load(path, mmap_mode="r")[used], dtype=np.float64)


def add_structure_arguments(ap: argparse.ArgumentParser) -> None:
    """The options both structure-level scripts take (this one and structure_reconstruction.py)."""
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--labels", default="{}")
    ap.add_argument("--controls", nargs="*", default=[])
    ap.add_argument("--cumulants", nargs="+", required=True, help="one blocks .npy per model, in order")
    ap.add_argument("--structures", required=True, help="the kept structures (structure_cumulants)")
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lfre-k-max", type=int, default=100)
    ap.add_argument("--max-train", type=int, default=0, help="seeded cap on train structures (0 = all)")
    ap.add_argument("--no-lfre", action="store_true")
    ap.add_argument(
        "--lfre-test", type=int, default=0, help="LFRE on a seeded this many of the test structures; 0 = all"
    )
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out", required=True)
    ap.add_argument("--out-fig", nargs="+", required=True)


def figure(table: pd.DataFrame, models, labels, controls, top: int):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained", sharey=False)
    orders = np.arange(1, top + 1)
    for model in models:
        sel = table[table["model"] == model]
        label = mark_untrained(labels.get(model, model)) if model in controls else labels.get(model, model)
        style = dict(ls="--" if model in controls else "-", marker="o", ms=3, label=label)
        to_top = sel[sel["target_order"] == top].set_index("source_order")
        step = sel[sel["target_order"] == sel["source_order"] + 1].set_index("target_order")
        axes[0].plot(orders, [to_top["gfre"].get(o, np.nan) for o in orders], **style)
        axes[1].plot(orders[1:], [step["gfre"].get(o, np.nan) for o in orders[1:]], **style)
    axes[0].set(xlabel="source order n", ylabel=f"GFRE(order n -> order {top})")
    axes[0].set_title(f"how much of the order-{top} descriptor order n holds", fontsize=9)
    axes[1].set(xlabel="order n", ylabel="GFRE(order n-1 -> order n)")
    axes[1].set_title("what block n adds (0 = nothing new)", fontsize=9)
    axes[1].legend(fontsize=7, ncols=2)
    fig.suptitle("Cumulant structure descriptors: orders within each model (Chorna et al.)", fontsize=10)
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    add_structure_arguments(ap)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    structures = pd.read_csv(args.structures)
    train, test, lfre_rows, used = split_blocks(args, structures)
    rows = []
    for model, path in zip(args.models, args.cumulants, strict=True):
        blocks = read_blocks(path, used)
        top = blocks.shape[1]
        spaces = {o: descriptor(blocks, o) for o in range(1, top + 1)}
        try:
            part = structure_errors(args, spaces, train, test, lfre_rows)
        except ReconstructionError as err:
            raise SystemExit(f"ERROR: model {model}, cumulant descriptors: {err}") from None
        for row in part:
            row.update(model=model, source_order=row.pop("source"), target_order=row.pop("target"))
        rows += part
        print(f"{model}: {time.perf_counter() - t0:.1f} s", flush=True)
    table = pd.DataFrame(rows)
    cols = ["model", "source_order", "target_order", "gfre", "lfre", "k", "n_train", "n_test"]
    cols += ["n_test_lfre", "seconds"]
    write_csv(args.out, table[cols])
    fig = figure(table, args.models, json.loads(args.labels), set(args.controls), top)
    save(fig, *args.out_fig, dpi=args.dpi)
    print(f"{len(table)} rows in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    run(main)
