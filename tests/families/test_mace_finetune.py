"""MACE fine-tuning arms (paper Fig. 5a-e) with ``mace_run_train`` on a tiny EMT-labelled Cu set, CPU.

Run in the mace environment: ``.venvs/mace/bin/python -m pytest -q tests/families/test_mace_finetune.py``.
The foundation is a random-weight MACE of a narrow MACE-MP-0-small-like architecture (``tiny``; real
MACE-MP-0 weights cannot be downloaded here), the data six small Cu cells (EMT labels) for training and
two for validation. Each real run is two epochs of ``mace_run_train`` in float32 (~20 s each); the whole
module takes about 1.5 minutes on two threads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mace")

import torch  # noqa: E402

from platonic_mlip.finetune.mace import (  # noqa: E402
    HEADS,
    KEYS,
    DivergedError,
    FineTuneError,
    LabelError,
    Settings,
    fine_tune,
    label_with_model,
    make_foundation_model,
    parse_metrics,
    tag,
    train_command,
)

pytestmark = [
    pytest.mark.family("mace"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning"),
]

ROOT = Path(__file__).resolve().parents[2]
THREADS = 2


@pytest.fixture(scope="module", autouse=True)
def _threads():
    torch.set_num_threads(THREADS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny random foundation, train (6 Cu), val (2 Cu) and replay (3 unlabelled crystals) files."""
    from ase.build import bulk
    from ase.io import write

    from platonic_mlip.finetune_data import cu_target_structures, emt_label, write_labelled_extxyz

    d = tmp_path_factory.mktemp("mace_ft")
    make_foundation_model(d / "foundation.model", "tiny", seed=0)
    cu = cu_target_structures(
        n_bulk_strained=3, n_rattled=2, n_surfaces=0, n_clusters=1, dimer_distances=(2.3,), rattle_supercell=1
    )
    assert len(cu) == 8 and max(len(a) for a in cu) <= 13
    lab = emt_label(cu)
    write_labelled_extxyz(d / "train.extxyz", cu[:6], lab.energies[:6], lab.forces[:6], lab.stresses[:6])
    write_labelled_extxyz(d / "val.extxyz", cu[6:], lab.energies[6:], lab.forces[6:], lab.stresses[6:])
    replay = [bulk("Ni", "fcc", a=3.52), bulk("Ag", "fcc", a=4.09), bulk("Pd", "fcc", a=3.89, cubic=True)]
    write(d / "replay.extxyz", replay)
    return {k: str(d / f"{k}.extxyz") for k in ("train", "val", "replay")} | {
        "foundation": str(d / "foundation.model"),
        "dir": d,
    }


def _settings(data, arm, **kw) -> Settings:
    kw.setdefault("epochs", 2)
    kw.setdefault("seed", 0)
    return Settings(
        arm=arm,
        train=data["train"],
        val=data["val"],
        replay=data["replay"] if arm == "multihead" else None,
        pretrained=data["foundation"],
        default_dtype="float32",
        **kw,
    )


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """Both arms, two epochs each: {arm: summary}."""
    out = {}
    for arm in ("naive", "multihead"):
        d = tmp_path_factory.mktemp(f"run_{arm}")
        out[arm] = fine_tune(_settings(data, arm), d / "wd", d / "out", log=lambda m: None)
    return out


def _au():
    from ase.build import bulk

    return bulk("Au", "fcc", a=4.08, cubic=True)


def _calc(path, head=None):
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=str(path), device="cpu", default_dtype="float32", head=head)


def _energy(calc, atoms):
    a = atoms.copy()
    a.calc = calc
    return a.get_potential_energy()


# --------------------------------------------------------------------------------------------------
# pure functions


def _flags(cmd) -> dict:
    out = {}
    for a in cmd[1:]:
        key, _, value = a.partition("=")
        out[key] = value if _ else True
    return out


