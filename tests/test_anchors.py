import numpy as np
import pandas as pd
import pytest

from platonic_mlip.anchors import anchor_table, direct_anchors, indices_from_table, random_anchors


def blobs(n_clusters=6, per=80, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=20.0, size=(n_clusters, dim))
    labels = np.repeat(np.arange(n_clusters), per)
    x = centres[labels] + rng.normal(scale=0.5, size=(len(labels), dim))
    perm = rng.permutation(len(labels))
    return x[perm], labels[perm]


def test_direct_picks_one_anchor_per_cluster():
    x, labels = blobs()
    idx = direct_anchors(x, 6)
    assert len(idx) == 6
    assert sorted(labels[idx]) == list(range(6))


def test_direct_is_deterministic():
    x, _ = blobs(n_clusters=5, seed=3)
    np.testing.assert_array_equal(direct_anchors(x, 5), direct_anchors(x.copy(), 5))


def test_random_anchors_seeded_and_distinct():
    a = random_anchors(1000, 50, seed=1)
    assert len(np.unique(a)) == 50 and a.max() < 1000
    np.testing.assert_array_equal(a, random_anchors(1000, 50, seed=1))
    assert not np.array_equal(a, random_anchors(1000, 50, seed=2))


def test_bad_k():
    with pytest.raises(ValueError, match="k=0"):
        random_anchors(10, 0, 0)
    with pytest.raises(ValueError, match="k=20"):
        direct_anchors(np.zeros((10, 3)), 20)


def test_anchor_table_round_trip():
    atoms = pd.DataFrame(
        {
            "atom_index": range(6),
            "structure_index": [0, 0, 1, 1, 1, 2],
            "material_id": ["a", "a", "b", "b", "b", "c"],
            "atom_in_structure": [0, 1, 0, 1, 2, 0],
            "Z": [1, 8, 26, 26, 8, 14],
            "element": ["H", "O", "Fe", "Fe", "O", "Si"],
        }
    )
    t = anchor_table(np.array([1, 4]), atoms)
    assert list(t["material_id"]) == ["a", "b"] and list(t["atom_in_structure"]) == [1, 2]
    # the same anchors found in a dataset with another order
    shuffled = atoms.iloc[::-1].reset_index(drop=True).assign(atom_index=range(6))
    np.testing.assert_array_equal(indices_from_table(t, shuffled), [4, 1])
    with pytest.raises(KeyError, match="material_id a"):
        indices_from_table(t, atoms[atoms.material_id != "a"])
