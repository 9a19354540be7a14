"""SevenNet fine-tuning arms (paper Fig. 5a-e) on a tiny EMT-labelled Cu set, real 7net-0, CPU.

Run in the sevenn environment: ``.venvs/sevenn/bin/python -m pytest -q tests/families/test_sevenn_finetune.py``.
Each arm trains one or two epochs on five small Cu cells; the whole module takes a few minutes on two
threads. The data are made here (EMT energies shifted per atom onto 7net-0's fcc Cu reference, so the
fine-tune does not spend itself on a 4 eV/atom offset); the project's real generator is not used.
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

pytest.importorskip("sevenn")

import torch  # noqa: E402

from platonic_mlip.finetune.sevenn import (  # noqa: E402
    PRETRAINED_MODAL,
    TARGET_MODAL,
    DivergedError,
    FineTuneError,
    LabelError,
    Settings,
    check_divergence,
    checkpoint_epochs,
    fine_tune,
    nonfinite_metrics,
    read_labelled,
)

pytestmark = [
    pytest.mark.family("sevenn"),
    pytest.mark.filterwarnings("ignore:No tensor product accelerator"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "workflow" / "scripts" / "finetune.py"
THREADS = 2


@pytest.fixture(scope="module", autouse=True)
def _threads():
    torch.set_num_threads(THREADS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _emt_labelled(atoms, shift_per_atom: float):
    from ase import Atoms
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    a = atoms.copy()
    a.calc = EMT()
    out = Atoms(numbers=a.numbers, positions=a.positions, cell=a.cell, pbc=a.pbc)
    out.calc = SinglePointCalculator(
        out,
        energy=a.get_potential_energy() + shift_per_atom * len(a),
        forces=a.get_forces(),
        stress=a.get_stress(),
    )
    return out


def _cu_set(n: int, rng, shift: float) -> list:
    from ase import Atoms
    from ase.build import bulk

    out = []
    for i in range(n):
        if i % 5 == 4:  # a dimer in a periodic box
            d = 2.0 + rng.random()
            a = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, d]], cell=[10, 10, 10], pbc=True)
        else:  # a strained, rattled 4-atom fcc cell
            a = bulk("Cu", "fcc", a=3.61 * (1 + rng.uniform(-0.04, 0.04)), cubic=True)
            a.rattle(0.08, seed=int(rng.integers(1 << 30)))
        out.append(_emt_labelled(a, shift))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """train (5 Cu), val (2 Cu), replay (3 small non-Cu crystals, unlabelled) extxyz files."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.io import write
    from sevenn.calculator import SevenNetCalculator

    ref = bulk("Cu", "fcc", a=3.61)
    ref.calc = SevenNetCalculator("7net-0", device="cpu")
    e_7net = ref.get_potential_energy() / len(ref)
    ref.calc = EMT()
    shift = e_7net - ref.get_potential_energy() / len(ref)
    assert -4.2 < shift < -4.0  # NOTES.md section 6: 7net-0 -4.096, EMT -0.006 eV/atom
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("ft_data")
    write(d / "train.extxyz", _cu_set(5, rng, shift))
    write(d / "val.extxyz", _cu_set(2, rng, shift))
    replay = [bulk("Al", "fcc", a=4.05), bulk("Si", "diamond", a=5.43), bulk("NaCl", "rocksalt", a=5.64)]
    write(d / "replay.extxyz", replay)
    return {
        "train": str(d / "train.extxyz"),
        "val": str(d / "val.extxyz"),
        "replay": str(d / "replay.extxyz"),
    }


def _settings(data, arm, **kw) -> Settings:
    replay = data["replay"] if arm != "naive" else None
    kw.setdefault("epochs", 1)
    return Settings(arm=arm, train=data["train"], val=data["val"], replay=replay, seed=0, **kw)


