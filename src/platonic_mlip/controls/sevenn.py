"""Trained controls of the SevenNet architecture (``platonic_mlip.controls``), inside the sevenn env.

The network is the run's untrained control of ``settings.architecture`` (``embed.sevenn.build_random``:
the same seed gives the same starting weights), trained by a loop of ours over sevenn's own graphs
(``unlabeled_atoms_to_graph``, batched by torch_geometric) and sevenn's own forward (energy, and forces as
the negative gradient with respect to the edge vectors, ``create_graph`` in training mode).

Resumable: ``<workdir>/state.pth`` (model, optimiser, history) is replaced atomically after every epoch; a
killed job rerun on the same workdir continues after the last finished epoch with the same result, since
the batch order of an epoch is seeded by (seed, epoch). ``<workdir>/run.json`` pins the settings and the
digest of the training structures: a rerun with others is refused. The distillation labels are computed
once with the teacher's own ASE calculator and cached in ``<workdir>/labels.npz``.

The result is a sevenn checkpoint (``config``, ``model_state_dict``, ``epoch``, ``time``, ``hash``) that
``sevenn.util.load_checkpoint``, ``SevenNetCalculator`` and this project's embedder load like any other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from platonic_mlip.controls import ControlError, Settings, training_set

STATE = "state.pth"
RUN_JSON = "run.json"
LABELS = "labels.npz"


def _digest(atoms_list) -> str:
    h = hashlib.sha256()
    for a in atoms_list:
        for arr in (a.numbers, a.positions, np.asarray(a.cell), a.pbc):
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _save(obj, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _pin(workdir: Path, fingerprint: dict) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / RUN_JSON
    if path.is_file():
        old = json.loads(path.read_text())
        same = {k: v for k, v in old.items() if k != "settings"} == {
            k: v for k, v in fingerprint.items() if k != "settings"
        }
        o, n = dict(old["settings"]), dict(fingerprint["settings"])
        o.pop("epochs"), n.pop("epochs")  # more epochs continue the same run
        if not same or o != n:
            raise ControlError(
                f"{workdir}: holds a training run with other settings or structures ({path}); remove the "
                "directory to start again"
            )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(fingerprint, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _graph_batch(atoms_list, cutoff: float, device):
    import sevenn._keys as KEY
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph
    from torch_geometric.data import Batch

    graphs = []
    for atoms in atoms_list:
        g = unlabeled_atoms_to_graph(atoms, cutoff)
        g.pop(KEY.INFO, None)
        graphs.append(AtomGraphData.from_numpy_dict(g))
    return Batch.from_data_list(graphs).to(device)


def predict(model, atoms_list, cutoff: float, device):
    """(energies (B,), forces (sum n, 3)) of a batch, as tensors with the autograd graph of the model's
    mode (training: differentiable forces)."""
    import sevenn._keys as KEY

    out = model(_graph_batch(atoms_list, cutoff, device))
    return out[KEY.PRED_TOTAL_ENERGY].reshape(-1), out[KEY.PRED_FORCE]


def teacher_labels(atoms_list, teacher: str, device="cpu", batch_size: int = 16):
    """Energies (B,) and forces [(n, 3)] of the teacher checkpoint (a key or a file) on ``atoms_list``:
    the checkpoint's own model in eval mode, batched (the values of its ASE calculator; tested)."""
    import sevenn.util as util

    from platonic_mlip.embed.sevenn import resolve_checkpoint

    model = util.load_checkpoint(resolve_checkpoint(teacher)).build_model()
    model.set_is_batch_data(True)
    model.to(device)
    model.eval()
    cutoff = float(model.cutoff) if hasattr(model, "cutoff") else None
    if cutoff is None:
        cutoff = float(util.load_checkpoint(resolve_checkpoint(teacher)).config["cutoff"])
    energies, forces = [], []
    for start in range(0, len(atoms_list), batch_size):
        chunk = list(atoms_list[start : start + batch_size])
        energy, force = predict(model, chunk, cutoff, device)
        energies.append(energy.detach().cpu().numpy().astype(np.float64))
        flat = force.detach().cpu().numpy().astype(np.float64)
        forces += np.split(flat, np.cumsum([len(a) for a in chunk])[:-1])
    return np.concatenate(energies), forces


def _losses(s: Settings, energy, force, batch, n_atoms, device):
    import torch

    idx = batch["index"]
    if s.objective == "denoise":
        target = torch.as_tensor(np.concatenate([batch["target"][i] for i in idx]), device=device)
        return {"loss": torch.mean((force - target.to(force.dtype)) ** 2)}
    e_t = torch.as_tensor(batch["energy"][idx], device=device, dtype=energy.dtype)
    f_t = torch.as_tensor(np.concatenate([batch["forces"][i] for i in idx]), device=device, dtype=force.dtype)
    n = torch.as_tensor(n_atoms, device=device, dtype=energy.dtype)
    e_loss = torch.mean(((energy - e_t) / n) ** 2)
    f_loss = torch.mean((force - f_t) ** 2)
    return {
        "loss": float(s.energy_weight) * e_loss + float(s.force_weight) * f_loss,
        "energy_mse": e_loss,
        "force_mse": f_loss,
    }


