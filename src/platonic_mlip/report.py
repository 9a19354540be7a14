"""Pages of the HTML report: a findings summary written from a run's own tables, and HTML renderings of
its CSV tables (so the report displays them instead of offering a download).

Pure functions of pandas DataFrames returning HTML strings; no Snakemake.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np

from platonic_mlip.plotting import mark_untrained

STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1.5em; max-width: 75em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; }
th, td { border: 1px solid #bbb; padding: 3px 7px; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.control td { background: #f3f3f3; color: #555; }
p.note { color: #444; }
.supported { color: #1a7f37; font-weight: bold; }
.not-supported { color: #b3261e; font-weight: bold; }
.not-testable { color: #777; }
"""

#: what a metric's number means, for readers (the report's one wording of it)
METRIC_MEANING = {
    "mknn": "mutual k-NN: share of each atom's 10 nearest atoms the two models agree on (1 = all)",
    "cka": "linear CKA: 1 = the same geometry up to rotation and scale, 0 = unrelated",
    "procrustes_score": "Procrustes score: 1 = one space is a rotation of the other, 0 = no fit",
    "ot_score": "optimal-transport score: 1 = the two atom clouds coincide, 0 = far apart",
    "ot_normalised": "optimal-transport cost / mean cost: lower = closer",
    "composite": "composite (ours): weighted mean of the scores (weights: metrics.composite_weights)",
}


def _page(title: str, body: Sequence[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            f'<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
            f"<style>{STYLE}</style></head><body>",
            f"<h2>{html.escape(title)}</h2>",
            *body,
            "</body></html>",
        ]
    )


def _cell(value) -> str:
    if isinstance(value, float | np.floating):
        return '<td class="num">–</td>' if not np.isfinite(value) else f'<td class="num">{value:.3f}</td>'
    if isinstance(value, int | np.integer):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def table_html(
    frame,
    title: str,
    note: str = "",
    controls: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    model_columns: Sequence[str] = ("model_a", "model_b", "reference_model", "model"),
) -> str:
    """A standalone HTML page of ``frame`` (a DataFrame): numbers to 3 decimals, model ids shown by
    their display ``labels``, rows that involve a control model (``controls``) shaded, and a
    ``ci_low``/``ci_high`` pair shown as one ``[low, high]`` interval column."""
    labels = dict(labels or {})
    frame = frame.copy()
    if {"ci_low", "ci_high"} <= set(frame.columns):
        lo, hi = frame.pop("ci_low"), frame.pop("ci_high")
        frame["interval"] = [
            "–" if not (np.isfinite(a) and np.isfinite(b)) else f"[{a:.3f}, {b:.3f}]"
            for a, b in zip(lo, hi, strict=True)
        ]
    models = [c for c in model_columns if c in frame.columns]
    controls = set(controls)
    rows = []
    for record in frame.to_dict("records"):
        is_control = any(record[c] in controls for c in models)
        for c in models:
            name = record[c]
            label = labels.get(name, name)
            record[c] = mark_untrained(label) if name in controls else label
        cls = ' class="control"' if is_control else ""
        rows.append(f"<tr{cls}>" + "".join(_cell(v) for v in record.values()) + "</tr>")
    head = "<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns) + "</tr>"
    body = [f'<p class="note">{html.escape(note)}</p>'] if note else []
    if controls and models:
        body.append(
            '<p class="note">Shaded rows involve a control (an untrained network, a network trained '
            "without physical labels or distilled, an element baseline or a physics reference).</p>"
        )
    body.append("<table>" + head + "".join(rows) + "</table>")
    return _page(title, body)


def pair_ranking(pairwise, space: str, anchors: str, metric: str, controls: Sequence[str] = ()):
    """Distinct-model pairs of one space and metric, best first: DataFrame with model_a, model_b,
    value, is_control (either model is a control). Lower is better for ``ot_normalised``."""
    sel = pairwise[
        (pairwise["space"] == space)
        & (pairwise["anchors"].fillna("") == anchors)
        & (pairwise["metric"] == metric)
        & (pairwise["model_a"] != pairwise["model_b"])
    ][["model_a", "model_b", "value"]].copy()
    sel["is_control"] = sel["model_a"].isin(controls) | sel["model_b"].isin(controls)
    return sel.sort_values("value", ascending=metric == "ot_normalised", kind="stable").reset_index(drop=True)


