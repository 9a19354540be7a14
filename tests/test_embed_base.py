"""The family-agnostic embedding driver, with a fake model (no MLIP package needed)."""

import numpy as np
import pytest
from ase import Atoms

from platonic_mlip.embed.base import (
    Embedder,
    UnsupportedElementsError,
    batches_by_atoms,
    check_elements,
    embed_structures,
)

torch = pytest.importorskip("torch")


class Fake(Embedder):
    """Feature of an atom = [Z, structure size, ...]; NaN for a chosen material."""

    def __init__(self, dim=4, supported=None, nan_for=None):
        self.spec = {"name": "fake"}
        self.device = torch.device("cpu")
        self.dim = dim
        self._supported = supported
        self.nan_for = nan_for
        self.batches = []

    def supported_numbers(self):
        return self._supported

    def info(self):
        return {"weights_source": "none", "weights_sha256": None, "layer": "fake", "versions": {}}

    def embed_batch(self, atoms_list):
        self.batches.append(sum(len(a) for a in atoms_list))
        rows = []
        for a in atoms_list:
            for z in a.numbers:
                row = np.full(self.dim, float(len(a)))
                row[0] = z
                if self.nan_for is not None and a.info.get("id") == self.nan_for:
                    row[1] = np.nan
                rows.append(row)
        return np.array(rows)


def structures(sizes, z=8):
    out = []
    for i, n in enumerate(sizes):
        a = Atoms(numbers=[z + (i % 3)] * n, positions=np.random.default_rng(i).random((n, 3)))
        a.info["id"] = f"mp-{i}"
        out.append(a)
    return out, [f"mp-{i}" for i in range(len(sizes))]


def test_batches_respect_atom_budget_and_order():
    sizes = [5, 5, 5, 12, 1, 1]
    b = batches_by_atoms(sizes, 10)
    assert [list(r) for r in b] == [[0, 1], [2], [3], [4, 5]]
    assert [i for r in b for i in r] == list(range(len(sizes)))


def test_rows_are_aligned_and_float32():
    atoms, ids = structures([3, 1, 7, 2])
    fake = Fake()
    feats, stats = embed_structures(fake, atoms, ids, batch_atoms=5, progress=False)
    assert feats.dtype == np.float32 and feats.shape == (13, 4)
    expect_z = np.concatenate([a.numbers for a in atoms])
    np.testing.assert_array_equal(feats[:, 0], expect_z)
    np.testing.assert_array_equal(feats[:, 1], np.repeat([3, 1, 7, 2], [3, 1, 7, 2]))
    assert max(fake.batches) <= 7 and stats["n_atoms"] == 13 and stats["atoms_per_s"] > 0


def test_unsupported_elements_are_reported_before_any_batch():
    atoms, ids = structures([2, 2, 2])  # elements O, F, Ne
    fake = Fake(supported={8, 9})
    with pytest.raises(UnsupportedElementsError, match=r"mp-2 \(Ne\)"):
        embed_structures(fake, atoms, ids, progress=False)
    assert fake.batches == []  # nothing was computed
    check_elements(None, atoms, ids, "any")  # None = every element


def test_non_finite_embedding_names_the_material():
    atoms, ids = structures([2, 3, 4, 1])
    with pytest.raises(ValueError, match="material_id mp-2"):
        embed_structures(Fake(nan_for="mp-2"), atoms, ids, batch_atoms=100, progress=False)


def test_wrong_row_count_is_caught():
    class Short(Fake):
        def embed_batch(self, atoms_list):
            return super().embed_batch(atoms_list)[:-1]

    atoms, ids = structures([2, 2])
    with pytest.raises(ValueError, match="expected"):
        embed_structures(Short(), atoms, ids, progress=False)


def test_cpu_allocator_tuning_is_idempotent_and_can_be_disabled(monkeypatch):
    from platonic_mlip.embed.base import tune_cpu_allocator

    first = tune_cpu_allocator()
    assert first is None or all(first.values())
    assert tune_cpu_allocator() == first
    monkeypatch.setenv("PLATONIC_NO_MALLOPT", "1")
    assert tune_cpu_allocator() is None
