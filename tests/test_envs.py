"""The environment tooling: specs, locks and the stdlib-only venv builder agree."""

import importlib.util

import yaml
from conftest import ROOT

spec = importlib.util.spec_from_file_location("venvs", ROOT / "envs" / "venvs.py")
venvs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(venvs)


def test_pip_lists_match_a_real_yaml_parse():
    for name in venvs.ALL_ENVS:
        path = ROOT / "envs" / f"{name}.yaml"
        doc = yaml.safe_load(path.read_text())
        pip = next(d["pip"] for d in doc["dependencies"] if isinstance(d, dict))
        assert venvs.pip_requirements(path) == pip


def test_torch_is_pinned_everywhere():
    pin = venvs.torch_pin()
    assert pin == "torch==2.13.0"
    for name in venvs.ALL_ENVS:
        assert pin in venvs.pip_requirements(ROOT / "envs" / f"{name}.yaml")
        lock = (ROOT / "envs" / "locks" / f"{name}.txt").read_text().splitlines()
        assert pin in lock, f"{name} lock does not pin {pin}"


def test_family_locks_keep_the_e3nn_split():
    mace = (ROOT / "envs" / "locks" / "mace.txt").read_text()
    sevenn = (ROOT / "envs" / "locks" / "sevenn.txt").read_text()
    assert "e3nn==0.4.4" in mace
    e3nn = next(ln for ln in sevenn.splitlines() if ln.startswith("e3nn=="))
    assert tuple(int(x) for x in e3nn.split("==")[1].split(".")[:2]) >= (0, 5)
    assert "sevenn==0.13.0" in sevenn


def test_stamp_tracks_the_spec(tmp_path, monkeypatch):
    a = venvs.stamp_of("mace")
    assert a == venvs.stamp_of("mace") and a != venvs.stamp_of("sevenn")
    assert venvs.stamp_of("mace", with_lock=False) != a
