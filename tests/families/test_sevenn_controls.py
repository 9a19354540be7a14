"""Trained controls of the SevenNet architecture (platonic_mlip.controls.sevenn), in the sevenn env."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sevenn")

from platonic_mlip.controls import Settings  # noqa: E402
from platonic_mlip.models import MODELS, SEVENN_SMALL, resolve  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "mp20_sample" / "train.csv"


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    import torch

    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def structures():
    from platonic_mlip.structures import read_split_csv

    atoms, _, _ = read_split_csv(SAMPLE, limit=12)
    return [a for a in atoms if len(a) <= 8][:3]


def _settings(objective, **kw):
    base = dict(
        objective=objective,
        teacher="7net-0" if objective == "distill" else None,
        overrides=dict(SEVENN_SMALL),
        copies=1,
        sigma=0.05,
        epochs=60,
        batch_size=3,
        lr=5e-3,
    )
    base.update(kw)
    return Settings(**base)


def test_the_distilled_twin_reproduces_its_teacher_on_its_training_structures(structures, tmp_path):
    """Stated error: after 60 full-batch steps on three structures, the twin's energy is within 0.05 eV/atom
    of 7net-0's (mean absolute error over the training structures) and at most a quarter of the untrained
    network's error; its forces are closer to the teacher's than before."""
    from platonic_mlip.controls.sevenn import train

    out = train(_settings("distill"), structures, tmp_path / "w", tmp_path / "model.pth", log=lambda _: None)
    before, after = out["before"], out["after"]
    assert after["energy_mae_per_atom"] < 0.05, (before, after)
    assert after["energy_mae_per_atom"] < 0.25 * before["energy_mae_per_atom"]
    assert after["force_mae"] < before["force_mae"]
    assert (tmp_path / "w" / "labels.npz").is_file()


def test_teacher_labels_equal_the_teachers_calculator(structures):
    from sevenn.calculator import SevenNetCalculator

    from platonic_mlip.controls.sevenn import teacher_labels

    energies, forces = teacher_labels(structures, "7net-0")
    calc = SevenNetCalculator("7net-0")
    for atoms, e, f in zip(structures, energies, forces, strict=True):
        a = atoms.copy()
        a.calc = calc
        assert a.get_potential_energy() == pytest.approx(e, abs=1e-4)
        assert np.abs(a.get_forces() - f).max() < 1e-4


def _features(model, options, weights_file, atoms):
    from platonic_mlip.embed.base import embed_structures, load_embedder, local_weights

    spec, _ = local_weights(resolve(model, options), weights_file)
    emb = load_embedder(spec, "cpu")
    feats, _ = embed_structures(emb, atoms, [f"s{i}" for i in range(len(atoms))], progress=False)
    return feats


def test_denoising_learns_without_labels_and_its_checkpoint_embeds(structures, tmp_path):
    from platonic_mlip.controls.sevenn import train
    from platonic_mlip.weights import WeightsError, record_digest

    s = _settings("denoise", epochs=30)
    out = train(s, structures, tmp_path / "w", tmp_path / "model.pth", log=lambda _: None)
    assert out["after"]["denoise_rmse"] < out["before"]["denoise_rmse"]
    assert "energy_mae_per_atom" not in out["after"]  # no labels anywhere
    with pytest.raises(WeightsError, match="digest"):
        _features("denoise-7net-small", {}, str(tmp_path / "model.pth"), structures)
    record_digest(tmp_path / "model.pth")
    trained = _features("denoise-7net-small", {}, str(tmp_path / "model.pth"), structures)
    untrained = _features("dummy-7net-small", {}, None, structures)
    assert trained.shape == untrained.shape == (sum(len(a) for a in structures), 64)
    assert np.abs(trained - untrained).max() > 1e-3
    # the untrained control is the trained controls' starting point
    assert MODELS["dummy-7net-small"]["seed"] == MODELS["denoise-7net-small"]["seed"] == s.seed


def test_a_killed_training_resumes_to_the_same_weights(structures, tmp_path):
    import torch

    from platonic_mlip.controls.sevenn import train

    s = _settings("denoise", epochs=4, batch_size=1)
    train(s, structures, tmp_path / "a", tmp_path / "a.pth", log=lambda _: None)
    part = _settings("denoise", epochs=2, batch_size=1)
    train(part, structures, tmp_path / "b", tmp_path / "b.pth", log=lambda _: None)
    out = train(s, structures, tmp_path / "b", tmp_path / "b.pth", log=lambda _: None)
    assert out["resumed_from_epoch"] == 2
    a = torch.load(tmp_path / "a.pth", weights_only=False)["model_state_dict"]
    b = torch.load(tmp_path / "b.pth", weights_only=False)["model_state_dict"]
    assert max(float((a[k] - b[k]).abs().max()) for k in a if a[k].numel()) < 1e-6
    # other settings on the same work directory are refused
    from platonic_mlip.controls import ControlError

    with pytest.raises(ControlError, match="other settings"):
        train(_settings("denoise", epochs=4, sigma=0.2), structures, tmp_path / "b", tmp_path / "c.pth")
    assert json.loads((tmp_path / "b" / "run.json").read_text())["settings"]["sigma"] == 0.05
