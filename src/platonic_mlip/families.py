"""The model-family registry: the one place that says which families exist and what each needs.

Standard library only: ``envs/venvs.py`` (bare Python), the Makefile (``python envs/venvs.py families``), the
Snakefile (one ``embed`` rule, interpreter chosen per model) and the tests all derive from ``FAMILIES``.
Adding a family means: an adapter module ``platonic_mlip.embed.<name>`` (see ``platonic_mlip.embed.base``),
an environment spec ``envs/<env>.yaml`` (+ its lock), an entry here and its models in
``platonic_mlip.models.MODELS``. ``tests/families/test_contract.py`` then checks the family in its own
environment.

A family entry:

``env``             the virtualenv / conda spec it runs in (``envs/<env>.yaml``)
``adapter``         module with ``load(spec, device)`` (and, see ``embed.base``, ``bundled_path``,
                    ``key_url``, ``NaiveRoute``)
``layers``          the feature layers a model of the family can give (``name@layer`` in a run's models)
``default_layer``   the layer a model gives when the run does not name one
``multi_layer``     whether one forward pass can return several layers at once (else one layer per job)
``bundled``         package keys whose weights ship inside the package wheel (no download)
``weights_suffix``  file ending of the family's weights (a downloaded package key is stored as
                    ``<key><suffix>``; a source ending in it is a local file)
``gpu``             whether its embedding jobs want a GPU (``resources: gpu`` on a cluster)
``label``           display name
``invariant``       whether the features are rotation-invariant by construction (an equivariant or
                    invariant architecture); the rotation and symmetry claims (``claims``) contrast the
                    families that are with those that are not
``learned``         whether its models have trained or trainable weights (False: constructed reference spaces;
                    the contract then needs no untrained control, weights file or calculator)
``calculator``      whether the adapter gives an ASE calculator (energy, forces, stress: phonons, fine-tuning)
``contract``        what the contract test embeds: ``model`` (a registry model that loads offline),
                    ``atol`` (largest absolute difference allowed against the package's own route),
                    ``unsupported`` (an atomic number the model lacks, or None when it takes every element)
"""

from __future__ import annotations

FAMILIES: dict[str, dict] = {
    "mace": dict(
        env="mace",
        adapter="platonic_mlip.embed.mace",
        layers=("first", "last", "all"),
        default_layer="first",
        multi_layer=True,
        bundled=(),
        weights_suffix=".model",
        gpu=True,
        label="MACE",
        invariant=True,  # invariant (l=0) features of an equivariant network
        learned=True,
        calculator=True,
        contract=dict(model="dummy-mace-mp-0-small", atol=1e-4, unsupported=84),
    ),
    "sevenn": dict(
        env="sevenn",
        adapter="platonic_mlip.embed.sevenn",
        layers=("readout_input",),
        default_layer="readout_input",
        multi_layer=False,
        bundled=("7net-0", "7net-0_22may2024", "7net-l3i5", "7net-mf-0"),
        weights_suffix=".pth",
        gpu=True,
        label="SevenNet",
        invariant=True,  # invariant features of an equivariant network
        learned=True,
        calculator=True,
        contract=dict(model="7net-0", atol=1e-4, unsupported=84),
    ),
    "orb": dict(
        env="orb",
        adapter="platonic_mlip.embed.orb",
        layers=("trunk",),
        default_layer="trunk",
        multi_layer=False,
        bundled=(),
        weights_suffix=".ckpt",
        gpu=True,
        label="Orb",
        invariant=False,  # a non-equivariant trunk (rotation augmentation in training only)
        learned=True,
        calculator=True,
        contract=dict(model="dummy-orb-v3", atol=1e-4, unsupported=118),
    ),
    "chgnet": dict(
        env="chgnet",
        adapter="platonic_mlip.embed.chgnet",
        layers=("conv1", "conv2", "conv3", "conv4", "readout_input"),
        # conv3, not readout_input: readout_norm's affine output shares one large direction, so the
        # paper's uncentred cosines all sit near one value (docs/families.md, measured on the demo)
        default_layer="conv3",
        multi_layer=True,
        bundled=("0.3.0", "0.2.0", "r2scan"),
        weights_suffix=".pth.tar",
        gpu=True,
        label="CHGNet",
        invariant=True,  # built from distances and angles
        learned=True,
        calculator=True,
        contract=dict(model="chgnet-0.3.0", atol=1e-4, unsupported=95),
    ),
    # spaces built without learning (element identity, physics descriptors): the controls of what makes
    # the shared geometry (platonic_mlip.reference_spaces); numpy/ASE/pymatgen/dscribe, no torch model
    "reference": dict(
        env="analysis",
        adapter="platonic_mlip.embed.reference",
        layers=("descriptor",),
        default_layer="descriptor",
        multi_layer=False,
        bundled=(),
        weights_suffix=".npz",  # nothing is downloaded; a source ending in it would be a local file
        gpu=False,
        label="Reference",
        invariant=True,  # descriptors of distances, angles and element tables
        learned=False,
        calculator=False,
        contract=dict(model="atomic-states", atol=1e-6, unsupported=95),
    ),
}

#: environments that are not model families
OTHER_ENVS = ("analysis",)


def family_names() -> list[str]:
    return list(FAMILIES)


def envs() -> list[str]:
    """Every environment the project builds: the analysis one, then one per family env."""
    out = list(OTHER_ENVS)
    for fam in FAMILIES.values():
        if fam["env"] not in out:
            out.append(fam["env"])
    return out


def family(name: str) -> dict:
    if name not in FAMILIES:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]