def test_command_line_naive():
    s = Settings(arm="naive", train="t.xyz", val="v.xyz", pretrained="f.model", epochs=5, seed=3, lr=0.005)
    paths = {
        "work_dir": "wd/mace",
        "foundation": "/abs/f.model",
        "train": "d/train.extxyz",
        "val": "d/val.extxyz",
    }
    cmd = train_command(s, paths)
    assert cmd[0] == "mace_run_train"
    f = _flags(cmd)
    assert f["--foundation_model"] == "/abs/f.model"
    assert f["--multiheads_finetuning"] == "False"  # mace's default is True
    assert f["--train_file"] == "d/train.extxyz" and f["--valid_file"] == "d/val.extxyz"
    assert "--pt_train_file" not in f and "--force_mh_ft_lr" not in f
    assert f["--E0s"] == "foundation" and f["--foundation_model_elements"] == "True"
    assert f["--max_num_epochs"] == "5" and f["--seed"] == "3" and f["--lr"] == "0.005"
    assert f["--energy_key"] == KEYS["energy"] and f["--forces_key"] == KEYS["forces"]
    for flag in ("--restart_latest", "--save_all_checkpoints", "--keep_checkpoints"):
        assert f[flag] is True
    assert f["--eval_interval"] == "1" and f["--name"] == "ft_naive" and f["--work_dir"] == "wd/mace"
    assert tag(s) == "ft_naive_run-3"
    no_val = train_command(Settings(arm="naive", train="t", valid_fraction=0.2), {**paths, "val": None})
    assert "--valid_fraction=0.2" in no_val and not any(a.startswith("--valid_file") for a in no_val)


def test_command_line_multihead():
    s = Settings(arm="multihead", train="t", replay="r", epochs=2, extra_args=("--weight_pt_head=2.0",))
    paths = {"work_dir": "w", "foundation": "f.model", "train": "tr", "val": "va", "replay": "rp"}
    f = _flags(train_command(s, paths, executable="/x/mace_run_train"))
    assert f["--multiheads_finetuning"] == "True" and f["--pt_train_file"] == "rp"
    assert "--lr" not in f and "--force_mh_ft_lr" not in f  # mace's own 1e-4 + EMA
    assert f["--weight_pt_head"] == "2.0"
    f = _flags(train_command(Settings(arm="multihead", train="t", replay="r", lr=1e-3), paths))
    assert f["--lr"] == "0.001" and f["--force_mh_ft_lr"] == "True"
    with pytest.raises(FineTuneError, match="paths\\['replay'\\]"):
        train_command(s, {**paths, "replay": None})


def test_settings_refused():
    with pytest.raises(FineTuneError, match="arm 'replay' is not supported for MACE"):
        Settings(arm="replay", train="x", replay="r").validate()
    with pytest.raises(FineTuneError, match="arm 'multihead' needs replay"):
        Settings(arm="multihead", train="x").validate()
    with pytest.raises(FineTuneError, match="unknown fine-tuning arm 'lora'"):
        Settings(arm="lora", train="x").validate()
    with pytest.raises(FineTuneError, match="E0s 'average'"):
        Settings(arm="multihead", train="x", replay="r", e0s="average").validate()


