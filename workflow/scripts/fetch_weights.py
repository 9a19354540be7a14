"""Fetch one model's weights once into the weights cache (retries, optional sha256), atomically.

Embedding jobs then load the local file and never touch the network (compute nodes are often
offline). Without network and without the file, the error names the model, the expected path and how
to provide the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _paths  # noqa: F401

from platonic_mlip.structures import StructureError, fetch, sha256_of


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sha256", default=None)
    ap.add_argument("--retries", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per attempt")
    args = ap.parse_args(argv)
    out = Path(args.out)
    try:
        fetch(args.url, out, sha256=args.sha256, retries=args.retries, timeout_s=args.timeout)
    except StructureError as err:
        raise SystemExit(
            f"ERROR: weights of model {args.model!r} are not available: {err}.\n"
            f"Expected file: {out.resolve()}\n"
            f"Provide it by downloading {args.url} on a machine with internet and copying it to that path, "
            f"or set config key 'model_options.{args.model}.source' to a local file"
            + (" (its sha256 must match 'model_options.sha256')." if args.sha256 else ".")
        ) from None
    print(f"{args.model}: {args.url} -> {out} (sha256 {sha256_of(out)})")


if __name__ == "__main__":
    main()
