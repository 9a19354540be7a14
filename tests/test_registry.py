"""The model and family registries, the weights layer: names, layers, options, weights sources, and download
URLs that match each package's own table."""

import json
import subprocess

import pytest
from conftest import require_env

from platonic_mlip.families import FAMILIES
from platonic_mlip.models import MODELS, ConfigError, checkpoint_specs, resolve
from platonic_mlip.weights import WeightsError, check_file, plan

# code run inside each family environment: print {model: the package's own URL for it}
PACKAGE_URLS = {
    "mace": (
        "import json; from mace.calculators.foundations_models import mace_mp_urls as u; "
        "print(json.dumps({m: u[k] for m, k in {models}.items()}))"
    ),
    "sevenn": (
        "import json, sevenn._const as c; links = c.CHECKPOINT_DOWNLOAD_LINKS; "
        "print(json.dumps({m: next(v for p, v in links.items() if k.replace('-', '_') in p.lower()) "
        "for m, k in {models}.items()}))"
    ),
    "orb": (
        "import inspect, json; from orb_models.forcefield import pretrained as p; "
        "print(json.dumps({m: inspect.signature(getattr(p, k)).parameters['weights_path'].default "
        "for m, k in {models}.items()}))"
    ),
}


@pytest.mark.parametrize("family", sorted(PACKAGE_URLS))
def test_registry_urls_match_the_packages(family):
    py = require_env(family)
    keys = {
        "mace": lambda s: s["source"],
        "sevenn": lambda s: "sevennet_" + s["source"].split("-", 1)[1],
        "orb": lambda s: s["source"],
    }[family]
    models = {m: keys(s) for m, s in MODELS.items() if s["family"] == family and s.get("url")}
    assert models, family
    code = PACKAGE_URLS[family].replace("{models}", repr(models))
    res = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    theirs = json.loads(res.stdout.strip().splitlines()[-1])
    assert theirs == {m: MODELS[m]["url"] for m in models}


def test_every_paper_model_is_downloadable_and_offline_models_need_nothing():
    for name, spec in MODELS.items():
        p = plan(resolve(name), "cache")
        if spec.get("offline"):
            assert p["kind"] in ("bundled", "random", "constructed", "control") and p["path"] is None, name
        else:
            assert p["kind"] == "url" and p["url"] == spec["url"], name
            assert p["path"].startswith(f"cache/{name}/"), name


def test_every_model_names_a_registered_family_and_a_layer_of_it():
    for name, spec in MODELS.items():
        fam = FAMILIES[spec["family"]]
        assert resolve(name)["layer"] in fam["layers"], name
        if spec["source"] not in ("random", "constructed", "control") and spec.get("offline"):
            assert spec["source"] in fam["bundled"], name


def test_weights_sources_of_every_kind():
    spec = resolve("mace-mp-0-small", {"source": "medium-mpa-0"})  # a key of mace's own table
    assert plan(spec, "c") == {
        "kind": "key",
        "source": "medium-mpa-0",
        "url": None,
        "key": "medium-mpa-0",
        "path": "c/mace-mp-0-small/medium-mpa-0.model",
    }
    assert plan(resolve("7net-0"), "c")["kind"] == "bundled"
    assert plan(resolve("7net-l3i5", {"source": "7net-0"}), "c")["key"] == "7net-0"
    assert plan(resolve("chgnet-r2scan"), "c")["kind"] == "bundled"
    local = plan(resolve("7net-0", {"source": "/x/ckpt.pth"}), "c")
    assert (local["kind"], local["path"]) == ("local", "/x/ckpt.pth")
    assert plan(resolve("7net-0", {"source": "my.pth"}), "c")["kind"] == "local"
    url = plan(resolve("7net-0", {"source": "https://h/a/b.pth?x=1"}), "c")
    assert (url["kind"], url["path"]) == ("url", "c/7net-0/b.pth")
    assert plan(resolve("dummy-7net-0"), "c")["kind"] == "random"


def test_weights_checks_refuse_unpinned_local_files_and_wrong_digests(tmp_path):
    import hashlib

    f = tmp_path / "w.pth"
    f.write_bytes(b"pickle")
    digest = hashlib.sha256(b"pickle").hexdigest()
    spec = resolve("7net-0", {"source": str(f)})
    with pytest.raises(WeightsError, match=f"sha256: {digest}.*trust_weights_file"):
        check_file(spec, "local", f)
    assert check_file(resolve("7net-0", {"source": str(f), "sha256": digest}), "local", f) == digest
    assert check_file(resolve("7net-0", {"source": str(f), "trust_weights_file": True}), "local", f) == digest
    # a configured digest is checked for every kind, bundled files too
    with pytest.raises(WeightsError, match="model_options.7net-0.sha256"):
        check_file(resolve("7net-0", {"sha256": "0" * 64}), "bundled", f)
    # a downloaded file that changed after download
    (tmp_path / "w.pth.sha256").write_text("1" * 64 + "\n")
    with pytest.raises(WeightsError, match="changed since it was downloaded"):
        check_file(spec, "url", f)


def test_a_checkpoint_at_several_layers():
    spec = resolve("mace-mp-0-small@last")
    assert (spec["checkpoint"], spec["layer"], spec["name"]) == (
        "mace-mp-0-small",
        "last",
        "mace-mp-0-small@last",
    )
    assert "dim" not in spec and spec["label"] == "MACE-MP-0 S @last"
    assert resolve("mace-mp-0-small@first")["dim"] == 128  # the registry's own layer keeps its width
    jobs = checkpoint_specs({m: resolve(m) for m in ("mace-mp-0-small", "mace-mp-0-small@last", "7net-0")})
    assert jobs["mace-mp-0-small"]["layers"] == ["first", "last"] and jobs["7net-0"]["layers"] == [
        "readout_input"
    ]
    with pytest.raises(ConfigError, match="not a layer of the SevenNet family; choose from readout_input"):
        resolve("7net-0@last")
    with pytest.raises(ConfigError, match="names no layer"):
        resolve("7net-0@")


def test_unknown_model_and_option_messages():
    with pytest.raises(ConfigError, match="Known models: .*7net-0"):
        resolve("7net-00")
    with pytest.raises(ConfigError, match="model_options.7net-0.colour"):
        resolve("7net-0", {"colour": "red"})
