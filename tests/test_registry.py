"""The model registry: names, options, and download URLs that match each package's own table."""

import json
import subprocess

import pytest
from conftest import require_env

from platonic_mlip.models import MODELS, ConfigError, resolve, weights_plan

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
        url, path = weights_plan(resolve(name), "cache")
        if spec.get("offline"):
            assert (url, path) == (None, None), name
        else:
            assert url == spec["url"] and path.startswith(f"cache/{name}/"), name


def test_unknown_model_and_option_messages():
    with pytest.raises(ConfigError, match="Known models: .*7net-0"):
        resolve("7net-00")
    with pytest.raises(ConfigError, match="model_options.7net-0.colour"):
        resolve("7net-0", {"colour": "red"})
