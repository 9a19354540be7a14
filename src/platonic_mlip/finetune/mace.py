"""Fine-tuning a MACE foundation model in the paper's two arms (Fig. 5a-e), inside the mace env.

The paper fine-tuned MACE-MP-0 small with mace's own trainer; so does this module: it builds a
``mace_run_train`` command line (``train_command``, a pure function), runs it as a subprocess with its
output captured in ``<workdir>/mace_run_train.log``, and turns mace's checkpoints into model files.

Arms (``Settings.arm``), both from one foundation ``.model`` file (``Settings.pretrained``: a local file,
or a key of mace's ``mace_mp_urls`` such as ``small``, fetched once into the weights cache by
``platonic_mlip.embed.mace.fetch_weights``; mace itself is always handed the local file):

``naive``      ``--foundation_model <file> --multiheads_finetuning False``: the whole model trained on the
               target data only (mace's loss ``weighted``, energy + forces; ``train_stress`` switches to
               ``stress``). The replay file, when given, is not used.
``multihead``  ``--foundation_model <file> --multiheads_finetuning True --pt_train_file <replay>``: mace
               builds a two-head model, ``pt_head`` (the foundation's head, trained on the replay data)
               and ``Default`` (the target head), with mace's ``universal`` loss. Unless ``Settings.lr``
               is given (then ``--force_mh_ft_lr True``), mace itself sets lr 1e-4 and EMA (decay 0.99999)
               for this mode.
``replay``     not supported for MACE (``FineTuneError``): mace has no single-head rehearsal; mixing the
               replay data into the one training set would be another method than sevenn's reEWC arm.

Common flags: ``--E0s foundation`` (every head keeps the foundation's isolated-atom energies: the target
labels are put on the foundation's energy reference by the data generator), ``--foundation_model_elements
True`` (the fine-tuned model keeps every element of the foundation; without it mace cuts the element table
down to the elements of the data and the unseen Au probes could not be evaluated at all), ``--eval_interval
1 --save_all_checkpoints --keep_checkpoints`` (a mace checkpoint after every epoch), ``--restart_latest``
(a rerun resumes), ``--plot False``.

Replay data (multihead) are the foundation's own labels: ``label_with_model`` runs ``MACECalculator`` on
the replay structures (``replay_labels="pretrained"``, the default) and the labelled file is passed as
``--pt_train_file``; offline, mace then never downloads its MPtrj replay set (it only does for the
foundation keys ``small``/``medium``/``large`` *without* a pt_train_file, and it silently drops to naive
fine-tuning for any other foundation without one, which ``Settings.validate`` prevents). mace's own
``--pseudolabel_replay`` would relabel the same way; ours leaves a file whose digest is pinned.

Data: every frame of train/val (and a ``replay_labels="file"`` replay set) must carry an energy and forces,
else ``LabelError`` names the file and frame (mace itself would only warn and train with zero weights).
Clean copies are written to ``<workdir>/data`` with the labels under mace's keys ``REF_energy``,
``REF_forces``, ``REF_stress`` (ASE swallows plain ``energy=`` into a calculator).

Epochs: mace counts from 0; epoch ``k`` here (1-based, as in the sevenn module) is mace's epoch ``k-1``
(checkpoint ``<tag>_epoch-<k-1>.pt``). Kept epochs (every ``checkpoint_every`` and the last) become full
model files ``epoch_<k>.model`` (the final model mace writes, with the checkpoint's weights loaded; EMA
weights where mace uses EMA, as mace saves them), loadable by ``MACECalculator(model_paths=...)``; for
multihead pick the head with ``head=``: ``HEADS["pretrained"]`` (``pt_head``) or ``HEADS["target"]``
(``Default``, also the calculator's default).

Resume: a killed run rerun on the same workdir calls mace again with ``--restart_latest``: mace loads the
newest checkpoint (model, optimizer, scheduler) and goes on from there. It is mace's restart, so it is not
bit-identical to an uninterrupted run: mace trains the checkpoint's epoch once more (its loop restarts at
the saved epoch number), the data-loader shuffling restarts from the seed and EMA restarts from the saved
weights. A checkpoint left unreadable by the kill is deleted first (mace would otherwise silently start
from the foundation). A finished run (``<workdir>/complete.json``) is not run again; ``epochs`` and
``checkpoint_every`` may grow between reruns (training goes on), other settings or inputs may not.

Divergence: mace does not stop on a NaN loss. Its metrics file (``results/<tag>_train.txt``, one JSON
line per optimizer step and per evaluation) is watched while it runs; the first non-finite loss or
error stops the run and raises ``DivergedError`` naming the arm and epoch.

Settings fields that apply (``Settings`` here has the sevenn names where they mean the same): arm, train,
val, replay, pretrained, replay_labels, epochs, seed, checkpoint_every, lr (None: mace's defaults),
batch_size, energy_weight/force_weight/stress_weight (None: mace's defaults), train_stress (naive only),
device. MACE only: default_dtype, valid_fraction (when ``val`` is None), e0s, extra_args (appended to the
command line verbatim). sevenn-only fields (gamma, huber_delta, modal_blocks, target_shift,
replay_batch_size, deterministic) do not exist here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from platonic_mlip.finetune import ARMS
from platonic_mlip.finetune.sevenn import checkpoint_epochs, clean_atoms
from platonic_mlip.finetune.workdir import (
    DivergedError,
    FineTuneError,
    LabelError,
    fingerprint,
    label_with_calculator,
    pin_workdir,
    prepare_data,
    sha256,
)

__all__ = [
    "ARMS",
    "HEADS",
    "SUPPORTED_ARMS",
    "DivergedError",
    "FineTuneError",
    "LabelError",
    "Settings",
    "build_foundation_model",
    "checkpoint_epochs",
    "fine_tune",
    "label_with_model",
    "make_foundation_model",
    "parse_metrics",
    "train_command",
]

SUPPORTED_ARMS = ("naive", "multihead")
#: mace's head names in a multihead fine-tuned model (the foundation's head and the new target head)
HEADS = {"pretrained": "pt_head", "target": "Default"}
COMPLETE_JSON = "complete.json"
LOG = "mace_run_train.log"
KEYS = {"energy": "REF_energy", "forces": "REF_forces", "stress": "REF_stress"}

#: a small architecture for tests (MACE-MP-0 small's hyperparameters, narrower and with a short element
#: table); ``make_foundation_model(architecture="small")`` builds the real MACE-MP-0 small architecture
TINY_OVERRIDES = dict(
    r_max=5.0,
    num_bessel=8,
    max_ell=2,
    hidden_irreps="16x0e",
    MLP_irreps="8x0e",
    correlation=2,
    radial_MLP=[16, 16],
    avg_num_neighbors=12.0,
    atomic_numbers=(13, 28, 29, 46, 47, 78, 79),  # Al Ni Cu Pd Ag Pt Au (EMT's metals)
)


@dataclasses.dataclass
class Settings:
    arm: str
    train: str
    val: str | None = None
    replay: str | None = None
    pretrained: str = "small"  # a .model file, or a key of mace's mace_mp_urls (fetched once)
    replay_labels: str = "pretrained"  # "pretrained": label with the foundation; "file": as given
    epochs: int = 2
    seed: int = 0
    checkpoint_every: int = 1
    lr: float | None = None  # None: mace's default (0.01; multihead: mace forces 1e-4 and EMA)
    batch_size: int = 4
    energy_weight: float | None = None  # None: mace's defaults (1.0)
    force_weight: float | None = None  # None: mace's default (100.0)
    stress_weight: float | None = None  # None: mace's default (1.0)
    train_stress: bool = False  # naive: mace loss "stress" instead of "weighted"
    device: str = "cpu"
    default_dtype: str = "float64"  # mace's default; float32 for quick tests
    valid_fraction: float = 0.1  # when val is None: mace splits this fraction off each head's train set
    e0s: str = "foundation"
    extra_args: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.arm not in ARMS:
            raise FineTuneError(f"unknown fine-tuning arm {self.arm!r}; choose from {', '.join(ARMS)}")
        if self.arm not in SUPPORTED_ARMS:
            raise FineTuneError(
                f"arm {self.arm!r} is not supported for MACE (only {', '.join(SUPPORTED_ARMS)}): mace has "
                "no single-head rehearsal; use the sevenn family for the replay arm"
            )
        if self.arm == "multihead" and not self.replay:
            raise FineTuneError(
                "arm 'multihead' needs replay structures (--replay): without a pt_train_file mace silently "
                "falls back to naive fine-tuning for a foundation file (or downloads MPtrj for its keys)"
            )
        if self.replay_labels not in ("pretrained", "file"):
            raise FineTuneError(f"replay_labels must be 'pretrained' or 'file', got {self.replay_labels!r}")
        if int(self.epochs) < 1 or int(self.checkpoint_every) < 1:
            raise FineTuneError(
                f"epochs ({self.epochs}) and checkpoint_every ({self.checkpoint_every}) must be >= 1"
            )
        if int(self.batch_size) < 1:
            raise FineTuneError(f"batch_size must be >= 1, got {self.batch_size!r}")
        for name in ("lr", "energy_weight", "force_weight", "stress_weight"):
            v = getattr(self, name)
            if v is None:
                continue
            ok = math.isfinite(float(v)) and (float(v) > 0 if name == "lr" else float(v) >= 0)
            if not ok:
                raise FineTuneError(
                    f"{name} must be a positive number (or None for mace's default), got {v!r}"
                )
        if self.default_dtype not in ("float32", "float64"):
            raise FineTuneError(f"default_dtype must be 'float32' or 'float64', got {self.default_dtype!r}")
        if self.val is None and not 0 < float(self.valid_fraction) < 1:
            raise FineTuneError(
                f"valid_fraction must be in (0, 1) when no val file is given, got {self.valid_fraction}"
            )
        if self.arm == "multihead" and str(self.e0s).lower() == "average":
            raise FineTuneError("arm 'multihead': mace refuses E0s 'average'; use 'foundation' (the default)")


# --------------------------------------------------------------------------------------------------
# the command line


def tag(s: Settings) -> str:
    """mace's run tag (``<name>_run-<seed>``): the prefix of its checkpoint, log and metrics files."""
    return f"ft_{s.arm}_run-{int(s.seed)}"


