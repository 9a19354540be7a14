"""MACE family: per-atom invariant node features of MACE models (``mace-torch``).

Which features (``spec["layer"]``), as ``MACECalculator.get_descriptors(invariants_only=True)`` slices them:

``first``  the l=0 part of the node features after the first interaction + product block (the paper's choice,
           ``get_descriptors(atoms, invariants_only=True, num_layers=1)``); 128-dim for every MACE-MP-0 size
``last``   the l=0 features of the last interaction layer (the input of the final nonlinear readout)
``all``    every layer's l=0 features concatenated, first layer first (``num_layers=-1``)

Fast path: a list of ``ase.Atoms`` becomes one mace graph batch (``config_from_atoms`` ->
``AtomicData.from_config`` -> ``torch_geometric.Batch.from_data_list``, as the calculator builds its batch)
and, under ``torch.no_grad``, only the blocks the layer needs run: for ``MACE`` and ``ScaleShiftMACE``
(mace_mp checkpoints, the random controls) the model's own submodules are called in the order and with the
arguments of its ``forward`` (``prepare_graph`` -> ``node_embedding`` (+ ``joint_embedding`` where present),
``spherical_harmonics``, ``radial_embedding`` -> ``interactions[i]`` + ``products[i]``), stopping after block
1 for ``first`` and after the last block for ``last``/``all``; atomic energies, pair repulsion, readouts,
scale/shift and energy sums (which never feed the node features) are skipped. Other model classes (their
forward may differ, e.g. mace's ``MACELES``) run the whole model with ``compute_force=False`` instead, with a
logged reason. Either way the invariant columns are cut out with mace's own ``extract_invariant``, exactly as
``get_descriptors`` does. The calculator route computes forces as well; the features are the same.

Sources (``spec["source"]``): a key of mace's ``mace_mp_urls`` table (``small``, ``medium``, ``large``,
``medium-omat-0``, ...), a URL, a local ``.model`` path, or ``random``. Keys and URLs are downloaded once
into ``$PLATONIC_WEIGHTS_DIR`` (default: mace's own cache, ``$XDG_CACHE_HOME/mace`` or ``~/.cache/mace``),
under the file name mace itself uses there, so a cache filled by ``mace_mp()`` is reused. ``.model`` files
are pickles (``torch.load(weights_only=False)``): load only files you trust.

``random`` builds an untrained control with mace's own ``ScaleShiftMACE`` and the MACE-MP-0 *small*
hyperparameters (``RANDOM_ARCHITECTURES["small"]``), initialised under ``torch.manual_seed(spec["seed"])``.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import Embedder, requested_layers
from .base import NaiveRoute as _NaiveRoute

#: the 89 elements of MPtrj, as in the MACE-MP-0 checkpoints' ``atomic_numbers`` buffer (H..Bi, Ac..Pu)
MPTRJ_Z_TABLE = tuple(range(1, 84)) + tuple(range(89, 95))

#: Hyperparameters of the untrained controls. ``small`` is the MACE-MP-0 small architecture (checkpoint
#: ``2023-12-10-mace-128-L0_energy_epoch-249.model``). Sources: the training script
#: ``mace_mp_0/2023-12-10-mace-128-L0_energy.sh`` in github.com/ACEsuit/mace-mp (ScaleShiftMACE,
#: RealAgnosticResidualInteractionBlock for first and later interactions, 2 interactions, correlation 3,
#: max_ell 3, r_max 6.0, max_L 0, 128 channels, 10 radial Bessel functions, MLP_irreps 16x0e); mace's
#: argument-parser defaults for what the script leaves out (5 polynomial-cutoff terms, radial MLP
#: [64, 64, 64], gate silu, bessel radial basis, use_reduced_cg False); avg_num_neighbors 61.9647 (the
#: MPtrj value at r_max 6 stored in that checkpoint, as quoted by a third-party loader that rebuilds it and
#: loads its state dict strictly). Atomic energies (E0s) and the scale/shift only change energies, never
#: node features: zeros and scale 1, shift 0 here.
RANDOM_ARCHITECTURES: dict[str, dict] = {
    "small": dict(
        r_max=6.0,
        num_bessel=10,
        num_polynomial_cutoff=5,
        max_ell=3,
        interaction="RealAgnosticResidualInteractionBlock",
        interaction_first="RealAgnosticResidualInteractionBlock",
        num_interactions=2,
        hidden_irreps="128x0e",
        MLP_irreps="16x0e",
        correlation=3,
        gate="silu",
        radial_MLP=[64, 64, 64],
        radial_type="bessel",
        avg_num_neighbors=61.964672446250916,
        use_reduced_cg=False,
        atomic_numbers=MPTRJ_Z_TABLE,
        atomic_inter_scale=1.0,
        atomic_inter_shift=0.0,
    ),
}

log = logging.getLogger(__name__)

LAYERS = ("first", "last", "all")
WEIGHTS_ENV = "PLATONIC_WEIGHTS_DIR"
TIMEOUT_ENV = "PLATONIC_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT_S = 30.0


class WeightsUnavailableError(RuntimeError):
    """A MACE checkpoint is neither cached nor downloadable; the message says where to put it."""


def _import_mace():
    # mace must be imported before e3nn (e3nn 0.4.4 with torch >= 2.6); importing mace.calculators also
    # sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD, but we pass weights_only=False explicitly anyway.
    import mace  # noqa: F401
    import mace.modules  # noqa: F401
    from mace import data as mace_data  # noqa: F401


def weights_dir() -> Path:
    """Where downloaded checkpoints live: ``$PLATONIC_WEIGHTS_DIR``, else mace's own cache dir."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env).expanduser()
    from mace.tools.utils import get_cache_dir

    return Path(get_cache_dir())


