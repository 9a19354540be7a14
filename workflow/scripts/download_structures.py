"""Obtain an MP-20 split CSV from a local path or a URL (retries, optional sha256), atomically."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import _paths  # noqa: F401

from platonic_mlip.structures import StructureError, fetch, sha256_of


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", required=True, help="local path or http(s)/file URL")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sha256", default=None)
    ap.add_argument("--retries", type=int, default=3)
    args = ap.parse_args(argv)
    try:
        if "://" in args.source:
            fetch(args.source, args.out, sha256=args.sha256, retries=args.retries)
        else:
            src = Path(args.source)
            if not src.is_file():
                raise StructureError(f"config key 'structures.source': file {src} does not exist")
            if args.sha256 and sha256_of(src).lower() != args.sha256.lower():
                raise StructureError(f"{src}: sha256 mismatch: expected {args.sha256}, got {sha256_of(src)}")
            tmp = Path(args.out).with_name(Path(args.out).name + ".part")
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp)
            tmp.replace(args.out)
    except StructureError as err:
        raise SystemExit(f"ERROR: {err}") from None
    print(f"{args.source} -> {args.out} (sha256 {sha256_of(args.out)})")


if __name__ == "__main__":
    main()
