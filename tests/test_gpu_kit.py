"""The GPU kit (benchmarks/gpu, docs/gpu.md): wheel plan, budget, device command, predicted wall time.

Fast, no network, no GPU.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))

import kit  # noqa: E402


def test_predict_wall_time_by_hand():
    # 100 structures of 100 atoms each, shards of 30 structures: 4 shards of 3000, 3000, 3000, 1000 atoms
    rates = {"a": 1000.0, "b": 500.0}
    one = kit.predict_wall_time(rates, 10_000, 100, 30, n_gpus=1)
    assert one["n_shards"] == 4 and one["n_jobs"] == 8
    assert one["gpu_seconds"] == pytest.approx(10 + 20)
    assert one["makespan_s"] == pytest.approx(30)
    assert one["per_model_s"] == pytest.approx({"a": 10, "b": 20})
    # longest first onto the least loaded GPU: 6,6 | 6->A 12 | 3->B 9 | 3->B 12 | 3->A 15 | 2->B 14 | 1->B 15
    assert kit.predict_wall_time(rates, 10_000, 100, 30, n_gpus=2)["makespan_s"] == pytest.approx(15)
    # more GPUs than jobs: the longest job
    assert kit.predict_wall_time(rates, 10_000, 100, 30, n_gpus=20)["makespan_s"] == pytest.approx(6)
    # start-up per job: 8 jobs pay it, the unsharded estimate twice (one job per model)
    s = kit.predict_wall_time(rates, 10_000, 100, 30, n_gpus=1, startup_s={"a": 2.0, "b": 1.0})
    assert s["gpu_seconds"] == pytest.approx(30 + 4 * 2 + 4 * 1)
    assert s["unsharded_one_gpu_s"] == pytest.approx(30 + 3)


def test_predict_wall_time_rejects_bad_input():
    with pytest.raises(ValueError):
        kit.predict_wall_time({"a": 0.0}, 10, 10, 5)
    with pytest.raises(ValueError):
        kit.predict_wall_time({"a": 1.0}, 10, 10, 5, n_gpus=0)


def test_paper_jobs_and_proxies():
    paper = kit.paper_jobs()
    assert paper["n_atoms"] == 282_847 and paper["shard_structures"] > 0
    # every checkpoint of the paper config has a benchmark standing in for it; @last runs every block
    proxies = {c: kit.proxy_of(c, layers) for c, layers in paper["checkpoints"].items()}
    assert proxies["mace-mp-0-small"] == "mace-mp-0-small@last"  # the config also asks for @last
    assert proxies["mace-mp-0-medium"] == "mace-mp-0-medium"
    assert proxies["denoise-7net-0"] == "7net-0"  # a trained control: the 7net-0 network
    assert "soap" not in proxies  # CPU reference spaces are not GPU jobs
    keys = {k for fam in kit.BENCH_MODELS.values() for k in fam}
    assert set(proxies.values()) <= keys
    with pytest.raises(KeyError):
        kit.proxy_of("no-such-model", ["first"])


def test_lock_and_image_parsing(tmp_path):
    lock = tmp_path / "x.txt"
    lock.write_text("# header\nFoo_Bar==1.2\nruamel.yaml==0.19.1\n\ntorch==2.13.0\n")
    assert kit.read_lock(lock) == {
        "foo-bar": ("Foo_Bar", "1.2"),
        "ruamel-yaml": ("ruamel.yaml", "0.19.1"),
        "torch": ("torch", "2.13.0"),
    }
    lock.write_text("numpy>=2\n")
    with pytest.raises(ValueError):
        kit.read_lock(lock)
    image = kit.read_image()
    assert image["torch"] == "2.11.0" and "e3nn" in image and "numpy" in image


def test_plan_uses_lock_versions_and_skips_torch_and_image():
    lock = {
        "torch": ("torch", "2.13.0"),
        "numpy": ("numpy", "2.4.6"),
        "e3nn": ("e3nn", "0.4.4"),
        "ase": ("ase", "3.29.0"),
        "pytest": ("pytest", "9.2.0"),
    }
    image = {"torch": "2.11.0", "numpy": "2.5.2", "e3nn": None}
    got = kit.plan_family("x", lock, image, runtime=("torch", "numpy", "e3nn", "ase"))
    assert [(p["name"], p["version"]) for p in got] == [("ase", "3.29.0"), ("e3nn", "0.4.4")]
    # without a measured runtime set: the lock less tests, torch and the image
    got = kit.plan_family("x", lock, image, runtime=None)
    assert [p["name"] for p in got] == ["ase", "e3nn"]
    with pytest.raises(ValueError):
        kit.plan_family("x", lock, image, runtime=("not-locked",))


def test_real_plan_matches_the_locks():
    fams = kit.load_families().FAMILIES
    plans = kit.plan()
    assert list(plans) == [f for f, e in fams.items() if e["gpu"]]
    image = kit.read_image()
    for family, items in plans.items():
        lock = kit.read_lock(kit.LOCKS / f"{fams[family]['env']}.txt")
        for p in items:
            n = kit.norm(p["name"])
            assert n != "torch"
            assert n not in image or n in kit.CARRY_ANYWAY
            assert lock[n][1] == p["version"]
    assert {p["version"] for p in plans["mace"] if p["name"] == "e3nn"} == {"0.4.4"}


def test_gpu_families_follow_the_registry():
    fams = {"a": {"gpu": True}, "b": {"gpu": False}, "c": {"gpu": True}}
    assert kit.gpu_families(fams) == ["a", "c"]


def test_budget():
    mib = 2**20
    assert kit.check_budget(40 * mib, 3 * mib) == 21 * mib
    with pytest.raises(kit.BudgetError):
        kit.check_budget(62 * mib, 3 * mib)
    assert kit.tree_bytes() > 0


def test_device_command_fits_and_script_parses():
    assert len(kit.DEVICE_COMMAND) <= 2000
    assert "benchmarks/gpu/device.sh" in kit.DEVICE_COMMAND and "--device cuda" in kit.DEVICE_COMMAND
    assert (ROOT / "benchmarks" / "gpu" / "device.sh").is_file()
    doc = (ROOT / "docs" / "gpu.md").read_text()
    assert kit.DEVICE_COMMAND in doc and str(kit.DEVICE_TIMEOUT_S) in doc
    assert ".gpu_wheels/" in (ROOT / ".gitignore").read_text().split()
    bash = shutil.which("bash")
    if bash:
        r = subprocess.run([bash, "-n", str(ROOT / "benchmarks" / "gpu" / "device.sh")], capture_output=True)
        assert r.returncode == 0, r.stderr.decode()
        bad = ROOT / "benchmarks" / "gpu" / "device.sh"
        r = subprocess.run([bash, "-n"], input=bad.read_bytes() + b"\nif then fi\n", capture_output=True)
        assert r.returncode != 0  # bash -n does catch a broken script


def test_choose_batch_atoms_and_manifest(tmp_path):
    results = [
        {
            "key": "a",
            "sweep": [{"batch_atoms": 500, "atoms_per_s": 100}, {"batch_atoms": 2000, "atoms_per_s": 400}],
        },
        {
            "key": "b",
            "sweep": [{"batch_atoms": 500, "atoms_per_s": 300}, {"batch_atoms": 2000, "atoms_per_s": 200}],
        },
    ]
    # summed time: 500 -> 1/100 + 1/300 = 0.0133; 2000 -> 1/400 + 1/200 = 0.0075
    assert kit.choose_batch_atoms(results, ["a", "b"]) == 2000
    assert kit.choose_batch_atoms(results, ["b"]) == 500
    assert kit.choose_batch_atoms(results, ["missing"]) is None
    (tmp_path / "w-1-py3-none-any.whl").write_bytes(b"wheel")
    manifest = {
        "families": {"f": {"files": ["w-1-py3-none-any.whl"]}},
        "wheels": [
            {"file": "w-1-py3-none-any.whl", "sha256": kit.sha256_of(tmp_path / "w-1-py3-none-any.whl")}
        ],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert kit.family_wheels("f", tmp_path, verify=True) == [tmp_path / "w-1-py3-none-any.whl"]
    (tmp_path / "w-1-py3-none-any.whl").write_bytes(b"changed")
    with pytest.raises(ValueError):
        kit.family_wheels("f", tmp_path, verify=True)
    with pytest.raises(KeyError):
        kit.family_wheels("g", tmp_path)
