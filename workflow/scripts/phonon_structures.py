"""The input structures of the phonon test: named reference crystals and seeded structures of the run.

Runs in the analysis environment. Writes ``--out`` (extended XYZ) with ``info["name"]`` (unique),
``info["kind"]`` (``reference`` or ``run``) and, for run structures, ``info["material_id"]`` and
``info["structure_index"]`` (index in the run's structures.npz):

- the named references of ``--reference`` (default, OURS: Cu, Au, BaCeO3, Si, NaCl; primitive cells from
  ``platonic_mlip.phonons.reference_structure``), lattice constants from ``--lattice NAME=A`` (default
  ``platonic_mlip.phonons.REFERENCE_LATTICE``);
- ``--n-run`` (OURS 5) structures of the run (``--structures``, structures.npz) with at most
  ``--max-atoms`` (OURS 8) atoms, drawn with ``--seed`` (``numpy.random.default_rng([seed, 4])``, a stream
  of its own next to the probes' streams 0-3), in the order of the run; fewer when fewer qualify.

Deterministic given the inputs and the seed.
"""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import numpy as np

from platonic_mlip.cli import run
from platonic_mlip.io import atomic_path
from platonic_mlip.phonons import REFERENCE_LATTICE, REFERENCE_STRUCTURES, reference_structure
from platonic_mlip.probes import sample_indices

STREAM = 4  # numpy seed stream of the phonon sample (probes use 0-3)


def parse_lattice(items: list[str]) -> dict[str, float]:
    """``["Cu=3.6", ...]`` -> {name: a}; SystemExit naming a malformed item or an unknown structure."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            a = float(value)
        except ValueError:
            a = None
        if not sep or a is None or not a > 0:
            raise SystemExit(f"ERROR: --lattice {item!r}: expected NAME=A with A > 0 (Angstrom)")
        if name not in REFERENCE_LATTICE:
            raise SystemExit(
                f"ERROR: --lattice {item!r}: unknown structure; known: {', '.join(REFERENCE_STRUCTURES)}"
            )
        out[name] = a
    return out


def run_sample(n_atoms: np.ndarray, k: int, max_atoms: int, seed: int) -> np.ndarray:
    """Sorted indices (into ``n_atoms``) of ``min(k, eligible)`` structures with ``<= max_atoms`` atoms."""
    eligible = np.flatnonzero(np.asarray(n_atoms) <= max_atoms)
    if k <= 0 or len(eligible) == 0:
        return np.empty(0, dtype=np.int64)
    return eligible[sample_indices(len(eligible), k, seed, STREAM)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--structures", default=None, help="the run's structures.npz (needed with --n-run > 0)")
    ap.add_argument("--reference", nargs="*", default=list(REFERENCE_STRUCTURES), help="named references")
    ap.add_argument("--lattice", nargs="*", default=[], help="NAME=A lattice constants (A)")
    ap.add_argument("--n-run", type=int, default=5, help="seeded structures of the run (OURS)")
    ap.add_argument("--max-atoms", type=int, default=8, help="largest run structure taken (OURS)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="extended XYZ of the structures")
    args = ap.parse_args(argv)

    from ase.io import write

    lattice = parse_lattice(args.lattice)
    out = []
    for name in args.reference:
        if name not in REFERENCE_LATTICE:
            raise SystemExit(
                f"ERROR: --reference {name!r}: unknown; known: {', '.join(REFERENCE_STRUCTURES)}"
            )
        atoms = reference_structure(name, lattice.get(name))
        atoms.info["kind"] = "reference"
        out.append(atoms)
    if args.n_run > 0:
        if not args.structures:
            raise SystemExit("ERROR: --n-run > 0 needs --structures (the run's structures.npz)")
        from platonic_mlip.structures import load_structures

        with np.load(args.structures) as z:
            n_atoms = z["n_atoms"]
        picked = run_sample(n_atoms, args.n_run, args.max_atoms, args.seed)
        for i in picked:
            (atoms,), (mid,) = load_structures(args.structures, int(i), int(i) + 1)
            atoms.info.update(name=mid, kind="run", material_id=mid, structure_index=int(i))
            out.append(atoms)
    names = [a.info["name"] for a in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SystemExit(f"ERROR: structure names are not unique: {', '.join(dup)}")
    if not out:
        raise SystemExit("ERROR: no structures selected (empty --reference and --n-run 0)")
    with atomic_path(args.out, keep_suffix=True) as tmp:
        write(str(tmp), out, format="extxyz")
    print(f"{len(out)} phonon structures: {', '.join(names)}")


if __name__ == "__main__":
    run(main)