def train_command(s: Settings, paths: dict, executable: str = "mace_run_train") -> list[str]:
    """The ``mace_run_train`` command line of an arm.

    ``paths``: ``work_dir`` (mace's own directory: logs/, checkpoints/, results/, the final model),
    ``foundation`` (a local .model file), ``train``, optional ``val`` and (multihead) ``replay``: the clean
    data files with the labels under ``KEYS``."""
    if s.arm not in SUPPORTED_ARMS:
        raise FineTuneError(f"arm {s.arm!r} is not supported for MACE (only {', '.join(SUPPORTED_ARMS)})")
    multi = s.arm == "multihead"
    cmd = [
        str(executable),
        f"--name=ft_{s.arm}",
        f"--seed={int(s.seed)}",
        f"--work_dir={paths['work_dir']}",
        f"--foundation_model={paths['foundation']}",
        f"--multiheads_finetuning={multi}",
        f"--train_file={paths['train']}",
    ]
    if paths.get("val"):
        cmd.append(f"--valid_file={paths['val']}")
    else:
        cmd.append(f"--valid_fraction={float(s.valid_fraction)}")
    if multi:
        if not paths.get("replay"):
            raise FineTuneError("arm 'multihead' needs paths['replay'] (mace's --pt_train_file)")
        cmd.append(f"--pt_train_file={paths['replay']}")
    cmd += [
        f"--energy_key={KEYS['energy']}",
        f"--forces_key={KEYS['forces']}",
        f"--stress_key={KEYS['stress']}",
        f"--E0s={s.e0s}",
        "--foundation_model_elements=True",
        f"--max_num_epochs={int(s.epochs)}",
        f"--batch_size={int(s.batch_size)}",
        f"--valid_batch_size={int(s.batch_size)}",
    ]
    if s.lr is not None:
        cmd.append(f"--lr={float(s.lr)!r}")
        if multi:
            cmd.append("--force_mh_ft_lr=True")
    for name, flag in (("energy_weight", "energy"), ("force_weight", "forces"), ("stress_weight", "stress")):
        value = getattr(s, name)
        if value is not None:
            cmd.append(f"--{flag}_weight={float(value)!r}")
    if s.train_stress and not multi:
        cmd.append("--loss=stress")
    cmd += [
        f"--default_dtype={s.default_dtype}",
        f"--device={s.device}",
        "--eval_interval=1",
        "--save_all_checkpoints",
        "--keep_checkpoints",
        "--restart_latest",
        "--save_cpu",
        "--plot=False",
        "--error_table=PerAtomRMSE",
    ]
    cmd += [str(a) for a in s.extra_args]
    return cmd


