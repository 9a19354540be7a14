"""Download the structures source (a URL) once, atomically, with retries and an optional sha256.

Writes the file and ``<file>.json``: the URL, the file's sha256 and the ETag / Last-Modified /
Content-Length headers the server sent, which identify the version of a remote file a run used.
"""

from __future__ import annotations

import argparse

import _paths  # noqa: F401

from platonic_mlip.cli import run
from platonic_mlip.io import write_json
from platonic_mlip.structures import StructureError, fetch_with_headers, sha256_of


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True, help="http(s) or file URL")
    ap.add_argument("--out", required=True)
    ap.add_argument("--provenance", required=True, help="JSON written beside the file")
    ap.add_argument("--sha256", default=None)
    ap.add_argument("--retries", type=int, default=3)
    args = ap.parse_args(argv)
    try:
        _, headers = fetch_with_headers(args.url, args.out, sha256=args.sha256, retries=args.retries)
    except StructureError as err:
        raise SystemExit(f"ERROR: {err}") from None
    digest = sha256_of(args.out)
    write_json(
        args.provenance,
        {"url": args.url, "sha256": digest, "sha256_pinned": bool(args.sha256), "headers": headers},
    )
    print(f"{args.url} -> {args.out} (sha256 {digest}; headers {headers})")
    if not args.sha256:
        print(
            "note: config key 'structures.sha256' is not set: a later change of the remote file is not "
            "noticed (pin the digest above, or rerun with --forcerun download_structures)"
        )


if __name__ == "__main__":
    run(main)
