"""Phonons of a set of structures under one checkpoint's ASE calculator (a physical-failure test).

Runs inside the model family's environment. The weights go through ``platonic_mlip.weights`` as for the
embeddings; the calculator is the family package's own (``platonic_mlip.embed.base.load_calculator``). Per
structure of ``--structures`` (extended XYZ, ``info["name"]`` unique, e.g. from ``phonon_structures.py``):
symmetry-constrained relaxation, phonopy finite displacements, band path and q-mesh frequencies, imaginary
modes (``platonic_mlip.phonons``; every parameter below is OURS). A cell the model cannot evaluate (an element
it lacks, non-finite forces) stops the job with an error naming the model and the structure.

Outputs: ``--out-npz`` (``model``, ``structures`` (names), ``params`` (JSON) and per structure i:
``s{i}_distances`` (nq,), ``s{i}_frequencies`` (nq, n_modes) THz, ``s{i}_segments`` (nq,), ``s{i}_label_x``,
``s{i}_labels``, ``s{i}_mesh_qpoints`` (nm, 3), ``s{i}_mesh_frequencies`` (nm, n_modes), ``s{i}_cell``
(relaxed cell, 3x3), ``s{i}_supercell_matrix``) and ``--out-csv`` (one row per structure: model, structure,
n_atoms, relaxed, max_force_after_relax, n_imaginary, min_frequency_THz, acoustic_gamma_max_THz, wall_s, then
relax_steps, max_stress_after_relax_GPa, volume_per_atom_A3, lattice, n_supercell_atoms, n_displacements,
imaginary_fraction, acoustic_ok, then with ``--layer`` sym_spread, rot_spread). The CSV is written last: a
killed run leaves no CSV.

``--label`` names the model in the outputs (default ``--model``). ``--finetune-summary`` (a fine-tuning arm's
summary.json) swaps in the arm's last checkpoint (its path and sha256 as the weights source; for a multi-head
arm the target head, ``platonic_mlip.finetune.HEAD_OPTION``) for the pretrained weights.

Distortion of the shared space (OURS; with ``--layer``): the job also embeds every relaxed structure with
the same checkpoint at ``--layer`` and writes ``sym_spread`` (``platonic_mlip.phonon_tables.orbit_spread``:
spglib's symmetry-equivalent atoms of the relaxed cell, RMS distance of the embeddings from their orbit
mean over the mean embedding norm), ``rot_spread`` (``rotation_spread``: a rigidly rotated copy, largest
per-atom distance over the mean norm) and, with ``--embeddings`` (the run's (N, D) embeddings of the model)
and ``--anchors`` (the run's anchor CSV, column ``atom_index``), ``s{i}_platonic`` (n_atoms, K): the atoms'
cosines to the run's anchor vectors (``platonic_mlip.projection.project_onto``).
"""

from __future__ import annotations

import argparse
import json
import time

import _paths  # noqa: F401
import numpy as np

from platonic_mlip.cli import run
from platonic_mlip.io import is_disk_full, save_npz, write_csv
from platonic_mlip.models import ConfigError, checkpoint_specs, resolve
from platonic_mlip.phonons import DEFAULTS
from platonic_mlip.weights import WeightsError

COLUMNS = [
    "model",
    "structure",
    "n_atoms",
    "relaxed",
    "max_force_after_relax",
    "n_imaginary",
    "min_frequency_THz",
    "acoustic_gamma_max_THz",
    "wall_s",
    "relax_steps",
    "max_stress_after_relax_GPa",
    "volume_per_atom_A3",
    "lattice",
    "n_supercell_atoms",
    "n_displacements",
    "imaginary_fraction",
    "acoustic_ok",
]


