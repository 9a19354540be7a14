"""Matrices are checked where they are read: NaN/inf name the model, the rows and their material_ids."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from platonic_mlip.checks import MatrixError, check_finite, checked_rows, nonfinite_rows, open_matrix

SCRIPTS = ROOT / "workflow" / "scripts"


def script(name, *args):
    return subprocess.run(
        [sys.executable, str(SCRIPTS / f"{name}.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def run_dir(tmp_path):
    """Atom table of 40 atoms in 8 structures, a 'meta' JSON per model, clean 40 x 16 embeddings."""
    n = 40
    atoms = pd.DataFrame(
        {
            "atom_index": np.arange(n),
            "structure_index": np.arange(n) // 5,
            "material_id": [f"mp-{i // 5}" for i in range(n)],
            "atom_in_structure": np.arange(n) % 5,
            "Z": np.full(n, 14),
            "element": ["Si"] * n,
            "spacegroup": [-1] * n,
        }
    )
    atoms.to_csv(tmp_path / "atoms.csv", index=False)
    rng = np.random.default_rng(0)
    for m in ("a", "b"):
        np.save(tmp_path / f"{m}.npy", rng.normal(size=(n, 16)).astype(np.float32))
        (tmp_path / f"{m}.json").write_text(json.dumps({"skipped": []}))
    pd.DataFrame({"atom_index": [0, 7, 21], "method": "direct"}).to_csv(tmp_path / "anchors.csv", index=False)
    return tmp_path


def test_nonfinite_rows_chunked():
    x = np.zeros((10, 3))
    x[[2, 9], 1] = [np.nan, np.inf]
    assert nonfinite_rows(x).tolist() == [2, 9]
    assert nonfinite_rows(np.lib.stride_tricks.as_strided(x), chunk=3).tolist() == [2, 9]
    assert nonfinite_rows(np.zeros((0, 3))).tolist() == []


def test_check_finite_names_rows_and_materials_and_allows_skipped():
    ids = [f"mp-{i // 2}" for i in range(20)]
    x = np.ones((20, 4))
    x[[5, 6, 13], 0] = np.nan
    with pytest.raises(MatrixError) as err:
        check_finite(x, "embeddings/m.npy (model m)", ids)
    msg = str(err.value)
    assert msg.startswith("embeddings/m.npy (model m): 3 row(s) of 3 structure(s) hold NaN or inf")
    assert "atom 5 (mp-2), atom 6 (mp-3), atom 13 (mp-6)" in msg
    skipped = np.zeros(20, bool)
    skipped[[5, 6, 13]] = True
    check_finite(x, "m", ids, expected_nan=skipped)  # NaN by design: no error
    # rows given as a subset: positions in x map back to atom indices
    sub = np.array([[1.0], [np.inf]])
    with pytest.raises(MatrixError, match=r"atom 17 \(mp-8\)"):
        check_finite(sub, "m", ids, rows=np.array([3, 17]))


def test_open_matrix_shape_errors_name_file_and_model(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 2), np.float32))
    with pytest.raises(
        MatrixError, match=r"x.npy \(embeddings of model m\): 5 rows, but the atom table has 6"
    ):
        open_matrix(tmp_path / "x.npy", "m", 6)
    np.save(tmp_path / "v.npy", np.zeros(5))
    with pytest.raises(MatrixError, match="2-D float matrix"):
        open_matrix(tmp_path / "v.npy", "m")
    (tmp_path / "junk.npy").write_text("nope")
    with pytest.raises(MatrixError, match="cannot be read"):
        open_matrix(tmp_path / "junk.npy", "m")
    out = checked_rows(tmp_path / "x.npy", "m", ["a"] * 5, rows=np.array([1, 3]), dtype=np.float64)
    assert out.shape == (2, 2) and out.dtype == np.float64


def _poison(path, rows):
    x = np.load(path)
    x[rows, 3] = np.nan
    np.save(path, x)


def test_project_refuses_nan_embeddings_naming_the_model_and_materials(run_dir):
    _poison(run_dir / "a.npy", [12, 13])
    args = [
        "--embeddings",
        run_dir / "a.npy",
        "--anchors",
        run_dir / "anchors.csv",
        "--atoms",
        run_dir / "atoms.csv",
    ]
    res = script(
        "project", *args, "--model", "7net-0", "--meta", run_dir / "a.json", "--out", run_dir / "z.npy"
    )
    assert res.returncode != 0
    assert "model 7net-0" in res.stderr and "atom 12 (mp-2), atom 13 (mp-2)" in res.stderr, res.stderr
    assert not (run_dir / "z.npy").exists()
    # the same rows listed as a skipped structure are NaN by design: projected as NaN, no error
    (run_dir / "a.json").write_text(json.dumps({"skipped": [{"atom_start": 10, "atom_stop": 15}]}))
    res = script(
        "project", *args, "--model", "7net-0", "--meta", run_dir / "a.json", "--out", run_dir / "z.npy"
    )
    assert res.returncode == 0, res.stderr
    z = np.load(run_dir / "z.npy")
    assert np.isnan(z[12]).all() and np.isfinite(z[np.r_[0:10, 15:40]]).all()


def test_select_anchors_reports_nan_as_the_models_not_as_config_k(run_dir):
    _poison(run_dir / "a.npy", [30])
    res = script(
        "select_anchors",
        *(
            "--method",
            "direct",
            "--k",
            5,
            "--atoms",
            run_dir / "atoms.csv",
            "--embeddings",
            run_dir / "a.npy",
        ),
        *("--reference-model", "7net-0", "--meta", run_dir / "a.json", "--out", run_dir / "anchors_out.csv"),
    )
    assert res.returncode != 0
    assert "anchors.k" not in res.stderr and "model 7net-0" in res.stderr and "atom 30 (mp-6)" in res.stderr


def _pairwise(run_dir, n_sample, repeats=3):
    return script(
        "pairwise_metrics",
        *(
            "--models",
            "a",
            "b",
            "--raw",
            run_dir / "a.npy",
            run_dir / "b.npy",
            "--atoms",
            run_dir / "atoms.csv",
        ),
        *(
            "--n-sample",
            n_sample,
            "--k",
            3,
            "--repeats",
            repeats,
            "--meta",
            run_dir / "a.json",
            run_dir / "b.json",
        ),
        *("--out", run_dir / "pairwise.csv", "--out-sample", run_dir / "sample.csv"),
    )


def test_pairwise_metrics_refuses_nan_and_names_it(run_dir):
    _poison(run_dir / "b.npy", [39])
    res = _pairwise(run_dir, 40)
    assert res.returncode != 0 and "embeddings of model b" in res.stderr and "atom 39 (mp-7)" in res.stderr


def test_no_interval_when_the_sample_is_every_atom(run_dir):
    """n_sample >= atoms: every redrawn sample is the whole set; zero-width intervals would mislead."""
    res = _pairwise(run_dir, 40)
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(run_dir / "pairwise.csv")
    assert table["ci_low"].isna().all() and (table["n_repeats"] == 0).all()
    log = res.stdout + res.stderr
    assert "metrics.n_sample" in log and "no interval" in log
    res = _pairwise(run_dir, 20)
    table = pd.read_csv(run_dir / "pairwise.csv")
    assert res.returncode == 0 and (table["n_repeats"] == 3).all() and table["ci_low"].notna().any()
