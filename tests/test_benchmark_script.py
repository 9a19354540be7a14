"""benchmarks/embed_speed.py runs end to end with a family interpreter and writes what it promises.

A smoke test on 3 structures and 1 repetition: the JSON fields, and that the naive route (the package's own
calculator, forces included) and our path give the same features. No timing assertions: speed figures come
from running the benchmark itself (see the README).
"""

import json
import subprocess

from conftest import ROOT, require_env

SCRIPT = ROOT / "benchmarks" / "embed_speed.py"


def test_embed_speed_script_sevenn(tmp_path):
    py = require_env("sevenn")
    out = tmp_path / "bench.json"
    cmd = [str(py), str(SCRIPT), "--models", "7net-0", "--structures", "3", "--repeats", "1"]
    cmd += ["--batch-atoms", "100", "--device", "cpu", "--out", str(out)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    payload = json.loads(out.read_text())
    assert payload["meta"]["device"] == "cpu" and payload["meta"]["threads"] == 2
    (r,) = payload["results"]
    assert r["model"] == "7net-0" and r["family"] == "sevenn"
    assert r["n_structures"] == 3 and r["n_atoms"] > 0 and r["repeats"] == 1
    for route in ("naive", "ours"):
        assert len(r[route]["atoms_per_s"]) == 1
        assert r[route]["median_atoms_per_s"] > 0
        assert r[route]["route"]
    assert r["ratio_of_medians"] > 0 and len(r["ratio_per_repeat"]) == 1
    assert r["max_abs_diff"] < 1e-4
    assert "| 7net-0 | sevenn | 3 |" in res.stdout
