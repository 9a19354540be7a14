"""Pages of the report: the findings of a run from its own tables, and an HTML rendering of a CSV table.

report_pages.py findings --claims claims.csv --pairwise pairwise.csv --models JSON --controls ... --out f.html
report_pages.py table --csv t.csv --title "..." [--controls ...] [--labels JSON] --out t.html
"""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.io import write_text
from platonic_mlip.report import findings_html, findings_rst, second_paper_sentences, table_html


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="page", required=True)
    f = sub.add_parser("findings", help="the report's first page")
    f.add_argument("--claims", required=True)
    f.add_argument("--pairwise", required=True)
    f.add_argument("--models", required=True, help='JSON {model: {"family": ..., "label": ...}}')
    f.add_argument("--controls", nargs="*", default=[])
    f.add_argument("--anchors", required=True, help="the anchor set the findings quote")
    f.add_argument("--run-name", default="")
    f.add_argument("--landing", default=None, help="the report's landing text (.rst) to extend")
    f.add_argument("--out-landing", default=None, help="the landing text with this run's findings")
    f.add_argument("--reconstruction", default=None, help="reconstruction/atoms_summary.csv (Chorna et al.)")
    f.add_argument("--finetune-bias", default=None, help="reconstruction/finetune_bias.csv")
    f.add_argument("--rank-correlation", default=None, help="reconstruction/papers_rank_correlation.csv")
    f.add_argument("--out", required=True)
    t = sub.add_parser("table", help="a CSV table as a standalone HTML page")
    t.add_argument("--csv", required=True)
    t.add_argument("--title", required=True)
    t.add_argument("--note", default="")
    t.add_argument("--controls", nargs="*", default=[])
    t.add_argument("--labels", default="{}", help="JSON {model: display label}")
    t.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.page == "findings":
        claims = pd.read_csv(args.claims, keep_default_na=False, na_values=[""])
        pairwise = pd.read_csv(args.pairwise, keep_default_na=False, na_values=[""])
        models = json.loads(args.models)
        second = []
        if args.reconstruction:
            second = second_paper_sentences(
                pd.read_csv(args.reconstruction),
                pd.read_csv(args.finetune_bias) if args.finetune_bias else None,
                pd.read_csv(args.rank_correlation) if args.rank_correlation else None,
                args.controls,
            )
        page = findings_html(
            claims, pairwise, models, args.controls, args.anchors, run_name=args.run_name, second=second
        )
        if args.out_landing:
            intro = open(args.landing).read().rstrip("\n") + "\n\n" if args.landing else ""
            rst = findings_rst(claims, pairwise, models, args.controls, args.anchors, second=second)
            write_text(args.out_landing, intro + rst)
    else:
        frame = pd.read_csv(args.csv, keep_default_na=False, na_values=[""])
        page = table_html(frame, args.title, args.note, args.controls, json.loads(args.labels))
    write_text(args.out, page)
    print(f"{args.page} -> {args.out}")


if __name__ == "__main__":
    run(main)