def _weights(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["model_state_dict"]


def _embedder(path, modal=None):
    from platonic_mlip.embed.base import load_embedder, local_weights
    from platonic_mlip.models import resolve

    options = {"source": str(path), "trust_weights_file": True}
    if modal:
        options["modal"] = modal
    spec, _ = local_weights(resolve("7net-0", options))
    return load_embedder(spec, "cpu")


def _au():
    from ase.build import bulk

    return bulk("Au", "fcc", a=4.08, cubic=True)


# --------------------------------------------------------------------------------------------------
# pure functions


def test_checkpoint_epochs():
    assert checkpoint_epochs(5, 2) == [2, 4, 5]
    assert checkpoint_epochs(3, 1) == [1, 2, 3]
    assert checkpoint_epochs(2, 10) == [2]


def test_divergence_detection_on_a_fake_log():
    good = {"trainset": {"TotalLoss": 0.01, "Energy_RMSE": 0.1}, "validset": {"TotalLoss": 0.02}}
    assert nonfinite_metrics(good) == []
    # a set of clusters and dimers has no stress label: sevenn's NaN stress RMSE is not divergence
    no_stress = {"validset": {"TotalLoss": 0.02, "Stress_RMSE": float("nan")}}
    assert nonfinite_metrics(no_stress) == []
    assert nonfinite_metrics({"validset": {"Stress_RMSE": float("inf")}}) == ["validset Stress_RMSE = inf"]
    check_divergence("naive", 3, good, 0.004)
    bad = {
        "trainset": {"TotalLoss": float("nan"), "Energy_RMSE": float("inf")},
        "validset": {"TotalLoss": 1.0},
    }
    assert nonfinite_metrics(bad) == ["trainset TotalLoss = nan", "trainset Energy_RMSE = inf"]
    with pytest.raises(DivergedError, match=r"arm 'replay' diverged at epoch 3 .*TotalLoss = nan.*epoch 2"):
        check_divergence("replay", 3, bad, 0.004, last_good=2)


def test_settings_refused():
    with pytest.raises(FineTuneError, match="arm 'multihead' needs replay"):
        Settings(arm="multihead", train="x").validate()
    with pytest.raises(FineTuneError, match="unknown fine-tuning arm 'lora'"):
        Settings(arm="lora", train="x").validate()
    with pytest.raises(FineTuneError, match="modal_blocks"):
        Settings(arm="naive", train="x", modal_blocks=("readout",)).validate()


def test_target_without_forces_names_the_frame(data, tmp_path):
    from ase.io import read, write

    frames = read(data["train"], index=":")
    bare = frames[1].copy()  # no calculator: neither energy nor forces
    from ase.calculators.singlepoint import SinglePointCalculator

    bare.calc = SinglePointCalculator(bare, energy=frames[1].get_potential_energy())  # energy only
    bad = tmp_path / "no_forces.extxyz"
    write(bad, [frames[0], bare, frames[2]])
    with pytest.raises(LabelError, match=r"no_forces.extxyz, frame 1 \(0-based, Cu4\): no forces"):
        read_labelled(bad)
    no_energy = tmp_path / "no_energy.extxyz"
    write(no_energy, [frames[0].copy(), frames[1]])  # .copy() drops the calculator
    with pytest.raises(LabelError, match=r"frame 0 .*no energy and no forces"):
        read_labelled(no_energy)
    # the CLI stops with one line naming the file and frame, before any training
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--arm", "naive", "--train", str(bad), "--workdir", str(out / "wd"),
         "--out-checkpoints", str(out / "ck"), "--out-json", str(out / "ft.json")],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "ERROR:" in proc.stderr and "no_forces.extxyz, frame 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "ft.json").exists()


# --------------------------------------------------------------------------------------------------
# the arms


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), PYTHONWARNINGS="ignore")
    return env


def _cli(data, arm, tmp, epochs, extra=()) -> list[str]:
    args = [sys.executable, str(SCRIPT), "--arm", arm, "--train", data["train"], "--val", data["val"]]
    if arm != "naive":
        args += ["--replay", data["replay"]]
    args += ["--epochs", str(epochs), "--seed", "0", "--threads", str(THREADS), "--workdir", str(tmp / "wd")]
    args += ["--out-checkpoints", str(tmp / "ck"), "--out-json", str(tmp / "ft.json"), *extra]
    return args


@pytest.fixture(scope="module")
def pretrained_embedder():
    from platonic_mlip.embed.base import load_embedder
    from platonic_mlip.models import resolve

    return load_embedder(resolve("7net-0"), "cpu")


