"""Fine-tuning data of the forgetting experiment (Fig. 5a-e): Cu train/val/test files and Au probes.

``--mode generate`` (default): Cu structures from ``platonic_mlip.finetune_data.cu_target_structures``
(perfect fcc cell, ``--n-strained`` OURS 20 strained cells, ``--n-rattled`` OURS 20 rattled 32-atom
cells, ``--n-surfaces`` OURS 8 slabs, ``--n-clusters`` OURS 6 clusters, one dimer per
``--dimer-distances``), labelled with ASE's EMT and shifted per element onto the pretrained model's
energy zero (``--shift-json``), split by structure with ``--fractions`` (OURS 0.8 0.1 0.1).

``--mode validate``: a user's labelled extended XYZ (``--input``; energy in the info line
``--energy-key``, forces column ``--forces-key``) is checked frame by frame (energy and forces present,
right shape, finite, sane geometry, no probe element Au) and split the same way; its labels are kept
as they are (no shift: they are assumed to be on the model's DFT reference already).

In both modes the Au probes (``au_probe_structures``: fcc bulk, rattled bulk, slabs, clusters, dimers;
an element the Cu data never hold) are labelled with EMT and shifted like the Cu data.

``--shift-json``: the pretrained model's energy per atom of the reference crystals, either
``{"Cu": -4.096, "Au": -3.2}`` or ``{"e_per_atom": {...}, "lattice_a": {"Cu": 3.61, ...}}`` (lattice
constants of the reference fcc crystals; default ``--cu-a``/``--au-a``). The shift of element Z is
``e_per_atom[Z] - E_EMT(fcc Z at lattice_a[Z])``. Without it the labels keep EMT's own energy zero and
a WARNING line says so.

Outputs (written only once everything is computed): ``--out-train``, ``--out-val``, ``--out-test``,
``--out-au`` (labelled extended XYZ: material_id, kind, energy eV, forces eV/A, stress eV/A^3 for
periodic cells), ``--out-summary`` (JSON: counts per kind and split, energy-per-atom ranges, largest
force, the shift used, EMT Au-Au and Cu-Cu dimer features, parameters, elapsed time) and, with
``--out-dimers``, the EMT dimer curves (CSV: arm, pair, r, energy; binding energies in eV).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path

import _paths  # noqa: F401
import numpy as np

from platonic_mlip import dimers as dm
from platonic_mlip import finetune_data as fd
from platonic_mlip.cli import run
from platonic_mlip.io import write_csv, write_json
from platonic_mlip.structures import DEFAULT_MIN_DISTANCE, StructureError

SPLITS = ("train", "val", "test")


def read_shift_json(path: str) -> tuple[dict[str, float], dict[str, float]]:
    """(model energy per atom by element, lattice constants by element, possibly empty) of ``path``."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as err:
        raise SystemExit(f"ERROR: --shift-json {path}: file not found") from err
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"ERROR: --shift-json {path}: not readable JSON: {err}") from err
    if not isinstance(data, dict):
        raise SystemExit(f"ERROR: --shift-json {path}: expected an object of element: energy per atom")
    table = data.get("e_per_atom", data)
    lattice = data.get("lattice_a", {}) if "e_per_atom" in data else {}
    out = {}
    for key, label in ((table, "e_per_atom"), (lattice, "lattice_a")):
        if not isinstance(key, dict):
            raise SystemExit(f"ERROR: --shift-json {path}: {label!r} must be an object of element: number")
        for el, value in key.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise SystemExit(
                    f"ERROR: --shift-json {path}: {label} of {el!r} is {value!r}, not a finite number"
                )
        out[label] = {str(k): float(v) for k, v in key.items()}
    return out["e_per_atom"], out["lattice_a"]


def make_shift(args, elements: list[str]) -> dict:
    """The shift record of the summary: applied, delta, model and EMT references, lattice constants."""
    default_a = {fd.TARGET_ELEMENT: args.cu_a, fd.PROBE_ELEMENT: args.au_a}
    if not args.shift_json:
        emt = {el: fd.emt_bulk_energy(el, default_a[el]) for el in elements}
        print(
            "WARNING: no --shift-json: the labels keep EMT's own energy zero (fcc "
            + ", ".join(f"{el} {e:.3f}" for el, e in emt.items())
            + " eV/atom; a DFT-trained model puts fcc Cu near -4.1 eV/atom): a fine-tune on them learns "
            "that offset rather than Cu",
            file=sys.stderr,
        )
        return {"applied": False, "delta": {}, "emt_e_per_atom": emt, "lattice_a": default_a}
    model, lattice = read_shift_json(args.shift_json)
    missing = [el for el in elements if el not in model]
    if missing:
        raise SystemExit(
            f"ERROR: --shift-json {args.shift_json}: no reference energy for {', '.join(missing)} "
            f"(has {', '.join(sorted(model)) or 'none'})"
        )
    a = {el: lattice.get(el, default_a[el]) for el in elements}
    emt = {el: fd.emt_bulk_energy(el, a[el]) for el in elements}
    model = {el: model[el] for el in elements}
    delta = fd.reference_shift(model, emt)
    return {
        "applied": True,
        "delta": delta,
        "model_e_per_atom": model,
        "emt_e_per_atom": emt,
        "lattice_a": a,
        "source": str(args.shift_json),
    }


