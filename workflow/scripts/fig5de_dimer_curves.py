"""Fig. 5d-e: Au-Au and Cu-Cu dimer curves of the pretrained model, every fine-tuning arm and the reference.

Reads the curves of every arm and seed (finetune_evaluate.py: arm, epoch, head, pair, r, energy; epoch 0
is the pretrained model) and the reference curves (finetune_data.py's EMT curves). Writes ``--out-curves``
(one long table: curve, arm, seed, epoch, head, pair, r, energy), ``--out-csv`` (the well of every curve:
depth, position, repulsive, ``platonic_mlip.dimers.curve_features``) and ``--out-fig`` (per pair: the
reference, the pretrained model and the last checkpoint of every arm and head).

Binding energies (E(r) minus the isolated atoms, same calculator): every model shares one axis. A curve is
repulsive when its well is shallower than ``--repulsive-tol`` (OURS 0.05 eV).
"""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import pandas as pd

from platonic_mlip import dimers as dm
from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.plotting import _plt, save

REFERENCE = "reference (EMT)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--emt", required=True, help="finetune_data's reference curves (arm, pair, r, energy)")
    ap.add_argument("--dimers", nargs="+", required=True, help="finetune_evaluate's dimers.csv per arm/seed")
    ap.add_argument("--seeds", nargs="+", type=int, required=True, help="the seed of each --dimers file")
    ap.add_argument("--model-label", default="pretrained model")
    ap.add_argument("--repulsive-tol", type=float, default=dm.REPULSIVE_TOL)
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out-curves", required=True)
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-fig", nargs="+", required=True)
    args = ap.parse_args(argv)
    if len(args.seeds) != len(args.dimers):
        raise SystemExit(f"ERROR: {len(args.dimers)} --dimers but {len(args.seeds)} --seeds")
    parts = []
    emt = pd.read_csv(args.emt)
    emt = emt.assign(curve=REFERENCE, arm="reference", seed=-1, epoch=-1, head="-")
    parts.append(emt)
    pretrained_done = False
    for path, seed in zip(args.dimers, args.seeds, strict=True):
        d = pd.read_csv(path)
        missing = {"arm", "epoch", "head", "pair", "r", "energy"} - set(d.columns)
        if missing:
            raise SystemExit(f"ERROR: {path}: missing column(s) {', '.join(sorted(missing))}")
        d["seed"] = seed
        zero = d["epoch"] == 0
        if not pretrained_done:  # the pretrained model is epoch 0 of every arm: kept once
            parts.append(d[zero].assign(curve="pretrained", arm="pretrained"))
            pretrained_done = True
        d = d[~zero]
        heads = d["head"].map(lambda h: "" if h in ("single", "target") else f" ({h} head)")
        d = d.assign(curve=d["arm"] + " s" + d["seed"].astype(str) + " ep" + d["epoch"].astype(str) + heads)
        parts.append(d)
    curves = pd.concat(parts, ignore_index=True)
    cols = ["curve", "arm", "seed", "epoch", "head", "pair", "r", "energy"]
    curves = curves[cols]
    rows = []
    for (curve, pair), g in curves.groupby(["curve", "pair"], sort=False):
        feats = dm.curve_features(g["r"].to_numpy(), g["energy"].to_numpy(), tol=args.repulsive_tol)
        first = g.iloc[0]
        rows.append(
            dict(
                curve=curve,
                arm=first["arm"],
                seed=int(first["seed"]),
                epoch=int(first["epoch"]),
                head=first["head"],
                pair=pair,
                **feats,
            )
        )
    table = pd.DataFrame(rows)
    write_csv(args.out_curves, curves)
    write_csv(args.out_csv, table)

    plt = _plt()
    pairs = list(dict.fromkeys(curves["pair"]))
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.2), squeeze=False)
    last = curves[curves["epoch"] == curves.groupby(["arm", "seed"])["epoch"].transform("max")]
    for ax, pair in zip(axes[0], pairs, strict=True):
        for curve, g in last[last["pair"] == pair].groupby("curve", sort=False):
            style = dict(c="k", lw=2, ls="--") if curve == REFERENCE else {}
            if curve == "pretrained":
                style = dict(c="0.4", lw=2)
            ax.plot(g["r"], g["energy"], marker=".", label=f"{curve}", **style)
        ax.axhline(0, c="0.7", lw=0.8)
        lo = last.loc[last["pair"] == pair, "energy"].quantile(0.02)
        ax.set_ylim(max(lo - 0.5, -8), 3)
        ax.set_xlabel("r (Angstrom)")
        ax.set_ylabel("binding energy (eV)")
        ax.set_title(f"{pair} dimer", fontsize=10)
        ax.legend(fontsize=6)
    fig.suptitle(f"Dimer curves after fine-tuning {args.model_label} on Cu (Fig. 5d-e)", fontsize=10)
    fig.tight_layout()
    save(fig, *args.out_fig, dpi=args.dpi)
    for r in table.itertuples():
        if (
            r.epoch != 0
            and r.curve != REFERENCE
            and r.epoch < table.loc[table["arm"] == r.arm, "epoch"].max()
        ):
            continue
        print(
            f"{r.curve:40s} {r.pair}: well {r.well_depth:.3f} eV at {r.r_min:.2f} A, repulsive={r.repulsive}"
        )


if __name__ == "__main__":
    run(main)