# --------------------------------------------------------------------------------------------------
# models


def _import_mace():
    from platonic_mlip.embed.mace import _import_mace as imp

    imp()


def build_foundation_model(architecture: str = "small", seed: int = 0, atomic_energies=None):
    """A random-weight ScaleShiftMACE to stand in for a foundation model (real weights are not at hand).

    ``small``: the MACE-MP-0 small architecture, built by the embedder's untrained-control path
    (``embed.mace.build_random_model``); ``tiny``: the same with ``TINY_OVERRIDES`` (for tests).
    ``atomic_energies``: {Z: E0 (eV)} for the isolated-atom energies (zeros otherwise)."""
    import torch

    from platonic_mlip.embed.mace import build_random_model

    if architecture == "small":
        model = build_random_model("small", seed)
    elif architecture == "tiny":
        model = build_random_model("small", seed, overrides=TINY_OVERRIDES)
    else:
        raise FineTuneError(f"unknown foundation architecture {architecture!r}; choose 'small' or 'tiny'")
    if atomic_energies:
        zs = [int(z) for z in model.atomic_numbers]
        e0 = model.atomic_energies_fn.atomic_energies
        with torch.no_grad():
            for z, value in atomic_energies.items():
                if int(z) not in zs:
                    raise FineTuneError(f"atomic_energies: element Z={z} is not in the model's table {zs}")
                e0[..., zs.index(int(z))] = float(value)
    return model


