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
``offline``     true when the weights ship with the package or need none (runs without network)
"""

from __future__ import annotations

import copy

FAMILIES = ("mace", "sevenn", "orb")

MODELS: dict[str, dict] = {
    # --- the paper's seven foundation models (weights downloaded from the packages' sources) ---
    "mace-mp-0-small": dict(family="mace", source="small", layer="first", dim=128, label="MACE-MP-0 S"),
    "mace-mp-0-medium": dict(family="mace", source="medium", layer="first", dim=128, label="MACE-MP-0 M"),
    "mace-mp-0-large": dict(family="mace", source="large", layer="first", dim=128, label="MACE-MP-0 L"),
    "mace-omat-0-medium": dict(
        family="mace", source="medium-omat-0", layer="first", dim=128, label="MACE-OMAT"
    ),
    "7net-omat": dict(family="sevenn", source="7net-omat", dim=128, label="SevenNet-OMAT"),
    "orb-v3-conservative-inf-omat": dict(
        family="orb", source="orb_v3_conservative_inf_omat", dim=256, label="Orb-v3 cons."
    ),
    "orb-v3-direct-inf-omat": dict(
        family="orb", source="orb_v3_direct_inf_omat", dim=256, label="Orb-v3 direct"
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
OVERRIDABLE = ("source", "seed", "layer", "modal", "batch_atoms", "label")


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