def test_metrics_parsing_and_divergence(tmp_path):
    path = tmp_path / "m.txt"
    lines = [
        {"mode": "eval", "epoch": None, "head": "Default", "loss": 3.0},
        {"mode": "opt", "epoch": 0, "loss": 2.0},
        {"mode": "opt", "epoch": 0, "loss": 1.0},
        {"mode": "eval", "epoch": 0, "head": "Default", "loss": 1.5, "rmse_e_per_atom": 0.1, "rmse_f": 0.2},
        # a restart: epoch 0 again (mace retrains the saved epoch), then epoch 1 diverges
        {"mode": "eval", "epoch": None, "head": "Default", "loss": 1.5},
        {"mode": "opt", "epoch": 0, "loss": 0.5},
        {"mode": "eval", "epoch": 0, "head": "Default", "loss": 1.2, "rmse_e_per_atom": 0.1, "rmse_f": 0.2},
        {"mode": "opt", "epoch": 1, "loss": float("nan")},
    ]
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n{cut by a kil")
    history, bad = parse_metrics(path)
    assert [r["epoch"] for r in history] == [1, 2]
    assert history[0]["train_loss"] == 0.5 and history[0]["valid"]["Default"]["loss"] == 1.2
    assert bad == ["epoch 2 train step loss = nan"]
    assert parse_metrics(tmp_path / "absent.txt") == ([], [])


def test_divergence_stops_the_run(data, tmp_path, monkeypatch):
    """A fake mace that logs a NaN loss and then hangs: the watcher stops it and names arm and epoch."""
    import platonic_mlip.finetune.mace as ftm

    fake = tmp_path / "fake_mace.py"
    fake.write_text(
        "import json, os, sys, time\n"
        "args = dict(a.split('=', 1) for a in sys.argv[1:] if '=' in a)\n"
        "res = os.path.join(args['--work_dir'], 'results')\n"
        "os.makedirs(res, exist_ok=True)\n"
        "with open(os.path.join(res, args['--name'] + '_run-' + args['--seed'] + '_train.txt'), 'w') as f:\n"
        "    f.write(json.dumps({'mode': 'opt', 'epoch': 0, 'loss': 1.0}) + '\\n')\n"
        "    f.write(json.dumps({'mode': 'opt', 'epoch': 1, 'loss': float('nan')}) + '\\n')\n"
        "time.sleep(120)\n"
    )
    exe = tmp_path / "mace_run_train"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} {fake} "$@"\n')
    exe.chmod(0o755)
    monkeypatch.setattr(ftm, "_mace_executable", lambda: str(exe))
    t0 = time.perf_counter()
    with pytest.raises(DivergedError, match=r"arm 'naive' \(MACE\) diverged at epoch 2 .*loss = nan"):
        fine_tune(_settings(data, "naive"), tmp_path / "wd", log=lambda m: None)
    assert time.perf_counter() - t0 < 60


def test_target_without_forces_names_the_frame(data, tmp_path):
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import read, write

    frames = read(data["train"], index=":")
    bare = frames[1].copy()
    bare.calc = SinglePointCalculator(bare, energy=frames[1].get_potential_energy())  # energy only
    bad = tmp_path / "no_forces.extxyz"
    write(bad, [frames[0], bare, frames[2]])
    s = _settings(data, "naive")
    s.train = str(bad)
    with pytest.raises(
        LabelError, match=r"train file .*no_forces.extxyz, frame 1 \(0-based, .*\): no forces"
    ):
        fine_tune(s, tmp_path / "wd", log=lambda m: None)
    assert not (tmp_path / "wd" / "mace").exists()  # refused before mace ran


def test_replay_labels_are_the_foundations(data, tmp_path):
    from ase.io import read

    labelled = label_with_model(read(data["replay"], index=":"), data["foundation"], default_dtype="float32")
    calc = _calc(data["foundation"])
    for a in labelled:
        assert np.isclose(a.get_potential_energy(), _energy(calc, a), rtol=1e-6, atol=1e-6)
        assert a.get_stress().shape == (6,)


# --------------------------------------------------------------------------------------------------
# real runs


