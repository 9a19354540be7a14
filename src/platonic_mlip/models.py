"""Registry of the models the study knows, and how a config entry resolves to a model spec.

Standard library only: the Snakefile imports it to validate the config before any job runs.

A spec is a plain dict:

``family``      which environment and loader: ``mace``, ``sevenn`` or ``orb``
``source``      a package key (``small``, ``7net-0``, ``orb_v3_direct_inf_omat``), a URL, a local path,
                or ``random`` for an untrained control built from the package's own construction code
``architecture`` for ``source: random``: which architecture to instantiate
``seed``        for ``source: random``: the torch seed of the initialisation
``layer``       which features (family specific; NOTES.md section 1 gives the paper's choice)
``modal``       SevenNet multi-fidelity checkpoints only: the fidelity whose features are read
``dim``         expected embedding width (checked after the first batch)
``label``       short name for figures
``url``         official download location of the weights (the package's own table; a test keeps them
                in step): the ``fetch_weights`` rule downloads it once into the weights cache
``sha256``      optional digest the weights file must have (set it in ``model_options``)
``offline``     true when the weights ship with the package or need none (runs without network)
"""

from __future__ import annotations

import copy

FAMILIES = ("mace", "sevenn", "orb")
_MACE = "https://github.com/ACEsuit/mace-mp/releases/download"
_ORB = "https://orbitalmaterials-public-models.s3.us-west-1.amazonaws.com/forcefields/orb-v3"
_SEVENN = "https://github.com/MDIL-SNU/SevenNet/releases/download"

MODELS: dict[str, dict] = {
    # --- the paper's seven foundation models (weights downloaded from the packages' sources) ---
    "mace-mp-0-small": dict(
        family="mace",
        source="small",
        url=f"{_MACE}/mace_mp_0/2023-12-10-mace-128-L0_energy_epoch-249.model",
        layer="first",
        dim=128,
        label="MACE-MP-0 S",
    ),
    "mace-mp-0-medium": dict(
        family="mace",
        source="medium",
        url=f"{_MACE}/mace_mp_0/2023-12-03-mace-128-L1_epoch-199.model",
        layer="first",
        dim=128,
        label="MACE-MP-0 M",
    ),
    "mace-mp-0-large": dict(
        family="mace",
        source="large",
        url=f"{_MACE}/mace_mp_0/MACE_MPtrj_2022.9.model",
        layer="first",
        dim=128,
        label="MACE-MP-0 L",
    ),
    "mace-omat-0-medium": dict(
        family="mace",
        source="medium-omat-0",
        url=f"{_MACE}/mace_omat_0/mace-omat-0-medium.model",
        layer="first",
        dim=128,
        label="MACE-OMAT",
    ),
    "7net-omat": dict(
        family="sevenn",
        source="7net-omat",
        url=f"{_SEVENN}/v0.11.0.cp/checkpoint_sevennet_omat.pth",
        dim=128,
        label="SevenNet-OMAT",
    ),
    "orb-v3-conservative-inf-omat": dict(
        family="orb",
        source="orb_v3_conservative_inf_omat",
        url=f"{_ORB}/orb-v3-conservative-inf-omat-20250404.ckpt",
        architecture="orb_v3_conservative_inf_omat",
        dim=256,
        label="Orb-v3 cons.",
    ),
    "orb-v3-direct-inf-omat": dict(
        family="orb",
        source="orb_v3_direct_inf_omat",
        url=f"{_ORB}/orb-v3-direct-inf-omat-20250404.ckpt",
        architecture="orb_v3_direct_inf_omat",
        dim=256,
        label="Orb-v3 direct",
    ),
    # --- real checkpoints bundled in the sevenn wheel (run offline) ---
    "7net-0": dict(family="sevenn", source="7net-0", dim=128, label="7net-0", offline=True),
    "7net-l3i5": dict(family="sevenn", source="7net-l3i5", dim=128, label="7net-l3i5", offline=True),
    "7net-mf-0": dict(
        family="sevenn", source="7net-mf-0", modal="PBE", dim=128, label="7net-mf-0", offline=True
    ),
    # --- untrained controls: fixed-seed random weights, the packages' own architectures ---
    "dummy-mace-mp-0-small": dict(
        family="mace",
        source="random",
        architecture="small",
        seed=0,
        layer="first",
        dim=128,
        label="Dummy MACE",
        offline=True,
    ),
    "dummy-7net-0": dict(
        family="sevenn",
        source="random",
        architecture="7net-0",
        seed=0,
        dim=128,
        label="Dummy 7net",
        offline=True,
    ),
    "dummy-orb-v3": dict(
        family="orb",
        source="random",
        architecture="orb_v3_conservative_inf_omat",
        seed=0,
        dim=256,
        label="Dummy Orb",
        offline=True,
    ),
}

#: keys a config may override per model (``model_options: {name: {key: value}}``)
OVERRIDABLE = ("source", "sha256", "seed", "layer", "modal", "batch_atoms", "label")


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key."""


def known_models() -> list[str]:
    return sorted(MODELS)


def resolve(name: str, options: dict | None = None) -> dict:
    """Return the spec of model ``name`` with per-model ``options`` applied.

    Raises ConfigError naming the model or key and listing the alternatives.
    """
    if name not in MODELS:
        raise ConfigError(
            f"config key 'models': unknown model {name!r}. Known models: {', '.join(known_models())}"
        )
    spec = copy.deepcopy(MODELS[name])
    for key, value in (options or {}).items():
        if key not in OVERRIDABLE:
            raise ConfigError(
                f"config key 'model_options.{name}.{key}': not a model option. "
                f"Allowed: {', '.join(OVERRIDABLE)}"
            )
        spec[key] = value
    spec["name"] = name
    return spec


def weights_plan(spec: dict, cache_dir) -> tuple[str | None, str | None]:
    """Where a model's weights come from: (url to fetch or None, local file or None).

    - untrained (``source: random``) and wheel-bundled (``offline``) models need no file: (None, None)
    - a URL source, or the registry key with its official ``url``: fetched once into
      ``<cache_dir>/<model>/<file name>``: (url, that path)
    - any other source is a local file the user provides: (None, source)
    """
    from pathlib import PurePosixPath
    from urllib.parse import urlsplit

    source = str(spec.get("source", ""))
    default = MODELS.get(spec.get("name", ""), {}).get("source")
    if source == "random" or (spec.get("offline") and source == default):
        return None, None
    if "://" in source:
        url = source
    elif source == default and spec.get("url"):
        url = spec["url"]
    else:
        return None, source
    name = PurePosixPath(urlsplit(url).path).name or "weights"
    return url, f"{str(cache_dir).rstrip('/')}/{spec['name']}/{name}"
