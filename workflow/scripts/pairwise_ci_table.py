"""Table of the pairwise metrics with their intervals from redrawn atom samples (ours), as HTML.

One table per metric; one row per pair of distinct models (self-pairs are 1 or 0 by construction and
left out unless ``--self-pairs``); per space (raw, then Platonic per anchor set) two columns: ``value``
on the paper's sample, and the mean over the redrawn samples with its percentile interval,
``mean [ci_low, ci_high]``. Reads ``metrics/pairwise.csv`` as written by ``pairwise_metrics.py``.
"""

from __future__ import annotations

import argparse
import html
import json

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.io import write_text

METRICS = {
    "mknn": "Mutual k-NN alignment",
    "procrustes_score": "Procrustes score (1 - angle / 90 deg)",
    "ot_normalised": "Optimal transport cost / mean cost (lower = closer; Platonic only)",
    "composite": "Composite score (ours)",
    "cka": "Linear CKA",
    "mknn_beyond_element": "Mutual k-NN beyond element identity (ours; 0 = element identity alone)",
}

STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1.5em; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #bbb; padding: 3px 7px; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
caption { text-align: left; font-weight: bold; padding-bottom: 4px; }
p.note { color: #444; max-width: 60em; }
"""


def space_blocks(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(space, anchors, heading) of each block of the table, raw first, anchor sets in table order."""
    blocks = []
    for space, anchors in table[["space", "anchors"]].drop_duplicates().itertuples(index=False):
        heading = "raw" if space == "raw" else f"Platonic ({anchors})"
        blocks.append((space, anchors, heading))
    return sorted(blocks, key=lambda b: b[0] != "raw")


def _fmt(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x:.3f}"


def metric_table(table, metric, models, labels, blocks, self_pairs: bool) -> str:
    """HTML <table> of one metric: rows = pairs in model order, two columns per space block."""
    sel = table[table["metric"] == metric]
    blocks = [b for b in blocks if ((sel["space"] == b[0]) & (sel["anchors"] == b[1])).any()]
    if not blocks:
        return ""
    has_ci = "n_repeats" in sel and (sel["n_repeats"] > 0).any()
    key = {
        (r.model_a, r.model_b, r.space, r.anchors): r
        for r in sel.itertuples(index=False)
        if r.model_a in models
    }
    head = "".join(f'<th colspan="{2 if has_ci else 1}">{html.escape(h)}</th>' for _, _, h in blocks)
    sub = "".join("<th>value</th><th>mean [interval]</th>" if has_ci else "<th>value</th>" for _ in blocks)
    out = [f"<table><caption>{html.escape(METRICS[metric])}</caption>"]
    out.append(f'<tr><th rowspan="2">model A</th><th rowspan="2">model B</th>{head}</tr><tr>{sub}</tr>')
    for i, ma in enumerate(models):
        for mb in models[i if self_pairs else i + 1 :]:
            cells = []
            for space, anchors, _ in blocks:
                r = key.get((ma, mb, space, anchors)) or key.get((mb, ma, space, anchors))
                if r is None:
                    cells.append('<td class="num">–</td>' * (2 if has_ci else 1))
                    continue
                cells.append(f'<td class="num">{_fmt(r.value)}</td>')
                if has_ci:
                    ci = f"{_fmt(r.mean)} [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
                    cells.append(f'<td class="num">{ci}</td>')
            name_a, name_b = html.escape(labels.get(ma, ma)), html.escape(labels.get(mb, mb))
            out.append(f"<tr><td>{name_a}</td><td>{name_b}</td>{''.join(cells)}</tr>")
    out.append("</table>")
    return "\n".join(out)


def render(table: pd.DataFrame, models, labels, self_pairs: bool = False) -> str:
    """The whole HTML page (``table``: the tidy pairwise table; raw rows may have NaN anchors)."""
    table = table.assign(anchors=table["anchors"].fillna(""))
    blocks = space_blocks(table)
    repeats = int(table["n_repeats"].max()) if "n_repeats" in table and len(table) else 0
    n = int(table["n_sample"].iloc[0]) if "n_sample" in table and len(table) else None
    size = f" of {n} atoms" if n else ""
    if repeats:
        level = float(table["ci_level"].iloc[0])
        note = (
            f"<b>value</b>: the metric on the paper's sample{size} (seeded torch.randperm). "
            f"<b>mean [interval]</b>: mean and central {100 * level:g}% percentile interval over "
            f"{repeats} samples{size} redrawn without replacement from all valid atoms (ours; see "
            "docs/uncertainty.md). The interval describes how much the metric moves with the choice "
            "of atoms, not with the choice of anchors or models."
        )
    else:
        note = (
            f"<b>value</b>: the metric on the paper's sample{size}. No intervals "
            "(metrics.uncertainty.repeats = 0)."
        )
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>Pairwise metrics with intervals</title>',
        f"<style>{STYLE}</style></head><body>",
        "<h2>Pairwise metrics with intervals from redrawn atom samples</h2>",
        f'<p class="note">{note}</p>',
    ]
    parts += [metric_table(table, m, models, labels, blocks, self_pairs) for m in METRICS]
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairwise", required=True, help="metrics/pairwise.csv")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--labels", default="{}", help="JSON {model: label}")
    ap.add_argument("--self-pairs", action="store_true", help="include each model with itself")
    ap.add_argument("--out", required=True, help="HTML file")
    args = ap.parse_args(argv)
    table = pd.read_csv(args.pairwise, keep_default_na=False, na_values=[""])
    write_text(args.out, render(table, args.models, json.loads(args.labels), args.self_pairs))
    print(f"{args.out}: {table['metric'].isin(list(METRICS)).sum()} metric rows")


if __name__ == "__main__":
    run(main)
