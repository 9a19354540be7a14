"""Fine-tuning a pretrained SevenNet checkpoint in three arms (paper Fig. 5a-e), inside the sevenn env.

Arms, all starting from one pretrained checkpoint (``7net-0`` by default):

``naive``      the whole model trained on the target data only (sevenn's ``fine_tune`` preset: continue
               from the checkpoint with optimizer, scheduler and epoch reset; the checkpoint's energy
               shift/scale and convolution denominators kept). A replay file, when given, is only
               evaluated each epoch (forgetting), never trained on.
``multihead``  a new modality (``TARGET_MODAL``) appended to the checkpoint with sevenn's own
               ``SevenNetCheckpoint.append_modal`` (what ``sevenn cp <ckpt> --append_modal_yaml`` does);
               the original head becomes modality ``PRETRAINED_MODAL``. One training set mixes the target
               structures (target modality) and the replay structures (pretrained modality). The modal
               blocks (``modal_blocks``; default: the output block only, i.e. a new readout head and a
               new energy shift) get zero-initialised modality weights, so at epoch 0 every modality
               reproduces the pretrained model (up to the target shift, fitted to the target data).
``replay``     single head, sevenn's reEWC rehearsal (``data.rehearsal: True``, ``load_memory_path``):
               after each target batch, one optimizer step on a batch of the replay (memory) set.

Replay data are the pretrained model's own labels (energies, forces, stress from ``SevenNetCalculator``)
on structures the caller provides (e.g. MP-20), since the pretraining data are not at hand
(``replay_labels="pretrained"``, the default); ``replay_labels="file"`` takes the file's own labels.

The loop is sevenn's own ``train_v2`` (``processing_continue_v2``, ``graph_dataset``/``modal_dataset``
``from_config``, ``Trainer``/``ReewcTrainer``), with an epoch loop of ours so that:

- every epoch ends with a check for non-finite losses and weights (``DivergedError`` names the arm and
  epoch) before anything is written;
- ``<workdir>/state.pth`` (model, optimizer, scheduler, python/numpy/torch RNG states, history) is
  replaced atomically after each epoch: a killed job rerun on the same workdir resumes at the next
  epoch and gives the same weights as an uninterrupted run, bit for bit when MKL_CBWR=AUTO,STRICT is
  set before torch starts (the CLI does) and ``Settings.deterministic`` (the default) runs training
  under ``torch.use_deterministic_algorithms`` (two CPU threads otherwise differ by ~1e-6 per run);
- sevenn-format checkpoints (loadable by ``sevenn.util.load_checkpoint``, ``SevenNetCalculator`` and
  this project's embedder, with ``modal`` for multihead) are kept at chosen epochs in
  ``<workdir>/checkpoints/epoch_<k>.pth``;
- ``<workdir>/run.json`` pins the settings and input digests; a rerun with other settings or inputs is
  refused (``epochs``/``checkpoint_every`` may grow: training then continues).

Targets: every frame of the train/val files must carry an energy and forces (ASE calculator results,
e.g. extxyz ``energy=`` and ``forces``), else ``LabelError`` names the file and frame. Frames are
rebuilt as clean ``Atoms`` (numbers, positions, cell, pbc, labels): CIF-derived ``info`` keys break
sevenn's collate.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from platonic_mlip.finetune import ARMS
from platonic_mlip.finetune.workdir import (  # noqa: F401 (re-exported: the family's errors)
    EXTENSIBLE,
    RUN_JSON,
    DivergedError,
    FineTuneError,
    LabelError,
    StaleWorkdirError,
    check_elements,
    check_fingerprint,
    fingerprint,
    label_with_calculator,
    pin_workdir,
    prepare_data,
    sha256,
)

PRETRAINED_MODAL = "pretrained"
TARGET_MODAL = "target"
MODAL_BLOCKS = {
    "node_embedding": "use_modal_node_embedding",
    "self_inter_intro": "use_modal_self_inter_intro",
    "self_inter_outro": "use_modal_self_inter_outro",
    "output_block": "use_modal_output_block",
}
STATE = "state.pth"


@dataclasses.dataclass
class Settings:
    arm: str
    train: str
    val: str | None = None
    replay: str | None = None
    pretrained: str = "7net-0"
    replay_labels: str = "pretrained"  # "pretrained": label with the pretrained model; "file": as given
    epochs: int = 2
    seed: int = 0
    checkpoint_every: int = 1
    lr: float = 0.004  # sevenn's fine_tune preset
    gamma: float = 0.99  # exponential lr decay per epoch (fine_tune preset)
    huber_delta: float = 0.01
    batch_size: int = 4
    replay_batch_size: int = 4  # rehearsal memory batch (replay arm)
    force_weight: float = 1.0
    stress_weight: float = 0.01
    train_stress: bool = True
    modal_blocks: tuple[str, ...] = ("output_block",)
    target_shift: str = "pretrained"  # multihead: "pretrained" (copy the original head's) or "fit"
    device: str = "cpu"
    # torch.use_deterministic_algorithms during training: with several CPU threads, sevenn's scatter
    # reductions otherwise differ in the last bits from run to run (1e-6 in the weights after 3 epochs)
    deterministic: bool = True

    def validate(self) -> None:
        if self.arm not in ARMS:
            raise FineTuneError(f"unknown fine-tuning arm {self.arm!r}; choose from {', '.join(ARMS)}")
        if self.arm in ("multihead", "replay") and not self.replay:
            raise FineTuneError(f"arm {self.arm!r} needs replay structures (--replay)")
        if self.replay_labels not in ("pretrained", "file"):
            raise FineTuneError(f"replay_labels must be 'pretrained' or 'file', got {self.replay_labels!r}")
        if int(self.epochs) < 1 or int(self.checkpoint_every) < 1:
            raise FineTuneError(
                f"epochs ({self.epochs}) and checkpoint_every ({self.checkpoint_every}) must be >= 1"
            )
        bad = [b for b in self.modal_blocks if b not in MODAL_BLOCKS]
        if bad or not self.modal_blocks:
            raise FineTuneError(
                f"modal_blocks {list(self.modal_blocks)}: choose one or more of {', '.join(MODAL_BLOCKS)}"
            )
        if self.target_shift not in ("pretrained", "fit"):
            raise FineTuneError(f"target_shift must be 'pretrained' or 'fit', got {self.target_shift!r}")
        for name in ("lr", "gamma", "huber_delta"):
            if not (math.isfinite(float(getattr(self, name))) and float(getattr(self, name)) > 0):
                raise FineTuneError(f"{name} must be a positive number, got {getattr(self, name)!r}")


# --------------------------------------------------------------------------------------------------
# data


def clean_atoms(atoms, energy=None, forces=None, stress=None):
    """A bare copy of ``atoms`` (numbers, positions, cell, pbc) with the given labels attached as a
    SinglePointCalculator; no ``info``/``arrays`` extras, which break sevenn's collate."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    out = Atoms(
        numbers=np.asarray(atoms.numbers),
        positions=np.asarray(atoms.positions, dtype=float),
        cell=np.asarray(atoms.cell[:], dtype=float),
        pbc=np.asarray(atoms.pbc, dtype=bool),
    )
    results = {}
    if energy is not None:
        results["energy"] = float(energy)
    if forces is not None:
        results["forces"] = np.asarray(forces, dtype=float)
    if stress is not None:
        results["stress"] = np.asarray(stress, dtype=float)
    if results:
        out.calc = SinglePointCalculator(out, **results)
    return out