def read_structures(path: str) -> list:
    """The structures of an extended XYZ file, each with a unique ``info["name"]``; SystemExit otherwise."""
    from ase.io import read

    try:
        atoms_list = read(path, index=":")
    except Exception as err:
        raise SystemExit(f"ERROR: cannot read structures {path}: {type(err).__name__}: {err}") from None
    names = [a.info.get("name") for a in atoms_list]
    if not atoms_list:
        raise SystemExit(f"ERROR: {path} holds no structures")
    if any(n is None or str(n) == "" for n in names):
        raise SystemExit(
            f"ERROR: {path}: structure(s) {[i for i, n in enumerate(names) if not n]} lack info 'name'"
        )
    names = [str(n) for n in names]
    if len(set(names)) != len(names):
        raise SystemExit(f"ERROR: {path}: structure names are not unique")
    for a, n in zip(atoms_list, names, strict=True):
        a.info["name"] = n
        if not a.pbc.all():
            raise SystemExit(f"ERROR: {path}: structure {n!r} is not periodic in all three directions")
    return atoms_list


def row_of(model: str, name: str, atoms, res: dict) -> dict:
    """The CSV row of one structure's ``platonic_mlip.phonons.phonons`` result."""
    info, s = res["relax"], res["summary"]
    return dict(
        model=model,
        structure=name,
        n_atoms=len(atoms),
        relaxed=info["converged"],
        max_force_after_relax=info["max_force"],
        n_imaginary=s["n_imaginary"],
        min_frequency_THz=s["min_frequency_THz"],
        acoustic_gamma_max_THz=s["acoustic_gamma_max_THz"],
        wall_s=res["wall_s"],
        relax_steps=info["steps"],
        max_stress_after_relax_GPa=info["max_stress_GPa"],
        volume_per_atom_A3=info["volume_per_atom"],
        lattice=res["band"]["lattice"],
        n_supercell_atoms=res["n_supercell_atoms"],
        n_displacements=res["n_displacements"],
        imaginary_fraction=s["imaginary_fraction"],
        acoustic_ok=s["acoustic_ok"],
    )


def arrays_of(i: int, res: dict) -> dict:
    """The npz arrays of structure ``i``'s result (see the module docstring)."""
    band, mesh = res["band"], res["mesh"]
    return {
        f"s{i}_distances": band["distances"],
        f"s{i}_frequencies": band["frequencies"],
        f"s{i}_segments": band["segments"],
        f"s{i}_label_x": band["label_x"],
        f"s{i}_labels": np.asarray(band["labels"], dtype=str),
        f"s{i}_mesh_qpoints": mesh["qpoints"],
        f"s{i}_mesh_frequencies": mesh["frequencies"],
        f"s{i}_cell": np.asarray(res["relaxed"].cell[:], dtype=float),
        f"s{i}_supercell_matrix": res["supercell_matrix"],
    }


#: OURS: the rigid rotation of the rotational spread (axis, degrees): a generic axis, not a symmetry of a cell
ROTATION = ((1.0, 2.0, 3.0), 37.0)