def _cache_name(url: str) -> str:
    # the file name mace_mp() gives its cached download (alphanumerics and '_' of the URL's basename)
    base = os.path.basename(urllib.parse.urlsplit(url).path)
    return "".join(c for c in base if c.isalnum() or c == "_")


def resolve_source(source: str) -> tuple[str | None, Path]:
    """Return (url or None, local path) of a key, URL or local path."""
    from mace.calculators.foundations_models import mace_mp_urls

    if source in mace_mp_urls:
        url = mace_mp_urls[source]
    elif "://" in str(source):
        url = str(source)
    else:
        return None, Path(source).expanduser()
    return url, weights_dir() / _cache_name(url)


def fetch_weights(source: str, model_name: str = "?") -> tuple[str, Path]:
    """Locate (downloading when needed) the checkpoint of ``source``; returns (weights_source, path)."""
    url, path = resolve_source(source)
    if url is None:
        if not path.is_file():
            raise WeightsUnavailableError(
                f"MACE model {model_name!r}: weights file {str(path)!r} not found (source {source!r}); "
                "give a valid path to a .model file, a mace foundation key or a URL"
            )
        return str(path), path
    if path.is_file():
        return url, path
    from ..structures import StructureError, fetch

    timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    try:
        fetch(url, path, retries=2, backoff_s=1.0, timeout_s=timeout)
    except StructureError as err:
        raise WeightsUnavailableError(
            f"MACE model {model_name!r} (source {source!r}): weights not cached at {str(path)!r} and the "
            f"download from {url} failed ({err}). Without network: download the file elsewhere and copy it "
            f"to exactly that path (the cache dir is ${WEIGHTS_ENV}, default mace's ~/.cache/mace), or set "
            "the model's source to a local .model path."
        ) from err
    return url, path


def _load_checkpoint(path: Path, device, model_name: str):
    import torch

    _import_mace()
    try:
        model = torch.load(str(path), map_location=device, weights_only=False)
    except Exception as err:  # truncated file, HTML error page, incompatible pickle
        raise WeightsUnavailableError(
            f"MACE model {model_name!r}: could not load {str(path)!r} as a MACE .model file "
            f"({type(err).__name__}: {err}); delete it and download again, or check the source"
        ) from err
    if isinstance(model, dict) or not isinstance(model, torch.nn.Module):
        raise WeightsUnavailableError(
            f"MACE model {model_name!r}: {str(path)!r} holds a {type(model).__name__}, not a MACE model "
            "(training checkpoints with state dicts are not supported; use the exported .model file)"
        )
    return model


