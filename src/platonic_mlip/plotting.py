"""Figures of the paper: PCA maps of embedding spaces and heatmaps of pairwise metrics.

Functions return matplotlib Figures (Agg backend); callers save them. Conventions of every figure:

* models carry their display labels (config ``label``, the scripts' ``--labels``); untrained controls
  (random weights) are marked " (untrained)" (:func:`model_label`) and come last in heatmaps, behind a
  line;
* anchor sets are named "DIRECT", "random", "published" (:func:`anchor_set_label`);
* a colour bar or metric axis says which way is "more alike" (:func:`metric_axis_label`): higher for
  the scores, lower for the OT cost and the Procrustes distance;
* PCA maps of several models over the same rows have their PC signs aligned to the first model's
  (:func:`align_signs`), since a principal component is defined only up to its sign;
* grids of panels stay within ``MAX_WIDTH_IN``; a spare grid slot takes the legend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .chemistry import FAMILY_ORDER, family_label

#: colour of each chemical family: Paul Tol's colour-blind-safe "muted" scheme, with Okabe-Ito orange
#: and black for the last two; no pale colour, so that no family vanishes on white
FAMILY_COLOURS = dict(
    zip(
        FAMILY_ORDER,
        (
            "#CC6677",  # alkali: rose
            "#882255",  # alkaline earth: wine
            "#332288",  # early TM: indigo
            "#88CCEE",  # late TM: cyan
            "#999933",  # G13: olive
            "#DDCC77",  # G14: sand
            "#AA4499",  # pnictogens: purple
            "#117733",  # chalcogens: green (a quarter of MP-20's atoms)
            "#44AA99",  # halogens: teal
            "#000000",  # noble gases: black
            "#E69F00",  # Ln/An: orange
        ),
        strict=True,
    )
)


#: widest figure (inches) a grid of panels may take: a page, or a report column at dpi 150
MAX_WIDTH_IN = 16.0

#: display names of the anchor sets (config ``anchors.sets``): DIRECT is the paper's method, an acronym
ANCHOR_SET_LABELS = {"direct": "DIRECT", "random": "random", "published": "published"}
CENTRED = "-centred"

#: suffix of an untrained control's label (a model whose weights are random)
UNTRAINED = "untrained"

#: metric -> axis title, for figures that show several metrics (and the default metrics of Fig. 3a)
METRIC_TITLES = {
    "mknn": "mutual k-NN",
    "cka": "linear CKA",
    "procrustes_score": "Procrustes score",
    "ot_normalised": "OT cost / mean cost",
    "composite": "composite (ours)",
}
#: every metric of the pairwise and sweep tables -> its name on an axis or colour bar
METRIC_NAMES = {
    **METRIC_TITLES,
    "ot_score": "OT score (1 - cost / mean cost)",
    "ot_cost": "OT cost",
    "procrustes_distance": "Procrustes distance",
}
#: metrics that are costs or distances: a lower value means more alike spaces
LOWER_IS_ALIKE = frozenset({"ot_normalised", "ot_cost", "procrustes_distance"})


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def anchor_set_label(name: str) -> str:
    """Display name of an anchor set: 'DIRECT', 'random', 'published' (', centred' for ``<set>-centred``)."""
    centred = name.endswith(CENTRED)
    base = name[: -len(CENTRED)] if centred else name
    label = ANCHOR_SET_LABELS.get(base.lower(), base)
    return f"{label}, centred" if centred else label


def mark_untrained(label: str) -> str:
    """``label`` with the suffix ' (untrained)', unless it says so already or ends in its own role tag
    (the registry labels of the other controls: 'SOAP (physics)', 'Element one-hot (baseline)')."""
    return label if UNTRAINED in label.lower() or label.endswith(")") else f"{label} ({UNTRAINED})"


def model_label(model: str, labels: Mapping[str, str] | None = None, controls: Sequence[str] = ()) -> str:
    """Display label of a model id: its ``labels`` entry (else the id), marked untrained for a control."""
    label = (labels or {}).get(model, model)
    return mark_untrained(label) if model in set(controls) else label


def direction(metric: str) -> str:
    """'lower = more alike' for a cost or distance, else 'higher = more alike'."""
    return "lower = more alike" if metric in LOWER_IS_ALIKE else "higher = more alike"


def metric_axis_label(metric: str) -> str:
    """Name of a metric and which way is 'more alike', for a colour bar or an axis."""
    return f"{METRIC_NAMES.get(metric, metric)}\n({direction(metric)})"


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two principal components of ``x`` (n, d) -> ((n, 2) scores, (2,) explained variance ratios)."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, svd_solver="full").fit(np.asarray(x, dtype=np.float64))
    return pca.transform(np.asarray(x, dtype=np.float64)), pca.explained_variance_ratio_


def align_signs(xy: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``xy`` with each column negated where it correlates negatively with the same column of ``ref``.

    Both are (n, c) scores over the same rows (atoms, elements). A principal component is defined only
    up to its sign, so two alike spaces can give mirrored maps; after this, they do not. Returns the
    aligned copy and a (c,) bool array: which columns were negated.
    """
    xy = np.array(xy, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    dot = np.sum((xy - xy.mean(axis=0)) * (ref - ref.mean(axis=0)), axis=0)
    flipped = dot < 0
    xy[:, flipped] *= -1.0
    return xy, flipped


def aligned_pcas(spaces: Mapping[str, np.ndarray], align: bool = True) -> dict[str, tuple]:
    """Per space, (scores, explained variance ratios, flipped) of its 2-D PCA, signs aligned to the first."""
    out, ref = {}, None
    for name, x in spaces.items():
        xy, ratio = pca_2d(x)
        flipped = np.zeros(2, dtype=bool)
        if align and ref is not None:
            xy, flipped = align_signs(xy, ref)
        ref = xy if ref is None else ref
        out[name] = (xy, ratio, flipped)
    return out


def _pc_label(i: int, ratio: np.ndarray, flipped: np.ndarray) -> str:
    sign = "\u2212" if flipped[i] else ""
    return f"{sign}PC{i + 1} ({100 * ratio[i]:.0f}%)"


def _sign_note(names: Sequence[str]) -> str:
    if len(names) < 2:
        return ""
    return f"\nPC signs aligned to {names[0]}'s scores over the same rows (\u2212PC: sign flipped)"


def scatter_by_family(ax, xy: np.ndarray, numbers: np.ndarray, seed: int = 0, **kwargs) -> list[str]:
    """Scatter (n, 2) points coloured by the chemical family of their atomic numbers (n,).

    All points go in one call, in a seeded random order, so that no family is drawn over all the
    others. Returns the families present, in ``FAMILY_ORDER``.
    """
    fams = np.array([family_label(int(z)) for z in numbers])
    order = np.random.default_rng(seed).permutation(len(xy))
    colours = np.array([FAMILY_COLOURS[f] for f in fams])
    ax.scatter(xy[order, 0], xy[order, 1], color=colours[order], **kwargs)
    return [f for f in FAMILY_ORDER if (fams == f).any()]


def family_handles(present: Sequence[str]):
    plt = _plt()
    return [plt.Line2D([], [], ls="", marker="o", color=FAMILY_COLOURS[f], label=f) for f in present]


def grid_shape(n: int, max_cols: int) -> tuple[int, int]:
    """(rows, columns) for ``n`` panels in at most ``max_cols`` columns.

    Prefers one spare slot (it takes the legend), then none, then the fewest; ties go to more columns.
    """
    best = None
    for ncols in range(min(max_cols, n), max(1, min(max_cols, n) - 1) - 1, -1):
        nrows = -(-n // ncols)
        spare = nrows * ncols - n
        key = (spare != 1, spare, -ncols)
        if best is None or key < best[0]:
            best = (key, (nrows, ncols))
    return best[1]


def _legend_in_spare_slot(fig, axes: Sequence, n_used: int, handles, fontsize: float = 7, **kw) -> None:
    """Turn the unused axes off and put the legend in the first one; with none spare, below the figure."""
    spare = list(axes)[n_used:]
    for ax in spare:
        ax.axis("off")
    if spare:
        spare[0].legend(handles=handles, loc="center", fontsize=fontsize, frameon=False, **kw)
    else:
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=min(len(handles), 6),
            fontsize=fontsize,
            frameon=False,
            **kw,
        )


def pca_grid(
    spaces: Mapping[str, np.ndarray], numbers: np.ndarray, title: str, ncols: int = 4, align: bool = True
):
    """One PCA panel per model (label -> (n, d) array), atoms coloured by chemical family.

    ``numbers`` holds the (n,) atomic numbers of the rows, which are the same atoms in every array.
    With ``align``, each panel's PC1 and PC2 are negated where needed to correlate positively with the
    first panel's (:func:`align_signs`); the axis of a negated component reads "-PC".
    """
    plt = _plt()
    names = list(spaces)
    nrows, ncols = grid_shape(len(names), ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.2 * ncols, 2.9 * nrows + 0.7), squeeze=False, layout="constrained"
    )
    present: list[str] = []
    for ax, (name, (xy, ratio, flipped)) in zip(axes.flat, aligned_pcas(spaces, align).items(), strict=False):
        present = scatter_by_family(ax, xy, numbers, s=2, rasterized=True, lw=0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(_pc_label(0, ratio, flipped), fontsize=7)
        ax.set_ylabel(_pc_label(1, ratio, flipped), fontsize=7)
        ax.tick_params(labelsize=6)
    _legend_in_spare_slot(fig, axes.flat, len(names), family_handles(present), fontsize=8)
    fig.suptitle(title + (_sign_note(names) if align else ""), fontsize=10)
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


def _annotate_cells(ax, im, mat: np.ndarray, fontsize: float = 6) -> None:
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
                    fontsize=fontsize,
                    color="k" if light else "w",
                )