def make_foundation_model(path: str | Path, architecture: str = "small", seed: int = 0, atomic_energies=None):
    """Write ``build_foundation_model(...)`` as a mace ``.model`` file (``torch.save`` of the module, as
    mace saves its models); returns the path."""
    import torch

    from platonic_mlip.io import atomic_path

    model = build_foundation_model(architecture, seed, atomic_energies)
    path = Path(path)
    with atomic_path(path, keep_suffix=True) as tmp:
        torch.save(model, tmp)
    return path


def _calculator(model_path, head: str | None, device: str, default_dtype: str):
    import logging
    import warnings

    _import_mace()
    from mace.calculators import MACECalculator

    root = logging.getLogger()
    level = root.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc = MACECalculator(
            model_paths=str(model_path), device=str(device), default_dtype=default_dtype, head=head
        )
    root.setLevel(level)
    if head is not None and head not in calc.available_heads:  # mace would fall back to the last head
        raise FineTuneError(f"{model_path}: no head {head!r}; the model's heads are {calc.available_heads}")
    return calc


def label_with_model(
    atoms_list: Sequence, model_path, head: str | None = None, device="cpu", default_dtype="float64"
) -> list:
    """The model's own energy, forces and (fully periodic cells) stress on each structure, as clean Atoms
    with those labels (``MACECalculator``; ``head`` of a multi-head model)."""
    return label_with_calculator(atoms_list, _calculator(model_path, head, device, default_dtype))


def _resolve_pretrained(source: str) -> str:
    if os.path.isfile(source):
        return os.path.abspath(source)
    from platonic_mlip.embed.mace import WeightsUnavailableError, fetch_weights

    try:
        return str(Path(fetch_weights(source, f"foundation {source}")[1]).resolve())
    except WeightsUnavailableError as err:
        raise FineTuneError(f"foundation model {source!r}: {err}") from err


def _load_model(path):
    import torch

    _import_mace()
    model = torch.load(str(path), map_location="cpu", weights_only=False)
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "atomic_numbers"):
        raise FineTuneError(f"{path} is not a MACE .model file ({type(model).__name__})")
    return model


# --------------------------------------------------------------------------------------------------
# data


