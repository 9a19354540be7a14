"""The trained controls' data and objective (platonic_mlip.controls; pure numpy, no model package)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from platonic_mlip.controls import (
    ControlError,
    Settings,
    denoise_target,
    noisy_copies,
    select_structures,
    training_set,
)


def test_denoise_target_is_minus_the_noise_on_a_known_case():
    clean = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    eps = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.5]])
    sigma = 0.2
    noisy = clean + sigma * eps
    assert np.allclose(denoise_target(clean, noisy, sigma), -eps)
    # the target points from the noisy atom back to the clean one, in units of sigma
    assert np.allclose(noisy + sigma * denoise_target(clean, noisy, sigma), clean)


def test_noisy_copies_add_sigma_times_the_returned_noise():
    pos = np.arange(12.0).reshape(4, 3)
    noisy, eps = noisy_copies(pos, 3, 0.05, np.random.default_rng(1))
    assert noisy.shape == eps.shape == (3, 4, 3)
    assert np.allclose(noisy, pos[None] + 0.05 * eps)
    assert abs(eps.std() - 1) < 0.5 and not np.allclose(noisy[0], noisy[1])


def test_training_set_is_seeded_and_targets_match_the_displacements():
    atoms = [bulk("NaCl", "rocksalt", a=5.64), bulk("Cu", "fcc", a=3.6) * (2, 1, 1)]
    s = Settings(objective="denoise", copies=2, sigma=0.1, noise_seed=3)
    data = training_set(atoms, s)
    assert len(data) == 4 and [len(a) for a, _ in data] == [2, 2, 2, 2]
    for (noisy, target), clean in zip(data, [atoms[0], atoms[0], atoms[1], atoms[1]], strict=True):
        assert np.allclose(noisy.positions + 0.1 * target, clean.positions)
        assert noisy.cell.array.tolist() == clean.cell.array.tolist()
    again = training_set(atoms, s)
    assert all(np.array_equal(a.positions, b.positions) for (a, _), (b, _) in zip(data, again, strict=True))
    other = training_set(atoms, Settings(objective="denoise", copies=2, sigma=0.1, noise_seed=4))
    assert not np.allclose(data[0][0].positions, other[0][0].positions)


def test_select_structures_respects_size_and_count():
    sizes = [5, 50, 8, 3, 41, 12]
    assert select_structures(sizes, 0, 40, 0).tolist() == [0, 2, 3, 5]
    two = select_structures(sizes, 2, 40, 0)
    assert len(two) == 2 and set(two) <= {0, 2, 3, 5}
    assert select_structures(sizes, 2, 40, 0).tolist() == two.tolist()
    with pytest.raises(ControlError, match="max_atoms"):
        select_structures(sizes, 2, 2, 0)


def test_settings_are_validated():
    with pytest.raises(ControlError, match="objective"):
        Settings(objective="generate").validate()
    with pytest.raises(ControlError, match="teacher"):
        Settings(objective="distill").validate()
    with pytest.raises(ControlError, match="sigma"):
        Settings(objective="denoise", sigma=0).validate()
    Settings(objective="distill", teacher="7net-0").validate()


def test_a_trained_control_loads_only_its_trained_and_recorded_file(tmp_path):
    from platonic_mlip.embed.base import local_weights
    from platonic_mlip.models import resolve
    from platonic_mlip.weights import WeightsError, record_digest

    spec = resolve("denoise-7net-small")
    with pytest.raises(WeightsError, match="train_control"):
        local_weights(spec)
    f = tmp_path / "model.pth"
    f.write_bytes(b"weights")
    with pytest.raises(WeightsError, match="digest"):
        local_weights(spec, str(f))
    digest = record_digest(f)
    loaded, weights = local_weights(spec, str(f))
    assert weights["kind"] == "control" and weights["sha256"] == digest and loaded["source"] == str(f)
    f.write_bytes(b"changed")
    with pytest.raises(WeightsError, match="changed"):
        local_weights(spec, str(f))