def _controls_last(is_control: Sequence[bool]) -> tuple[np.ndarray, int]:
    """Order putting trained models first and untrained controls last (stable), and the trained count."""
    is_control = np.asarray(is_control, dtype=bool)
    return np.concatenate([np.flatnonzero(~is_control), np.flatnonzero(is_control)]), int((~is_control).sum())


def _mark_control_block(ax, n_trained: int, n: int, ticks: bool = True) -> None:
    """A line between trained models and untrained controls, and the controls' tick labels in grey italics."""
    if 0 < n_trained < n:
        ax.axhline(n_trained - 0.5, color="k", lw=2.0)
        ax.axvline(n_trained - 0.5, color="k", lw=2.0)
    if ticks:
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            for t in labels[n_trained:]:
                t.set_color("0.35")
                t.set_fontstyle("italic")


def _cell_size(n: int) -> float:
    """Inches per heatmap cell: 0.5, less for many models, so that two panels stay within the page."""
    return min(0.5, 5.5 / max(n, 1))


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
    controls: Sequence[str] = (),
):
    """Side-by-side heatmaps of one metric in each space (shared colour scale), values annotated.

    ``labels`` are the display labels of ``models``. Models in ``controls`` (untrained, random weights)
    come last, behind a line, labelled "(untrained)". The colour bar names the metric and which way is
    "more alike".
    """
    plt = _plt()
    is_control = [m in set(controls) for m in models]
    order, n_trained = _controls_last(is_control)
    labels = [mark_untrained(labels[i]) if is_control[i] else labels[i] for i in order]
    models = [models[i] for i in order]
    mats = [metric_matrix(table, metric, s, anchors, models) for s in spaces]
    finite = np.concatenate([m[np.isfinite(m)] for m in mats])
    vmin = float(finite.min()) if vmin is None and finite.size else vmin
    vmax = float(finite.max()) if vmax is None and finite.size else vmax
    n = len(models)
    size = _cell_size(n) * n + 1.6
    fig, axes = plt.subplots(
        1, len(spaces), figsize=(size * len(spaces) + 1.5, size + 0.6), squeeze=False, layout="constrained"
    )
    norm = plt.Normalize(vmin=vmin, vmax=vmax)
    for col, (ax, space, mat) in enumerate(zip(axes[0], spaces, mats, strict=True)):
        im = ax.imshow(mat, norm=norm, cmap=cmap)
        ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(n), labels if col == 0 else [], fontsize=7)
        panel = (
            "raw embeddings" if space == "raw" else f"Platonic space ({anchor_set_label(anchors)} anchors)"
        )
        ax.set_title(panel, fontsize=9)
        _annotate_cells(ax, im, mat, fontsize=6 if n <= 12 else 5)
        _mark_control_block(ax, n_trained, n)
    cbar = fig.colorbar(im, ax=list(axes[0]), shrink=0.8)
    cbar.set_label(metric_axis_label(metric), fontsize=8)
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