def test_naive_resumes_after_kill(data, tmp_path, pretrained_embedder):
    """A CLI run killed (SIGKILL) after its first epoch, rerun: it resumes and ends with the weights of an
    uninterrupted CLI run, bit for bit (the CLI sets MKL_CBWR before torch starts; training runs under
    torch.use_deterministic_algorithms)."""
    ref_dir = tmp_path / "ref"
    ref_run = subprocess.run(
        _cli(data, "naive", ref_dir, 3), env=_env(), capture_output=True, text=True, timeout=900
    )
    assert ref_run.returncode == 0, ref_run.stderr[-3000:]
    ref = json.loads((ref_dir / "ft.json").read_text())
    assert [h["epoch"] for h in ref["history"]] == [1, 2, 3]
    assert ref["resumed_from_epoch"] is None

    run = tmp_path / "run"
    proc = subprocess.Popen(_cli(data, "naive", run, 3), env=_env(), stdout=subprocess.PIPE, text=True)
    state = run / "wd" / "state.pth"
    t0 = time.time()
    while not state.exists() and proc.poll() is None and time.time() - t0 < 600:
        time.sleep(0.05)
    assert state.exists(), "no state written after the first epoch"
    proc.send_signal(signal.SIGKILL)  # two more epochs (about a second each) were still to run
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "ft.json").exists()

    done = subprocess.run(
        _cli(data, "naive", run, 3), env=_env(), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run / "ft.json").read_text())
    assert summary["resumed_from_epoch"] in (1, 2)
    assert "resuming after epoch" in done.stdout
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    assert [c["epoch"] for c in summary["checkpoints"]] == [1, 2, 3]
    final = run / "ck" / "epoch_3.pth"
    assert final.is_file()
    a, b = _weights(final), _weights(ref_dir / "ck" / "epoch_3.pth")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    for x, y in zip(summary["history"], ref["history"], strict=True):
        assert x["trainset"]["TotalLoss"] == pytest.approx(y["trainset"]["TotalLoss"], rel=1e-6)

    # the fine-tuned checkpoint loads through the project's embedding path; Au features moved
    pre = pretrained_embedder
    ft = _embedder(final)
    au = _au()
    e0, e1 = pre.embed_batch([au]), ft.embed_batch([au])
    assert e1.shape == e0.shape == (4, 128) and np.isfinite(e1).all()
    assert np.abs(e1 - e0).max() > 1e-4

    # other settings on the same work directory are refused
    with pytest.raises(FineTuneError, match=r"other settings or inputs \(lr: 0.004 -> 0.001"):
        fine_tune(_settings(data, "naive", epochs=3, lr=0.001), run / "wd")
    # a larger epoch count on the same work directory goes on from the last epoch
    more = fine_tune(_settings(data, "naive", epochs=4, checkpoint_every=2), run / "wd")
    assert more["resumed_from_epoch"] == 3
    assert [c["epoch"] for c in more["checkpoints"]] == [2, 4]


def test_multihead(data, tmp_path):
    from ase.build import bulk
    from sevenn.calculator import SevenNetCalculator

    summary = fine_tune(_settings(data, "multihead"), tmp_path / "wd", out_checkpoints=tmp_path / "ck")
    assert summary["modals"] == {
        "target": TARGET_MODAL,
        "pretrained": PRETRAINED_MODAL,
        "blocks": ["output_block"],
    }
    row = summary["history"][0]
    assert {"trainset", "validset", "replay"} <= set(row)

    # sevenn's append_modal: at epoch 0 both heads reproduce 7net-0 (zero-initialised modal weights, the
    # target head given the original shift)
    start = tmp_path / "wd" / "start_multihead.pth"
    probe = bulk("Cu", "fcc", a=3.7, cubic=True)
    probe.rattle(0.05, seed=1)
    energies = {}
    for name, (ckpt, modal) in {
        "7net-0": ("7net-0", None),
        "pre": (str(start), PRETRAINED_MODAL),
        "tgt": (str(start), TARGET_MODAL),
    }.items():
        a = probe.copy()
        a.calc = SevenNetCalculator(ckpt, device="cpu", modal=modal)
        energies[name] = a.get_potential_energy()
    assert energies["pre"] == pytest.approx(energies["7net-0"], abs=1e-4)
    assert energies["tgt"] == pytest.approx(energies["7net-0"], abs=1e-4)

    # the trained checkpoint loads through the project's embedding path with either modal
    ck = tmp_path / "ck" / "epoch_1.pth"
    assert summary["checkpoints"][0]["path"] == str(ck.resolve())
    with pytest.raises(ValueError, match="needs 'modal'"):
        _embedder(ck)
    au = [_au()]
    pre, tgt = _embedder(ck, PRETRAINED_MODAL), _embedder(ck, TARGET_MODAL)
    assert pre.info()["available_modals"] == [PRETRAINED_MODAL, TARGET_MODAL]
    f_pre, f_tgt = pre.embed_batch(au), tgt.embed_batch(au)
    assert np.isfinite(f_pre).all()
    # only the output block is modal: the readout input (the embedding) is shared by the heads
    assert np.abs(f_pre - f_tgt).max() < 1e-5


