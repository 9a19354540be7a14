"""Errors of every fine-tuning arm beside its embedding shift: the link between geometry and physics.

One row per arm, seed, epoch and head: energy and force RMSE on held-out Cu and on the Au probes (against
the labels and against the pretrained model's own predictions), the mean Au norm ratio and cosine to the
pretrained position (raw and fixed-anchor Platonic; fig5abc table) and the Au-Au / Cu-Cu well depth and
repulsive flag (fig5de table).
"""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.io import write_csv

KEYS = ["arm", "seed", "epoch"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--accuracy", nargs="+", required=True, help="finetune_evaluate's accuracy.csv per arm/seed"
    )
    ap.add_argument("--seeds", nargs="+", type=int, required=True)
    ap.add_argument("--shift", required=True, help="fig5abc_finetune_embeddings.csv")
    ap.add_argument("--dimers", required=True, help="fig5de_dimer_curves.csv")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if len(args.seeds) != len(args.accuracy):
        raise SystemExit(f"ERROR: {len(args.accuracy)} --accuracy but {len(args.seeds)} --seeds")
    acc = pd.concat(
        [pd.read_csv(p).assign(seed=s) for p, s in zip(args.accuracy, args.seeds, strict=True)],
        ignore_index=True,
    )
    values = [
        "energy_rmse_meV_atom",
        "force_rmse_eV_A",
        "energy_rmse_vs_pretrained_meV_atom",
        "force_rmse_vs_pretrained_eV_A",
    ]
    wide = acc.pivot_table(index=[*KEYS, "head"], columns="set", values=values).reset_index()
    wide.columns = [f"{s}_{v}" if s else v for v, s in wide.columns]

    shift = pd.read_csv(args.shift)
    au = shift[
        (shift["role"] == "au_probe") & (shift["element"] == "Au") & shift["space"].isin(["raw", "fixed"])
    ]
    au = au[au["measure"].isin(["norm_ratio", "cosine"])]
    au = au.assign(col="au_" + au["measure"] + "_" + au["space"])
    au = au.pivot_table(index=KEYS, columns="col", values="mean").reset_index()
    out = wide.merge(au, on=KEYS, how="left")

    dim = pd.read_csv(args.dimers)
    dim = dim[dim["arm"] != "reference"]
    dim = dim.assign(head=dim["head"].replace({"single": "single"}))
    pretrained = dim[dim["arm"] == "pretrained"]
    rows = []
    for r in out.itertuples():
        if r.epoch == 0:
            part = pretrained
        else:
            part = dim[(dim["arm"] == r.arm) & (dim["seed"] == r.seed) & (dim["epoch"] == r.epoch)]
            part = part[part["head"] == r.head]
        row = {}
        for p in part.itertuples():
            tag = p.pair.replace("-", "")
            row[f"{tag}_well_depth_eV"] = p.well_depth
            row[f"{tag}_r_min_A"] = p.r_min
            row[f"{tag}_repulsive"] = p.repulsive
        rows.append(row)
    out = pd.concat([out, pd.DataFrame(rows, index=out.index)], axis=1)
    out = out.sort_values([*KEYS, "head"], kind="stable")
    write_csv(args.out, out)
    print(out.to_string(index=False, max_cols=12))


if __name__ == "__main__":
    run(main)
