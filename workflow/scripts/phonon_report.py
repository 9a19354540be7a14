"""Phonon report across models: bands per structure with the models overlaid, imaginary modes, disagreement.

Runs in the analysis environment. Inputs: one ``--csv`` and one ``--npz`` per model (or arm) from
``phonons.py``, in the same order as ``--labels`` (one label each, unique; default the CSVs' model names).

Outputs:
- ``--out-png`` / ``--out-pdf``: one panel per structure (structures in first-seen order), each model's bands
  in its own colour; the x axis is the fraction of the band path (models relaxed to different lattice
  constants have paths of different lengths; the special points of a cubic lattice sit at the same
  fractions), special points marked, imaginary modes below 0 THz;
- ``--out-imaginary``: CSV, one row per model (label), one column per structure: the number of imaginary
  modes on the q mesh; then the same for ``min_frequency_THz`` (columns ``<structure>:min_THz``);
- ``--out-disagreement``: CSV, columns structure, model, n_models, rms_from_median_THz
  (``platonic_mlip.phonon_tables.disagreement_table`` on the mesh frequencies);
- optional ``--distortion`` CSV (columns model, structure and ``--distortion-col``; model is matched against
  the labels) with ``--out-correlation``: JSON of the Spearman correlation (rho, p, n) between that column
  and ``--failure-col`` of the phonon CSVs (default min_frequency_THz);
- ``--out-distortion`` (CSV) and ``--out-distortion-correlation`` (CSV), OURS: per (model, structure) the
  distortion of the shared space (``sym_spread``, ``rot_spread`` from the phonon CSVs, ``platonic_distance``:
  ``platonic_mlip.phonon_tables.consensus_distance`` of the npz files' ``s{i}_platonic`` against the median
  over the ``--consensus`` labels, default every label) beside the failures (n_imaginary, min_frequency_THz,
  acoustic_gamma_max_THz), and the Spearman correlation of every distortion with every failure
  (``distortion_correlations``: distortion, failure, n, rho, p).
"""

from __future__ import annotations

import argparse
import json

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.io import write_csv, write_text
from platonic_mlip.phonon_tables import (
    FAILURES,
    consensus_distance,
    disagreement_table,
    distortion_correlations,
    failure_correlation,
    imaginary_table,
)


def read_npz(path: str) -> dict[str, dict]:
    """{structure: {distances, frequencies, segments, label_x, labels, mesh_frequencies}} of a phonons npz."""
    out = {}
    with np.load(path) as z:
        names = [str(s) for s in z["structures"]]
        for i, name in enumerate(names):
            out[name] = {
                key: z[f"s{i}_{key}"]
                for key in ("distances", "frequencies", "segments", "label_x", "labels", "mesh_frequencies")
            }
            if f"s{i}_platonic" in z.files:
                out[name]["platonic"] = z[f"s{i}_platonic"]
    return out


