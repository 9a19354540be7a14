"""Does fine-tuning keep its pre-training bias? (Chorna et al., arXiv 2512.05717)

Their finding: a fine-tuned model's features stay within a small reconstruction error of its
pre-trained model's. Tested on pairs of the run named in ``--related`` (e.g. CHGNet 0.3.0 and its
r2SCAN transfer-learned version, 7net-0 and 7net-mf-0) and, with ``--finetune-eval``, on the
pre-trained model and the last checkpoint of each arm of the fine-tuning experiment.

For every related pair and space: GFRE and LFRE both ways (from ``reconstruction/atoms_summary.csv``),
against the errors of every other pair of trained models of different checkpoints ("unrelated"; split
into the same family and other families). ``verdict``: "closer than every unrelated pair" when both
GFREs are below the smallest unrelated GFRE, "closer than the median" when below the median, else "not
closer". The fine-tuning arms are measured on the fine-tuning probe atoms (anchor structures, Au probes,
held-out Cu), not on the run's atoms: their comparison with the unrelated pairs is indicative only.

Output ``--out`` table and ``--out-fig`` png/pdf (per space: unrelated pairs' GFREs as points, related
pairs and arms marked).
"""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.plotting import _plt, save
from platonic_mlip.reconstruction import reconstruction_errors, stratified_split