def test_replay(data, tmp_path):
    summary = fine_tune(_settings(data, "replay"), tmp_path / "wd", out_checkpoints=tmp_path / "ck")
    row = summary["history"][0]
    assert {"trainset", "validset", "replay", "memoryset"} <= set(row)
    assert summary["n_structures"] == {"train": 5, "val": 2, "replay": 3}
    # replay labels: 7net-0's own predictions, so the memory set starts at (near) zero error
    assert row["replay"]["Energy_RMSE"] < 0.2
    emb = _embedder(tmp_path / "ck" / "epoch_1.pth")
    assert np.isfinite(emb.embed_batch([_au()])).all()


def test_divergence_stops_with_the_arm(data, tmp_path):
    with pytest.raises(DivergedError, match=r"arm 'naive' diverged at epoch 1") as err:
        fine_tune(_settings(data, "naive", lr=1e6), tmp_path / "wd")
    assert "Nothing of this epoch was kept" in str(err.value)
    assert not (tmp_path / "wd" / "state.pth").exists()
    assert not list((tmp_path / "wd" / "checkpoints").glob("*.pth"))


def test_evaluate_script_on_a_multihead_run(data, tmp_path, pretrained_embedder):
    """finetune_evaluate.py on a one-epoch multihead run: epoch 0 is the pretrained model (its embeddings,
    zero error against itself), both heads give dimer curves and errors, outputs written only at the end."""
    import pandas as pd
    from ase.build import bulk
    from ase.io import write

    from platonic_mlip.structures import save_structures

    summary = fine_tune(_settings(data, "multihead"), tmp_path / "wd", out_checkpoints=tmp_path / "ck")
    summary_path = tmp_path / "ft.json"
    summary_path.write_text(json.dumps(summary))
    probes = [_au(), bulk("Cu", "fcc", a=3.61, cubic=True)]
    save_structures(tmp_path / "probes.npz", probes, ["au", "cu"])
    labelled = tmp_path / "au.extxyz"
    au = _au()
    from ase.calculators.emt import EMT

    au.calc = EMT()
    au.get_potential_energy()
    write(labelled, [au])
    out = {k: tmp_path / f"out.{k}" for k in ("npz", "dimers", "accuracy", "json")}
    script = ROOT / "workflow" / "scripts" / "finetune_evaluate.py"
    args = [sys.executable, str(script), "--model", "7net-0", "--summary", str(summary_path)]
    args += ["--structures", str(tmp_path / "probes.npz"), "--cu-test", data["val"], "--au", str(labelled)]
    args += ["--distances", "2.0", "2.5", "3.0", "6.0", "--device", "cpu", "--threads", str(THREADS)]
    for k, p in out.items():
        args += [f"--out-{k}", str(p)]
    done = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out["npz"]) as z:
        emb, epochs = z["embeddings"], z["epochs"]
    assert list(epochs) == [0, 1] and emb.shape == (2, 8, 128)
    np.testing.assert_allclose(emb[0][:4], pretrained_embedder.embed_batch([_au()]), atol=1e-5)
    assert np.abs(emb[1] - emb[0]).max() > 1e-5  # the fine-tune moved the embeddings
    acc = pd.read_csv(out["accuracy"])
    assert set(zip(acc["epoch"], acc["head"], strict=True)) == {
        (0, "single"),
        (1, "target"),
        (1, "pretrained"),
    }
    zero = acc[acc["epoch"] == 0]
    assert (zero["energy_rmse_vs_pretrained_meV_atom"] == 0).all()
    assert (acc.loc[acc["epoch"] == 1, "energy_rmse_vs_pretrained_meV_atom"] > 0).any()
    dimers = pd.read_csv(out["dimers"])
    assert set(dimers["pair"]) == {"Au-Au", "Cu-Cu"} and len(dimers) == 3 * 2 * 4

    # a summary whose checkpoint is gone: the error names the summary, and nothing is written
    broken = json.loads(summary_path.read_text())
    broken["checkpoints"][0]["path"] = str(tmp_path / "gone.pth")
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(broken))
    fresh = tmp_path / "fresh.json"
    args2 = [a if a != str(summary_path) else str(bad) for a in args]
    args2[args2.index(str(out["json"]))] = str(fresh)
    failed = subprocess.run(args2, env=_env(), capture_output=True, text=True, timeout=300)
    assert failed.returncode != 0
    assert f"ERROR: {bad}: checkpoint of epoch 1 missing" in failed.stderr
    assert not fresh.exists()
