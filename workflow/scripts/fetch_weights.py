"""Fetch one checkpoint's weights once into the weights cache (retries, optional sha256), atomically.

A URL is downloaded as it is; a package key is first turned into the package's own URL by the family's
adapter (``key_url``), so this runs in the family's environment. The digest of the downloaded file is
recorded beside it (``<file>.sha256``); embedding jobs check it before loading. Embedding jobs then load the
local file and never touch the network (compute nodes are often offline). Without network and without the
file, the error names the model, the expected path and how to provide the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _paths  # noqa: F401

from platonic_mlip.cli import run
from platonic_mlip.structures import StructureError, fetch
from platonic_mlip.weights import record_digest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--family", default=None, help="model family (needed for --key)")
    ap.add_argument("--url", default="")
    ap.add_argument("--key", default="", help="a package key: its URL comes from the family's package")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sha256", default="")
    ap.add_argument("--retries", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per attempt")
    args = ap.parse_args(argv)
    out = Path(args.out)
    url = args.url
    if not url:
        if not (args.key and args.family):
            raise SystemExit(f"ERROR: model {args.model!r}: give --url, or --key with --family")
        from platonic_mlip.embed.base import adapter

        try:
            url = adapter(args.family).key_url(args.key)
        except Exception as err:  # the adapter's own message names the key and the known ones
            raise SystemExit(
                f"ERROR: model {args.model!r}: weights source {args.key!r} (config key "
                f"'model_options.{args.model}.source') is neither a file nor a URL, and the "
                f"{args.family} package does not know it as a checkpoint key: {err}"
            ) from None
    try:
        fetch(url, out, sha256=args.sha256 or None, retries=args.retries, timeout_s=args.timeout)
    except StructureError as err:
        raise SystemExit(
            f"ERROR: weights of model {args.model!r} are not available: {err}.\n"
            f"Expected file: {out.resolve()}\n"
            f"Provide it by downloading {url} on a machine with internet and copying it to that path, "
            f"or set config key 'model_options.{args.model}.source' to a local file"
            + (" (its sha256 must match 'model_options.sha256')." if args.sha256 else ".")
        ) from None
    print(f"{args.model}: {url} -> {out} (sha256 {record_digest(out)})")


if __name__ == "__main__":
    run(main)