def limitations(models: Mapping[str, Mapping], controls: Sequence[str], claims) -> list[str]:
    """What this run cannot show, from its roster and its claims table (plain sentences)."""
    trained = [m for m in models if m not in controls]
    families = sorted({models[m]["family"] for m in trained})
    out = []
    if len(families) < 2:
        out.append(
            "All trained models are of one architecture"
            + (f" ({families[0]})" if families else "")
            + ": the paper's central claim, that models of different architectures align in the "
            "Platonic space, cannot be tested on this run."
        )
    if not controls:
        out.append(
            "The run has no untrained control, so 'trained models align, random ones do not' is untested."
        )
    # families present only through untrained networks (not the reference spaces, which have no checkpoint)
    untrained = [m for m in controls if models[m].get("role", "untrained") == "untrained"]
    control_only = sorted({models[m]["family"] for m in untrained} - set(families))
    if control_only:
        out.append(
            f"Families present only as untrained controls ({', '.join(control_only)}): their real "
            "checkpoints are not in this run, so nothing is said about those models as trained."
        )
    if claims is not None and len(claims):
        untestable = claims[~claims["verdict"].isin(["supported", "not supported"])]
        for cid, rows in untestable.groupby("claim_id", sort=False):
            out.append(f"Claim {cid} not testable: {rows['reason'].iloc[0]}")
    return out


def row_labels(rows) -> list[str]:
    """How the findings name each row of one claim: its metric, plus the space (and anchor set) when
    the claim has the metric in more than one space."""
    metrics = rows["metric"].astype(str)
    out = []
    for r in rows.itertuples():
        label = str(r.metric)
        if (metrics == label).sum() > 1:
            anchors = getattr(r, "anchors", "")
            where = str(r.space) + (f", {anchors}" if isinstance(anchors, str) and anchors else "")
            label += f" ({where})"
        out.append(label)
    return out


def second_paper_sentences(summary, bias=None, correlation=None, controls: Sequence[str] = ()) -> list[str]:
    """Plain sentences on Chorna et al.'s measures for this run, from ``reconstruction/atoms_summary.csv``
    (``summary``), ``finetune_bias.csv`` (``bias``) and ``papers_rank_correlation.csv`` (``correlation``)."""
    out = []
    controls = set(controls)
    for space, part in summary.groupby("space", sort=False):
        off = part[(part["source"] != part["target"])]
        trained = off[~off["source"].isin(controls) & ~off["target"].isin(controls)]
        if not len(trained):
            continue
        where = "raw" if space == "raw" else f"Platonic ({space})"
        text = f"GFRE between trained models, {where}: mean {trained['gfre'].mean():.2f}"
        if trained["lfre"].notna().any():
            text += f"; LFRE mean {trained['lfre'].mean():.2f}"
        asym = trained.get("gfre_asymmetry")
        if asym is not None and asym.notna().any():
            text += f"; largest asymmetry {asym.abs().max():.2f}"
        out.append(
            text + " (0 = rebuilt exactly, 1 = no better than the mean; Chorna et al.: 0.66, LFRE 0.37)."
        )
    if bias is not None and len(bias):
        for r in bias.itertuples():
            out.append(
                f"{r.model_a} and {r.model_b} ({r.kind}, {r.space}): GFRE {r.gfre_ab:.2f} / "
                f"{r.gfre_ba:.2f}, unrelated pairs min {r.unrelated_min_gfre:.2f}, median "
                f"{r.unrelated_median_gfre:.2f}: {r.verdict}."
            )
    if correlation is not None and len(correlation):
        sel = correlation[
            (correlation["pairs"] == "all pairs") & correlation["alignment"].str.startswith("mknn_")
        ]
        for r in sel.itertuples():
            space = r.alignment.split("_", 1)[1]
            if r.reconstruction == f"gfre_{space}_mean":
                out.append(
                    f"Do the two papers rank the pairs alike? Spearman {r.spearman:.2f} between mutual "
                    f"k-NN and GFRE similarity ({space}, {r.n_pairs} pairs; 1 = the same order)."
                )
    return out