def _mace_frame(atoms):
    """Clean Atoms with the labels under mace's keys (no calculator: ASE would swallow 'energy')."""
    res = dict(atoms.calc.results) if atoms.calc is not None else {}
    out = clean_atoms(atoms)
    if "energy" in res:
        out.info[KEYS["energy"]] = float(res["energy"])
    if "forces" in res:
        out.arrays[KEYS["forces"]] = np.asarray(res["forces"], dtype=float)
    if res.get("stress") is not None:
        from ase.stress import voigt_6_to_full_3x3_stress

        stress = np.asarray(res["stress"], dtype=float)
        out.info[KEYS["stress"]] = voigt_6_to_full_3x3_stress(stress) if stress.shape == (6,) else stress
    return out


def _write_extxyz(path: Path, atoms_list: Sequence) -> None:
    import ase.io

    from platonic_mlip.io import atomic_path

    with atomic_path(path) as tmp:
        ase.io.write(str(tmp), [_mace_frame(a) for a in atoms_list], format="extxyz")


def _prepare_data(s: Settings, workdir: Path, foundation: str, zs: set, log) -> dict:
    return prepare_data(
        s,
        workdir,
        zs,
        label=lambda atoms: label_with_model(
            atoms, foundation, device=s.device, default_dtype=s.default_dtype
        ),
        write=_write_extxyz,
        log=log,
        replay=s.arm == "multihead",
    )


# --------------------------------------------------------------------------------------------------
# mace's metrics file


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return True


def parse_metrics(path: str | Path) -> tuple[list[dict], list[str]]:
    """Per-epoch history from mace's metrics file (JSON lines, ``mode`` ``opt`` per step, ``eval`` per
    head and evaluation) and the non-finite values found (``"epoch <k> <what> = <v>"``, 1-based epochs).

    A restarted run appends a new block (starting with its initial evaluation, ``epoch: null``); its
    epochs replace those of the earlier block. History rows: ``{"epoch": k, "train_loss": mean step loss,
    "n_steps": ..., "valid": {head: {loss, rmse_e_per_atom, rmse_f, ...}}}``."""
    path = Path(path)
    if not path.is_file():
        return [], []
    runs: list[list[dict]] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        new_run = rec.get("mode") == "eval" and rec.get("epoch") is None
        if new_run and runs and any(r.get("epoch") is not None for r in runs[-1]):
            runs.append([])  # a restart's initial evaluation (one line per head)
        if not runs:
            runs.append([])
        runs[-1].append(rec)
    epochs: dict[int, dict] = {}
    bad = []
    for run in runs:
        seen: dict[int, dict] = {}
        for rec in run:
            if rec.get("epoch") is None:
                continue
            k = int(rec["epoch"]) + 1
            row = seen.setdefault(k, {"epoch": k, "losses": [], "valid": {}})
            if rec.get("mode") == "opt":
                row["losses"].append(rec.get("loss"))
            elif rec.get("mode") == "eval":
                row["valid"][str(rec.get("head", "Default"))] = {
                    key: v for key, v in rec.items() if key not in ("mode", "epoch", "head") and v is not None
                }
            for key, v in rec.items():
                if key not in ("mode", "epoch", "head", "time") and not _finite(v):
                    where = "train step" if rec.get("mode") == "opt" else f"valid head {rec.get('head')}"
                    bad.append(f"epoch {k} {where} {key} = {v}")
        epochs.update(seen)
    history = []
    for k in sorted(epochs):
        row = epochs[k]
        losses = [float(x) for x in row.pop("losses") if x is not None]
        row["n_steps"] = len(losses)
        row["train_loss"] = float(np.mean(losses)) if losses else None
        history.append(
            {"epoch": k, "train_loss": row["train_loss"], "n_steps": row["n_steps"], "valid": row["valid"]}
        )
    return history, bad


def _diverged(arm: str, bad: list[str], lr) -> DivergedError:
    epoch = bad[0].split()[1]
    return DivergedError(
        f"fine-tuning arm {arm!r} (MACE) diverged at epoch {epoch} (learning rate "
        f"{'mace default' if lr is None else f'{lr:g}'}): {'; '.join(bad[:4])}. Lower the learning rate "
        "(or the loss weights) and start the arm again in a fresh work directory."
    )


# --------------------------------------------------------------------------------------------------
# the run


def _versions() -> dict:
    from importlib.metadata import version

    import torch

    return {"mace-torch": version("mace-torch"), "torch": torch.__version__}