def finetuned_options(summary_path: str, options: dict, family: str) -> tuple[dict, dict]:
    """(``options`` with the last checkpoint of a fine-tuning arm's summary as the weights source, info).

    ``source``/``sha256`` of the checkpoint of the largest epoch; for a multi-head arm the family's head
    option (``HEAD_OPTION``) set to the target head. info: arm, epoch, path, head. SystemExit naming the
    summary when it holds no checkpoint or the file is missing.
    """
    import os

    from platonic_mlip.finetune import HEAD_OPTION, summary_heads

    try:
        with open(summary_path) as fh:
            summary = json.load(fh)
        last = max(summary["checkpoints"], key=lambda c: int(c["epoch"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SystemExit(f"ERROR: --finetune-summary {summary_path}: {type(err).__name__}: {err}") from None
    path = last.get("path") or last.get("workdir_path")
    if not path or not os.path.isfile(path):
        raise SystemExit(f"ERROR: {summary_path}: checkpoint of epoch {last['epoch']} missing: {path}")
    out = {**options, "source": path, "sha256": last["sha256"]}
    heads = summary_heads(summary)
    head = None
    if heads:
        if family not in HEAD_OPTION:
            raise SystemExit(f"ERROR: {summary_path}: a multi-head arm of a {family} model")
        head = heads["target"]
        out[HEAD_OPTION[family]] = head
    info = dict(arm=summary.get("arm"), epoch=int(last["epoch"]), path=path, head=head)
    return out, info


def anchor_vectors(embeddings: str, anchors: str) -> np.ndarray:
    """(K, D) rows ``atom_index`` of the anchor CSV from the (memory-mapped) run embeddings."""
    import csv

    with open(anchors, newline="") as fh:
        idx = np.array([int(r["atom_index"]) for r in csv.DictReader(fh)], dtype=np.int64)
    x = np.load(embeddings, mmap_mode="r")
    if len(idx) == 0 or idx.max() >= len(x):
        raise SystemExit(f"ERROR: anchors {anchors} do not index the {len(x)} rows of {embeddings}")
    vec = np.asarray(x[np.sort(idx)][np.argsort(np.argsort(idx))], dtype=np.float64)
    if not np.isfinite(vec).all():
        raise SystemExit(f"ERROR: {embeddings}: non-finite anchor rows")
    return vec


def distortion(embedder, atoms, symprec: float, anchors: np.ndarray | None) -> tuple[dict, np.ndarray | None]:
    """({sym_spread, rot_spread}, Platonic vectors (n_atoms, K) or None) of one relaxed structure."""
    import spglib

    from platonic_mlip.phonon_tables import orbit_spread, rotation_spread

    e = np.asarray(embedder.embed_batch([atoms]), dtype=np.float64)
    rotated = atoms.copy()
    rotated.rotate(ROTATION[1], ROTATION[0], rotate_cell=True)
    e_rot = np.asarray(embedder.embed_batch([rotated]), dtype=np.float64)
    cell = (np.array(atoms.cell[:]), atoms.get_scaled_positions(), atoms.numbers)
    data = spglib.get_symmetry_dataset(cell, symprec=symprec)
    orbits = np.arange(len(atoms)) if data is None else np.asarray(data.equivalent_atoms)
    values = dict(sym_spread=orbit_spread(e, orbits), rot_spread=rotation_spread(e, e_rot))
    platonic = None
    if anchors is not None:
        from platonic_mlip.projection import project_onto

        platonic = project_onto(e, anchors, out_dtype=np.float64)
    return values, platonic


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="checkpoint name (registry model)")
    ap.add_argument("--options", default="{}", help="JSON of per-model options (config model_options)")
    ap.add_argument("--label", default=None, help="the model's name in the outputs (default --model)")
    ap.add_argument(
        "--finetune-summary", default=None, help="a fine-tuning arm's summary.json: last checkpoint"
    )
    ap.add_argument("--layer", default=None, help="embed the relaxed structures at this layer (distortion)")
    ap.add_argument("--embeddings", default=None, help="the run's (N, D) embeddings of the model (.npy)")
    ap.add_argument("--anchors", default=None, help="the run's anchor CSV (atom_index), with --embeddings")
    ap.add_argument("--weights-file", default=None, help="the local weights file (url/key/local sources)")
    ap.add_argument("--structures", required=True, help="extended XYZ with info 'name' per structure")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--fmax", type=float, default=DEFAULTS["fmax"], help="relaxation threshold, eV/A")
    ap.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="relaxation steps at most")
    ap.add_argument("--no-relax", action="store_true", help="use the structures as given")
    ap.add_argument("--min-length", type=float, default=DEFAULTS["min_length"], help="supercell size, A")
    ap.add_argument("--distance", type=float, default=DEFAULTS["distance"], help="displacement, A")
    ap.add_argument("--npoints", type=int, default=DEFAULTS["npoints"], help="q points on the band path")
    ap.add_argument("--mesh", type=int, nargs="+", default=[DEFAULTS["mesh"]], help="q mesh (1 or 3 ints)")
    ap.add_argument("--imag-tol", type=float, default=DEFAULTS["imag_tol"], help="THz")
    ap.add_argument("--acoustic-tol", type=float, default=DEFAULTS["acoustic_tol"], help="THz")
    ap.add_argument("--symprec", type=float, default=DEFAULTS["symprec"], help="A")
    ap.add_argument("--symmetrize-fc", action="store_true", help="symmetrise the force constants")
    ap.add_argument("--no-subtract-residual", action="store_true", help="keep residual supercell forces")
    ap.add_argument("--out-npz", required=True)
    ap.add_argument("--out-csv", required=True)
    args = ap.parse_args(argv)
    if len(args.mesh) not in (1, 3) or min(args.mesh) < 1:
        raise SystemExit(f"ERROR: --mesh {args.mesh}: give one or three positive integers")

    if bool(args.embeddings) != bool(args.anchors) or (args.embeddings and not args.layer):
        raise SystemExit("ERROR: --embeddings and --anchors go together, and need --layer")
    label = args.label or args.model
    options = json.loads(args.options)
    finetuned = None
    try:
        if args.finetune_summary:
            options, finetuned = finetuned_options(
                args.finetune_summary, options, resolve(args.model, options)["family"]
            )
        spec = checkpoint_specs({args.model: resolve(args.model, options)})[args.model]
    except ConfigError as err:
        raise SystemExit(f"ERROR: {err}") from None
    if args.layer:
        spec = dict(spec, layer=args.layer, layers=[args.layer])
    import torch

    from platonic_mlip.embed.base import load_calculator, local_weights, model_load_error
    from platonic_mlip.phonons import PhononError, phonons

    if args.threads:
        torch.set_num_threads(args.threads)
    structures = read_structures(args.structures)
    try:
        spec, _ = local_weights(spec, None if finetuned else args.weights_file)
    except WeightsError as err:
        raise SystemExit(f"ERROR: {err}") from None
    t0 = time.perf_counter()
    try:
        calc = load_calculator(spec, args.device)
    except Exception as err:  # the one-line reason names the model, its family and the weights file
        if isinstance(err, MemoryError) or is_disk_full(err):
            raise
        raise model_load_error(spec, err) from err
    embedder = anchors = None
    if args.layer:
        from platonic_mlip.embed.base import load_embedder

        try:
            embedder = load_embedder(spec, args.device)
        except Exception as err:
            if isinstance(err, MemoryError) or is_disk_full(err):
                raise
            raise model_load_error(spec, err) from err
        if args.embeddings:
            anchors = anchor_vectors(args.embeddings, args.anchors)
    load_s = time.perf_counter() - t0
    params = dict(
        fmax=args.fmax,
        steps=args.steps,
        relax=not args.no_relax,
        min_length=args.min_length,
        distance=args.distance,
        npoints=args.npoints,
        mesh=args.mesh if len(args.mesh) == 3 else args.mesh[0],
        imag_tol=args.imag_tol,
        acoustic_tol=args.acoustic_tol,
        symprec=args.symprec,
        symmetrize_fc=args.symmetrize_fc,
        subtract_residual=not args.no_subtract_residual,
    )
    rows, arrays = [], {}
    for i, atoms in enumerate(structures):
        name = atoms.info["name"]
        try:
            res = phonons(atoms, calc, label, name, **params)
        except PhononError as err:
            raise SystemExit(f"ERROR: {err}") from None
        row = row_of(label, name, atoms, res)
        arrays.update(arrays_of(i, res))
        if embedder is not None:
            values, platonic = distortion(embedder, res["relaxed"], args.symprec, anchors)
            row.update(values)
            if platonic is not None:
                arrays[f"s{i}_platonic"] = platonic
        rows.append(row)
        s = res["summary"]
        print(
            f"{label} {name}: {s['n_imaginary']} imaginary modes, min {s['min_frequency_THz']:.3f} THz, "
            f"Gamma acoustic {s['acoustic_gamma_max_THz']:.3g} THz ({res['wall_s']:.1f} s)",
            flush=True,
        )
    import pandas as pd

    meta = dict(params, model=label, checkpoint=args.model, layer=args.layer, finetuned=finetuned, spec=spec)
    meta.update(load_time_s=load_s, calculator=type(calc).__name__, rotation=ROTATION)
    save_npz(
        args.out_npz,
        model=np.array(label),
        structures=np.array([a.info["name"] for a in structures], dtype=str),
        params=np.array(json.dumps(meta, default=str, sort_keys=True)),
        **arrays,
    )
    columns = COLUMNS + (["sym_spread", "rot_spread"] if embedder is not None else [])
    write_csv(args.out_csv, pd.DataFrame(rows, columns=columns))  # written last: complete only when present


if __name__ == "__main__":
    run(main)