def build_random_model(architecture: str = "small", seed: int = 0, overrides: dict | None = None):
    """Untrained ScaleShiftMACE of the named architecture, initialised under ``torch.manual_seed(seed)``;
    ``overrides`` replace hyperparameters of ``RANDOM_ARCHITECTURES[architecture]`` (e.g. a smaller model
    for tests)."""
    import torch

    _import_mace()
    from e3nn import o3
    from mace import modules
    from mace.tools import torch_tools

    if architecture not in RANDOM_ARCHITECTURES:
        raise ValueError(
            f"unknown random MACE architecture {architecture!r}; known: {', '.join(RANDOM_ARCHITECTURES)}"
        )
    hp = {**RANDOM_ARCHITECTURES[architecture], **(overrides or {})}
    z_table = [int(z) for z in hp.pop("atomic_numbers")]
    with torch_tools.default_dtype(torch.float32):
        torch.manual_seed(int(seed))
        model = modules.ScaleShiftMACE(
            r_max=hp["r_max"],
            num_bessel=hp["num_bessel"],
            num_polynomial_cutoff=hp["num_polynomial_cutoff"],
            max_ell=hp["max_ell"],
            interaction_cls=modules.interaction_classes[hp["interaction"]],
            interaction_cls_first=modules.interaction_classes[hp["interaction_first"]],
            num_interactions=hp["num_interactions"],
            num_elements=len(z_table),
            hidden_irreps=o3.Irreps(hp["hidden_irreps"]),
            MLP_irreps=o3.Irreps(hp["MLP_irreps"]),
            atomic_energies=np.zeros(len(z_table)),
            avg_num_neighbors=hp["avg_num_neighbors"],
            atomic_numbers=z_table,
            correlation=hp["correlation"],
            gate=modules.gate_dict[hp["gate"]],
            radial_MLP=list(hp["radial_MLP"]),
            radial_type=hp["radial_type"],
            use_reduced_cg=hp["use_reduced_cg"],
            atomic_inter_scale=hp["atomic_inter_scale"],
            atomic_inter_shift=hp["atomic_inter_shift"],
        )
    return model.float()


def _truncation_unsupported(model) -> str | None:
    """None when the truncated route reproduces ``model``'s forward, else why it may not."""
    from mace.modules.models import MACE, ScaleShiftMACE

    # exact classes only: subclasses (mace's MACELES, PolarMACE, ...) override forward
    if type(model) not in (MACE, ScaleShiftMACE):
        return f"model class {type(model).__module__}.{type(model).__qualname__} has no truncated route"
    needed = ("node_embedding", "spherical_harmonics", "radial_embedding", "interactions", "products")
    missing = [a for a in needed if not hasattr(model, a)]
    if missing:
        return f"model lacks {', '.join(missing)}"
    if len(model.interactions) != len(model.products) or len(model.products) != int(model.num_interactions):
        return "interactions, products and num_interactions disagree"
    return None


def _pick_head(model, requested: str | None) -> str:
    heads = list(getattr(model, "heads", None) or ["Default"])
    if requested is not None:
        if requested not in heads:
            raise ValueError(f"MACE head {requested!r} not in the model's heads {heads}")
        return requested
    if len(heads) == 1:
        return heads[0]
    default = [h for h in heads if h.lower() == "default"]
    if not default:
        raise ValueError(f"multi-head MACE model: set spec['head'] to one of {heads}")
    return default[0]