def _fingerprint(s: Settings, foundation: str) -> dict:
    return fingerprint(s, foundation, _versions(), extra_args=list(s.extra_args))


def _mace_checkpoints(ckdir: Path, run_tag: str) -> dict[int, Path]:
    """{mace epoch: path} of the (non-SWA) checkpoints of ``run_tag``."""
    out = {}
    prefix = f"{run_tag}_epoch-"
    for p in ckdir.glob(f"{prefix}*.pt") if ckdir.is_dir() else []:
        rest = p.name[len(prefix) : -len(".pt")]
        if rest.isdigit():
            out[int(rest)] = p
    return out


def _drop_broken_checkpoints(ckdir: Path, run_tag: str, log) -> int | None:
    """Delete unreadable newest checkpoints (a kill while mace wrote one, mace's writes are not atomic);
    return the newest good mace epoch."""
    import torch

    for epoch, path in sorted(_mace_checkpoints(ckdir, run_tag).items(), reverse=True):
        try:
            ck = torch.load(str(path), map_location="cpu", weights_only=False)
            if not isinstance(ck, dict) or "model" not in ck:
                raise ValueError("no 'model' state dict")
            return epoch
        except Exception as err:  # noqa: BLE001 (truncated pickle/zip, anything)
            log(f"deleting unreadable checkpoint {path} ({type(err).__name__}: {err})")
            path.unlink()
    return None


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _mace_executable() -> str:
    exe = Path(sys.executable).parent / "mace_run_train"
    if exe.is_file():
        return str(exe)
    found = shutil.which("mace_run_train")
    if not found:
        raise FineTuneError(
            "mace_run_train not found next to this python nor on PATH: run in the mace environment"
        )
    return found


