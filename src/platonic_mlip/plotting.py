"""Figures of the paper: PCA maps of embedding spaces and heatmaps of pairwise metrics.

Functions return matplotlib Figures (Agg backend); callers save them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .chemistry import group_label

GROUP_ORDER = [f"G{g}" for g in range(1, 19)] + ["Ln/An"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two principal components of ``x`` (n, d) -> ((n, 2) scores, (2,) explained variance ratios)."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, svd_solver="full").fit(np.asarray(x, dtype=np.float64))
    return pca.transform(np.asarray(x, dtype=np.float64)), pca.explained_variance_ratio_


def group_colours():
    plt = _plt()
    cmap = plt.get_cmap("tab20")
    return {g: cmap(i % 20) for i, g in enumerate(GROUP_ORDER)}


def pca_grid(spaces: Mapping[str, np.ndarray], numbers: np.ndarray, title: str, ncols: int = 4):
    """One PCA panel per model (label -> (n, d) array), atoms coloured by periodic-table group.

    ``numbers`` holds the (n,) atomic numbers of the rows.
    """
    plt = _plt()
    labels = np.array([group_label(int(z)) for z in numbers])
    colours = group_colours()
    n = len(spaces)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.0 * nrows + 0.8), squeeze=False)
    for ax, (name, x) in zip(axes.flat, spaces.items(), strict=False):
        xy, ratio = pca_2d(x)
        for g in GROUP_ORDER:
            sel = labels == g
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=2, color=colours[g], label=g, rasterized=True, lw=0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}%)", fontsize=7)
        ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}%)", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in axes.flat[n:]:
        ax.axis("off")
    present = [g for g in GROUP_ORDER if (labels == g).any()]
    handles = [plt.Line2D([], [], ls="", marker="o", color=colours[g], label=g) for g in present]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 10), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    return fig


def metric_matrix(table, metric: str, space: str, anchors: str, models: Sequence[str]) -> np.ndarray:
    """Symmetric (M, M) matrix of ``metric`` from a tidy pairwise table (NaN where absent)."""
    sel = table[(table["metric"] == metric) & (table["space"] == space)]
    if space == "platonic":
        sel = sel[sel["anchors"] == anchors]
    pos = {m: i for i, m in enumerate(models)}
    mat = np.full((len(models), len(models)), np.nan)
    for a, b, v in zip(sel["model_a"], sel["model_b"], sel["value"], strict=True):
        if a in pos and b in pos:
            mat[pos[a], pos[b]] = mat[pos[b], pos[a]] = v
    return mat


def heatmaps(
    table,
    metric: str,
    models: Sequence[str],
    labels: Sequence[str],
    anchors: str,
    title: str,
    spaces: Sequence[str] = ("raw", "platonic"),
    vmin=None,
    vmax=None,
    cmap: str = "viridis",
):
    """Side-by-side heatmaps of one metric in each space (shared colour scale), values annotated."""
    plt = _plt()
    mats = [metric_matrix(table, metric, s, anchors, models) for s in spaces]
    finite = np.concatenate([m[np.isfinite(m)] for m in mats])
    vmin = float(finite.min()) if vmin is None and finite.size else vmin
    vmax = float(finite.max()) if vmax is None and finite.size else vmax
    size = 0.5 * len(models) + 1.6
    fig, axes = plt.subplots(
        1, len(spaces), figsize=(size * len(spaces) + 1.5, size + 0.6), squeeze=False, layout="constrained"
    )
    norm = plt.Normalize(vmin=vmin, vmax=vmax)
    for col, (ax, space, mat) in enumerate(zip(axes[0], spaces, mats, strict=True)):
        im = ax.imshow(mat, norm=norm, cmap=cmap)
        ax.set_xticks(range(len(models)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(models)), labels if col == 0 else [], fontsize=7)
        ax.set_title("raw" if space == "raw" else f"Platonic ({anchors} anchors)", fontsize=9)
        for i in range(len(models)):
            for j in range(len(models)):
                if np.isfinite(mat[i, j]):
                    shade = im.cmap(norm(mat[i, j]))
                    light = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] > 0.55
                    ax.text(
                        j,
                        i,
                        f"{mat[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="k" if light else "w",
                    )
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return fig


def save(fig, *paths: str, dpi: int = 150) -> None:
    """Save ``fig`` to every path (format from the suffix) via temporary files, then close it."""
    import os
    from pathlib import Path

    for path in paths:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.part{path.suffix}")
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        tmp.replace(path)
    _plt().close(fig)
