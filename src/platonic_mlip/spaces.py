"""Every model's spaces, read the same way by every diagnostic script: raw and Platonic matrices.

A diagnostic runs on every model of the run (trained and untrained) and on every space: ``"raw"`` (the
model's own embeddings) and each Platonic space (one per anchor set, e.g. ``"direct"``, ``"random"``).
Scripts take the same command-line arguments (``add_space_arguments``): the models, their raw
matrices and metadata in model order, the space names, and the Platonic matrices space-major
(every model of the first space, then every model of the second, ...). ``read_spaces`` returns them
checked (``platonic_mlip.checks``): NaN only in the rows of structures a model's embedding job skipped.

The same arguments with ``prefix="probe-"`` read the embeddings of the probe structures (rotated and
perturbed copies) and their projections onto the run's anchors.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field

import numpy as np

from platonic_mlip.checks import checked_rows, skipped_mask

RAW = "raw"


@dataclass
class Spaces:
    """Matrices of every (space, model), rows aligned with one atom table.

    models : model ids, in run order.
    spaces : ``["raw", *platonic space names]``.
    matrices : {(space, model): (N, D) array}; memory-mapped, read-only.
    skipped : {model: (N,) bool}, atoms the model's embedding job skipped (their rows are NaN).
    labels : {model: display label}; controls : untrained models.
    """

    models: list[str]
    spaces: list[str]
    matrices: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    controls: list[str] = field(default_factory=list)

    def label(self, model: str) -> str:
        text = self.labels.get(model, model)
        return f"{text} (untrained)" if model in self.controls else text

    def valid(self) -> np.ndarray:
        """(N,) bool: atoms every model embedded."""
        return ~np.any(np.stack(list(self.skipped.values())), axis=0)

    def get(self, space: str, model: str) -> np.ndarray:
        return self.matrices[(space, model)]


def add_space_arguments(ap: argparse.ArgumentParser, prefix: str = "", required: bool = True) -> None:
    """``--{prefix}raw``, ``--{prefix}meta`` (one per model, in ``--models`` order) and
    ``--{prefix}platonic`` (space-major); without prefix also ``--models``, ``--spaces``, ``--labels``,
    ``--controls``."""
    if not prefix:
        ap.add_argument("--models", nargs="+", required=True, help="model ids, in run order")
        ap.add_argument("--spaces", nargs="*", default=[], help="Platonic space names (anchor sets)")
        ap.add_argument("--labels", default="{}", help="JSON {model: label}")
        ap.add_argument("--controls", nargs="*", default=[], help="untrained models")
    what = "probe structures'" if prefix else "the run's"
    ap.add_argument(f"--{prefix}raw", nargs="+", required=required, help=f"{what} raw embeddings, per model")
    ap.add_argument(f"--{prefix}meta", nargs="+", required=required, help=f"{what} embedding metadata JSON")
    ap.add_argument(
        f"--{prefix}platonic",
        nargs="*",
        default=[],
        help=f"{what} Platonic matrices, space-major: every model of --spaces[0], then of --spaces[1], ...",
    )


def read_spaces(args: argparse.Namespace, material_ids, prefix: str = "") -> Spaces:
    """The checked matrices named by ``add_space_arguments`` (``prefix`` as given there).

    ``material_ids`` : (N,) material_id of every row (names bad rows in errors). Raises
    ``platonic_mlip.checks.MatrixError`` naming the file and model, ValueError on miscounted lists.
    """
    key = prefix.replace("-", "_")
    raw, meta, platonic = (getattr(args, f"{key}{n}") for n in ("raw", "meta", "platonic"))
    models, spaces = list(args.models), list(args.spaces)
    if len(raw) != len(models) or len(meta) != len(models):
        raise ValueError(
            f"--{prefix}raw/--{prefix}meta: {len(raw)}/{len(meta)} files for {len(models)} models"
        )
    if len(platonic) != len(models) * len(spaces):
        raise ValueError(
            f"--{prefix}platonic: {len(platonic)} files for {len(spaces)} spaces x {len(models)} models"
        )
    ids = np.asarray(material_ids)
    out = Spaces(models, [RAW, *spaces], labels=json.loads(args.labels), controls=list(args.controls))
    for i, model in enumerate(models):
        skipped = skipped_mask(meta[i], len(ids))
        out.skipped[model] = skipped
        out.matrices[(RAW, model)] = checked_rows(raw[i], model, ids, expected_nan=skipped)
        for j, space in enumerate(spaces):
            path = platonic[j * len(models) + i]
            out.matrices[(space, model)] = checked_rows(
                path, model, ids, expected_nan=skipped, what=f"Platonic space {space}"
            )
    return out


def pair_scale(x: np.ndarray, rows: np.ndarray | None = None, n_pairs: int = 20000, seed: int = 0) -> float:
    """The embedding scale of a space: root-mean-square Euclidean distance between random pairs of
    distinct atoms (``n_pairs`` pairs drawn with ``numpy.random.default_rng(seed)`` among ``rows``,
    default all finite rows of the (N, D) matrix ``x``).

    Distances "relative to the embedding scale" in the diagnostics divide by this number: 1 is the
    typical distance between two different atoms of the run.
    """
    if rows is None:
        rows = np.flatnonzero(np.isfinite(np.asarray(x[:, 0], dtype=np.float64)))
    rows = np.asarray(rows)
    if len(rows) < 2:
        raise ValueError("pair_scale: fewer than two atoms")
    rng = np.random.default_rng(seed)
    a = rng.choice(rows, n_pairs)
    b = rng.choice(rows, n_pairs)
    keep = a != b
    a, b = a[keep], b[keep]
    d2 = np.sum((np.asarray(x[a], dtype=np.float64) - np.asarray(x[b], dtype=np.float64)) ** 2, axis=1)
    return float(np.sqrt(np.mean(d2)))