def band_figure(bands: dict[str, dict[str, dict]], structures: list[str]):
    """One panel per structure, each label's bands overlaid.

    ``bands``: {label: {structure: read_npz entry}}; returns the matplotlib figure.
    """
    from platonic_mlip.plotting import _plt, grid_shape

    plt = _plt()
    nrows, ncols = grid_shape(len(structures), 3)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, s in enumerate(structures):
        ax = axes.flat[k]
        ticks = None
        for j, (label, per) in enumerate(bands.items()):
            if s not in per:
                continue
            b = per[s]
            length = float(b["distances"][-1]) or 1.0
            x = b["distances"] / length
            for seg in np.unique(b["segments"]):
                sel = b["segments"] == seg
                lines = ax.plot(x[sel], b["frequencies"][sel], color=colours[j % len(colours)], lw=0.8)
                if seg == b["segments"][0]:
                    lines[0].set_label(label)
            ticks = ticks or (b["label_x"] / length, [str(t) for t in b["labels"]])
        if ticks is not None:
            ax.set_xticks(ticks[0], ticks[1])
            for t in ticks[0]:
                ax.axvline(t, color="0.8", lw=0.5, zorder=0)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlim(0, 1)
        ax.set_title(s, fontsize=9)
        ax.set_ylabel("frequency (THz)")
    for ax in axes.flat[len(structures) :]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", nargs="+", required=True, help="phonons.py CSVs, one per model/arm")
    ap.add_argument("--npz", nargs="+", required=True, help="phonons.py npz files, same order")
    ap.add_argument("--labels", nargs="*", default=None, help="one label per CSV (default: model names)")
    ap.add_argument("--distortion", default=None, help="CSV with model, structure, --distortion-col")
    ap.add_argument("--distortion-col", default="distortion")
    ap.add_argument("--failure-col", default="min_frequency_THz")
    ap.add_argument("--out-correlation", default=None, help="JSON (with --distortion)")
    ap.add_argument("--consensus", nargs="*", default=None, help="labels of the consensus (trained models)")
    ap.add_argument(
        "--noise-floor",
        type=float,
        default=1e-5,
        help="OURS: spreads below this count as 0 in the correlation",
    )
    ap.add_argument("--out-distortion", default=None, help="CSV: distortion beside failures")
    ap.add_argument("--out-distortion-correlation", default=None, help="CSV: Spearman rho per pair")
    ap.add_argument("--out-png", required=True)
    ap.add_argument("--out-pdf", required=True)
    ap.add_argument("--out-imaginary", required=True)
    ap.add_argument("--out-disagreement", required=True)
    args = ap.parse_args(argv)

    if len(args.csv) != len(args.npz):
        raise SystemExit(
            f"ERROR: {len(args.csv)} --csv but {len(args.npz)} --npz; give one of each per model"
        )
    frames = [pd.read_csv(p) for p in args.csv]
    labels = args.labels or [
        str(f["model"].iloc[0]) if len(f) else p for f, p in zip(frames, args.csv, strict=True)
    ]
    if len(labels) != len(frames):
        raise SystemExit(f"ERROR: {len(labels)} --labels for {len(frames)} --csv")
    if len(set(labels)) != len(labels):
        raise SystemExit(f"ERROR: labels are not unique: {labels}; give --labels")
    rows = pd.concat(
        [f.assign(model=label) for f, label in zip(frames, labels, strict=True)], ignore_index=True
    )
    rows["structure"] = rows["structure"].astype(str)
    bands = {label: read_npz(p) for label, p in zip(labels, args.npz, strict=True)}
    for label, p, f in zip(labels, args.npz, frames, strict=True):
        if set(bands[label]) != set(f["structure"].astype(str)):
            raise SystemExit(f"ERROR: {p} and its CSV ({label}) list different structures")
    structures = list(pd.unique(rows["structure"].astype(str)))

    from platonic_mlip.plotting import save

    save(band_figure(bands, structures), args.out_png, args.out_pdf)
    counts = imaginary_table(rows, "n_imaginary")
    lows = imaginary_table(rows, "min_frequency_THz").add_suffix(":min_THz")
    write_csv(args.out_imaginary, counts.join(lows).reset_index())
    mesh = {label: {s: b["mesh_frequencies"] for s, b in per.items()} for label, per in bands.items()}
    write_csv(args.out_disagreement, disagreement_table(mesh))
    if args.distortion:
        if not args.out_correlation:
            raise SystemExit("ERROR: --distortion needs --out-correlation")
        res = failure_correlation(pd.read_csv(args.distortion), rows, args.distortion_col, args.failure_col)
        res.update(distortion_col=args.distortion_col, failure_col=args.failure_col)
        write_text(args.out_correlation, json.dumps(res, indent=2) + "\n")
    if args.out_distortion or args.out_distortion_correlation:
        if not (args.out_distortion and args.out_distortion_correlation):
            raise SystemExit("ERROR: give --out-distortion and --out-distortion-correlation together")
        table = distortion_table(rows, bands, args.consensus or labels)
        write_csv(args.out_distortion, table)
        corr = distortion_correlations(table, floor=args.noise_floor)
        write_csv(args.out_distortion_correlation, corr)
        for r in corr.itertuples():
            print(
                f"spearman {r.distortion} vs {r.failure}: rho {r.rho:.3f}, p {r.p:.3g}, n {r.n}; within "
                f"structures rho {r.rho_within:.3f}, p {r.p_within:.3g}"
            )
    print(f"phonon report: {len(labels)} models x {len(structures)} structures")


def distortion_table(rows: pd.DataFrame, bands: dict, consensus: list[str]) -> pd.DataFrame:
    """Per (model, structure): the distortion measures beside the failure measures (see the docstring)."""
    unknown = [c for c in consensus if c not in bands]
    if unknown:
        raise SystemExit(f"ERROR: --consensus label(s) {unknown} are not among the labels {list(bands)}")
    platonic = {
        label: {s: b["platonic"] for s, b in per.items() if "platonic" in b} for label, per in bands.items()
    }
    lacking = [label for label, per in platonic.items() if not per]
    if lacking:
        raise SystemExit(f"ERROR: no Platonic vectors (s{{i}}_platonic) in the npz of {lacking}")
    dist = consensus_distance(platonic, consensus)
    cols = ["model", "structure", *[c for c in ("sym_spread", "rot_spread") if c in rows.columns], *FAILURES]
    out = rows[cols].merge(dist, on=["model", "structure"], how="left")
    out.insert(2, "consensus_member", out["model"].isin(consensus))
    return out


if __name__ == "__main__":
    run(main)