def evaluate(model, data, labels: dict, cutoff: float, device, batch_size: int = 16) -> dict:
    """Errors of ``model`` on the training set, in eval mode: denoising RMSE (force output vs -eps) and,
    with teacher labels, energy MAE per atom (eV/atom) and force MAE (eV/A) against the teacher."""
    model.eval()
    f_err, e_err, d_err, n_f = [], [], [], 0
    for start in range(0, len(data), batch_size):
        chunk = data[start : start + batch_size]
        atoms = [a for a, _ in chunk]
        energy, force = predict(model, atoms, cutoff, device)
        energy, force = energy.detach().cpu().numpy(), force.detach().cpu().numpy()
        sizes = np.array([len(a) for a in atoms])
        target = np.concatenate([t for _, t in chunk])
        d_err.append(((force - target) ** 2).sum())
        n_f += force.size
        if "energy" in labels:
            sel = np.arange(start, start + len(chunk))
            e_err.append(np.abs(energy - labels["energy"][sel]) / sizes)
            f_err.append(np.abs(force - np.concatenate([labels["forces"][i] for i in sel])).ravel())
    out = {"denoise_rmse": float(np.sqrt(sum(d_err) / n_f))}
    if e_err:
        out["energy_mae_per_atom"] = float(np.concatenate(e_err).mean())
        out["force_mae"] = float(np.concatenate(f_err).mean())
    model.train()
    return out


def train(
    settings: Settings,
    atoms_list: Sequence,
    workdir: str | Path,
    out_checkpoint: str | Path,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict:
    """Train (or resume) one control on ``atoms_list`` (already selected); write the sevenn checkpoint
    ``out_checkpoint`` and return the summary (settings, history, errors before and after, timings)."""
    import sevenn._keys as KEY
    import torch

    from platonic_mlip.embed.sevenn import build_random

    s = settings
    s.validate()
    t_start = time.perf_counter()
    workdir = Path(workdir)
    device = torch.device(device)
    data = training_set(atoms_list, s)
    fingerprint = {
        "settings": dataclasses.asdict(s),
        "structures_sha256": _digest(atoms_list),
        "n_structures": len(atoms_list),
    }
    _pin(workdir, fingerprint)
    model, config, cp_path = build_random(s.architecture, s.seed, overrides=s.overrides)
    cutoff = float(config[KEY.CUTOFF])
    known = {int(z) for z in config[KEY.TYPE_MAP]}
    bad = sorted({int(z) for a in atoms_list for z in a.numbers} - known)
    if bad:
        raise ControlError(f"architecture {s.architecture}: no element table entry for atomic numbers {bad}")
    model.set_is_batch_data(True)
    model.to(device)
    model.train()
    for p in model.parameters():
        p.requires_grad_(True)

    labels: dict = {"target": [t for _, t in data]}
    if s.objective == "distill":
        path = workdir / LABELS
        if path.is_file():
            with np.load(path) as z:
                energy, flat, sizes = z["energy"], z["forces"], z["n_atoms"]
            forces = np.split(flat, np.cumsum(sizes)[:-1])
        else:
            t0 = time.perf_counter()
            energy, forces = teacher_labels([a for a, _ in data], s.teacher, device)
            tmp = workdir / (LABELS + ".tmp.npz")
            np.savez(tmp, energy=energy, forces=np.concatenate(forces), n_atoms=[len(f) for f in forces])
            os.replace(tmp, path)
            log(f"teacher {s.teacher}: labelled {len(data)} structures in {time.perf_counter() - t0:.1f} s")
        labels.update(energy=np.asarray(energy), forces=list(forces))

    opt = torch.optim.Adam(model.parameters(), lr=float(s.lr))
    history, start_epoch, resumed = [], 1, None
    state_path = workdir / STATE
    before = None
    if state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model_state_dict"])
        opt.load_state_dict(state["optimizer_state_dict"])
        history, before = state["history"], state["before"]
        resumed = int(state["epoch"])
        start_epoch = resumed + 1
        log(f"{s.objective}: resuming after epoch {resumed}")
    if before is None:
        before = evaluate(model, data, labels, cutoff, device)
    for epoch in range(start_epoch, int(s.epochs) + 1):
        t0 = time.perf_counter()
        order = np.random.default_rng([int(s.seed), epoch]).permutation(len(data))
        sums: dict[str, float] = {}
        steps = 0
        for start in range(0, len(order), int(s.batch_size)):
            idx = order[start : start + int(s.batch_size)]
            atoms = [data[i][0] for i in idx]
            energy, force = predict(model, atoms, cutoff, device)
            losses = _losses(s, energy, force, dict(labels, index=idx), [len(a) for a in atoms], device)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            steps += 1
        row = {"epoch": epoch, "wall_s": time.perf_counter() - t0, **{k: v / steps for k, v in sums.items()}}
        if not all(np.isfinite(v) for v in row.values()):
            raise ControlError(f"{s.objective}: non-finite loss at epoch {epoch}: {row}")
        history.append(row)
        log(f"{s.objective} epoch {epoch}/{s.epochs}: loss {row['loss']:.4g} ({row['wall_s']:.1f} s)")
        _save(
            {
                "model_state_dict": model.state_dict(),
                "optimizer_state_dict": opt.state_dict(),
                "history": history,
                "before": before,
                "epoch": epoch,
            },
            state_path,
        )
    after = evaluate(model, data, labels, cutoff, device)
    out = Path(out_checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    cp = {
        "config": config,
        "model_state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "epoch": int(s.epochs),
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "hash": uuid.uuid4().hex,
    }
    _save(cp, out)
    return {
        "objective": s.objective,
        "settings": dataclasses.asdict(s),
        "architecture_path": str(cp_path),
        "n_structures": len(atoms_list),
        "n_training_structures": len(data),
        "n_atoms": int(sum(len(a) for a, _ in data)),
        "history": history,
        "before": before,
        "after": after,
        "resumed_from_epoch": resumed,
        "wall_time_s": time.perf_counter() - t_start,
        "torch_threads": torch.get_num_threads(),
    }