@pytest.mark.parametrize("arm", ["naive", "multihead"])
def test_arm_checkpoints_load_and_predict(runs, arm):
    summary = runs[arm]
    assert [c["epoch"] for c in summary["checkpoints"]] == [1, 2]
    assert [r["epoch"] for r in summary["history"]] == [1, 2]
    assert all(np.isfinite(r["train_loss"]) for r in summary["history"])
    assert summary["wall_time_s"] > 0 and summary["resumed_from_epoch"] is None
    assert summary["inputs_sha256"]["train"] and summary["pretrained_sha256"]
    for c in summary["checkpoints"]:
        assert Path(c["path"]).is_file() and Path(c["path"]).name == f"epoch_{c['epoch']}.model"
        calc = _calc(c["path"])
        for atoms in (_au(), _au()[:1]):
            assert np.isfinite(_energy(calc, atoms))
    if arm == "multihead":
        assert summary["heads"]["pretrained"] == HEADS["pretrained"] == "pt_head"
        assert summary["heads"]["target"] == "Default" and set(summary["heads"]["all"]) == {
            "pt_head",
            "Default",
        }
        assert set(summary["history"][-1]["valid"]) == {"pt_head", "Default"}
        flags = _flags(summary["command"])
        assert flags["--multiheads_finetuning"] == "True" and Path(flags["--pt_train_file"]).is_file()
    else:
        assert summary["heads"]["all"] == ["Default"]


def test_multihead_keeps_the_pretrained_head(runs, data):
    """On unseen Au, the multihead model's pretrained head stays (much) closer to the foundation than the
    naive model does; its target head is evaluable too."""
    au = [_au(), _au()[:1] * (2, 1, 1)]
    au[1].set_cell(au[1].cell * 1.2, scale_atoms=True)
    found = _calc(data["foundation"])
    naive = _calc(runs["naive"]["checkpoints"][-1]["path"])
    mh = runs["multihead"]["checkpoints"][-1]["path"]
    pt, target = _calc(mh, "pt_head"), _calc(mh, "Default")
    assert pt.head == "pt_head" and target.head == "Default"
    d_naive = max(abs(_energy(naive, a) - _energy(found, a)) for a in au)
    d_pt = max(abs(_energy(pt, a) - _energy(found, a)) for a in au)
    assert np.isfinite(_energy(target, au[0]))
    assert d_pt < d_naive, (d_pt, d_naive)
    with pytest.raises(FineTuneError, match="no head 'nope'"):
        label_with_model(au, mh, head="nope", default_dtype="float32")


def test_rerun_of_a_finished_arm_does_not_train(runs, data):
    summary = runs["naive"]
    wd = Path(summary["workdir"])
    metrics = wd / "mace" / "results" / "ft_naive_run-0_train.txt"
    before = metrics.read_text()
    again = fine_tune(_settings(data, "naive"), wd, log=lambda m: None)
    assert metrics.read_text() == before
    assert [c["sha256"] for c in again["checkpoints"]] == [c["sha256"] for c in summary["checkpoints"]]
    with pytest.raises(FineTuneError, match="other settings or inputs .*seed"):
        fine_tune(_settings(data, "naive", seed=1), wd, log=lambda m: None)