class MACEEmbedder(Embedder):
    def __init__(self, spec: dict, device, model, weights_source: str, weights_path: Path | None):
        import torch

        _import_mace()
        from e3nn import o3
        from mace.tools import utils

        self.spec = spec
        self.device = device
        self.layers = [layer or "first" for layer in requested_layers(spec)]
        for layer in self.layers:
            if layer not in LAYERS:
                raise ValueError(
                    f"MACE model {spec.get('name', '?')!r}: layer {layer!r} not one of {', '.join(LAYERS)}"
                )
        layer = self.layers[0]
        if not all(hasattr(model, a) for a in ("products", "num_interactions", "atomic_numbers")):
            raise ValueError(
                f"MACE model {spec.get('name', '?')!r}: {type(model).__name__} is not a MACE model with "
                "interaction/product layers"
            )
        dtype = {"float32": torch.float32, "float64": torch.float64}[spec.get("dtype", "float32")]
        model = model.to(device=device, dtype=dtype).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        self.dtype = dtype
        self.layer = layer
        self.weights_source = weights_source
        self.weights_path = weights_path
        self._sha = None

        self.num_interactions = int(model.num_interactions)
        self.r_max = float(model.r_max)
        self.z_table = utils.AtomicNumberTable([int(z) for z in model.atomic_numbers])
        self.heads = list(getattr(model, "heads", None) or ["Default"])
        self.head = _pick_head(model, spec.get("head"))
        # the slicing get_descriptors uses
        irreps_out = o3.Irreps(str(model.products[0].linear.irreps_out))
        self.l_max = irreps_out.lmax
        self.num_inv = irreps_out.dim // (self.l_max + 1) ** 2
        widths = {"first": 1, "last": 1, "all": self.num_interactions}
        self.layer_dims = {name: self.num_inv * widths[name] for name in self.layers}
        self.dim = sum(self.layer_dims.values())
        # interaction/product blocks the layers need (the rest of the model is skipped on the truncated route)
        self.n_blocks = 1 if self.layers == ["first"] else self.num_interactions
        reason = _truncation_unsupported(model)
        self.route = "truncated" if reason is None else "full"
        if reason is not None:
            log.info(
                "MACE model %r: running the whole model for its features (%s)", spec.get("name", "?"), reason
            )

    # -- Embedder interface ------------------------------------------------------------------------------
    def supported_numbers(self) -> set[int]:
        return {int(z) for z in self.z_table.zs}

    def to_batch(self, atoms_list: Sequence):
        """One mace graph batch of ``atoms_list``, built as MACECalculator builds its one-structure batch."""
        from mace import data as mace_data
        from mace.tools import torch_geometric, torch_tools

        keyspec = mace_data.KeySpecification(
            info_keys={"total_spin": "spin", "total_charge": "charge", "external_field": "external_field"},
            arrays_keys={"Qs": "charges"},
        )
        with torch_tools.default_dtype(self.dtype):
            graphs = [
                mace_data.AtomicData.from_config(
                    mace_data.config_from_atoms(a, key_specification=keyspec, head_name=self.head),
                    z_table=self.z_table,
                    cutoff=self.r_max,
                    heads=self.heads,
                )
                for a in atoms_list
            ]
        return torch_geometric.Batch.from_data_list(graphs).to(self.device)

    def node_feats(self, atoms_list: Sequence, full_model: bool = False):
        """Raw ``node_feats`` (all irreps, layers concatenated) of the batch, forward pass only.

        On the truncated route only the first ``n_blocks`` layers are computed (the columns of the later
        layers are absent); ``full_model=True`` (or a model class without the truncated route) runs the whole
        model with ``compute_force=False`` and returns every layer.
        """
        import torch

        data = self.to_batch(atoms_list).to_dict()
        with torch.no_grad():
            if self.route == "truncated" and not full_model:
                return self._truncated_node_feats(data, self.n_blocks)
            out = self.model(
                data,
                training=False,
                compute_force=False,
                compute_virials=False,
                compute_stress=False,
                compute_displacement=False,
            )
        return out["node_feats"]

    def _truncated_node_feats(self, data: dict, n_blocks: int):
        """The feature part of ``MACE.forward`` / ``ScaleShiftMACE.forward`` (mace-torch 0.3.16), stopped
        after ``products[n_blocks - 1]``: the same calls with the same arguments, without the energy terms."""
        import torch
        from mace.modules.utils import prepare_graph

        model = self.model
        ctx = prepare_graph(data, compute_virials=False, compute_stress=False, compute_displacement=False)
        interaction_kwargs = ctx.interaction_kwargs
        node_attrs = data["node_attrs"]
        node_feats = model.node_embedding(node_attrs)
        edge_attrs = model.spherical_harmonics(ctx.vectors)
        edge_feats, cutoff = model.radial_embedding(
            ctx.lengths, node_attrs, data["edge_index"], model.atomic_numbers
        )
        if hasattr(model, "joint_embedding"):
            embedding_features = {name: data[name] for name in model.embedding_specs}
            node_feats = node_feats + model.joint_embedding(data["batch"], embedding_features)
        feats = []
        for i in range(n_blocks):
            node_feats, sc = model.interactions[i](
                node_attrs=node_attrs,
                node_feats=node_feats,
                edge_attrs=edge_attrs,
                edge_feats=edge_feats,
                edge_index=data["edge_index"],
                cutoff=cutoff,
                first_layer=(i == 0),
                lammps_class=interaction_kwargs.lammps_class,
                lammps_natoms=interaction_kwargs.lammps_natoms,
            )
            node_feats = model.products[i](node_feats=node_feats, sc=sc, node_attrs=node_attrs)
            feats.append(node_feats)
        return torch.cat(feats, dim=-1)

    def select(self, node_feats):
        """The requested layers' invariant columns, side by side (``get_descriptors``' slicing)."""
        import torch
        from mace.modules.utils import extract_invariant

        n_layers = 1 if self.n_blocks == 1 else self.num_interactions
        inv = extract_invariant(node_feats, num_layers=n_layers, num_features=self.num_inv, l_max=self.l_max)
        parts = {"first": inv[:, : self.num_inv], "last": inv[:, -self.num_inv :], "all": inv}
        return torch.cat([parts[name] for name in self.layers], dim=-1)

    def embed_batch(self, atoms_list: Sequence, _full_model: bool = False) -> np.ndarray:
        import torch

        if len(atoms_list) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        feats = self.select(self.node_feats(atoms_list, full_model=_full_model))
        return feats.detach().to("cpu", torch.float32).numpy()

    def info(self) -> dict:
        from importlib.metadata import version

        import e3nn
        import torch

        if self._sha is None and self.weights_path is not None:
            from ..structures import sha256_of

            self._sha = sha256_of(self.weights_path)
        texts = {
            "first": "invariant (l=0) node features after interaction block 1 "
            "(get_descriptors(invariants_only=True, num_layers=1))",
            "last": f"invariant (l=0) node features of the last interaction layer ({self.num_interactions})",
            "all": f"invariant (l=0) node features of all {self.num_interactions} interaction layers, "
            "concatenated (get_descriptors(invariants_only=True, num_layers=-1))",
        }
        layer_text = "; ".join(
            f"{name}: {texts[name]}" if len(self.layers) > 1 else texts[name] for name in self.layers
        )
        out = {
            "weights_source": self.weights_source,
            "weights_path": None if self.weights_path is None else str(self.weights_path),
            "weights_sha256": self._sha,
            "layer": layer_text,
            "dim": self.dim,
            "dtype": str(self.dtype).replace("torch.", ""),
            "head": self.head,
            "model_class": type(self.model).__name__,
            "forward_route": (
                f"truncated after interaction/product block {self.n_blocks} (no readouts)"
                if self.route == "truncated"
                else "whole model, compute_force=False"
            ),
            "hidden_irreps": str(self.model.products[0].linear.irreps_out),
            "r_max": self.r_max,
            "num_interactions": self.num_interactions,
            "n_params": int(sum(p.numel() for p in self.model.parameters())),
            "versions": {
                "mace-torch": version("mace-torch"),
                "torch": torch.__version__,
                "e3nn": e3nn.__version__,
            },
        }
        if self.spec.get("source") == "random":
            arch = self.spec.get("architecture", "small")
            out["architecture"] = arch
            out["seed"] = int(self.spec.get("seed", 0))
            out["hyperparameters"] = {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in RANDOM_ARCHITECTURES[arch].items()
            }
        return out