def arm_rows(eval_files, probes_atoms, n_test, seed):
    """GFRE/LFRE between epoch 0 (pre-trained) and the last checkpoint of every arm, on the probe atoms."""
    atoms = pd.read_csv(probes_atoms)
    rows = []
    for path in eval_files:
        data = np.load(path, allow_pickle=False)
        emb, epochs = data["embeddings"].astype(np.float64), data["epochs"]
        arm = str(data["arm"]) if "arm" in data.files else path
        seed_dir = [p for p in str(path).split("/") if p.startswith("seed")]
        keep = np.isfinite(emb).all(axis=(0, 2))
        strata = atoms["role"].to_numpy(dtype=object)[keep] if "role" in atoms else np.full(keep.sum(), "all")
        n = int(keep.sum())
        test_size = min(n_test, n // 4)
        train, test = stratified_split(strata, test_size, seed)
        first, last = emb[0][keep], emb[-1][keep]
        ab = reconstruction_errors(first, last, train, test)
        ba = reconstruction_errors(last, first, train, test)
        rows.append(
            dict(
                kind=f"fine-tuning arm {arm}" + (f" ({seed_dir[0]})" if seed_dir else ""),
                model_a=f"pretrained (epoch {int(epochs[0])})",
                model_b=f"{arm} (epoch {int(epochs[-1])})",
                space="raw (fine-tuning probe atoms)",
                gfre_ab=ab["gfre"],
                gfre_ba=ba["gfre"],
                lfre_ab=ab["lfre"],
                lfre_ba=ba["lfre"],
                n_atoms=n,
            )
        )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--summary", required=True, help="reconstruction/atoms_summary.csv")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--controls", nargs="*", default=[])
    ap.add_argument("--checkpoints", default="{}", help="JSON {model: checkpoint}")
    ap.add_argument("--families", default="{}", help="JSON {model: family}")
    ap.add_argument("--related", nargs="*", default=[], help="pairs as model_a,model_b")
    ap.add_argument(
        "--finetune-eval", nargs="*", default=[], help="finetune/eval/<arm>/seed<N>/embeddings.npz"
    )
    ap.add_argument("--finetune-atoms", default=None, help="finetune/probes/atoms.csv")
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out", required=True)
    ap.add_argument("--out-fig", nargs="+", required=True)
    args = ap.parse_args(argv)
    summary = pd.read_csv(args.summary)
    ckpt, fam = json.loads(args.checkpoints), json.loads(args.families)
    controls = set(args.controls)
    related = [tuple(p.split(",")) for p in args.related]
    for a, b in related:
        for m in (a, b):
            if m not in args.models:
                raise SystemExit(
                    f"ERROR: config key 'reconstruction.related_pairs': {m!r} is not one of the run's models "
                    f"({', '.join(args.models)})"
                )
    related_set = {frozenset(p) for p in related}
    trained = [m for m in args.models if m not in controls]
    rows = []
    reference = {}
    for space, part in summary.groupby("space", sort=False):
        g = part.set_index(["source", "target"])
        unrelated = {"same family": [], "other families": []}
        for a in trained:
            for b in trained:
                if a != b and ckpt.get(a, a) != ckpt.get(b, b) and frozenset((a, b)) not in related_set:
                    key = "same family" if fam.get(a) == fam.get(b) else "other families"
                    unrelated[key].append(g["gfre"].get((a, b), np.nan))
        pool = np.array(unrelated["same family"] + unrelated["other families"], dtype=float)
        pool = pool[np.isfinite(pool)]
        reference[space] = (pool, unrelated)
        for a, b in related:
            row = dict(kind="related models of the run", model_a=a, model_b=b, space=space)
            for m in ("gfre", "lfre"):
                row[f"{m}_ab"] = g[m].get((a, b), np.nan)
                row[f"{m}_ba"] = g[m].get((b, a), np.nan)
            rows.append(row)
    if args.finetune_eval:
        rows += arm_rows(args.finetune_eval, args.finetune_atoms, args.n_test, args.seed)
    base = ["kind", "model_a", "model_b", "space", "gfre_ab", "gfre_ba", "lfre_ab", "lfre_ba"]
    table = pd.DataFrame(rows, columns=[*base, *(["n_atoms"] if args.finetune_eval else [])])
    table["compared_space"] = pd.Series(dtype=object)
    if table.empty:
        print("no related pairs and no fine-tuning arms: nothing to compare (reconstruction.related_pairs)")
    first_space = next(iter(reference)) if reference else None
    for i, row in table.iterrows():
        space = row["space"] if row["space"] in reference else first_space
        pool, parts = reference.get(space, (np.array([]), {}))
        worst = float(np.max([row["gfre_ab"], row["gfre_ba"]]))  # NaN when a direction is missing
        table.loc[i, "compared_space"] = space
        table.loc[i, "unrelated_min_gfre"] = pool.min() if len(pool) else np.nan
        table.loc[i, "unrelated_median_gfre"] = np.median(pool) if len(pool) else np.nan
        for key, vals in parts.items():
            vals = np.asarray(vals, dtype=float)
            vals = vals[np.isfinite(vals)]
            table.loc[i, f"unrelated_{key.replace(' ', '_')}_median_gfre"] = (
                np.median(vals) if len(vals) else np.nan
            )
        table.loc[i, "n_unrelated_pairs"] = len(pool)
        table.loc[i, "share_of_unrelated_below"] = float(np.mean(pool < worst)) if len(pool) else np.nan
        table.loc[i, "verdict"] = (
            "no unrelated pairs to compare"
            if not len(pool)
            else "closer than every unrelated pair"
            if worst < pool.min()
            else "closer than the median unrelated pair"
            if worst < np.median(pool)
            else "not closer than unrelated pairs"
        )
    write_csv(args.out, table)
    plt = _plt()
    spaces = list(reference)
    fig, axes = plt.subplots(
        1, max(1, len(spaces)), figsize=(4.5 * max(1, len(spaces)), 4), squeeze=False, layout="constrained"
    )
    for ax, space in zip(axes[0], spaces, strict=False):
        _, parts = reference[space]
        for x, vals in enumerate(parts.values()):
            ax.scatter(
                np.full(len(vals), x) + np.linspace(-0.15, 0.15, len(vals)),
                vals,
                s=12,
                color="0.5",
                label="unrelated pairs" if x == 0 else None,
            )
        sel = table[table["compared_space"] == space]
        for j, (_, row) in enumerate(sel.iterrows()):
            x = 2 + j
            ax.scatter([x, x], [row["gfre_ab"], row["gfre_ba"]], marker="D", s=30, label=None)
        names = [
            r["kind"].replace("fine-tuning ", "")
            if r["kind"].startswith("fine-tuning")
            else f"{r['model_a']} / {r['model_b']}"
            for _, r in sel.iterrows()
        ]
        ax.set_xticks(
            range(2 + len(sel)), [*(f"unrelated, {k}" for k in parts), *names], rotation=60, ha="right"
        )
        ax.tick_params(axis="x", labelsize=6)
        ax.set_ylabel("GFRE (both directions)")
        ax.set_title("raw" if space == "raw" else f"Platonic ({space})", fontsize=9)
        shown = np.asarray(
            [*(v for vals in parts.values() for v in vals), *sel[["gfre_ab", "gfre_ba"]].to_numpy().ravel()],
            dtype=float,
        )
        shown = shown[np.isfinite(shown)]
        ax.set_ylim(0, max(1.1, 1.05 * shown.max()) if len(shown) else 1.1)
    fig.suptitle("Fine-tuned and related models against unrelated pairs (Chorna et al.)", fontsize=10)
    save(fig, *args.out_fig, dpi=args.dpi)
    print(table.to_string())


if __name__ == "__main__":
    run(main)