def test_resume_after_kill_continues(data, tmp_path):
    """Kill a long run (python and its mace_run_train) once mace has written two epochs' checkpoints;
    the rerun loads the newest checkpoint instead of starting from the foundation."""
    wd, out = tmp_path / "wd", tmp_path / "out"
    code = (
        "import sys, torch; torch.set_num_threads(1)\n"
        "from platonic_mlip.finetune.mace import Settings, fine_tune\n"
        f"s = Settings(arm='naive', train={data['train']!r}, val={data['val']!r}, "
        f"pretrained={data['foundation']!r}, default_dtype='float32', seed=0, epochs=40)\n"
        f"fine_tune(s, {str(wd)!r}, log=print)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckdir = wd / "mace" / "checkpoints"
    t0 = time.perf_counter()
    try:
        while not (ckdir / "ft_naive_run-0_epoch-1.pt").is_file():
            assert proc.poll() is None, "the run to be killed ended early"
            assert time.perf_counter() - t0 < 120, "no checkpoint of epoch 2 after 120 s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (wd / "complete.json").exists()

    metrics = wd / "mace" / "results" / "ft_naive_run-0_train.txt"
    first = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip().endswith("}")]
    evals = {r["epoch"]: r["loss"] for r in first if r["mode"] == "eval"}
    summary = fine_tune(_settings(data, "naive", epochs=3), wd, out, log=lambda m: None)
    assert summary["resumed_from_epoch"] >= 2
    last = summary["resumed_from_epoch"] - 1  # mace's epoch of the checkpoint it loaded
    lines = [json.loads(x) for x in metrics.read_text().splitlines()[len(first) :] if x.strip().endswith("}")]
    initial = [r for r in lines if r["mode"] == "eval" and r["epoch"] is None]
    assert len(initial) == 1
    # the resumed run starts from the checkpointed weights, not from the foundation
    assert np.isclose(initial[0]["loss"], evals[last], rtol=1e-5), (initial[0]["loss"], evals)
    assert not np.isclose(initial[0]["loss"], evals[None], rtol=1e-3)
    assert [c["epoch"] for c in summary["checkpoints"]] == [1, 2, 3]
    assert all(Path(c["path"]).is_file() for c in summary["checkpoints"])
    assert np.isfinite(_energy(_calc(summary["checkpoints"][-1]["path"]), _au()))


def test_workflow_scripts_run_the_mace_arms(data, tmp_path):
    """The workflow's own scripts with --family mace: finetune.py (one multihead epoch) and
    finetune_evaluate.py on its summary (heads pt_head/Default through the model option ``head``)."""
    import json
    import subprocess
    import sys

    import numpy as np
    import pandas as pd
    from ase.calculators.emt import EMT
    from ase.io import write

    from platonic_mlip.structures import save_structures, sha256_of

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), PYTHONWARNINGS="ignore")
    summary = tmp_path / "ft.json"
    cmd = [sys.executable, str(root / "workflow" / "scripts" / "finetune.py"), "--family", "mace"]
    cmd += ["--arm", "multihead", "--pretrained", data["foundation"], "--train", data["train"]]
    cmd += ["--val", data["val"], "--replay", data["replay"], "--epochs", "1", "--dtype", "float32"]
    cmd += ["--threads", str(THREADS), "--workdir", str(tmp_path / "wd"), "--restart-on-change"]
    cmd += ["--out-checkpoints", str(tmp_path / "ck"), "--out-json", str(summary)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    s = json.loads(summary.read_text())
    assert s["heads"]["target"] == "Default" and s["heads"]["pretrained"] == "pt_head"

    au = _au()
    save_structures(tmp_path / "probes.npz", [au], ["au"])
    au.calc = EMT()
    au.get_potential_energy()
    write(tmp_path / "au.extxyz", [au])
    options = json.dumps({"source": data["foundation"], "sha256": sha256_of(data["foundation"])})
    out = {k: tmp_path / f"out.{k}" for k in ("npz", "dimers", "accuracy", "json")}
    cmd = [sys.executable, str(root / "workflow" / "scripts" / "finetune_evaluate.py"), "--model"]
    cmd += ["mace-mp-0-small", "--options", options, "--summary", str(summary), "--structures"]
    cmd += [str(tmp_path / "probes.npz"), "--cu-test", data["val"], "--au", str(tmp_path / "au.extxyz")]
    cmd += ["--distances", "2.0", "2.6", "3.5", "--device", "cpu", "--threads", str(THREADS)]
    for k, p in out.items():
        cmd += [f"--out-{k}", str(p)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out["npz"]) as z:
        assert list(z["epochs"]) == [0, 1] and z["embeddings"].shape[:2] == (2, 4)
        assert np.isfinite(z["embeddings"]).all()
    acc = pd.read_csv(out["accuracy"])
    assert set(acc["head"]) == {"single", "target", "pretrained"}
    assert (acc.loc[acc["epoch"] == 0, "energy_rmse_vs_pretrained_meV_atom"] == 0).all()
