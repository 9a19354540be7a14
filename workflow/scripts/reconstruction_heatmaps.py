"""GFRE and LFRE of every ordered model pair as heatmaps, with the asymmetry, per space; the summary table.

Reads the per-space tables of ``feature_reconstruction.py``. The summary (``--out-summary``) has per
space and ordered pair the value on the protocol's test set (draw 0), the mean, std and percentile
interval (``--level``) over the redrawn test sets, and ``gfre_asymmetry`` = GFRE(source -> target) -
GFRE(target -> source) (positive: the target is the harder one to rebuild from the source). The figure
shows per space GFRE and LFRE (rows source, columns target) and the GFRE asymmetry.
"""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.plotting import matrix_panels, model_label, save
from platonic_mlip.reconstruction import asymmetry, matrix, summarise

ERROR_LABEL = "error (0 = rebuilt exactly, 1 = no better than the mean)"


def space_title(space: str) -> str:
    return "raw" if space == "raw" else f"Platonic ({space})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tables", nargs="+", required=True, help="feature_reconstruction tables, one per space")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--labels", default="{}")
    ap.add_argument("--controls", nargs="*", default=[])
    ap.add_argument("--level", type=float, default=0.95)
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out-summary", required=True)
    ap.add_argument("--out-fig", nargs="+", required=True)
    args = ap.parse_args(argv)
    rows = pd.concat([pd.read_csv(t) for t in args.tables], ignore_index=True)
    summary = summarise(rows, level=args.level)
    summary["gfre_asymmetry"] = np.nan
    panels, styles = {}, {}
    lfre = rows["lfre"].notna().any()
    for space, part in summary.groupby("space", sort=False):
        gfre = matrix(part, "gfre", args.models)
        asym = asymmetry(gfre)
        pos = {m: i for i, m in enumerate(args.models)}
        summary.loc[part.index, "gfre_asymmetry"] = [
            asym[pos[s], pos[t]] for s, t in zip(part["source"], part["target"], strict=True)
        ]
        name = space_title(space)
        panels[f"GFRE, {name}"] = gfre
        if lfre:
            panels[f"LFRE, {name}"] = matrix(part, "lfre", args.models)
        key = f"GFRE asymmetry, {name}"
        panels[key] = asym
        bound = float(np.nanmax(np.abs(asym))) or 1.0
        styles[key] = dict(
            vmin=-bound, vmax=bound, cmap="RdBu_r", cbar_label="GFRE(row -> col) - GFRE(col -> row)"
        )
    labels, controls = json.loads(args.labels), set(args.controls)
    fig = matrix_panels(
        panels,
        [model_label(m, labels, controls) for m in args.models],
        "Feature reconstruction errors per atom (Chorna et al.): rows source, columns target",
        [m in controls for m in args.models],
        cbar_label=ERROR_LABEL,
        ncols=3 if lfre else 2,
        styles=styles,
    )
    write_csv(args.out_summary, summary)
    save(fig, *args.out_fig, dpi=args.dpi)
    print(f"{len(summary)} rows; spaces {', '.join(summary['space'].unique())}")


if __name__ == "__main__":
    run(main)
