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


def _annotate_cells(ax, im, mat: np.ndarray) -> None:
    """Write each finite value of ``mat`` on its cell, dark on light colours and light on dark."""
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            if np.isfinite(mat[i, j]):
                shade = im.cmap(im.norm(mat[i, j]))
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
        _annotate_cells(ax, im, mat)
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return fig


def save(fig, *paths: str, dpi: int = 150) -> None:
    """Save ``fig`` to every path (format from the suffix) via temporary files, then close it."""
    from platonic_mlip.io import atomic_path

    try:
        for path in paths:
            with atomic_path(path, keep_suffix=True) as tmp:
                fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    finally:
        _plt().close(fig)


#: metric -> axis title, for figures that show several metrics
METRIC_TITLES = {
    "mknn": "mutual k-NN",
    "cka": "linear CKA",
    "procrustes_score": "Procrustes score",
    "ot_normalised": "OT cost / mean cost",
    "composite": "composite (ours)",
}


def sweep_curves(summary, metrics: Sequence[str], title: str):
    """Metric vs number of anchors K (log axis): DIRECT line, random mean with its min-max band.

    ``summary`` is ``anchor_studies.summarise_sweep`` output (k, method, metric, mean, min, max).
    """
    plt = _plt()
    n = len(metrics)
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 3.0), squeeze=False, layout="constrained")
    style = {"direct": dict(color="C3", marker="o"), "random": dict(color="C0", marker="s")}
    for ax, metric in zip(axes[0], metrics, strict=True):
        for method, kw in style.items():
            s = summary[(summary["metric"] == metric) & (summary["method"] == method)].sort_values("k")
            if s.empty:
                continue
            seeds = int(s["n_seeds"].max())
            label = "DIRECT" if method == "direct" else f"random ({seeds} seeds, min-max)"
            ax.plot(s["k"], s["mean"], ms=3, lw=1.2, label=label, **kw)
            if method == "random":
                ax.fill_between(s["k"], s["min"], s["max"], color=kw["color"], alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.set_xlabel("anchors K", fontsize=8)
        ax.set_title(METRIC_TITLES.get(metric, metric), fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("mean over model pairs", fontsize=8)
    axes[0][0].legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    return fig


def anchors_on_pca(x: np.ndarray, numbers: np.ndarray, anchor_sets: Mapping[str, np.ndarray], title: str):
    """PCA map of ``x`` (n, d) with atoms coloured by group, and each anchor set's rows marked.

    ``anchor_sets`` maps a label to row indices into ``x``.
    """
    plt = _plt()
    xy, ratio = pca_2d(x)
    labels = np.array([group_label(int(z)) for z in numbers])
    colours = group_colours()
    fig, ax = plt.subplots(figsize=(5.5, 4.8), layout="constrained")
    for g in GROUP_ORDER:
        sel = labels == g
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], s=2, color=colours[g], alpha=0.35, lw=0, rasterized=True)
    markers = [("*", "k", 70), ("X", "C3", 30), ("P", "C0", 30)]
    for (name, rows), (marker, colour, size) in zip(anchor_sets.items(), markers, strict=False):
        ax.scatter(
            xy[rows, 0], xy[rows, 1], s=size, marker=marker, color=colour, edgecolor="w", lw=0.4, label=name
        )
    ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}%)", fontsize=8)
    ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}%)", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(title, fontsize=9)
    return fig


def element_pca(vectors: Mapping[str, np.ndarray], numbers: np.ndarray, title: str, ncols: int = 4):
    """Per model, the PCA of its element vectors ((E, K) arrays over the same elements ``numbers``).

    Two rows of panels: elements coloured by periodic-table group (top) and by period (bottom), each
    point labelled with its symbol.
    """
    from ase.data import chemical_symbols

    from .chemistry import period_of

    plt = _plt()
    names = list(vectors)
    n = len(names)
    groups = np.array([group_label(int(z)) for z in numbers])
    periods = np.array([period_of(int(z)) for z in numbers])
    gcol = group_colours()
    pcmap = plt.get_cmap("plasma")
    fig, axes = plt.subplots(2, n, figsize=(3.0 * n, 6.2), squeeze=False, layout="constrained")
    for col, name in enumerate(names):
        xy, ratio = pca_2d(vectors[name])
        for row, colours in enumerate(([gcol[g] for g in groups], [pcmap((p - 1) / 7) for p in periods])):
            ax = axes[row][col]
            ax.scatter(xy[:, 0], xy[:, 1], s=14, color=colours, lw=0)
            for (px, py), z in zip(xy, numbers, strict=True):
                ax.annotate(chemical_symbols[int(z)], (px, py), fontsize=4.5, ha="center", va="bottom")
            ax.set_title(f"{name}: {'group' if row == 0 else 'period'}", fontsize=8)
            ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}%)", fontsize=7)
            ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}%)", fontsize=7)
            ax.tick_params(labelsize=6)
    present = [g for g in GROUP_ORDER if (groups == g).any()]
    handles = [plt.Line2D([], [], ls="", marker="o", color=gcol[g], label=g) for g in present]
    handles += [
        plt.Line2D([], [], ls="", marker="o", color=pcmap((p - 1) / 7), label=f"period {p}")
        for p in sorted(set(periods.tolist()))
    ]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(len(handles), 14), fontsize=6, frameon=False
    )
    fig.suptitle(title, fontsize=10)
    return fig


def matrix_heatmap(mat: np.ndarray, labels: Sequence[str], title: str, vmin=None, vmax=None, cmap="viridis"):
    """One annotated heatmap of a square (M, M) matrix with the same labels on both axes."""
    plt = _plt()
    size = 0.5 * len(labels) + 1.8
    fig, ax = plt.subplots(figsize=(size + 1.0, size), layout="constrained")
    im = ax.imshow(mat, vmin=vmin, vmax=vmax, cmap=cmap)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    _annotate_cells(ax, im, mat)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=9)
    return fig
