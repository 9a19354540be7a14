"""Fine-tune a pretrained checkpoint in one arm (paper Fig. 5a-e); runs in the model family's environment.

Families (``--family``, ``platonic_mlip.finetune.ADAPTERS``): sevenn (its own training loop, runs on a CPU
here) and mace (the paper's ``mace_run_train``, arms naive and multihead; ``platonic_mlip.finetune.mace``).
Options a family does not know are ignored; options left unset keep the family's defaults.

Arms: ``naive`` (target data only), ``multihead`` (a new modality for the target, the original head kept
and trained on replay data), ``replay`` (one head, sevenn's rehearsal on the replay set). Replay data are
the pretrained model's own labels on the ``--replay`` structures (``--replay-labels pretrained``).

Resumable: ``--workdir`` holds the state of the last finished epoch; rerun the same command after a kill
and training goes on from there (same weights as an uninterrupted run). Checkpoints of the kept epochs
(every ``--checkpoint-every`` epochs and the last) are copied to ``--out-checkpoints`` as
``epoch_<k>.pth`` (sevenn format; multihead checkpoints need ``modal``: ``pretrained`` or ``target``);
``--out-json`` (written last) lists them with the per-epoch errors. See
``platonic_mlip.finetune.sevenn`` for the details.
"""

from __future__ import annotations

import argparse
import os
import shutil

# MKL's conditional numerical reproducibility (as embed.py): a resumed run gives the same bits
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

import _paths  # noqa: F401

from platonic_mlip.cli import run
from platonic_mlip.finetune import ADAPTERS, ARMS


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="sevenn", choices=sorted(ADAPTERS), help="model family (sevenn)")
    ap.add_argument("--arm", required=True, choices=ARMS)
    ap.add_argument(
        "--pretrained",
        default=None,
        help="checkpoint key or file (default: --model's weights, else the family's: 7net-0, mace small)",
    )
    ap.add_argument("--model", default=None, help="a registry model whose weights are fine-tuned")
    ap.add_argument("--options", default="{}", help="JSON model_options of --model")
    ap.add_argument("--weights-file", default=None, help="the local weights file of --model")
    ap.add_argument("--train", required=True, help="target structures with energy and forces (extxyz)")
    ap.add_argument("--val", default=None, help="target validation structures (extxyz), optional")
    ap.add_argument("--replay", default=None, help="replay structures (extxyz); required by multihead/replay")
    ap.add_argument(
        "--replay-labels",
        choices=("pretrained", "file"),
        default="pretrained",
        help="label replay structures with the pretrained model (default) or take the file's labels",
    )
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint-every", type=int, default=1)
    ap.add_argument("--lr", type=float, default=None, help="default: the family's (sevenn 0.004)")
    ap.add_argument("--gamma", type=float, default=None, help="sevenn: lr decay per epoch (default 0.99)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--replay-batch-size", type=int, default=4, help="rehearsal batch (replay arm)")
    ap.add_argument("--force-weight", type=float, default=None, help="default: the family's")
    ap.add_argument("--stress-weight", type=float, default=None, help="default: the family's")
    ap.add_argument("--dtype", default=None, help="mace: default_dtype (float64 or float32)")
    ap.add_argument("--extra-arg", action="append", default=[], help="mace: one more mace_run_train option")
    ap.add_argument("--no-stress", action="store_true", help="do not train on stress")
    ap.add_argument(
        "--modal-blocks",
        default="output_block",
        help="multihead: comma-separated modality-dependent blocks "
        "(output_block, self_inter_intro, self_inter_outro, node_embedding)",
    )
    ap.add_argument(
        "--target-shift",
        choices=("pretrained", "fit"),
        default="pretrained",
        help="multihead: energy shift of the new head: the original head's (labels on its reference) "
        "or sevenn's fit to the target data",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--workdir", required=True, help="state, logs and kept checkpoints (resumable)")
    ap.add_argument(
        "--restart-on-change",
        action="store_true",
        help="a work directory of other settings or inputs is deleted and training starts afresh "
        "(the workflow: a job rerun because its inputs changed); without it such a directory is refused",
    )
    ap.add_argument("--out-checkpoints", required=True, help="directory receiving epoch_<k>.pth")
    ap.add_argument("--out-json", required=True)
    args = ap.parse_args(argv)

    import dataclasses
    import importlib
    import json

    import torch

    from platonic_mlip.embed.base import resolve_device
    from platonic_mlip.finetune.workdir import FineTuneError, StaleWorkdirError
    from platonic_mlip.io import write_json

    module = importlib.import_module(ADAPTERS[args.family])
    Settings, fine_tune = module.Settings, module.fine_tune
    pretrained = args.pretrained
    if pretrained is None and args.model:  # neither: the family's default (7net-0; mace "small")
        from platonic_mlip.embed.base import local_weights
        from platonic_mlip.models import ConfigError, resolve
        from platonic_mlip.weights import WeightsError

        try:
            spec, _ = local_weights(resolve(args.model, json.loads(args.options)), args.weights_file)
        except (ConfigError, WeightsError) as err:
            raise SystemExit(f"ERROR: {err}") from None
        if spec["family"] != args.family:
            raise SystemExit(f"ERROR: model {args.model} is a {spec['family']} model, not {args.family}")
        if spec["source"] == "random":
            raise SystemExit(f"ERROR: model {args.model} is an untrained control: nothing to fine-tune")
        pretrained = spec["source"]

    if args.threads:
        torch.set_num_threads(args.threads)
    values = dict(
        arm=args.arm,
        pretrained=pretrained,
        train=args.train,
        val=args.val,
        replay=args.replay,
        replay_labels=args.replay_labels,
        epochs=args.epochs,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        lr=args.lr,
        gamma=args.gamma,
        batch_size=args.batch_size,
        replay_batch_size=args.replay_batch_size,
        force_weight=args.force_weight,
        stress_weight=args.stress_weight,
        train_stress=False if args.no_stress else None,
        modal_blocks=tuple(b.strip() for b in args.modal_blocks.split(",") if b.strip()),
        target_shift=args.target_shift,
        device=str(resolve_device(args.device)),
        default_dtype=args.dtype,
        extra_args=tuple(args.extra_arg),
    )
    # each family's Settings takes its own fields; an option left at None keeps the family's default
    fields = {f.name for f in dataclasses.fields(Settings)}
    settings = Settings(**{k: v for k, v in values.items() if k in fields and v is not None})
    try:
        try:
            summary = fine_tune(settings, args.workdir, out_checkpoints=args.out_checkpoints, log=print)
        except StaleWorkdirError as err:
            if not args.restart_on_change:
                raise
            print(f"WARNING: {err}; --restart-on-change: starting afresh", flush=True)
            shutil.rmtree(args.workdir)
            summary = fine_tune(settings, args.workdir, out_checkpoints=args.out_checkpoints, log=print)
    except FineTuneError as err:
        raise SystemExit(f"ERROR: {err}") from None
    write_json(args.out_json, summary)  # written last: the run is complete only when it exists
    last = summary["history"][-1] if summary["history"] else {}
    print(
        f"fine-tune {args.arm}: {len(summary['checkpoints'])} checkpoint(s), last epoch {last.get('epoch')}, "
        f"{summary['wall_time_s']:.0f} s"
    )


if __name__ == "__main__":
    run(main)
