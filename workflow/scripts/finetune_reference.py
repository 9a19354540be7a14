"""The pretrained model's energy zero per element, for shifting EMT labels (fine-tuning, Fig. 5a-e).

Energy per atom (eV) of the fcc crystals of ``--elements`` (OURS Cu, Au) at the lattice constants
``--lattice`` (OURS 3.61 and 4.08 A, EMT-like), computed with the model's ASE calculator in its
family's environment. finetune_data.py shifts the EMT labels of element Z by
``e_model(Z) - e_EMT(Z)`` so that fine-tuning learns Cu, not the ~4 eV/atom offset of EMT's zero.
Writes ``{"e_per_atom": {...}, "lattice_a": {...}, "model": ...}`` atomically.
"""

from __future__ import annotations

import argparse
import json
import math

import _paths  # noqa: F401

from platonic_mlip.cli import run
from platonic_mlip.io import write_json


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--options", default="{}")
    ap.add_argument("--weights-file", default=None)
    ap.add_argument("--elements", nargs="+", default=["Cu", "Au"])
    ap.add_argument("--lattice", nargs="+", type=float, default=[3.61, 4.08], help="fcc a (A) per element")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if len(args.lattice) != len(args.elements):
        raise SystemExit(f"ERROR: {len(args.elements)} elements but {len(args.lattice)} lattice constants")
    import torch
    from ase.build import bulk

    from platonic_mlip.embed.base import load_calculator, local_weights
    from platonic_mlip.models import ConfigError, resolve
    from platonic_mlip.weights import WeightsError

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        spec, _ = local_weights(resolve(args.model, json.loads(args.options)), args.weights_file)
    except (ConfigError, WeightsError) as err:
        raise SystemExit(f"ERROR: {err}") from None
    calc = load_calculator(spec, args.device)
    energies = {}
    for el, a in zip(args.elements, args.lattice, strict=True):
        atoms = bulk(el, "fcc", a=a)
        atoms.calc = calc
        e = float(atoms.get_potential_energy()) / len(atoms)
        if not math.isfinite(e):
            raise SystemExit(f"ERROR: model {args.model}: non-finite energy of fcc {el}")
        energies[el] = e
        print(f"{args.model}: fcc {el} a={a} A: {e:.4f} eV/atom")
    lattice = dict(zip(args.elements, args.lattice, strict=True))
    write_json(args.out, {"e_per_atom": energies, "lattice_a": lattice, "model": args.model})


if __name__ == "__main__":
    run(main)