def sweep_curves(summary, metrics: Sequence[str], title: str, run_k: int | None = None, ncols: int = 3):
    """Metric vs number of anchors K (log axis): DIRECT line, random mean with its min-max band.

    ``summary`` is ``anchor_studies.summarise_sweep`` output (k, method, metric, mean, min, max).
    One panel per metric in a grid of at most ``ncols`` columns, ticks at the sweep's K values, each
    y axis saying which way is "more alike"; ``run_k`` (the K of the main pipeline) is a dashed line.
    """
    plt = _plt()
    from matplotlib.ticker import NullLocator

    nrows, ncols = grid_shape(len(metrics), ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows + 0.5), squeeze=False, layout="constrained"
    )
    ks = sorted({int(k) for k in summary["k"]})
    style = {
        "direct": dict(color="C3", marker="o"),
        "random": dict(color="C0", marker="s"),
        "published": dict(color="k", marker="^"),
    }
    handles: dict[str, object] = {}
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for method, kw in style.items():
            s = summary[(summary["metric"] == metric) & (summary["method"] == method)].sort_values("k")
            if s.empty:
                continue
            label = anchor_set_label(method)
            if method == "random":
                label += f" ({int(s['n_seeds'].max())} seeds: mean, min-max band)"
            (line,) = ax.plot(s["k"], s["mean"], ms=3, lw=1.2, label=label, **kw)
            handles.setdefault(label, line)
            if method == "random":
                ax.fill_between(s["k"], s["min"], s["max"], color=kw["color"], alpha=0.2, lw=0)
        if run_k is not None:
            label = f"K = {run_k} (this run)"
            handles.setdefault(label, ax.axvline(run_k, color="0.4", ls="--", lw=1.0, zorder=0, label=label))
        ax.set_xscale("log")
        ax.set_xticks(ks, [str(k) for k in ks], rotation=45 if len(ks) > 6 else 0)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("number of anchors K", fontsize=8)
        ax.set_ylabel(f"mean over model pairs\n({direction(metric)})", fontsize=8)
        ax.set_title(METRIC_NAMES.get(metric, metric), fontsize=9)
        ax.tick_params(labelsize=7)
    _legend_in_spare_slot(fig, axes.flat, len(metrics), list(handles.values()), fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def anchors_on_pca(x: np.ndarray, numbers: np.ndarray, anchor_sets: Mapping[str, np.ndarray], title: str):
    """PCA map of ``x`` (n, d) with atoms coloured by chemical family, and each anchor set's rows marked.

    ``anchor_sets`` maps a label to row indices into ``x``.
    """
    plt = _plt()
    xy, ratio = pca_2d(x)
    fig, ax = plt.subplots(figsize=(5.5, 5.6), layout="constrained")
    present = scatter_by_family(ax, xy, numbers, s=2, alpha=0.35, lw=0, rasterized=True)
    markers = [("*", "k", 70), ("X", "C3", 30), ("P", "C0", 30)]
    for (name, rows), (marker, colour, size) in zip(anchor_sets.items(), markers, strict=False):
        ax.scatter(
            xy[rows, 0], xy[rows, 1], s=size, marker=marker, color=colour, edgecolor="w", lw=0.4, label=name
        )
    ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}%)", fontsize=8)
    ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}%)", fontsize=8)
    ax.legend(title="anchors", fontsize=7, title_fontsize=7, frameon=False)
    fig.legend(handles=family_handles(present), loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    ax.set_title(title, fontsize=9)
    return fig


#: where a point's label may go, in order: (offset in points, ha, va): above, right, below, left, diagonals
_LABEL_SPOTS = (
    ((0.0, 2.5), "center", "bottom"),
    ((3.0, 0.0), "left", "center"),
    ((0.0, -2.5), "center", "top"),
    ((-3.0, 0.0), "right", "center"),
    ((2.5, 2.0), "left", "bottom"),
    ((-2.5, 2.0), "right", "bottom"),
    ((2.5, -2.0), "left", "top"),
    ((-2.5, -2.0), "right", "top"),
)


def _overlaps(boxes: np.ndarray, box: np.ndarray) -> bool:
    """Whether ``box`` (x0, y0, x1, y1) overlaps any row of ``boxes`` (m, 4)."""
    if not len(boxes):
        return False
    return bool(
        np.any(
            (boxes[:, 0] < box[2]) & (box[0] < boxes[:, 2]) & (boxes[:, 1] < box[3]) & (box[1] < boxes[:, 3])
        )
    )


def label_points(ax, xy: np.ndarray, texts: Sequence[str], fontsize: float = 6.5, marker_pt: float = 2.0):
    """Label the points ``xy`` (n, 2, data coordinates) of ``ax`` where a label fits; returns the labels.

    Greedy, most isolated point first: a label is tried above, right of, below and left of its point,
    then diagonally, and left out where every spot overlaps a placed label, another point's marker
    (radius ``marker_pt`` points) or the axes edge. Measures text on the figure's renderer, so call it
    once the layout is final (after ``fig.canvas.draw()``, with the layout engine off).
    """
    fig = ax.get_figure(root=True)
    renderer = fig.canvas.get_renderer()
    pts = ax.transData.transform(np.asarray(xy, dtype=np.float64))
    pad = marker_pt * fig.dpi / 72.0
    frame = ax.get_window_extent(renderer)
    dist = np.linalg.norm(pts[:, None, :] - pts[None, :, :], axis=-1)
    np.fill_diagonal(dist, np.inf)
    order = np.argsort(-dist.min(axis=1), kind="stable") if len(pts) > 1 else np.arange(len(pts))
    shift_x = {"left": 0.0, "center": 0.5, "right": 1.0}
    shift_y = {"bottom": 0.0, "center": 0.5, "top": 1.0}
    placed = np.zeros((0, 4))
    out = []
    for i in order:
        t = ax.annotate(texts[i], xy[i], xytext=(0, 0), textcoords="offset points", fontsize=fontsize)
        t.set_in_layout(False)
        bb = t.get_window_extent(renderer)  # measured once: the size does not depend on the spot
        others = np.delete(pts, i, axis=0)
        for offset, ha, va in _LABEL_SPOTS:
            x = pts[i, 0] + offset[0] * fig.dpi / 72.0 - shift_x[ha] * bb.width
            y = pts[i, 1] + offset[1] * fig.dpi / 72.0 - shift_y[va] * bb.height
            box = np.array([x, y, x + bb.width, y + bb.height])
            if box[0] < frame.x0 or box[1] < frame.y0 or box[2] > frame.x1 or box[3] > frame.y1:
                continue
            if _overlaps(placed, box):
                continue
            near = (
                (others[:, 0] > box[0] - pad)
                & (others[:, 0] < box[2] + pad)
                & (others[:, 1] > box[1] - pad)
                & (others[:, 1] < box[3] + pad)
            )
            if near.any():
                continue
            t.xyann = offset
            t.set_horizontalalignment(ha)
            t.set_verticalalignment(va)
            placed = np.vstack([placed, box])
            out.append(t)
            break
        else:
            t.remove()
    return out


def element_pca(
    vectors: Mapping[str, np.ndarray],
    numbers: np.ndarray,
    title: str,
    ncols: int = 4,
    align: bool = True,
    fontsize: float = 6.5,
):
    """Per model, the PCA of its element vectors ((E, K) arrays over the same elements ``numbers``).

    Two blocks of panels, one panel per model in a grid of at most ``ncols`` columns: elements
    coloured by chemical family (top block) and by period (bottom block), each block with its legend.
    Elements are labelled with their symbol where the label does not collide (:func:`label_points`).
    With ``align``, PC signs follow the first model's (:func:`align_signs`).
    """
    from ase.data import chemical_symbols

    from .chemistry import period_of

    plt = _plt()
    names = list(vectors)
    families = np.array([family_label(int(z)) for z in numbers])
    periods = np.array([period_of(int(z)) for z in numbers])
    symbols = [chemical_symbols[int(z)] for z in numbers]
    pcas = aligned_pcas(vectors, align)

    # periods on viridis without its palest (yellow) end, so that no period vanishes on white
    pcmap = plt.get_cmap("viridis")

    def period_colour(p):
        return pcmap(0.85 * (p - 1) / 6)

    blocks = (
        (
            "coloured by chemical family",
            [FAMILY_COLOURS[f] for f in families],
            family_handles([f for f in FAMILY_ORDER if (families == f).any()]),
        ),
        (
            "coloured by period",
            [period_colour(p) for p in periods],
            [
                plt.Line2D([], [], ls="", marker="o", color=period_colour(p), label=f"period {p}")
                for p in sorted(set(periods.tolist()))
            ],
        ),
    )
    nrows, ncols = grid_shape(len(names), ncols)
    panel_w = min(3.9, MAX_WIDTH_IN / ncols)
    panel_h = min(3.2, 18.5 / (2 * nrows))
    fig = plt.figure(figsize=(panel_w * ncols, 2 * nrows * panel_h + 0.9), layout="constrained")
    data_axes = []
    for sub, (heading, colours, handles) in zip(fig.subfigures(2, 1), blocks, strict=True):
        axes = sub.subplots(nrows, ncols, squeeze=False)
        for ax, name in zip(axes.flat, names, strict=False):
            xy, ratio, flipped = pcas[name]
            ax.scatter(xy[:, 0], xy[:, 1], s=14, color=colours, lw=0)
            ax.margins(0.08)
            ax.set_title(name, fontsize=8)
            ax.set_xlabel(_pc_label(0, ratio, flipped), fontsize=7)
            ax.set_ylabel(_pc_label(1, ratio, flipped), fontsize=7)
            ax.tick_params(labelsize=6)
            data_axes.append((ax, xy))
        _legend_in_spare_slot(sub, axes.flat, len(names), handles, fontsize=8)
        sub.suptitle(heading, fontsize=9)
    note = _sign_note(names) if align else ""
    fig.suptitle(f"{title}{note}\nsymbols shown where they do not overlap", fontsize=10)
    # fix the layout, then place the labels on it: they are measured, and must not move it again
    fig.canvas.draw()
    fig.set_layout_engine("none")
    for ax, xy in data_axes:
        label_points(ax, xy, symbols, fontsize=fontsize)
    return fig


def matrix_heatmap(
    mat: np.ndarray,
    labels: Sequence[str],
    title: str,
    vmin=None,
    vmax=None,
    cmap="viridis",
    cbar_label: str = "",
    controls: Sequence[bool] | None = None,
):
    """One annotated heatmap of a square (M, M) matrix with the same labels on both axes.

    ``controls`` flags the untrained models: they come last, behind a line, labelled "(untrained)".
    ``cbar_label`` names the colour bar (say which way is "more alike").
    """
    plt = _plt()
    is_control = np.zeros(len(labels), dtype=bool) if controls is None else np.asarray(controls, dtype=bool)
    order, n_trained = _controls_last(is_control)
    mat = np.asarray(mat)[np.ix_(order, order)]
    labels = [mark_untrained(labels[i]) if is_control[i] else labels[i] for i in order]
    n = len(labels)
    size = _cell_size(n) * n + 1.8
    fig, ax = plt.subplots(figsize=(size + 1.0, size), layout="constrained")
    im = ax.imshow(mat, vmin=vmin, vmax=vmax, cmap=cmap)
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    _annotate_cells(ax, im, mat, fontsize=6 if n <= 12 else 5)
    _mark_control_block(ax, n_trained, n)
    cbar = fig.colorbar(im, ax=ax, shrink=0.8)
    cbar.set_label(cbar_label, fontsize=8)
    ax.set_title(title, fontsize=9)
    return fig


def matrix_panels(
    panels: Mapping[str, np.ndarray],
    labels: Sequence[str],
    title: str,
    controls: Sequence[bool] | None = None,
    cbar_label: str = "",
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "viridis_r",
    ncols: int = 2,
    styles: Mapping[str, dict] | None = None,
):
    """Annotated heatmaps of several (M, M) matrices (rows and columns both ``labels``), one panel each.

    Asymmetric matrices read rows -> columns (e.g. source -> target). Colours clip at ``vmin``/``vmax``
    (the printed values do not); ``styles`` {panel title: {vmin, vmax, cmap, cbar_label}} overrides a
    panel's scale (e.g. a diverging one for differences). Untrained ``controls`` come last, behind a line.
    """
    plt = _plt()
    is_control = np.zeros(len(labels), dtype=bool) if controls is None else np.asarray(controls, dtype=bool)
    order, n_trained = _controls_last(is_control)
    shown = [mark_untrained(labels[i]) if is_control[i] else labels[i] for i in order]
    n = len(shown)
    rows, cols = grid_shape(len(panels), ncols)
    size = _cell_size(n) * n + 1.8
    fig, axes = plt.subplots(
        rows, cols, figsize=(cols * (size + 1.2), rows * size + 0.6), squeeze=False, layout="constrained"
    )
    styles = styles or {}
    for ax, (name, mat) in zip(axes.ravel(), panels.items(), strict=False):
        style = dict(vmin=vmin, vmax=vmax, cmap=cmap, cbar_label=cbar_label) | dict(styles.get(name, {}))
        mat = np.asarray(mat, dtype=float)[np.ix_(order, order)]
        im = ax.imshow(mat, vmin=style["vmin"], vmax=style["vmax"], cmap=style["cmap"])
        ax.set_xticks(range(n), shown, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(n), shown, fontsize=7)
        ax.set_xlabel("target", fontsize=8)
        ax.set_ylabel("source", fontsize=8)
        _annotate_cells(ax, im, mat, fontsize=6 if n <= 12 else 5)
        _mark_control_block(ax, n_trained, n)
        ax.set_title(name, fontsize=9)
        cbar = fig.colorbar(im, ax=ax, shrink=0.8, extend="both")
        cbar.set_label(style["cbar_label"], fontsize=7)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return fig
