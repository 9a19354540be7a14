"""Interactive pages (ours): the PCA maps of every model's raw and Platonic spaces in one standalone,
offline HTML file, each atom's element, material_id and formula on hover.

Pure functions; plotly writes the page with its JavaScript inlined (no network needed to open it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .chemistry import FAMILY_ORDER, family_label
from .plotting import FAMILY_COLOURS, aligned_pcas


def formulas(structure_index: np.ndarray, elements: Sequence[str]) -> dict[int, str]:
    """Reduced formula of every structure of an atom table: (n,) structure indices, (n,) symbols."""
    from ase.formula import Formula

    out: dict[int, list[str]] = {}
    for s, e in zip(np.asarray(structure_index).tolist(), elements, strict=True):
        out.setdefault(s, []).append(e)
    return {s: str(Formula("".join(sym)).reduce()[0]) for s, sym in out.items()}


def maps_figure(
    spaces: Mapping[str, Mapping[str, np.ndarray]],
    numbers: np.ndarray,
    hover: Sequence[str],
    title: str,
):
    """A plotly Figure: one 2-D PCA map per (space, model), chosen from a menu, atoms coloured by
    chemical family (one legend entry per family) with ``hover`` text each.

    ``spaces`` maps a space name (``raw``, ``Platonic (DIRECT)``, ...) to {model label: (n, d) array},
    rows the same n atoms everywhere; ``numbers`` the (n,) atomic numbers. Within each space, PC signs
    are aligned to its first model's (``plotting.aligned_pcas``).
    """
    import plotly.graph_objects as go

    fams = np.array([family_label(int(z)) for z in numbers])
    present = [f for f in FAMILY_ORDER if (fams == f).any()]
    hover = np.asarray(hover, dtype=object)
    fig = go.Figure()
    views = []
    for space, models in spaces.items():
        for model, (xy, ratio, flipped) in aligned_pcas(models).items():
            first = len(fig.data)
            for fam in present:
                sel = fams == fam
                fig.add_trace(
                    go.Scattergl(
                        x=xy[sel, 0],
                        y=xy[sel, 1],
                        mode="markers",
                        marker={"size": 4, "color": FAMILY_COLOURS[fam]},
                        name=fam,
                        text=hover[sel],
                        hovertemplate="%{text}<extra></extra>",
                        visible=not views,
                        legendgroup=fam,
                    )
                )
            axes = [
                f"{'−' if f else ''}PC{i + 1} ({100 * r:.0f}%)"
                for i, (f, r) in enumerate(zip(flipped, ratio, strict=True))
            ]
            views.append((f"{space}: {model}", range(first, len(fig.data)), axes))
    buttons = []
    for label, traces, axes in views:
        visible = [i in traces for i in range(len(fig.data))]
        buttons.append(
            {
                "label": label,
                "method": "update",
                "args": [{"visible": visible}, {"xaxis.title.text": axes[0], "yaxis.title.text": axes[1]}],
            }
        )
    fig.update_layout(
        title=title,
        updatemenus=[{"buttons": buttons, "x": 0.0, "y": 1.12, "xanchor": "left", "showactive": True}],
        xaxis_title=views[0][2][0] if views else "",
        yaxis_title=views[0][2][1] if views else "",
        legend_title_text="chemical family",
        template="plotly_white",
        height=700,
    )
    return fig


def write_page(fig, path) -> None:
    """Write ``fig`` as one self-contained HTML file (plotly.js inlined), atomically."""
    from .io import write_text

    write_text(path, fig.to_html(include_plotlyjs=True, full_html=True))


def pairwise_figure(table, models: Sequence[str], labels: Sequence[str], title: str):
    """A plotly Figure: one heatmap per (metric, space) of a pairwise table, chosen from a menu; each
    cell's hover gives the pair, the value on the paper's sample and, where the table has them, the
    mean and interval over the redrawn samples.

    ``table`` is metrics/pairwise.csv (DataFrame); ``models`` (M,) ids in display order, ``labels``
    their (M,) display labels.
    """
    import plotly.graph_objects as go

    has_ci = {"mean", "ci_low", "ci_high"} <= set(table.columns)
    index = {m: i for i, m in enumerate(models)}
    fig = go.Figure()
    buttons = []
    blocks = table[["metric", "space", "anchors"]].drop_duplicates().itertuples(index=False)
    for k, (metric, space, anchors) in enumerate(blocks):
        sel = table[
            (table.metric == metric) & (table.space == space) & (table.anchors.fillna("") == (anchors or ""))
        ]
        shown = np.full((len(models), len(models)), np.nan)
        text = np.full((len(models), len(models)), "", dtype=object)
        for r in sel.itertuples():
            if r.model_a not in index or r.model_b not in index:
                continue
            i, j = index[r.model_a], index[r.model_b]
            value = r.mean if has_ci and np.isfinite(r.mean) else r.value
            hover = f"{labels[i]} – {labels[j]}<br>{metric}: {r.value:.3f} (paper's sample)"
            if has_ci and np.isfinite(r.ci_low):
                hover += f"<br>mean {r.mean:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
            for a, b in ((i, j), (j, i)):
                shown[a, b], text[a, b] = value, hover
        where = "raw" if space == "raw" else f"Platonic ({anchors})"
        fig.add_trace(
            go.Heatmap(
                z=shown,
                x=list(labels),
                y=list(labels),
                text=text,
                hovertemplate="%{text}<extra></extra>",
                colorscale="Viridis",
                reversescale=metric == "ot_normalised",
                colorbar={"title": {"text": metric}},
                visible=k == 0,
            )
        )
        buttons.append({"label": f"{metric}, {where}", "method": "update", "args": [{"visible": []}]})
    for k, b in enumerate(buttons):
        b["args"][0]["visible"] = [i == k for i in range(len(buttons))]
    fig.update_layout(
        title=title,
        updatemenus=[{"buttons": buttons, "x": 0.0, "y": 1.12, "xanchor": "left"}],
        yaxis={"autorange": "reversed"},
        template="plotly_white",
        height=750,
    )
    return fig


def chemiscope_input(
    atoms_list, sites, maps: Mapping[str, np.ndarray], categories: Mapping[str, Sequence[str]]
):
    """The pieces of a chemiscope dataset: the atoms ``sites`` (m pairs of structure index into
    ``atoms_list`` and atom index in it) as environments, with per-atom properties.

    ``maps`` gives each model's (m, 2) map coordinates (two properties each, ``<name> PC1``/``PC2``);
    ``categories`` string properties (element, family, material_id). Returns (structures,
    environments, properties, settings) for ``chemiscope.write_input``: the map shows the first
    model's PCs, coloured by the first category.
    """
    environments = [(int(s), int(a), 3.5) for s, a in sites]
    properties = {}
    for name, xy in maps.items():
        for i in range(2):
            properties[f"{name} PC{i + 1}"] = {"target": "atom", "values": np.asarray(xy)[:, i].tolist()}
    for name, values in categories.items():
        properties[name] = {"target": "atom", "values": [str(v) for v in values]}
    first = next(iter(maps))
    colour = next(iter(categories), None)
    settings = {"map": {"x": {"property": f"{first} PC1"}, "y": {"property": f"{first} PC2"}}}
    if colour is not None:
        settings["map"]["color"] = {"property": colour}
    return list(atoms_list), environments, properties, settings