def _run_mace(cmd: list[str], s: Settings, workdir: Path, metrics: Path, log) -> None:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(_torch_threads()))
    env.setdefault("PYTHONUNBUFFERED", "1")
    logpath = workdir / LOG
    with open(logpath, "a", encoding="utf-8") as fh:
        fh.write(f"\n# {time.ctime()}: {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=str(workdir), env=env)
        try:
            while True:
                try:
                    rc = proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    rc = None
                _, bad = parse_metrics(metrics)
                if bad:
                    proc.terminate()
                    proc.wait(timeout=30)
                    raise _diverged(s.arm, bad, s.lr)
                if rc is not None:
                    break
        except BaseException:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            raise
    if rc != 0:
        tail = logpath.read_text(errors="replace").splitlines()[-15:]
        raise FineTuneError(
            f"arm {s.arm!r}: mace_run_train exited with status {rc}; see {logpath}. Last lines:\n"
            + "\n".join(tail)
        )


def fine_tune(
    settings: Settings,
    workdir: str | Path,
    out_checkpoints: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run (or resume) one arm with ``mace_run_train``; return the summary (settings, checkpoints,
    per-epoch history, heads, timings). ``out_checkpoints`` receives ``epoch_<k>.model`` copies of the
    kept epochs. Raises FineTuneError (LabelError, DivergedError) with a one-line reason."""
    from platonic_mlip.io import write_json

    s = settings
    s.validate()
    t_start = time.perf_counter()
    foundation = _resolve_pretrained(s.pretrained)
    fp = _fingerprint(s, foundation)
    workdir = pin_workdir(workdir, fp)

    foundation_model = _load_model(foundation)
    zs = {int(z) for z in foundation_model.atomic_numbers}
    del foundation_model
    data = _prepare_data(s, workdir, foundation, zs, log)

    mdir = workdir / "mace"
    run_tag = tag(s)
    ckdir = mdir / "checkpoints"
    metrics = mdir / "results" / f"{run_tag}_train.txt"
    paths = {
        "work_dir": str(mdir),
        "foundation": foundation,
        **{k: data.get(k) for k in ("train", "val", "replay")},
    }
    cmd = train_command(s, paths, executable=_mace_executable())
    final_model = mdir / f"ft_{s.arm}.model"

    done = workdir / COMPLETE_JSON
    complete = done.is_file() and json.loads(done.read_text()).get("epochs") == int(s.epochs)
    resumed_from = None
    if not complete:
        done.unlink(missing_ok=True)
        last = _drop_broken_checkpoints(ckdir, run_tag, log)
        if last is not None:
            resumed_from = last + 1
            log(
                f"arm {s.arm}: resuming from mace's checkpoint of epoch {resumed_from} (mace trains that "
                "epoch once more)"
            )
        log(f"arm {s.arm}: {' '.join(cmd)}")
        _run_mace(cmd, s, workdir, metrics, log)
        write_json(done, {"epochs": int(s.epochs), "when": time.ctime()})

    history, bad = parse_metrics(metrics)
    if bad:  # pragma: no cover - caught while running
        raise _diverged(s.arm, bad, s.lr)
    for row in history:
        log(f"arm {s.arm} epoch {row['epoch']}/{s.epochs}: {_summary_line(row)}")

    kept = _export(s, final_model, ckdir, run_tag, workdir, out_checkpoints)
    heads = list(getattr(_load_model(final_model), "heads", None) or ["Default"])
    summary = {
        "family": "mace",
        "arm": s.arm,
        "settings": {**dataclasses.asdict(s), "extra_args": list(s.extra_args)},
        "pretrained_path": foundation,
        "pretrained_sha256": fp["pretrained_sha256"],
        "inputs_sha256": {k: fp[f"{k}_sha256"] for k in ("train", "val", "replay")},
        "n_structures": data["counts"],
        "heads": (
            {"pretrained": HEADS["pretrained"], "target": HEADS["target"], "all": heads}
            if s.arm == "multihead"
            else {"target": heads[-1], "all": heads}
        ),
        "command": cmd,
        "checkpoints": kept,
        "history": history,
        "resumed_from_epoch": resumed_from,
        "wall_time_s": time.perf_counter() - t_start,
        "threads": int(os.environ.get("OMP_NUM_THREADS") or _torch_threads()),
        "versions": fp["versions"],
        "workdir": str(workdir),
        "mace_log": str(workdir / LOG),
    }
    return summary


def _export(
    s: Settings, final_model: Path, ckdir: Path, run_tag: str, workdir: Path, out_checkpoints
) -> list:
    """Full model files of the kept epochs: mace's final model with each checkpoint's weights."""
    import copy

    import torch

    from platonic_mlip.io import atomic_path

    if not final_model.is_file():
        raise FineTuneError(f"arm {s.arm!r}: mace_run_train finished without writing {final_model}")
    base = _load_model(final_model)
    ckpts = _mace_checkpoints(ckdir, run_tag)
    mdir = workdir / "models"
    mdir.mkdir(exist_ok=True)
    kept = []
    for epoch in checkpoint_epochs(int(s.epochs), int(s.checkpoint_every)):
        src = ckpts.get(epoch - 1)
        if src is None:
            raise FineTuneError(
                f"arm {s.arm!r}: mace wrote no checkpoint for epoch {epoch} "
                f"({ckdir}/{run_tag}_epoch-{epoch - 1}.pt)"
            )
        dst = mdir / f"epoch_{epoch}.model"
        if not dst.is_file() or dst.stat().st_mtime < src.stat().st_mtime:
            state = torch.load(str(src), map_location="cpu", weights_only=False)["model"]
            model = copy.deepcopy(base)
            model.load_state_dict(state, strict=True)
            with atomic_path(dst, keep_suffix=True) as tmp:
                torch.save(model, tmp)
        entry = {
            "epoch": epoch,
            "workdir_path": str(dst),
            "mace_checkpoint": str(src),
            "sha256": sha256(dst),
        }
        if s.arm == "multihead":
            entry["heads"] = dict(HEADS)
        if out_checkpoints is not None:
            out_dir = Path(out_checkpoints)
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dst, out_dir / dst.name)
            entry["path"] = str((out_dir / dst.name).resolve())
        kept.append(entry)
    return kept


def _summary_line(row: dict) -> str:
    parts = [f"train loss {row['train_loss']:.4g}" if row.get("train_loss") is not None else "train loss -"]
    for head, m in row.get("valid", {}).items():
        e, f = m.get("rmse_e_per_atom"), m.get("rmse_f")
        if e is not None and f is not None:
            parts.append(f"valid[{head}] E_RMSE {e:.4f} eV/atom F_RMSE {f:.4f} eV/A")
    return "; ".join(parts)