def findings_html(
    claims,
    pairwise,
    models: Mapping[str, Mapping],
    controls: Sequence[str],
    anchors: str,
    metric: str = "composite",
    n_pairs: int = 3,
    run_name: str = "",
    second: Sequence[str] = (),
) -> str:
    """The report's first page: this run's findings, written from its own tables.

    ``claims`` is claims.csv, ``pairwise`` is metrics/pairwise.csv (DataFrames); ``models`` maps model
    id -> {"family", "label"}; ``anchors`` is the anchor set the findings quote (the run's first).
    """
    label = {m: s.get("label", m) for m, s in models.items()}

    def name(m):
        return label.get(m, m) + (" (untrained)" if m in controls else "")

    body = []
    trained = [m for m in models if m not in controls]
    body.append(
        "<p>"
        + html.escape(
            f"{len(models)} models: {len(trained)} trained ({', '.join(name(m) for m in trained) or 'none'})"
            f" and {len(controls)} controls ({', '.join(name(m) for m in controls) or 'none'})."
        )
        + "</p>"
    )
    if claims is not None and len(claims):
        body.append("<h3>The paper's claims on this run</h3><table>")
        body.append("<tr><th>claim</th><th>statement</th><th>verdict per metric</th></tr>")
        for cid, rows in claims.groupby("claim_id", sort=False):
            verdicts = "; ".join(
                f'{html.escape(label)}: <span class="{_verdict_class(r.verdict)}">'
                f"{html.escape(str(r.verdict))}</span>"
                for label, r in zip(row_labels(rows), rows.itertuples(), strict=True)
            )
            body.append(
                f"<tr><td>{html.escape(str(cid))}</td><td>{html.escape(str(rows['claim'].iloc[0]))}</td>"
                f"<td>{verdicts}</td></tr>"
            )
        body.append("</table>")
    ranking = pair_ranking(pairwise, "platonic", anchors, metric, controls)
    if len(ranking):
        meaning = METRIC_MEANING.get(metric, metric)
        shown = "DIRECT" if anchors == "direct" else anchors
        body.append(
            f"<h3>Most and least alike pairs (Platonic space, {html.escape(shown)}"
            f' anchors)</h3><p class="note">{html.escape(meaning)}.</p><table>'
            "<tr><th></th><th>model A</th><th>model B</th><th>value</th></tr>"
        )
        head = ranking.head(n_pairs)
        tail = ranking.tail(n_pairs).iloc[::-1] if len(ranking) > n_pairs else ranking.iloc[0:0]
        for what, part in (("most alike", head), ("least alike", tail)):
            for r in part.itertuples():
                cls = ' class="control"' if r.is_control else ""
                body.append(
                    f"<tr{cls}><td>{what}</td><td>{html.escape(name(r.model_a))}</td>"
                    f"<td>{html.escape(name(r.model_b))}</td>{_cell(float(r.value))}</tr>"
                )
        body.append("</table>")
    if second:
        body.append("<h3>The second paper (Chorna et al.) on this run</h3><ul>")
        body += [f"<li>{html.escape(t)}</li>" for t in second]
        body.append("</ul>")
    limits = limitations(models, controls, claims)
    if limits:
        body.append("<h3>What this run cannot show</h3><ul>")
        body += [f"<li>{html.escape(s)}</li>" for s in limits]
        body.append("</ul>")
    title = f"Findings of run {run_name}" if run_name else "Findings of this run"
    return _page(title, body)


def _verdict_class(verdict: str) -> str:
    return {"supported": "supported", "not supported": "not-supported"}.get(verdict, "not-testable")


def _rst(text: str) -> str:
    """``text`` with reStructuredText's inline markup characters escaped."""
    for ch in "\\*`|_":
        text = text.replace(ch, "\\" + ch)
    return text


def findings_rst(
    claims,
    pairwise,
    models: Mapping[str, Mapping],
    controls: Sequence[str],
    anchors: str,
    metric: str = "composite",
    n_pairs: int = 3,
    second: Sequence[str] = (),
) -> str:
    """The findings of ``findings_html`` as reStructuredText, for the report's landing page.

    Wrapped in a Jinja ``raw`` block: Snakemake renders the landing text with Jinja before docutils.
    """
    label = {m: s.get("label", m) for m, s in models.items()}

    def name(m):
        return _rst(label.get(m, m) + (" (untrained)" if m in controls else ""))

    out = ["{% raw %}", "Findings of this run", "--------------------", ""]
    trained = [m for m in models if m not in controls]
    out.append(
        f"{len(models)} models: {len(trained)} trained and {len(controls)} controls. "
        "The paper's claims, one verdict per metric:"
    )
    out.append("")
    if claims is not None and len(claims):
        for cid, rows in claims.groupby("claim_id", sort=False):
            verdicts = ", ".join(
                f"{_rst(label)} **{_rst(str(r.verdict))}**"
                for label, r in zip(row_labels(rows), rows.itertuples(), strict=True)
            )
            out.append(f"- **{_rst(str(cid))}.** {_rst(str(rows['claim'].iloc[0]))} {verdicts}.")
        out.append("")
    ranking = pair_ranking(pairwise, "platonic", anchors, metric, controls)
    if len(ranking):
        shown = "DIRECT" if anchors == "direct" else anchors
        meaning = METRIC_MEANING.get(metric, metric)
        pairs = [
            f"{name(r.model_a)} – {name(r.model_b)} {r.value:.3f}" for r in ranking.head(n_pairs).itertuples()
        ]
        out.append(
            f"Most alike (Platonic space, {_rst(shown)} anchors; {_rst(meaning)}): " + "; ".join(pairs) + "."
        )
        if len(ranking) > n_pairs:
            tail = ranking.tail(n_pairs).iloc[::-1]
            pairs = [f"{name(r.model_a)} – {name(r.model_b)} {r.value:.3f}" for r in tail.itertuples()]
            out.append("")
            out.append("Least alike: " + "; ".join(pairs) + ".")
        out.append("")
    if second:
        out.append("The second paper (Chorna et al.) on this run:")
        out.append("")
        out += [f"- {_rst(t)}" for t in second]
        out.append("")
    limits = limitations(models, controls, claims)
    if limits:
        out.append("What this run cannot show:")
        out.append("")
        out += [f"- {_rst(s)}" for s in limits]
        out.append("")
    out.append("{% endraw %}")
    return "\n".join(out) + "\n"
