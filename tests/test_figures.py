"""Every figure function on small synthetic inputs: what a reader of the figures can check.

No empty panels, titles and axis / colour-bar labels present, a page-sized figure of sane aspect, the
run's K marked on the sweep, PC signs aligned across models, controls last and marked untrained, and
element labels that do not overlap. Fast: each figure is a few panels of a few hundred points.
"""

import numpy as np
import pandas as pd
import pytest

from platonic_mlip import plotting
from platonic_mlip.plotting import (
    align_signs,
    anchor_set_label,
    anchors_on_pca,
    element_pca,
    grid_shape,
    heatmaps,
    matrix_heatmap,
    model_label,
    pca_grid,
    sweep_curves,
)

MAX_W, MAX_H, MAX_ASPECT = 16.0, 20.0, 4.0
#: atomic numbers of many families (H, Li, Be, C, N, O, F, Na, Mg, Al, Si, S, Cl, Ti, Fe, Cu, Zn, Sr, La, Ce, U)
ELEMENTS = np.array([1, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 16, 17, 22, 26, 29, 30, 38, 57, 58, 92])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plotting._plt().close("all")


def is_colorbar(ax) -> bool:
    return ax.get_label() == "<colorbar>"


def data_axes(fig):
    """Visible axes that should show data: axes turned off (spare grid slots) and colour bars excluded."""
    return [ax for ax in fig.get_axes() if ax.get_visible() and ax.axison and not is_colorbar(ax)]


def check_figure(fig, axis_labels=True):
    """What every figure must satisfy; returns the data axes."""
    w, h = fig.get_size_inches()
    assert w <= MAX_W and h <= MAX_H, f"figure is {w:.1f} x {h:.1f} in"
    assert max(w / h, h / w) <= MAX_ASPECT, f"aspect {w:.1f}:{h:.1f}"
    fig.canvas.draw()  # the figure renders (layout included)
    axes = data_axes(fig)
    assert axes
    for ax in axes:
        n = len(ax.collections) + len(ax.images) + len([ln for ln in ax.lines if len(ln.get_xdata())])
        assert n > 0, f"empty panel {ax.get_title()!r}"
        if axis_labels:
            assert ax.get_xlabel() and ax.get_ylabel(), f"axis labels missing on {ax.get_title()!r}"
        else:  # heatmaps: the tick labels name the models
            assert any(t.get_text() for t in ax.get_xticklabels())
    titles = [ax.get_title() for ax in axes] + [fig._suptitle.get_text() if fig._suptitle else ""]
    assert any(titles), "no title"
    for ax in fig.get_axes():
        if is_colorbar(ax):
            assert ax.get_ylabel() or ax.get_xlabel(), "unlabelled colour bar"
    return axes


def spaces_from(base, n_models, rng):
    """``n_models`` spaces over the same rows: base, base negated, base rotated, then noise."""
    out = {"reference": base, "negated": -base}
    q, _ = np.linalg.qr(rng.normal(size=(base.shape[1], base.shape[1])))
    out["rotated"] = base @ q
    for i in range(n_models - 3):
        out[f"model {i}"] = rng.normal(size=base.shape)
    return out


def anisotropic(rng, n, d):
    """(n, d) data with well separated principal variances, so that PC1 and PC2 are unambiguous."""
    return rng.normal(size=(n, d)) * np.linspace(5.0, 0.5, d)


# --- helpers -------------------------------------------------------------------------------------------


def test_align_signs_flips_only_anticorrelated_columns():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(50, 2))
    xy = ref * np.array([-1.0, 1.0]) + 0.01 * rng.normal(size=(50, 2))
    aligned, flipped = align_signs(xy, ref)
    assert flipped.tolist() == [True, False]
    assert all(np.corrcoef(aligned[:, j], ref[:, j])[0, 1] > 0.99 for j in range(2))


def test_names_of_anchor_sets_and_models():
    assert [anchor_set_label(s) for s in ("direct", "random", "published")] == [
        "DIRECT",
        "random",
        "published",
    ]
    assert anchor_set_label("direct-centred") == "DIRECT, centred"
    labels = {"dummy-a": "Dummy A", "b": "B", "rnd": "Untrained X"}
    assert model_label("dummy-a", labels, ["dummy-a"]) == "Dummy A (untrained)"
    assert model_label("b", labels, ["dummy-a"]) == "B"
    assert model_label("rnd", labels, ["rnd"]) == "Untrained X"  # says so already
    assert model_label("c") == "c"


@pytest.mark.parametrize("n", range(1, 14))
def test_grid_shape_fits_every_panel_within_the_column_limit(n):
    rows, cols = grid_shape(n, 4)
    assert cols <= 4 and rows * cols >= n and rows * cols - n < cols


# --- figures -------------------------------------------------------------------------------------------


