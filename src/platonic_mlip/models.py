"""Registry of the models the study knows, and how a config entry resolves to a model spec.

Standard library only: the Snakefile imports it to validate the config before any job runs.

A spec is a plain dict:

A model of a run is a checkpoint plus a layer: ``name`` or ``name@layer`` (e.g. ``mace-mp-0-small@last``);
without ``@layer`` the model gives the registry's layer, else its family's default layer
(``platonic_mlip.families``). The same checkpoint may appear at several layers in one run; one embedding job
computes all of them in one pass.

``family``      which environment and adapter (``platonic_mlip.families.FAMILIES``)
``source``      a package key (``small``, ``7net-0``, ``orb_v3_direct_inf_omat``), a URL, a local path,
                ``random`` for an untrained control built from the package's own construction code,
                ``constructed`` for a reference space built without weights (family ``reference``), or
                ``control`` for a trained control whose weights the run trains itself (``train_control``)
``role``        what the model is in the study (``ROLES``; ``role_of`` derives it when absent): ``trained``,
                ``untrained`` (random weights), ``self-supervised`` (trained without physical labels),
                ``distilled`` (its twin, trained on a teacher's energies and forces), ``element``
                (element-identity baseline) or ``physics`` (a physics-constructed reference space)
``objective``   ``source: control`` only: ``denoise`` or ``distill`` (``platonic_mlip.controls``)
``teacher``     ``objective: distill``: the pretrained model whose energies and forces are the labels
``overrides``   SevenNet ``source: random`` / ``control``: config keys of ``architecture`` replaced (a smaller
                network of the same kind, ``SEVENN_SMALL``)
``descriptor``  family ``reference`` only: parameters of the construction (``platonic_mlip.reference_spaces``)
``architecture`` for ``source: random``: which architecture to instantiate
``seed``        for ``source: random``: the torch seed of the initialisation
``layer``       which features (one of the family's ``layers``; NOTES.md section 1 gives the paper's choice)
``checkpoint``  (set by ``resolve``) the registry name without ``@layer``: one embedding job per checkpoint
``modal``       SevenNet multi-fidelity checkpoints only: the fidelity whose features are read
``dim``         expected embedding width (checked after the first batch)
``label``       short name for figures
``url``         official download location of the weights (the package's own table; a test keeps them
                in step): the ``fetch_weights`` rule downloads it once into the weights cache
``sha256``      optional digest the weights file must have (set it in ``model_options``)
``offline``     true when the weights ship with the package or need none (runs without network)
``trust_weights_file``  (model_options only) load a local weights file that has no ``sha256`` in the
                config. Off by default: MACE ``.model`` and SevenNet/CHGNet checkpoints are pickles
"""

from __future__ import annotations

import copy

from .families import family

_MACE = "https://github.com/ACEsuit/mace-mp/releases/download"
_ORB = "https://orbitalmaterials-public-models.s3.us-west-1.amazonaws.com/forcefields/orb-v3"
_SEVENN = "https://github.com/MDIL-SNU/SevenNet/releases/download"

#: a small SevenNet network of 7net-0's kind (NequIP-type interaction, same cutoff, radial basis and
#: element table) that trains on two CPU cores in the demo's budget: 3 convolutions, l <= 1, 64 channels
#: (7net-0: 5 convolutions, l <= 2, 128x0e+64x1e+32x2e). OURS, for the trained controls (docs/controls.md)
SEVENN_SMALL = {
    "irreps_manual": ["64x0e", "64x0e+32x1e", "64x0e+32x1e", "64x0e"],
    "lmax": 1,
    "num_convolution_layer": 3,
    "channel": 64,
}


def _sevenn_control(objective: str, label: str, overrides: dict | None = None) -> dict:
    """Registry entry of a trained control of 7net-0's architecture (``overrides``: a smaller network), from
    the untrained control's start (seed 0); distilled from 7net-0 (``platonic_mlip.controls``)."""
    spec = dict(family="sevenn", source="control", objective=objective, architecture="7net-0", seed=0)
    if objective == "distill":
        spec["teacher"] = "7net-0"
    if overrides:
        spec["overrides"] = overrides
    role = {"denoise": "self-supervised", "distill": "distilled"}[objective]
    return dict(spec, role=role, dim=64 if overrides else 128, label=label, offline=True)


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
    # --- real checkpoints bundled in the chgnet wheel (run offline) ---
    "chgnet-0.3.0": dict(family="chgnet", source="0.3.0", dim=64, label="CHGNet 0.3.0", offline=True),
    "chgnet-0.2.0": dict(family="chgnet", source="0.2.0", dim=64, label="CHGNet 0.2.0", offline=True),
    "chgnet-r2scan": dict(family="chgnet", source="r2scan", dim=64, label="CHGNet r2SCAN", offline=True),
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
    "dummy-chgnet": dict(
        family="chgnet",
        source="random",
        architecture="0.3.0",
        seed=0,
        dim=64,
        label="Dummy CHGNet",
        offline=True,
    ),
    # --- trained controls (platonic_mlip.controls; docs/controls.md): one architecture, one random start,
    # three fates: left untrained, trained to denoise positions (no labels), distilled from 7net-0 ---
    "dummy-7net-small": dict(
        family="sevenn",
        source="random",
        architecture="7net-0",
        overrides=SEVENN_SMALL,
        seed=0,
        dim=64,
        label="Dummy 7net-small",
        offline=True,
    ),
    "denoise-7net-small": _sevenn_control("denoise", "Denoise 7net-small (self-supervised)", SEVENN_SMALL),
    "distill-7net-small": _sevenn_control("distill", "Distill 7net-small (distilled)", SEVENN_SMALL),
    # the same at 7net-0's full architecture (GPU-sized training; the paper config)
    "denoise-7net-0": _sevenn_control("denoise", "Denoise 7net (self-supervised)"),
    "distill-7net-0": _sevenn_control("distill", "Distill 7net (distilled)"),
    # --- reference spaces built without learning (platonic_mlip.reference_spaces; docs/controls.md) ---
    "element-onehot": dict(
        family="reference",
        source="constructed",
        architecture="element-onehot",
        role="element",
        dim=118,
        label="Element one-hot (baseline)",
        offline=True,
    ),
    "element-random": dict(
        family="reference",
        source="random",
        architecture="element-random",
        seed=0,
        role="element",
        dim=128,
        label="Element random (baseline)",
        offline=True,
    ),
    "soap": dict(
        family="reference",
        source="constructed",
        architecture="soap",
        role="physics",
        dim=210,
        label="SOAP (physics)",
        offline=True,
    ),
    "atomic-states": dict(
        family="reference",
        source="constructed",
        architecture="atomic-states",
        role="physics",
        dim=226,
        label="Atomic states (physics)",
        offline=True,
    ),
}

