"""Train one trained control (platonic_mlip.controls): self-supervised denoising or distillation.

Runs in the model family's environment (``platonic_mlip.controls.TRAINERS``). The registry model
(``--model``) gives the objective, architecture (with its overrides), seed and teacher; the budget comes
from the command line (config key ``controls``). Resumable: ``--workdir`` keeps the state of the last
finished epoch, and a rerun of the same command continues from there. Writes the sevenn checkpoint
``--out-checkpoint`` with its digest beside it (``<file>.sha256``, checked when the model is embedded), then
``--out-json`` (the summary: settings, per-epoch losses, errors before and after training) last.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")  # as embed.py: a resumed run gives the same bits

import _paths  # noqa: F401

from platonic_mlip.cli import run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="registry model with source: control")
    ap.add_argument("--options", default="{}", help="JSON model_options of --model")
    ap.add_argument("--structures", required=True, help="the run's structures (structures.npz)")
    ap.add_argument("--n-structures", type=int, default=200, help="structures trained on (0 = all)")
    ap.add_argument("--max-atoms", type=int, default=40)
    ap.add_argument("--copies", type=int, default=2, help="noisy copies per structure")
    ap.add_argument("--sigma", type=float, default=0.1, help="noise of the positions (Angstrom)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--energy-weight", type=float, default=1.0)
    ap.add_argument("--force-weight", type=float, default=1.0)
    ap.add_argument("--data-seed", type=int, default=0, help="seed of the structure subset and the noise")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out-checkpoint", required=True)
    ap.add_argument("--out-json", required=True)
    args = ap.parse_args(argv)

    import importlib

    import torch

    from platonic_mlip.controls import TRAINERS, ControlError, Settings, select_structures
    from platonic_mlip.embed.base import resolve_device
    from platonic_mlip.io import write_json
    from platonic_mlip.models import resolve
    from platonic_mlip.structures import load_structures
    from platonic_mlip.weights import record_digest

    torch.set_num_threads(max(1, args.threads))
    spec = resolve(args.model, json.loads(args.options))
    if spec.get("source") != "control":
        raise ControlError(f"model {args.model!r} is not a trained control (source {spec.get('source')!r})")
    if spec["family"] not in TRAINERS:
        raise ControlError(f"model {args.model!r}: no trainer for family {spec['family']!r} ({TRAINERS})")
    trainer = importlib.import_module(f"platonic_mlip.controls.{spec['family']}")
    settings = Settings(
        objective=spec["objective"],
        architecture=spec["architecture"],
        overrides=dict(spec.get("overrides") or {}),
        seed=int(spec.get("seed", 0)),
        teacher=spec.get("teacher"),
        structures=args.n_structures,
        max_atoms=args.max_atoms,
        copies=args.copies,
        sigma=args.sigma,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        energy_weight=args.energy_weight,
        force_weight=args.force_weight,
        noise_seed=args.data_seed,
    )
    atoms_list, ids = load_structures(args.structures)
    sizes = [len(a) for a in atoms_list]
    chosen = select_structures(sizes, args.n_structures, args.max_atoms, args.data_seed)
    summary = trainer.train(
        settings,
        [atoms_list[i] for i in chosen],
        args.workdir,
        args.out_checkpoint,
        device=str(resolve_device(args.device)),
    )
    summary.update(model=args.model, material_ids=[ids[i] for i in chosen])
    summary["sha256"] = record_digest(args.out_checkpoint)
    write_json(args.out_json, summary)
    n = summary["n_training_structures"]
    print(f"{args.model}: {n} structures, errors before {summary['before']}, after {summary['after']}")


if __name__ == "__main__":
    run(main)