def _read_frames(path: str | Path, role: str) -> list:
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise FineTuneError(f"{role} file {path} does not exist")
    try:
        frames = ase.io.read(str(path), index=":")
    except Exception as err:
        raise FineTuneError(
            f"{role} file {path}: cannot be read by ASE ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise FineTuneError(f"{role} file {path} holds no structures")
    return frames


def read_labelled(path: str | Path, role: str = "train") -> list:
    """Every frame of ``path`` as clean Atoms with its energy, forces (and stress when present).

    Raises LabelError naming the file and the (0-based) frame that lacks an energy or forces, or whose
    labels are not finite or have the wrong shape."""
    frames = _read_frames(path, role)
    out = []
    for i, atoms in enumerate(frames):
        where = f"{role} file {path}, frame {i} (0-based, {atoms.get_chemical_formula()})"
        res = dict(atoms.calc.results) if atoms.calc is not None else {}
        energy = res.get("energy", res.get("free_energy"))
        forces = res.get("forces")
        missing = [name for name, v in (("energy", energy), ("forces", forces)) if v is None]
        if missing:
            raise LabelError(
                f"{where}: no {' and no '.join(missing)}. Fine-tuning targets need a total energy "
                "(extxyz 'energy=' in the comment line) and per-atom forces (a 'forces' column)"
            )
        forces = np.asarray(forces, dtype=float)
        if forces.shape != (len(atoms), 3):
            raise LabelError(f"{where}: forces of shape {forces.shape}, expected ({len(atoms)}, 3)")
        if not np.isfinite(energy) or not np.isfinite(forces).all():
            raise LabelError(f"{where}: non-finite energy or forces")
        stress = res.get("stress")
        if stress is not None and not np.isfinite(np.asarray(stress, dtype=float)).all():
            stress = None  # an unlabelled stress is ignored by sevenn's loss; a NaN one must not be written
        out.append(clean_atoms(atoms, energy, forces, stress))
    return out


def read_structures(path: str | Path, role: str = "replay") -> list:
    """Every frame of ``path`` as clean, unlabelled Atoms."""
    return [clean_atoms(a) for a in _read_frames(path, role)]


def label_with_model(atoms_list: Sequence, checkpoint: str, modal: str | None = None, device="cpu") -> list:
    """The model's own energy, forces and stress on each structure (clean Atoms with those labels)."""
    from sevenn.calculator import SevenNetCalculator

    return label_with_calculator(atoms_list, SevenNetCalculator(checkpoint, device=str(device), modal=modal))


def _write_extxyz(path: Path, atoms_list: Sequence) -> None:
    import ase.io

    from platonic_mlip.io import atomic_path

    with atomic_path(path) as tmp:
        ase.io.write(str(tmp), list(atoms_list), format="extxyz")


# --------------------------------------------------------------------------------------------------
# divergence


def nonfinite_metrics(errors: dict) -> list[str]:
    """``"<set> <metric> = <value>"`` for every non-finite value of an epoch's errors
    ({set: {metric: value}}), in order. A NaN stress metric is not divergence: sevenn reports NaN when a
    set holds no periodic structure (clusters, dimers: no stress label), while a diverged run also shows
    non-finite energies, forces or weights."""
    out = []
    for name, metrics in errors.items():
        for key, value in metrics.items():
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue
            if math.isnan(v) and "stress" in str(key).lower():
                continue
            if not math.isfinite(v):
                out.append(f"{name} {key} = {v}")
    return out


def check_divergence(arm: str, epoch: int, errors: dict, lr: float, model=None, last_good=None) -> None:
    """Raise DivergedError naming ``arm`` and ``epoch`` when the training loss (or any metric of the
    epoch) or any weight of ``model`` is not finite."""
    bad = nonfinite_metrics(errors)
    if model is not None:
        import torch

        nan_params = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
        if nan_params:
            bad.append(f"{len(nan_params)} non-finite weight tensor(s), e.g. {nan_params[0]}")
    if bad:
        where = f"epoch {last_good}" if last_good else "the pretrained weights"
        raise DivergedError(
            f"fine-tuning arm {arm!r} diverged at epoch {epoch} (learning rate {lr:g}): "
            f"{'; '.join(bad[:4])}. Nothing of this epoch was kept; the last good state is {where}. "
            "Lower the learning rate (or the batch's loss weights) and start the arm again in a fresh "
            "work directory."
        )


# --------------------------------------------------------------------------------------------------
# configuration


def checkpoint_epochs(epochs: int, every: int) -> list[int]:
    """Epochs whose weights are kept: every ``every``-th epoch and the last one."""
    return sorted({e for e in range(every, epochs + 1, every)} | {epochs})


def _modal_paths(modal: str, path: str) -> list[dict]:
    return [{"data_modality": modal, "file_list": [{"file": path}]}]


def yaml_config(s: Settings, start_checkpoint: str, model_block: dict, data: dict) -> dict:
    """The sevenn ``input.yaml`` (model/train/data) of an arm; ``data`` holds the clean data files."""
    model = dict(model_block)
    multi = s.arm == "multihead"
    for block, key in MODAL_BLOCKS.items():
        model[key] = multi and block in s.modal_blocks
    error_record = [["Energy", "RMSE"], ["Force", "RMSE"], ["Energy", "MAE"], ["Force", "MAE"]]
    if s.train_stress:
        error_record.append(["Stress", "RMSE"])
    error_record.append(["TotalLoss", "None"])
    train = {
        "random_seed": int(s.seed),
        "epoch": int(s.epochs),
        "device": s.device,
        "loss": "huber",
        "loss_param": {"delta": float(s.huber_delta)},
        "optimizer": "adam",
        "optim_param": {"lr": float(s.lr)},
        "scheduler": "exponentiallr",
        "scheduler_param": {"gamma": float(s.gamma)},
        "force_loss_weight": float(s.force_weight),
        "stress_loss_weight": float(s.stress_weight),
        "is_train_stress": bool(s.train_stress),
        "train_shuffle": True,
        "per_epoch": 10**9,  # checkpoints are ours
        "error_record": error_record,
        "use_modality": multi,
        "continue": {
            "checkpoint": str(start_checkpoint),
            "reset_optimizer": True,
            "reset_scheduler": True,
            "reset_epoch": True,
        },
    }
    d = {
        "batch_size": int(s.batch_size),
        "preprocess_num_cores": 1,
        "data_format_args": {},
    }
    if multi:
        d.update(
            use_modal_wise_shift=True,
            use_modal_wise_scale=False,
            shift="elemwise_reference_energies",
            scale="force_rms",
            load_trainset_path=_modal_paths(TARGET_MODAL, data["train"])
            + _modal_paths(PRETRAINED_MODAL, data["replay"]),
        )
        if data.get("val"):
            d["load_validset_path"] = _modal_paths(TARGET_MODAL, data["val"])
        if data.get("replay"):
            d["load_replay_path"] = _modal_paths(PRETRAINED_MODAL, data["replay"])
    else:
        d["load_trainset_path"] = [data["train"]]
        if data.get("val"):
            d["load_validset_path"] = [data["val"]]
        if s.arm == "replay":
            d.update(
                rehearsal=True,
                load_memory_path=[data["replay"]],
                mem_batch_size=int(s.replay_batch_size),
                mem_ratio=1,
            )
        if data.get("replay"):
            d["load_replay_path"] = [data["replay"]]
    return {"model": model, "train": train, "data": d}


def _read_config(yaml_path: Path) -> dict:
    """sevenn's own parsing of an input.yaml into its flat global config (as ``sevenn`` does)."""
    import warnings

    import sevenn
    import sevenn._keys as KEY
    from sevenn.parse_input import read_config_yaml

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, train, data = read_config_yaml(str(yaml_path))
    config = {"version": sevenn.__version__, "when": time.ctime(), "_model_type": "E3_equivariant_model"}
    for part in (model, train, data):
        config.update(part)
    config.update(
        {KEY.IS_DDP: False, KEY.DDP_BACKEND: "nccl", KEY.LOCAL_RANK: 0, KEY.RANK: 0, KEY.WORLD_SIZE: 1}
    )
    return config


def _model_block(cp) -> dict:
    """The architecture keys of a checkpoint, as sevenn writes them for a continue input.yaml."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "checkpoint version too old, yaml may wrong": model keys are fine
        return cp.yaml_dict("continue")["model"]


def _dump_yaml(path: Path, obj: dict) -> None:
    import yaml

    from platonic_mlip.io import write_text

    write_text(path, yaml.safe_dump(obj, sort_keys=False))


# --------------------------------------------------------------------------------------------------
# the run


def _fingerprint(s: Settings, pretrained_path: str) -> dict:
    import sevenn
    import torch

    versions = {"sevenn": sevenn.__version__, "torch": torch.__version__}
    return fingerprint(s, pretrained_path, versions, modal_blocks=list(s.modal_blocks))


def _save_torch(obj, path: Path) -> None:
    import torch

    from platonic_mlip.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _rng_state() -> dict:
    import torch

    numpy_state = np.random.get_state()  # noqa: NPY002 (the legacy global stream libraries may draw from)
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}


def _set_rng_state(state: dict) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)


def _resolve_pretrained(source: str) -> str:
    if os.path.isfile(source):
        return os.path.abspath(source)
    from platonic_mlip.embed.sevenn import resolve_checkpoint

    return resolve_checkpoint(source)


def _prepare_data(s: Settings, workdir: Path, pretrained_path: str, type_map: dict, log) -> dict:
    """Clean copies of the inputs in ``<workdir>/data`` (replay labelled by the pretrained model)."""
    return prepare_data(
        s,
        workdir,
        type_map,
        label=lambda atoms: label_with_model(atoms, pretrained_path, device=s.device),
        write=_write_extxyz,
        log=log,
    )


def _append_modal_checkpoint(s: Settings, workdir: Path, pretrained_path: str, data: dict) -> str:
    """sevenn's ``append_modal`` (as ``sevenn cp --append_modal_yaml``): the pretrained head becomes
    modality PRETRAINED_MODAL, TARGET_MODAL is added; saved as ``<workdir>/start_multihead.pth``."""
    import warnings

    from sevenn.parse_input import read_config_yaml
    from sevenn.util import load_checkpoint

    dst = workdir / "start_multihead.pth"
    if dst.is_file():
        return str(dst)
    cp = load_checkpoint(pretrained_path)
    if cp.config.get("use_modality", False):
        raise FineTuneError(
            f"arm 'multihead': {s.pretrained} is already multi-modal; only single-head checkpoints "
            "are supported"
        )
    ycfg = yaml_config(s, pretrained_path, _model_block(cp), data)
    ypath = workdir / "append_modal.yaml"
    _dump_yaml(ypath, ycfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dst_config = read_config_yaml(str(ypath), return_separately=False)
    state = cp.append_modal(dst_config, PRETRAINED_MODAL, working_dir=str(workdir))
    if s.target_shift == "pretrained":
        # the target labels are on the pretrained model's energy reference (the data generator shifts
        # them): give the new modality the original per-element shift instead of a fit to the target set
        modal_map = dst_config["_modal_map"]
        key = "rescale_atomic_energy.shift"
        shift = state[key].clone()
        shift[modal_map[TARGET_MODAL]] = shift[modal_map[PRETRAINED_MODAL]]
        state[key] = shift
        if isinstance(dst_config.get("shift"), dict):
            dst_config["shift"][TARGET_MODAL] = list(dst_config["shift"][PRETRAINED_MODAL])
    to_save = cp.get_checkpoint_dict()
    to_save.update({"config": dst_config, "model_state_dict": state, "epoch": 0})
    for k in ("optimizer_state_dict", "scheduler_state_dict"):
        to_save[k] = None  # reset anyway; 7net-0's would not fit the appended weights
    _save_torch(to_save, dst)
    return str(dst)


def fine_tune(
    settings: Settings,
    workdir: str | Path,
    out_checkpoints: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run (or resume) one arm; return the summary (settings, checkpoints, per-epoch history, timings).

    A work directory with a state resumes after its last finished epoch. ``out_checkpoints`` receives
    copies of the kept checkpoints. Raises FineTuneError (LabelError, DivergedError) with a one-line
    reason.
    """
    import torch

    settings.validate()
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(bool(settings.deterministic) or previous)
    try:
        return _fine_tune(settings, Path(workdir), out_checkpoints, log)
    finally:
        torch.use_deterministic_algorithms(previous)


def _fine_tune(s: Settings, workdir: Path, out_checkpoints, log) -> dict:
    import warnings

    import sevenn._keys as KEY
    import torch
    from sevenn.logger import Logger
    from sevenn.model_build import build_E3_equivariant_model
    from sevenn.scripts.processing_continue import processing_continue_v2
    from sevenn.scripts.train import loader_from_config
    from sevenn.train.reewc import ReewcTrainer, build_memory_loader, reewc_dataset_keys
    from sevenn.train.trainer import Trainer
    from sevenn.util import load_checkpoint

    from platonic_mlip.embed.base import tune_cpu_allocator

    t_start = time.perf_counter()
    tune_cpu_allocator()  # glibc keeps freed per-edge buffers for reuse (see embed.sevenn); results unchanged
    pretrained_path = _resolve_pretrained(s.pretrained)
    fp = _fingerprint(s, pretrained_path)
    workdir = pin_workdir(workdir, fp)

    cp0 = load_checkpoint(pretrained_path)
    type_map = cp0.config[KEY.TYPE_MAP]
    data = _prepare_data(s, workdir, pretrained_path, type_map, log)

    _seed(int(s.seed))
    logger = Logger()
    if logger.logfile is not None:  # pragma: no cover - a caller's open sevenn log
        raise FineTuneError("sevenn's logger is already writing elsewhere; run one fine-tuning per process")
    logger.switch_file(str(workdir / "log.sevenn"))
    with logger, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weights_only.*")
        warnings.filterwarnings("ignore", message=".*tensor product accelerator.*")
        start = pretrained_path
        if s.arm == "multihead":
            start = _append_modal_checkpoint(s, workdir, pretrained_path, data)
        ycfg = yaml_config(s, start, _model_block(cp0), data)
        _dump_yaml(workdir / "input.yaml", ycfg)
        config = _read_config(workdir / "input.yaml")

        state_dicts, _ = processing_continue_v2(config)
        if config.get(KEY.USE_MODALITY, False):
            import sevenn.train.modal_dataset as modal_dataset

            datasets = modal_dataset.from_config(config, str(workdir))
        else:
            import sevenn.train.graph_dataset as graph_dataset

            datasets = graph_dataset.from_config(
                config, str(workdir), dataset_keys=reewc_dataset_keys(config)
            )
        loaders = {k: loader_from_config(config, v, is_train=(k == "trainset")) for k, v in datasets.items()}
        model = build_E3_equivariant_model(config)
        if s.arm == "replay":
            trainer = ReewcTrainer.from_config(model, config, memory_loader=build_memory_loader(config))
        else:
            trainer = Trainer.from_config(model, config)
        trainer.load_state_dicts(*state_dicts, strict=False)

        history, start_epoch, resumed_from = [], 1, None
        state_path = workdir / STATE
        if state_path.is_file():
            state = torch.load(state_path, map_location="cpu", weights_only=False)
            trainer.load_state_dicts(
                state["model_state_dict"], state["optimizer_state_dict"], state["scheduler_state_dict"]
            )
            _set_rng_state(state["rng"])
            history = state["history"]
            resumed_from = int(state["epoch"])
            start_epoch = resumed_from + 1
            log(f"arm {s.arm}: resuming after epoch {resumed_from} from {state_path}")

        from sevenn.error_recorder import ErrorRecorder

        recorder = ErrorRecorder.from_config(config, trainer.loss_functions)
        recorders = {k: ErrorRecorder.from_config(config, trainer.loss_functions) for k in loaders}
        memory_recorder = recorder if s.arm == "replay" else None
        keep = checkpoint_epochs(int(s.epochs), int(s.checkpoint_every))
        ckdir = workdir / "checkpoints"
        ckdir.mkdir(exist_ok=True)
        for epoch in range(start_epoch, int(s.epochs) + 1):
            t0 = time.perf_counter()
            lr = trainer.get_lr()
            errors = {}
            for k, loader in loaders.items():
                is_train = k == "trainset"
                rec = recorders[k]
                trainer.run_one_epoch(
                    loader, is_train, rec, memory_error_recorder=memory_recorder if is_train else None
                )
                errors[k] = rec.get_metric_dict(with_unit=False)
                rec.epoch_forward()
            if memory_recorder is not None:
                errors["memoryset"] = memory_recorder.get_metric_dict(with_unit=False)
                memory_recorder.epoch_forward()
            last_good = history[-1]["epoch"] if history else None
            check_divergence(s.arm, epoch, errors, lr, model=trainer.model, last_good=last_good)
            trainer.scheduler_step()
            row = {"epoch": epoch, "lr": lr, "wall_s": time.perf_counter() - t0, **errors}
            history.append(row)
            log(f"arm {s.arm} epoch {epoch}/{s.epochs}: {_summary_line(errors)} ({row['wall_s']:.1f} s)")
            if epoch in keep:
                cp = trainer.get_checkpoint_dict()  # sevenn's checkpoint format, written atomically
                cp.update(config=config, epoch=epoch)
                _save_torch(cp, ckdir / f"epoch_{epoch}.pth")
            state = trainer.get_checkpoint_dict()
            state.update(epoch=epoch, rng=_rng_state(), history=history)
            _save_torch(state, state_path)

    kept = []
    for epoch in checkpoint_epochs(int(s.epochs), int(s.checkpoint_every)):
        path = ckdir / f"epoch_{epoch}.pth"
        if not path.is_file():  # not kept by the earlier part of an extended run (other checkpoint_every)
            continue
        entry = {"epoch": epoch, "workdir_path": str(path), "sha256": sha256(path)}
        if out_checkpoints is not None:
            out_dir = Path(out_checkpoints)
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out_dir / path.name)
            entry["path"] = str((out_dir / path.name).resolve())
        kept.append(entry)
    summary = {
        "arm": s.arm,
        "settings": {**dataclasses.asdict(s), "modal_blocks": list(s.modal_blocks)},
        "pretrained_path": pretrained_path,
        "pretrained_sha256": fp["pretrained_sha256"],
        "inputs_sha256": {k: fp[f"{k}_sha256"] for k in ("train", "val", "replay")},
        "n_structures": data["counts"],
        "modals": (
            {"target": TARGET_MODAL, "pretrained": PRETRAINED_MODAL, "blocks": list(s.modal_blocks)}
            if s.arm == "multihead"
            else None
        ),
        "checkpoints": kept,
        "history": history,
        "resumed_from_epoch": resumed_from,
        "wall_time_s": time.perf_counter() - t_start,
        "torch_threads": torch.get_num_threads(),
        "deterministic": bool(s.deterministic),
        "mkl_cbwr": os.environ.get("MKL_CBWR"),
        "versions": fp["versions"],
        "workdir": str(workdir),
    }
    return summary


def _summary_line(errors: dict) -> str:
    parts = []
    for name, metrics in errors.items():
        e = metrics.get("Energy_RMSE")
        f = metrics.get("Force_RMSE")
        parts.append(f"{name} E_RMSE {e:.4f} eV/atom F_RMSE {f:.4f} eV/A")
    return "; ".join(parts)