def test_pca_grid_aligns_signs_and_fills_the_grid():
    rng = np.random.default_rng(1)
    numbers = rng.choice(ELEMENTS, 300)
    spaces = spaces_from(anisotropic(rng, 300, 6), 5, rng)
    fig = pca_grid(spaces, numbers, "Raw embeddings (PCA)")
    axes = check_figure(fig)
    assert [ax.get_title() for ax in axes] == list(spaces)
    # 5 panels in 2 x 3: the spare slot holds the family legend, not an empty frame
    assert len(fig.get_axes()) == 6 and sum(ax.get_legend() is not None for ax in fig.get_axes()) == 1
    assert "aligned" in fig._suptitle.get_text()
    # rows are drawn in the same order in every panel: the scores can be compared point by point
    ref = axes[0].collections[0].get_offsets()
    for ax in axes[1:3]:  # the negated and the rotated reference
        xy = ax.collections[0].get_offsets()
        for j in range(2):
            assert np.corrcoef(xy[:, j], ref[:, j])[0, 1] > 0.99, (ax.get_title(), j)
    assert axes[1].get_xlabel().startswith("\u2212PC1")  # the negated model is flipped, and says so


def test_pca_grid_without_alignment_would_mirror_the_negated_model():
    """Guards the test above: PCA alone does mirror a negated space (else the alignment is untested)."""
    rng = np.random.default_rng(1)
    base = anisotropic(rng, 300, 6)
    fig = pca_grid({"a": base, "b": -base}, rng.choice(ELEMENTS, 300), "t", align=False)
    a, b = (ax.collections[0].get_offsets() for ax in data_axes(fig))
    assert np.corrcoef(a[:, 0], b[:, 0])[0, 1] < -0.99


def test_pca_grid_with_no_spare_slot_puts_the_legend_below():
    rng = np.random.default_rng(2)
    spaces = {f"m{i}": rng.normal(size=(80, 4)) for i in range(4)}
    fig = pca_grid(spaces, rng.choice(ELEMENTS, 80), "t")
    check_figure(fig)
    assert len(fig.get_axes()) == 4 and fig.legends


def sweep_summary(ks=(3, 10, 30, 100, 300), metrics=tuple(plotting.METRIC_TITLES)):
    rows = []
    for k in ks:
        for metric in metrics:
            for method, seeds in (("direct", 1), ("random", 3)):
                v = np.log(k) / 10
                rows.append(
                    dict(
                        k=k,
                        method=method,
                        metric=metric,
                        mean=v,
                        std=0.01,
                        min=v - 0.02,
                        max=v + 0.02,
                        n_seeds=seeds,
                        n_pairs=6,
                    )
                )
    return pd.DataFrame(rows)


def test_sweep_curves_mark_the_run_k_and_the_sweep_ks():
    ks = (3, 10, 30, 100, 300)
    metrics = list(plotting.METRIC_TITLES)
    fig = sweep_curves(sweep_summary(ks), metrics, "Metrics vs K", run_k=100)
    axes = check_figure(fig)
    assert len(axes) == len(metrics)
    for ax, metric in zip(axes, metrics, strict=True):
        marks = [ln for ln in ax.lines if np.allclose(ln.get_xdata(), 100) and ln.get_linestyle() == "--"]
        assert marks, f"K = 100 not marked on {metric}"
        assert [float(t) for t in ax.get_xticks()] == [float(k) for k in ks]
        assert [t.get_text() for t in ax.get_xticklabels()] == [str(k) for k in ks]
        want = "lower = more alike" if metric == "ot_normalised" else "higher = more alike"
        assert want in ax.get_ylabel(), (metric, ax.get_ylabel())
    legend = [ax.get_legend() for ax in fig.get_axes() if ax.get_legend()]
    assert legend, "no legend"
    texts = [t.get_text() for t in legend[0].get_texts()]
    assert texts[0] == "DIRECT" and texts[1].startswith("random") and "K = 100" in texts[2]


def test_sweep_curves_without_run_k_have_no_mark():
    fig = sweep_curves(sweep_summary(), ["mknn", "ot_normalised"], "t")
    axes = check_figure(fig)
    assert not any(ln.get_linestyle() == "--" for ax in axes for ln in ax.lines)


