"""How our DIRECT anchors compare with the anchors published with the paper (full MP-20 split)."""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import pandas as pd

from platonic_mlip.anchors import check_published, overlap_report, read_published
from platonic_mlip.cli import run
from platonic_mlip.io import write_json


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--atoms", required=True)
    ap.add_argument("--ours", required=True, help="our anchor table (CSV)")
    ap.add_argument("--published", required=True, help="published anchor indices (text)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    atoms = pd.read_csv(args.atoms)
    try:
        published = read_published(args.published)
        check_published(
            published, len(atoms), f"anchors of {args.published} (config key 'anchors.published')"
        )
    except (OSError, ValueError) as err:
        raise SystemExit(f"ERROR: {err}") from None
    ours = pd.read_csv(args.ours)
    report = overlap_report(ours["atom_index"].to_numpy(), published, atoms)
    report["ours"] = args.ours
    report["reference_model"] = str(ours["reference_model"].iloc[0])
    write_json(args.out, report)
    print(
        f"{report['shared_atoms']} of {report['n_published']} published anchors are ours; "
        f"{report['shared_structures']} shared structures; element overlap {report['element_overlap']}"
    )


if __name__ == "__main__":
    run(main)
