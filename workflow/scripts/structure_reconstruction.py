"""Feature reconstruction between models at structure level (Chorna et al., arXiv 2512.05717).

Every ordered pair of models, GFRE and LFRE, on the order-``--order`` cumulant descriptors of the
structures (blocks 1..order of ``structure_cumulants``), split by structure: ``--n-test`` test
structures stratified by crystal system, seeded, train = the rest; LFRE k = min(widths, ``--lfre-k-max``).

Output ``--out`` (order, source, target, gfre, lfre, k, n_train, n_test, n_test_lfre) and ``--out-fig``
png/pdf: GFRE and LFRE heatmaps, rows source and columns target.
"""

from __future__ import annotations

import argparse
import json
import time

import _paths  # noqa: F401
import pandas as pd
from cumulant_orders import add_structure_arguments, read_blocks, split_blocks, structure_errors

from platonic_mlip.cli import run
from platonic_mlip.cumulants import descriptor
from platonic_mlip.io import write_csv
from platonic_mlip.plotting import matrix_panels, model_label, save
from platonic_mlip.reconstruction import ReconstructionError, matrix


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    add_structure_arguments(ap)
    ap.add_argument("--order", type=int, default=8)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    structures = pd.read_csv(args.structures)
    train, test, lfre_rows, used = split_blocks(args, structures)
    spaces = {}
    for model, path in zip(args.models, args.cumulants, strict=True):
        blocks = read_blocks(path, used)
        if not 1 <= args.order <= blocks.shape[1]:
            raise SystemExit(
                f"ERROR: config key 'reconstruction.structures.order' ({args.order}): {path} holds orders "
                f"1..{blocks.shape[1]}"
            )
        spaces[model] = descriptor(blocks, args.order)
    try:
        rows = structure_errors(args, spaces, train, test, lfre_rows)
    except ReconstructionError as err:
        raise SystemExit(f"ERROR: order-{args.order} cumulant descriptors: {err}") from None
    table = pd.DataFrame(rows)
    table.insert(0, "order", args.order)
    write_csv(
        args.out,
        table[
            ["order", "source", "target", "gfre", "lfre", "k", "n_train", "n_test", "n_test_lfre", "seconds"]
        ],
    )
    labels, controls = json.loads(args.labels), set(args.controls)
    names = [model_label(m, labels, controls) for m in args.models]
    is_control = [m in controls for m in args.models]
    panels = {f"GFRE, order {args.order}": matrix(table, "gfre", args.models)}
    if not args.no_lfre:
        panels[f"LFRE, order {args.order}"] = matrix(table, "lfre", args.models)
    fig = matrix_panels(
        panels,
        names,
        f"Structure level: cumulant descriptors of order {args.order} (rows source, columns target)",
        is_control,
        cbar_label="reconstruction error (0 = rebuilt exactly, 1 = no better than the mean)",
    )
    save(fig, *args.out_fig, dpi=args.dpi)
    print(f"{len(table)} pairs in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    run(main)