def labelled(atoms_list, shift: dict):
    """EMT labels of ``atoms_list`` with the shift applied when there is one."""
    labels = fd.emt_label(atoms_list)
    energies = labels.energies
    if shift["applied"]:
        energies = fd.apply_shift(energies, atoms_list, shift["delta"])
    return fd.LabelledSet(list(atoms_list), energies, labels.forces, labels.stresses)


def subset(data: fd.LabelledSet, idx) -> fd.LabelledSet:
    return fd.LabelledSet(
        [data.atoms[i] for i in idx],
        data.energies[np.asarray(idx, dtype=int)],
        [data.forces[i] for i in idx],
        [data.stresses[i] for i in idx],
    )


def describe(data: fd.LabelledSet) -> dict:
    """Counts per kind, atoms, energy-per-atom range per kind (eV/atom) and the largest |force| (eV/A)."""
    kinds = [a.info["kind"] for a in data.atoms]
    per_atom = np.array([e / len(a) for e, a in zip(data.energies, data.atoms, strict=True)])
    ranges = {}
    for kind in dict.fromkeys(kinds):
        sel = per_atom[[k == kind for k in kinds]]
        ranges[kind] = [float(sel.min()), float(sel.max())]
    return {
        "n_structures": len(data.atoms),
        "n_atoms": int(sum(len(a) for a in data.atoms)),
        "kinds": dict(Counter(kinds)),
        "energy_per_atom_range": ranges,
        "max_abs_force": float(max((np.abs(f).max() for f in data.forces), default=0.0)),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("generate", "validate"), default="generate")
    ap.add_argument("--input", help="validate: the user's labelled extended XYZ")
    ap.add_argument("--energy-key", default="energy", help="validate: info key of the energy (eV)")
    ap.add_argument("--forces-key", default="forces", help="validate: per-atom column of the forces")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-strained", type=int, default=20, help="strained cubic cells (OURS)")
    ap.add_argument("--n-rattled", type=int, default=20, help="rattled 32-atom cells (OURS)")
    ap.add_argument("--n-surfaces", type=int, default=8, help="(111)/(100) slabs (OURS)")
    ap.add_argument("--n-clusters", type=int, default=6, help="clusters, 13-55 atoms (OURS)")
    ap.add_argument(
        "--dimer-distances", type=float, nargs="*", default=list(fd.DIMER_DISTANCES), help="A (OURS)"
    )
    ap.add_argument("--cu-a", type=float, default=fd.CU_A, help="fcc Cu lattice constant (A)")
    ap.add_argument("--au-a", type=float, default=fd.AU_A, help="fcc Au lattice constant (A)")
    ap.add_argument("--strain-max", type=float, default=fd.STRAIN_MAX, help="largest strain (OURS)")
    ap.add_argument("--rattle-sigma", type=float, default=fd.RATTLE_SIGMA, help="A (OURS)")
    ap.add_argument("--vacuum", type=float, default=fd.VACUUM, help="A around slabs/clusters (OURS)")
    ap.add_argument("--au-rattled", type=int, default=2, help="rattled Au probe cells (OURS)")
    ap.add_argument("--au-clusters", type=int, default=2, help="Au probe clusters (OURS)")
    ap.add_argument("--fractions", type=float, nargs=3, default=list(fd.SPLIT_FRACTIONS), help="OURS")
    ap.add_argument("--shift-json", help="model reference energies per element (eV/atom)")
    ap.add_argument("--min-distance", type=float, default=DEFAULT_MIN_DISTANCE, help="geometry check (A)")
    for split in SPLITS:
        ap.add_argument(f"--out-{split}", required=True)
    ap.add_argument("--out-au", required=True)
    ap.add_argument("--out-summary", required=True)
    ap.add_argument("--out-dimers", help="EMT dimer curves (CSV)")
    args = ap.parse_args(argv)
    start = time.perf_counter()

    for name in ("n_strained", "n_rattled", "n_surfaces", "n_clusters", "au_rattled", "au_clusters"):
        if getattr(args, name) < 0:
            raise SystemExit(f"ERROR: --{name.replace('_', '-')} {getattr(args, name)}: must be >= 0")
    if any(f < 0 for f in args.fractions) or abs(sum(args.fractions) - 1) > 1e-9:
        raise SystemExit(f"ERROR: --fractions {args.fractions}: must be >= 0 and sum to 1")
    try:
        au_atoms = fd.au_probe_structures(
            seed=args.seed,
            a=args.au_a,
            n_rattled=args.au_rattled,
            clusters=args.au_clusters,
            dimer_distances=args.dimer_distances,
            rattle_sigma=args.rattle_sigma,
            vacuum=args.vacuum,
            min_distance=args.min_distance,
        )
        if args.mode == "generate":
            if args.input:
                raise SystemExit("ERROR: --input is read in --mode validate only")
            cu_atoms = fd.cu_target_structures(
                n_bulk_strained=args.n_strained,
                n_rattled=args.n_rattled,
                n_surfaces=args.n_surfaces,
                n_clusters=args.n_clusters,
                dimer_distances=args.dimer_distances,
                seed=args.seed,
                a=args.cu_a,
                strain_max=args.strain_max,
                rattle_sigma=args.rattle_sigma,
                vacuum=args.vacuum,
                min_distance=args.min_distance,
            )
            shift = make_shift(args, [fd.TARGET_ELEMENT, fd.PROBE_ELEMENT])
            cu = labelled(cu_atoms, shift)
            source = "generated (EMT labels)"
        else:
            if not args.input:
                raise SystemExit("ERROR: --mode validate needs --input (a labelled extended XYZ)")
            cu = fd.read_labelled_extxyz(args.input, args.energy_key, args.forces_key, args.min_distance)
            for i, atoms in enumerate(cu.atoms):
                if fd.PROBE_ELEMENT in atoms.get_chemical_symbols():
                    raise SystemExit(
                        f"ERROR: {args.input}: frame {i} (material_id {atoms.info['material_id']}) holds "
                        f"{fd.PROBE_ELEMENT}, the probe element: the fine-tuning data must never contain it"
                    )
            shift = make_shift(args, [fd.PROBE_ELEMENT])
            source = str(args.input)
        au = labelled(au_atoms, shift)
    except ValueError as err:  # StructureError included: the message names the structure
        raise SystemExit(f"ERROR: {err}") from err

    if len(cu.atoms) < len(SPLITS):
        raise SystemExit(f"ERROR: {len(cu.atoms)} structures: too few for a train/val/test split")
    parts = dict(zip(SPLITS, fd.split(cu.atoms, args.fractions, seed=args.seed), strict=True))
    empty = [s for s, idx in parts.items() if s in ("train", "val") and len(idx) == 0]
    if empty:
        raise SystemExit(
            f"ERROR: {len(cu.atoms)} structures with --fractions {args.fractions} leave "
            f"{' and '.join(empty)} empty"
        )
    data = {s: subset(cu, idx) for s, idx in parts.items()}
    curves = dm.calculator_curves({"EMT": _emt}, pairs=(("Au", "Au"), ("Cu", "Cu")))
    features = dm.features_table(curves)

    summary = {
        "mode": args.mode,
        "source": source,
        "seed": args.seed,
        "splits": {s: describe(d) for s, d in data.items()},
        "au_probes": describe(au),
        "shift": shift,
        "emt_dimers": features.to_dict(orient="records"),
        "parameters": {
            k: getattr(args, k)
            for k in (
                "n_strained",
                "n_rattled",
                "n_surfaces",
                "n_clusters",
                "dimer_distances",
                "cu_a",
                "au_a",
                "strain_max",
                "rattle_sigma",
                "vacuum",
                "au_rattled",
                "au_clusters",
                "fractions",
                "min_distance",
            )
        },
    }
    try:
        for s, d in data.items():
            fd.write_labelled_extxyz(getattr(args, f"out_{s}"), d.atoms, d.energies, d.forces, d.stresses)
        fd.write_labelled_extxyz(args.out_au, au.atoms, au.energies, au.forces, au.stresses)
    except StructureError as err:
        raise SystemExit(f"ERROR: {err}") from err
    if args.out_dimers:
        write_csv(args.out_dimers, curves)
    summary["elapsed_s"] = round(time.perf_counter() - start, 3)
    write_json(args.out_summary, summary)
    counts = ", ".join(f"{s} {len(d.atoms)}" for s, d in data.items())
    print(
        f"finetune_data: {args.mode}: {counts}, Au probes {len(au.atoms)}; shift "
        f"{'applied' if shift['applied'] else 'NOT applied'}; {summary['elapsed_s']:.1f} s"
    )
    return 0


def _emt():
    from ase.calculators.emt import EMT

    return EMT()


if __name__ == "__main__":
    run(main)