def pairwise_table(models, metric, anchors="direct"):
    rng = np.random.default_rng(3)
    rows = []
    for i, a in enumerate(models):
        for b in models[i:]:
            for space in ("raw", "platonic"):
                v = 1.0 if a == b else float(rng.uniform())
                rows.append(
                    dict(
                        model_a=a,
                        model_b=b,
                        space=space,
                        anchors=anchors if space == "platonic" else "",
                        metric=metric,
                        value=v,
                    )
                )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "metric, spaces, direction",
    [("mknn", ("raw", "platonic"), "higher"), ("ot_normalised", ("platonic",), "lower")],
)
def test_heatmaps_put_controls_last_and_label_the_colour_bar(metric, spaces, direction):
    models = ["dummy-x", "a", "b", "dummy-y", "c"]
    labels = ["Dummy X", "A", "B", "Dummy Y", "C"]
    fig = heatmaps(
        pairwise_table(models, metric),
        metric,
        models,
        labels,
        "direct",
        "title",
        spaces=spaces,
        controls=["dummy-x", "dummy-y"],
    )
    axes = check_figure(fig, axis_labels=False)
    assert len(axes) == len(spaces)
    ticks = [t.get_text() for t in axes[0].get_yticklabels()]
    assert ticks == ["A", "B", "C", "Dummy X (untrained)", "Dummy Y (untrained)"]
    # a line between the trained block and the controls
    assert any(np.allclose(ln.get_ydata(), 2.5) for ln in axes[0].lines)
    assert any(np.allclose(ln.get_xdata(), 2.5) for ln in axes[0].lines)
    # the cells follow the order of the labels: the diagonal is the self-comparison
    assert np.allclose(np.diag(axes[-1].images[0].get_array()), 1.0)
    (cbar,) = [ax for ax in fig.get_axes() if is_colorbar(ax)]
    assert f"{direction} = more alike" in cbar.get_ylabel()
    assert axes[-1].get_title() == "Platonic space (DIRECT anchors)"


def test_matrix_heatmap_puts_controls_last():
    mat = np.array([[1.0, 0.1, 0.5], [0.1, 1.0, 0.2], [0.5, 0.2, 1.0]])
    fig = matrix_heatmap(
        mat,
        ["Dummy", "A", "B"],
        "t",
        vmin=-1,
        vmax=1,
        cbar_label="r (higher = more alike)",
        controls=[True, False, False],
    )
    (ax,) = check_figure(fig, axis_labels=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "B", "Dummy (untrained)"]
    shown = ax.images[0].get_array()
    assert shown[0, 1] == 0.2 and shown[0, 2] == 0.1 and shown[1, 2] == 0.5


def test_anchors_on_pca_names_the_sets():
    rng = np.random.default_rng(4)
    x = anisotropic(rng, 200, 5)
    sets = {
        f"{anchor_set_label('direct')} (10)": np.arange(10),
        f"{anchor_set_label('random')} (10)": np.arange(10, 20),
    }
    fig = anchors_on_pca(x, rng.choice(ELEMENTS, 200), sets, "Anchors")
    (ax,) = check_figure(fig)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["DIRECT (10)", "random (10)"]
    assert fig.legends  # the chemical families


@pytest.mark.parametrize("n_models", [11, 2])
def test_element_pca_is_a_legible_grid(n_models):
    rng = np.random.default_rng(5)
    numbers = np.arange(1, 61)
    base = anisotropic(rng, len(numbers), 8)
    vectors = spaces_from(base, max(n_models, 3), rng)
    vectors = dict(list(vectors.items())[:n_models])
    fig = element_pca(vectors, numbers, "Element embeddings")
    axes = check_figure(fig)
    assert len(axes) == 2 * n_models  # a family panel and a period panel per model
    w, _ = fig.get_size_inches()
    assert w <= MAX_W
    legends = [t.get_text() for ax in fig.get_axes() if ax.get_legend() for t in ax.get_legend().get_texts()]
    legends += [t.get_text() for sub in fig.subfigs for leg in sub.legends for t in leg.get_texts()]
    assert "period 1" in legends and "alkali (G1)" in legends
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        labels = [t for t in ax.texts if t.get_visible()]
        assert len(labels) >= 10, f"only {len(labels)} element labels on {ax.get_title()!r}"
        assert all(t.get_fontsize() >= 6 for t in labels)
        boxes = [t.get_window_extent(renderer) for t in labels]
        frame = ax.get_window_extent(renderer)
        assert all(
            frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes
        )
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert not a.overlaps(b), f"overlapping labels on {ax.get_title()!r}"
    # the negated reference is flipped back: its scores match the reference's
    ref, neg = axes[0].collections[0].get_offsets(), axes[1].collections[0].get_offsets()
    assert np.corrcoef(ref[:, 0], neg[:, 0])[0, 1] > 0.99 and np.corrcoef(ref[:, 1], neg[:, 1])[0, 1] > 0.99


def test_controls_are_labelled_by_role_not_all_as_untrained():
    from platonic_mlip.models import MODELS
    from platonic_mlip.plotting import model_label

    controls = ["dummy-mace-mp-0-small", "soap", "element-onehot", "denoise-7net-small"]
    labels = {m: MODELS[m]["label"] for m in controls}
    shown = {m: model_label(m, labels, controls) for m in controls}
    assert shown["dummy-mace-mp-0-small"] == "Dummy MACE (untrained)"
    assert shown["soap"] == "SOAP (physics)"
    assert shown["element-onehot"] == "Element one-hot (baseline)"
    assert shown["denoise-7net-small"] == "Denoise 7net-small (self-supervised)"
    assert model_label("7net-0", {"7net-0": "7net-0"}, controls) == "7net-0"
