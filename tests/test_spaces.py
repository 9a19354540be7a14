"""The shared reading of every model's spaces by the diagnostics (platonic_mlip.spaces)."""

import argparse
import json

import numpy as np
import pytest

from platonic_mlip.checks import MatrixError
from platonic_mlip.spaces import RAW, add_space_arguments, pair_scale, read_spaces


def test_pair_scale_is_the_rms_distance_between_different_atoms():
    # three atoms at the corners of an equilateral triangle of side 2: every pair is 2 apart
    x = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, np.sqrt(3.0)]])
    assert pair_scale(x, n_pairs=500) == pytest.approx(2.0)
    # NaN rows (skipped structures) are not drawn; rows= restricts the draw
    x = np.vstack([x, [np.nan, np.nan]])
    assert pair_scale(x, n_pairs=500) == pytest.approx(2.0)
    assert pair_scale(np.array([[0.0], [3.0], [100.0]]), rows=[0, 1], n_pairs=200) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="fewer than two"):
        pair_scale(np.zeros((1, 2)))


def _write(tmp_path, name, array, skipped=()):
    np.save(tmp_path / f"{name}.npy", array)
    (tmp_path / f"{name}.json").write_text(json.dumps({"skipped": list(skipped)}))
    return str(tmp_path / f"{name}.npy"), str(tmp_path / f"{name}.json")


def _args(argv):
    ap = argparse.ArgumentParser()
    add_space_arguments(ap)
    add_space_arguments(ap, prefix="probe-", required=False)
    return ap.parse_args(argv)


def test_read_spaces_orders_platonic_space_major_and_allows_only_skipped_nan(tmp_path):
    ids = ["a", "a", "b", "b"]
    raw_a, meta_a = _write(tmp_path, "A", np.arange(8.0).reshape(4, 2))
    skipped = [{"material_id": "b", "atom_start": 2, "atom_stop": 4}]
    raw_b, meta_b = _write(tmp_path, "B", np.array([[1.0], [2.0], [np.nan], [np.nan]]), skipped)
    platonic = []
    for space in ("direct", "random"):
        for model, value in (("A", 1.0), ("B", 2.0)):
            path = tmp_path / f"{space}_{model}.npy"
            z = np.full((4, 3), value + (space == "random"))
            if model == "B":
                z[2:] = np.nan
            np.save(path, z)
            platonic.append(str(path))
    argv = ["--models", "A", "B", "--spaces", "direct", "random", "--labels", '{"A": "Model A"}']
    argv += ["--controls", "B", "--raw", raw_a, raw_b, "--meta", meta_a, meta_b, "--platonic", *platonic]
    spaces = read_spaces(_args(argv), ids)
    assert spaces.spaces == [RAW, "direct", "random"]
    assert spaces.get("random", "B")[0, 0] == 3.0 and spaces.get("direct", "A")[0, 0] == 1.0
    assert spaces.label("A") == "Model A" and spaces.label("B") == "B (untrained)"
    assert spaces.valid().tolist() == [True, True, False, False]
    # a NaN outside the skipped structures names the file and the model
    bad = np.arange(8.0).reshape(4, 2)
    bad[1, 0] = np.nan
    np.save(raw_a, bad)
    with pytest.raises(MatrixError, match="A.npy.*model A"):
        read_spaces(_args(argv), ids)
    # a miscounted list says which
    with pytest.raises(ValueError, match="--platonic: 3 files for 2 spaces x 2 models"):
        read_spaces(_args([*argv[: argv.index("--platonic") + 1], *platonic[:3]]), ids)