def load(spec: dict, device) -> MACEEmbedder:
    """Load the MACE model of ``spec`` (see the module docstring) on ``device``."""
    import torch

    _import_mace()
    name = spec.get("name", "?")
    device = torch.device(device) if not isinstance(device, torch.device) else device
    source = spec.get("source")
    if not source:
        raise ValueError(f"MACE model {name!r}: spec has no 'source'")
    if source == "random":
        arch = spec.get("architecture", "small")
        seed = int(spec.get("seed", 0))
        model = build_random_model(arch, seed)
        return MACEEmbedder(spec, device, model, f"random (MACE architecture {arch!r}, seed {seed})", None)
    weights_source, path = fetch_weights(str(source), name)
    model = _load_checkpoint(path, device, name)
    return MACEEmbedder(spec, device, model, weights_source, path)


def key_url(key: str) -> str:
    """mace's own download URL of a foundation-model key (``mace_mp_urls``: small, medium-mpa-0, ...)."""
    from mace.calculators.foundations_models import mace_mp_urls

    if key not in mace_mp_urls:
        raise WeightsUnavailableError(
            f"unknown MACE foundation-model key {key!r}; mace's keys: {', '.join(sorted(mace_mp_urls))}"
        )
    return mace_mp_urls[key]


class NaiveRoute(_NaiveRoute):
    """The package's own route (``base.NaiveRoute``): MACECalculator.get_descriptors per structure."""

    def __init__(self, emb, device, workdir: Path):
        import torch
        from mace.calculators import MACECalculator

        if emb.weights_path is not None:
            path = emb.weights_path
        else:  # the random control, saved as mace saves its models (trainable parameters, as built)
            spec = emb.spec
            path = workdir / "random.model"
            model = build_random_model(spec.get("architecture", "small"), int(spec.get("seed", 0)))
            torch.save(model, path)
        dtype = str(emb.dtype).replace("torch.", "")
        self.calc = MACECalculator(model_paths=str(path), device=str(device), default_dtype=dtype)
        self.layer = emb.layer
        self.num_inv = emb.num_inv
        self.num_layers = 1 if emb.layer == "first" else -1
        self.description = (
            f"MACECalculator.get_descriptors(atoms, invariants_only=True, num_layers={self.num_layers}) "
            "per structure (forward with forces)"
        )

    def __call__(self, atoms_list):
        out = []
        for atoms in atoms_list:
            d = self.calc.get_descriptors(atoms, invariants_only=True, num_layers=self.num_layers)
            if self.layer == "last":
                d = d[:, -self.num_inv :]
            out.append(np.asarray(d, dtype=np.float32))
        return np.concatenate(out)


