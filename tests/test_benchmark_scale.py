"""benchmarks/scale.py runs end to end on a tiny size and writes what it promises.

A smoke test of the scale benchmark (``--quick``: 2,500 synthetic atoms, K = 20, 200-atom samples,
3 redrawn samples): the JSON/CSV structure, the stages' outputs, and the growth fit. No timing assertions:
the figures come from running the benchmark itself (docs/scale.md).
"""

import csv
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "scale.py"
STAGES = [
    "anchors_direct",
    "anchors_random",
    "project",
    "metrics",
    "reconstruction_raw",
    "reconstruction_direct",
    "cumulants",
    "structure_reconstruction",
    "cumulant_orders",
]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale")
    cmd = [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp / "scale.json"), "--csv"]
    cmd += [str(tmp / "scale.csv"), "--workdir", str(tmp / "work"), "--keep"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return tmp, res.stdout


def test_json_has_every_stage_with_time_and_memory(quick):
    tmp, _ = quick
    payload = json.loads((tmp / "scale.json").read_text())
    meta = payload["meta"]
    assert meta["k"] == 20 and meta["n_sample"] == 200 and meta["repeats"] == 3
    assert [m["dim"] for m in meta["models"]] == [128, 128, 128, 128, 256, 256, 128, 128]
    (r,) = payload["results"]
    assert r["n_atoms"] == 2500 and r["synthetic"]["n_structures"] > 100
    assert list(r["stages"]) == STAGES
    for stage, s in r["stages"].items():
        assert s["wall_s"] > 0 and s["peak_rss_mb"] > 10, stage
        assert s["calls"] == (16 if stage == "project" else 1), stage
    assert r["total_wall_s"] == pytest.approx(sum(s["wall_s"] for s in r["stages"].values()))
    assert r["peak_rss_mb"] == max(s["peak_rss_mb"] for s in r["stages"].values())
    assert set(payload["growth_exponent"]) == {*STAGES, "total"}  # None with one size


def test_csv_and_markdown_table(quick):
    tmp, stdout = quick
    rows = list(csv.DictReader(open(tmp / "scale.csv")))
    assert [r["stage"] for r in rows] == [*STAGES, "total"]
    assert all(float(r["wall_s"]) > 0 and int(r["n_atoms"]) == 2500 for r in rows)
    assert "| stage | 2,500 atoms: wall s / peak MB |" in stdout
    assert "| metrics |" in stdout and "| total |" in stdout


def test_stages_produced_the_workflow_outputs(quick):
    tmp, _ = quick
    work = tmp / "work" / "n2500"
    atoms = pd.read_csv(work / "atoms.csv")
    assert len(atoms) == 2500 and atoms.atom_index.tolist() == list(range(2500))
    for method in ("direct", "random"):
        anchors = pd.read_csv(work / "anchors" / f"{method}.csv")
        assert len(anchors) == 20 and anchors.atom_index.is_unique
        z = np.load(work / "platonic" / method / "orb-direct.npy", mmap_mode="r")
        assert z.shape == (2500, 20)
        np.testing.assert_allclose(z[anchors.atom_index, np.arange(20)], 1.0, atol=1e-6)
    table = pd.read_csv(work / "metrics" / "pairwise.csv", keep_default_na=False)
    assert len(table.drop_duplicates(["model_a", "model_b"])) == 36  # 8 models, self-pairs included
    assert (table.n_repeats == 3).all() and (table.n_sample == 200).all()
    # the synthetic models share structure; the controls only the element: the data are not noise
    mknn = table[(table.metric == "mknn") & (table.space == "raw")].set_index(["model_a", "model_b"]).value
    assert mknn[("mace-small", "mace-medium")] > 1.5 * mknn[("mace-small", "control-a")] > 0.15
    # the second paper's stages: every ordered pair, raw and Platonic; cumulants of every structure
    for space in ("raw", "direct"):
        rec = pd.read_csv(work / "reconstruction" / f"{space}.csv")
        assert len(rec) == 64 and (rec.n_test == 100).all() and (rec.n_test_lfre == 50).all()
        g = rec.set_index(["source", "target"]).gfre
        assert g[("mace-small", "mace-small")] < 1e-6
        assert g[("mace-small", "mace-medium")] < g[("mace-small", "control-a")]
    blocks = np.load(work / "reconstruction" / "cumulants" / "orb-direct.npy")
    assert blocks.shape[1:] == (8, 256)
    across = pd.read_csv(work / "reconstruction" / "structure_reconstruction.csv")
    assert len(across) == 64 and across.lfre.notna().all() and (across.n_test_lfre == 50).all()
    orders = pd.read_csv(work / "reconstruction" / "cumulant_orders.csv")
    assert len(orders) == 64 and set(orders.model) == {"mace-small"}


def test_growth_exponent():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import scale
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert scale.growth_exponent([10, 100, 1000], [1.0, 10.0, 100.0]) == pytest.approx(1.0)
    assert scale.growth_exponent([10, 100], [1.0, 100.0]) == pytest.approx(2.0)
    assert scale.growth_exponent([10], [1.0]) is None
