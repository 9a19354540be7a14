"""Evaluate the checkpoints of one fine-tuning arm (paper Fig. 5a-e); runs in the model family's env.

For the pretrained model (epoch 0) and every checkpoint the arm kept (``--summary``, written by
finetune.py), with the same adapters as the embedding jobs:

* embeddings of every atom of ``--structures`` (finetune_probes: Au probes, held-out Cu, the anchor
  structures) at the run's layer of ``--model``;
* Au-Au and Cu-Cu dimer curves (``--pairs``, ``--distances``; binding energies, ``platonic_mlip.dimers``);
* energy and force errors on ``--cu-test`` and ``--au`` (labelled extxyz) against their labels (EMT
  shifted to the pretrained reference in the embedded default) and against the pretrained model's own
  predictions (forgetting, whatever the labels' quality).

Multi-head checkpoints: embeddings and the ``target`` rows use the new head (the model as deployed for
Cu); the ``pretrained`` head's dimers and errors are reported too (column ``head``).

Outputs, each written atomically and ``--out-json`` last (the job is complete only when it exists):
``--out-npz`` (embeddings float32 (n_checkpoints, n_atoms, dim), epochs, labels), ``--out-dimers``
(arm, epoch, head, pair, r, energy), ``--out-accuracy`` (arm, epoch, head, set, n_structures, n_atoms,
energy_rmse_meV_atom, force_rmse_eV_A, energy_rmse_vs_pretrained_meV_atom, force_rmse_vs_pretrained_eV_A).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.finetune import HEAD_OPTION, summary_heads
from platonic_mlip.io import atomic_path, write_csv, write_json

PRETRAINED = "pretrained"


def checkpoint_list(summary_path: str | None) -> tuple[str, list[dict]]:
    """(arm, [{epoch, path, sha256, heads}]) of a fine-tuning summary; epoch 0 is the pretrained model.
    ``heads``: [(role, the family's head name)], role "target"/"pretrained", or [(None, None)]."""
    if not summary_path:
        return PRETRAINED, []
    with open(summary_path) as fh:
        summary = json.load(fh)
    arm = str(summary["arm"])
    names = summary_heads(summary)
    heads = [("target", names["target"]), ("pretrained", names["pretrained"])] if names else [(None, None)]
    out = []
    for c in summary["checkpoints"]:
        path = c.get("path") or c["workdir_path"]
        if not os.path.isfile(path):
            raise SystemExit(f"ERROR: {summary_path}: checkpoint of epoch {c['epoch']} missing: {path}")
        out.append({"epoch": int(c["epoch"]), "path": path, "sha256": c["sha256"], "heads": heads})
    if not out:
        raise SystemExit(f"ERROR: {summary_path}: the arm kept no checkpoint")
    return arm, out


def labelled_frames(path: str, role: str):
    from ase.io import read

    frames = read(path, index=":", format="extxyz")
    energies, forces = [], []
    for i, a in enumerate(frames):
        try:
            energies.append(float(a.get_potential_energy()))
            forces.append(np.asarray(a.get_forces(), dtype=float))
        except Exception as err:
            raise SystemExit(f"ERROR: {role} {path}: frame {i} has no energy or forces ({err})") from err
        a.calc = None
    return frames, np.asarray(energies), forces


def predict(calc, frames, where: str) -> tuple[np.ndarray, list[np.ndarray]]:
    energies, forces = [], []
    for i, a in enumerate(frames):
        b = a.copy()
        b.calc = calc
        try:
            e, f = float(b.get_potential_energy()), np.asarray(b.get_forces(), dtype=float)
        except Exception as err:
            raise SystemExit(f"ERROR: {where}: structure {i} ({a.info.get('material_id')}): {err}") from err
        if not (np.isfinite(e) and np.isfinite(f).all()):
            raise SystemExit(
                f"ERROR: {where}: structure {i} ({a.info.get('material_id')}): non-finite output"
            )
        energies.append(e)
        forces.append(f)
    return np.asarray(energies), forces


def rmse(e_pred, f_pred, e_ref, f_ref, n_atoms) -> tuple[float, float]:
    """Energy RMSE per atom (meV/atom) and force RMSE over components (eV/A)."""
    de = (np.asarray(e_pred) - np.asarray(e_ref)) / np.asarray(n_atoms)
    df = np.concatenate([(a - b).ravel() for a, b in zip(f_pred, f_ref, strict=True)])
    return float(np.sqrt(np.mean(de**2)) * 1000), float(np.sqrt(np.mean(df**2)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="the pretrained model (a run model, name[@layer])")
    ap.add_argument("--options", default="{}", help="JSON model_options of the pretrained model")
    ap.add_argument("--weights-file", default=None)
    ap.add_argument("--summary", default=None, help="finetune.py's summary JSON (omit: pretrained only)")
    ap.add_argument("--structures", required=True, help="finetune_probes' structures.npz")
    ap.add_argument("--cu-test", required=True)
    ap.add_argument("--au", required=True)
    ap.add_argument("--pairs", nargs="+", default=["Au-Au", "Cu-Cu"])
    ap.add_argument("--distances", nargs="+", type=float, required=True)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-atoms", type=int, default=500)
    ap.add_argument("--out-npz", required=True)
    ap.add_argument("--out-dimers", required=True)
    ap.add_argument("--out-accuracy", required=True)
    ap.add_argument("--out-json", required=True)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    import torch

    from platonic_mlip import dimers as dm
    from platonic_mlip.embed.base import embed_structures, load_calculator, load_embedder, local_weights
    from platonic_mlip.models import ConfigError, resolve
    from platonic_mlip.structures import load_structures
    from platonic_mlip.weights import WeightsError

    if args.threads:
        torch.set_num_threads(args.threads)
    arm, checkpoints = checkpoint_list(args.summary)
    try:
        base = resolve(args.model, json.loads(args.options))
        base_spec, _ = local_weights(base, args.weights_file)
    except (ConfigError, WeightsError) as err:
        raise SystemExit(f"ERROR: {err}") from None
    atoms_list, ids = load_structures(args.structures)
    cu, cu_e, cu_f = labelled_frames(args.cu_test, "Cu test")
    au, au_e, au_f = labelled_frames(args.au, "Au probes")
    sets = {"cu_test": (cu, cu_e, cu_f), "au_probe": (au, au_e, au_f)}

    def spec_of(entry, head):
        if entry is None:
            return base_spec
        options = {**json.loads(args.options), "source": entry["path"], "sha256": entry["sha256"]}
        if head[1]:
            options[HEAD_OPTION[base["family"]]] = head[1]
        try:
            spec, _ = local_weights(resolve(args.model, options))
        except (ConfigError, WeightsError) as err:
            raise SystemExit(f"ERROR: arm {arm} epoch {entry['epoch']}: {err}") from None
        return spec

    runs = [(0, None, [(None, None)])] + [(c["epoch"], c, c["heads"]) for c in checkpoints]
    feats, epochs, curves, rows, pretrained_pred = [], [], [], [], {}
    for epoch, entry, heads in runs:
        label = f"{args.model} {arm} epoch {epoch}"
        t0 = time.perf_counter()
        spec = spec_of(entry, heads[0])
        embedder = load_embedder(spec, args.device)
        x, _ = embed_structures(embedder, atoms_list, ids, batch_atoms=args.batch_atoms, progress=False)
        feats.append(x)
        epochs.append(epoch)
        del embedder
        t_embed = time.perf_counter() - t0
        for head in heads:
            calc = load_calculator(spec_of(entry, head), args.device)
            name = head[0] or "single"
            frame = dm.calculator_curves({arm: calc}, pairs=args.pairs, distances=args.distances)
            frame.insert(1, "epoch", epoch)
            frame.insert(2, "head", name)
            curves.append(frame)
            for set_name, (frames, e_ref, f_ref) in sets.items():
                e, f = predict(calc, frames, f"{label} ({name} head) on {set_name}")
                if epoch == 0:
                    pretrained_pred[set_name] = (e, f)
                n = [len(a) for a in frames]
                e_rmse, f_rmse = rmse(e, f, e_ref, f_ref, n)
                e_pt, f_pt = rmse(e, f, *pretrained_pred[set_name], n)
                rows.append(
                    dict(
                        arm=arm,
                        epoch=epoch,
                        head=name,
                        set=set_name,
                        n_structures=len(frames),
                        n_atoms=int(sum(n)),
                        energy_rmse_meV_atom=e_rmse,
                        force_rmse_eV_A=f_rmse,
                        energy_rmse_vs_pretrained_meV_atom=e_pt,
                        force_rmse_vs_pretrained_eV_A=f_pt,
                    )
                )
        print(
            f"{label}: embedded {len(x)} atoms in {t_embed:.1f} s, {len(heads)} head(s) evaluated in "
            f"{time.perf_counter() - t0 - t_embed:.1f} s",
            flush=True,
        )

    with atomic_path(args.out_npz, keep_suffix=True) as tmp:
        np.savez_compressed(
            tmp, embeddings=np.stack(feats).astype(np.float32), epochs=np.asarray(epochs), arm=np.asarray(arm)
        )
    write_csv(args.out_dimers, pd.concat(curves, ignore_index=True))
    write_csv(args.out_accuracy, pd.DataFrame(rows))
    write_json(
        args.out_json,
        {
            "arm": arm,
            "model": args.model,
            "epochs": epochs,
            "n_atoms": int(feats[0].shape[0]),
            "dim": int(feats[0].shape[1]),
            "wall_time_s": time.perf_counter() - t_start,
        },
    )


if __name__ == "__main__":
    run(main)