def calculator(spec: dict, device):
    """mace's own ASE calculator (``mace.calculators.MACECalculator``: energy, forces, stress) of ``spec``.

    Real weights: the local ``.model`` file of the source (``fetch_weights``: a key, URL or path, as
    ``load``), ``default_dtype`` = ``spec["dtype"]`` (default float32, as the embedder) and ``spec["head"]``
    where given. ``source: random``: the same seeded untrained ScaleShiftMACE as the embedder, passed as a
    model instance (a physically meaningless control). Note that MACECalculator sets torch's global default
    dtype to that dtype.
    """
    import torch

    _import_mace()
    from mace.calculators import MACECalculator

    name = spec.get("name", "?")
    source = spec.get("source")
    if not source:
        raise ValueError(f"MACE model {name!r}: spec has no 'source'")
    dtype = spec.get("dtype", "float32")
    extra = {"head": spec["head"]} if spec.get("head") else {}
    dev = str(torch.device(device))
    if source == "random":
        model = build_random_model(spec.get("architecture", "small"), int(spec.get("seed", 0)))
        return MACECalculator(models=model, device=dev, default_dtype=dtype, **extra)
    _, path = fetch_weights(str(source), name)
    return MACECalculator(model_paths=str(path), device=dev, default_dtype=dtype, **extra)