#: what a model is in the study (``role_of``)
ROLES = ("trained", "untrained", "self-supervised", "distilled", "element", "physics")

#: keys a config may override per model (``model_options: {name: {key: value}}``)
OVERRIDABLE = (
    "source",
    "sha256",
    "trust_weights_file",
    "seed",
    "layer",
    "modal",
    "head",
    "batch_atoms",
    "label",
    "descriptor",
)


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key."""


def role_of(spec: dict) -> str:
    """The model's role (``ROLES``): its ``role`` when set, else ``untrained`` for ``source: random`` and
    ``trained`` for everything else."""
    role = spec.get("role") or ("untrained" if spec.get("source") == "random" else "trained")
    if role not in ROLES:
        raise ConfigError(
            f"model {spec.get('name', '?')!r}: unknown role {role!r}; one of {', '.join(ROLES)}"
        )
    return role


def known_models() -> list[str]:
    return sorted(MODELS)


def split_model_id(model_id: str) -> tuple[str, str | None]:
    """``"name@layer"`` -> ``("name", "layer")``; ``"name"`` -> ``("name", None)``."""
    name, sep, layer = str(model_id).partition("@")
    return name, (layer if sep else None)


def resolve(name: str, options: dict | None = None) -> dict:
    """Return the spec of model ``name`` (``checkpoint`` or ``checkpoint@layer``) with ``options`` applied.

    ``options`` are the checkpoint's ``model_options``. Raises ConfigError naming the model or key and
    listing the alternatives.
    """
    base, layer = split_model_id(name)
    if base not in MODELS:
        raise ConfigError(
            f"config key 'models': unknown model {base!r}. Known models: {', '.join(known_models())}"
        )
    spec = copy.deepcopy(MODELS[base])
    fam = family(spec["family"])
    spec.setdefault("layer", fam["default_layer"])
    registry_layer = spec["layer"]
    for key, value in (options or {}).items():
        if key not in OVERRIDABLE:
            raise ConfigError(
                f"config key 'model_options.{base}.{key}': not a model option. "
                f"Allowed: {', '.join(OVERRIDABLE)}"
            )
        spec[key] = value
    if layer is not None:
        if layer == "":
            raise ConfigError(f"config key 'models': {name!r} names no layer after '@'")
        spec["label"] = f"{spec.get('label', base)} @{layer}"
        spec["layer"] = layer
    if spec["layer"] not in fam["layers"]:
        where = f"config key 'models': {name!r}" if layer is not None else f"'model_options.{base}.layer'"
        raise ConfigError(
            f"{where}: layer {spec['layer']!r} is not a layer of the {fam['label']} family; "
            f"choose from {', '.join(fam['layers'])}"
        )
    if spec["layer"] != registry_layer:
        spec.pop("dim", None)  # the registry's width is the registry layer's
    spec["name"] = name
    spec["checkpoint"] = base
    return spec


def checkpoint_specs(specs: dict[str, dict]) -> dict[str, dict]:
    """Group a run's model specs by checkpoint: {checkpoint: spec with ``layers`` in order of appearance}.

    One embedding job per checkpoint computes every requested layer in one pass. Raises ConfigError when a
    checkpoint is requested at several layers but its family gives one layer per pass.
    """
    out: dict[str, dict] = {}
    for spec in specs.values():
        ckpt = spec["checkpoint"]
        if ckpt not in out:
            job = copy.deepcopy(spec)
            job.update(name=ckpt, label=MODELS[ckpt].get("label", ckpt), layers=[])
            out[ckpt] = job
        job = out[ckpt]
        if spec["layer"] not in job["layers"]:
            job["layers"].append(spec["layer"])
    for ckpt, job in out.items():
        if len(job["layers"]) > 1:
            if not family(job["family"])["multi_layer"]:
                raise ConfigError(
                    f"config key 'models': {ckpt!r} is requested at layers {', '.join(job['layers'])}, "
                    f"but the {job['family']} adapter gives one layer per pass"
                )
            job.pop("dim", None)
            job["layer"] = job["layers"][0]
    return out
