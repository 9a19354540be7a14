"""Fig. 5a-c: where fine-tuning moves the embeddings of Cu and of unseen Au atoms.

Reads the evaluation of every arm and seed (finetune_evaluate.py: embeddings of the probe atoms at the
pretrained model, epoch 0, and at every kept checkpoint) and the probe atom table (finetune_probes.py).
Writes ``--out-csv``: per arm, seed, epoch, space (raw, fixed = the pretrained model's anchor vectors,
own = each checkpoint's own anchor vectors), role (au_probe, cu_test) and element, the mean and
percentiles of the norm ratio |e_t|/|e_0|, the cosine cos(e_t, e_0) and the relative shift
(``platonic_mlip.finetune_shift``); ``--out-fig``: (a) PCA of the fixed-anchor Platonic space of the
pretrained model with the probe atoms, (b, c, ...) per arm the trajectories of the mean Au and Cu
positions of each probe kind across checkpoints on that map, and the Au norm ratio and cosine against
epoch for every arm.
"""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip import finetune_shift as fs
from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.plotting import _plt, save

COLOURS = {"Au": "#c9a227", "Cu": "#b55a30"}


def read_eval(path: str) -> tuple[str, np.ndarray, np.ndarray]:
    with np.load(path) as z:
        return str(z["arm"]), np.asarray(z["embeddings"]), np.asarray(z["epochs"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--atoms", required=True, help="finetune_probes' atom table")
    ap.add_argument("--evals", nargs="+", required=True, help="finetune_evaluate's npz, one per arm and seed")
    ap.add_argument("--seeds", nargs="+", type=int, required=True, help="the seed of each --evals file")
    ap.add_argument("--model-label", default="pretrained model")
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-fig", nargs="+", required=True)
    args = ap.parse_args(argv)
    if len(args.seeds) != len(args.evals):
        raise SystemExit(f"ERROR: {len(args.evals)} --evals but {len(args.seeds)} --seeds")
    atoms = pd.read_csv(args.atoms)
    stacks = {}
    for path, seed in zip(args.evals, args.seeds, strict=True):
        arm, stack, epochs = read_eval(path)
        if stack.shape[1] != len(atoms):
            raise SystemExit(f"ERROR: {path}: {stack.shape[1]} atoms, {args.atoms} has {len(atoms)}")
        if not np.isfinite(stack).all():
            raise SystemExit(f"ERROR: {path}: non-finite embeddings")
        stacks[(arm, seed)] = (stack, epochs)
    table = fs.shift_table(stacks, atoms)
    write_csv(args.out_csv, table)

    # figure: one PCA of the pretrained model's fixed-anchor space (identical epoch 0 in every arm)
    plt = _plt()
    arms = list(dict.fromkeys(arm for arm, _ in stacks))
    first = {arm: next(v for (a, _), v in stacks.items() if a == arm) for arm in arms}
    anchors = fs.anchor_rows(atoms["anchor"])
    probe = atoms["role"].isin(["au_probe", "cu_test"]).to_numpy()
    spaces = {arm: fs.spaces(stack, anchors)["fixed"] for arm, (stack, _) in first.items()}
    z0 = spaces[arms[0]][0]
    mean = z0.mean(axis=0)
    _, _, vt = np.linalg.svd(z0 - mean, full_matrices=False)
    pc = vt[:2].T

    def xy(z):
        return (z - mean) @ pc

    fig, axes = plt.subplots(2, max(len(arms), 2), figsize=(4.2 * max(len(arms), 2), 7.6), squeeze=False)
    kinds = atoms[probe].groupby(["element", "kind"]).groups
    for j, arm in enumerate(arms):
        ax = axes[0, j]
        zs = spaces[arm]
        p0 = xy(zs[0])
        ax.scatter(*p0[~probe].T, s=4, c="0.8", label="run structures (anchors')")
        for el in ("Cu", "Au"):
            sel = probe & (atoms["element"] == el).to_numpy()
            ax.scatter(*p0[sel].T, s=6, c=COLOURS[el], alpha=0.35, label=f"{el}, pretrained")
            ax.scatter(
                *xy(zs[-1])[sel].T, s=6, c=COLOURS[el], marker="x", alpha=0.8, label=f"{el}, last epoch"
            )
        for (el, _kind), idx in kinds.items():
            path = np.array([xy(z[idx]).mean(axis=0) for z in zs])
            ax.plot(*path.T, "-", c=COLOURS.get(el, "k"), lw=1.2)
            ax.annotate(
                "", xy=path[-1], xytext=path[-2], arrowprops=dict(arrowstyle="->", color=COLOURS.get(el))
            )
        ax.set_title(f"({'abcdefg'[j]}) {arm}: fixed-anchor Platonic PCA", fontsize=9)
        ax.set_xlabel("PC1 (pretrained)")
        ax.set_ylabel("PC2 (pretrained)")
        if j == 0:
            ax.legend(fontsize=6, loc="best")
    for j in range(len(arms), axes.shape[1]):
        axes[0, j].axis("off")
    au = table[(table["role"] == "au_probe") & (table["element"] == "Au")]
    for k, (measure, space, title) in enumerate(
        [
            ("norm_ratio", "raw", "Au |e_t| / |e_0| (raw)"),
            ("cosine", "fixed", "Au cos(z_t, z_0), fixed anchors"),
        ]
    ):
        ax = axes[1, k]
        for arm in arms:
            part = au[(au["arm"] == arm) & (au["measure"] == measure) & (au["space"] == space)]
            mean_by_epoch = part.groupby("epoch")["mean"].mean()
            ax.plot(mean_by_epoch.index, mean_by_epoch.values, "o-", label=arm)
        ax.axhline(1.0, c="0.6", lw=0.8, ls=":")
        ax.set_xlabel("epoch")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    for j in range(2, axes.shape[1]):
        axes[1, j].axis("off")
    fig.suptitle(f"Fine-tuning {args.model_label} on Cu: unseen Au atoms (Fig. 5a-c)", fontsize=10)
    fig.tight_layout()
    save(fig, *args.out_fig, dpi=args.dpi)
    last = au[(au["epoch"] == au.groupby("arm")["epoch"].transform("max")) & (au["space"] == "raw")]
    for arm, part in last.groupby("arm"):
        vals = part.groupby("measure")["mean"].mean()
        print(f"{arm}: Au norm ratio {vals['norm_ratio']:.3f}, cosine {vals['cosine']:.3f} (raw, last epoch)")


if __name__ == "__main__":
    run(main)
