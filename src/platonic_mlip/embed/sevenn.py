"""SevenNet family: per-atom node features entering the readout (input of ``reduce_input_to_hidden``).

Imported only inside the sevenn environment. Sources (``spec["source"]``):

- a bundled pretrained key (``7net-0``, ``7net-l3i5``, ``7net-mf-0``, ...), resolved by
  ``sevenn.util.load_checkpoint``;
- a downloadable key (``7net-omat``): sevenn's own ``sevenn.util.pretrained_name_to_path`` looks in
  site-packages and ``~/.cache/sevennet`` and otherwise downloads from the SevenNet GitHub releases;
- a local checkpoint path;
- ``random``: ``sevenn.model_build.build_E3_equivariant_model`` on the config of checkpoint
  ``spec["architecture"]``, weights initialised under ``torch.manual_seed(spec["seed"])``.

Fast path: sevenn's graph builder (``unlabeled_atoms_to_graph``, the one its ASE calculator uses), a
torch_geometric batch, then the model's modules in order, stopping before ``reduce_input_to_hidden``:
no force/stress module runs and no tensor requires grad.

CPU allocator: SevenNet's convolutions build per-edge tensors of tens to hundreds of MB for a batch of a
few hundred atoms. glibc serves such blocks with fresh ``mmap`` calls and returns them at ``free``, so every
forward pays page faults on all of that memory again (profiled: about as much system time as compute, and
the reason small batches looked faster on CPU). ``load`` on a CPU device therefore raises glibc's mmap
threshold to its maximum (32 MB) and keeps freed heap memory for reuse (``mallopt`` M_MMAP_THRESHOLD,
M_TRIM_THRESHOLD, M_TOP_PAD via ``base.tune_cpu_allocator``; process-wide, glibc only, no effect on
results; set ``PLATONIC_NO_MALLOPT=1`` to skip it). The cost: the process keeps up to ~1 GB of freed
memory.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from platonic_mlip.embed.base import Embedder, UnsupportedElementsError, tune_cpu_allocator
from platonic_mlip.embed.base import NaiveRoute as _NaiveRoute

FEATURE_MODULE = "reduce_input_to_hidden"
LAYER_ALIASES = (None, "readout_input", FEATURE_MODULE, "input of reduce_input_to_hidden")


class SevenNetLoadError(RuntimeError):
    """A SevenNet checkpoint could not be found, downloaded or built."""


def _sha256(path: str) -> str:
    from platonic_mlip.structures import sha256_of

    return sha256_of(path)


def _versions() -> dict:
    import e3nn
    import sevenn
    import torch

    out = {"sevenn": sevenn.__version__, "torch": torch.__version__, "e3nn": e3nn.__version__}
    try:
        import torch_geometric

        out["torch_geometric"] = torch_geometric.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def _is_path_like(source: str) -> bool:
    return os.sep in source or source.endswith((".pth", ".pt")) or os.path.isfile(source)


def _expected_paths(source: str) -> tuple[list[str], str | None]:
    """Where sevenn looks for pretrained key ``source`` (package dir, then ~/.cache/sevennet) and its URL."""
    import sevenn._const as const
    import sevenn.util as util

    # The same key -> sevenn._const constant table as sevenn.util.pretrained_name_to_path, read here
    # without touching the disk or network so that error messages can name the expected file.
    name = source.lower()
    table = {
        "7net-0": "SEVENNET_0_11Jul2024",
        "sevennet-0": "SEVENNET_0_11Jul2024",
        "7net-0_11jul2024": "SEVENNET_0_11Jul2024",
        "7net-0_22may2024": "SEVENNET_0_22May2024",
        "7net-l3i5": "SEVENNET_l3i5",
        "7net-mf-0": "SEVENNET_MF_0",
        "7net-mf-ompa": "SEVENNET_MF_ompa",
        "7net-omat": "SEVENNET_omat",
        "7net-omni": "SEVENNET_omni",
        "7net-omni-i8": "SEVENNET_omni_i8",
        "7net-omni-i12": "SEVENNET_omni_i12",
    }
    name = name.replace("sevennet-", "7net-")
    attr = table.get(name)
    if attr is None or not hasattr(const, attr):
        raise SevenNetLoadError(
            f"unknown SevenNet checkpoint {source!r}: not a file and not a pretrained key. "
            f"Pretrained keys: {', '.join(util.get_available_pretrained_models())}"
        )
    cp = getattr(const, attr)
    paths = [cp, cp.replace(const._prefix, os.path.expanduser("~/.cache/sevennet"))]
    return paths, const.CHECKPOINT_DOWNLOAD_LINKS.get(cp)


def resolve_checkpoint(source: str) -> str:
    """Path of the checkpoint file for a pretrained key or a local path (downloading with sevenn's
    own mechanism when the key has a download link and the file is absent)."""
    import sevenn.util as util

    if os.path.isfile(source):
        return os.path.abspath(source)
    if _is_path_like(source):
        raise SevenNetLoadError(f"SevenNet checkpoint file {source!r} does not exist")
    paths, url = _expected_paths(source)
    for p in paths:
        if os.path.isfile(p):
            return p
    if url is None:
        raise SevenNetLoadError(
            f"SevenNet checkpoint {source!r} is not bundled with this sevenn installation and has no "
            f"download link; expected at {paths[0]} (or {paths[1]})"
        )
    new_dirs = [d for d in {os.path.dirname(p) for p in paths} if not os.path.isdir(d)]
    try:
        # sevenn's own downloader: package directory first, ~/.cache/sevennet on PermissionError
        path = util.pretrained_name_to_path(source)
    except Exception as err:  # requests errors, OSError, ...
        for d in new_dirs:  # leave no empty directory behind from the failed attempt
            try:
                os.rmdir(d)
            except OSError:
                pass
        raise SevenNetLoadError(
            f"SevenNet checkpoint {source!r} is not available and could not be downloaded from {url} "
            f"({type(err).__name__}: {err}). Expected file: {paths[0]} (or {paths[1]}). To provide it, "
            f"download {url} on a machine with network access and copy it to {paths[1]}, or set the "
            f"model's 'source' to the local checkpoint path (model_options: {{<model>: {{source: "
            f"/path/to/{os.path.basename(paths[0])}}}}})."
        ) from err
    if not os.path.isfile(path):
        raise SevenNetLoadError(f"SevenNet download of {source!r} reported {path}, which is not a file")
    return path


def build_random(architecture: str, seed: int, check_config=None, overrides: dict | None = None):
    """The network of checkpoint ``architecture`` (a key or a file) with random weights drawn under
    ``torch.manual_seed(seed)`` in a private RNG stream; returns (model, config, checkpoint path).

    Old checkpoints (7net-0, sevenn 0.9.1) keep a 0.0 placeholder for conv_denominator in their config and
    the real normalisation (sqrt of the training set's mean neighbour count) only in the state dict;
    building from the config alone divides by zero (NaN). The denominators are taken from the state dict,
    as sevenn's own processing_continue does: architecture constants (train_denominator False), not
    learned weights. ``check_config(config)`` runs before the model is built. ``overrides`` replace config
    keys (e.g. ``irreps_manual``, ``lmax``, ``num_convolution_layer``: a smaller network of the same
    kind); per-layer lists (denominators, neighbour counts) are then cut to the number of layers.
    """
    import sevenn._keys as KEY
    import sevenn.util as util
    import torch
    from sevenn.model_build import build_E3_equivariant_model

    cp_path = resolve_checkpoint(architecture)
    cp = util.load_checkpoint(cp_path)
    config = cp.config
    if check_config is not None:
        check_config(config)
    state = cp.model_state_dict
    n_conv = int(config[KEY.NUM_CONVOLUTION])
    denominators = [f"{i}_convolution.denominator" for i in range(n_conv)]
    if all(k in state for k in denominators):
        config[KEY.CONV_DENOMINATOR] = [float(state[k].item()) for k in denominators]
    if overrides:
        unknown = sorted(set(overrides) - set(config))
        if unknown:
            raise SevenNetLoadError(
                f"architecture overrides {unknown}: not keys of the {architecture} config"
            )
        config.update(overrides)
        n = int(config[KEY.NUM_CONVOLUTION])
        for key in (KEY.CONV_DENOMINATOR, "avg_num_neigh", "avg_num_neigh_cp"):
            if isinstance(config.get(key), list):
                config[key] = config[key][:n]
    # build on CPU with a private RNG stream so the global torch RNG is left untouched
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = build_E3_equivariant_model(config)
    return model, config, cp_path


class SevenNetEmbedder(Embedder):
    def __init__(self, spec: dict, device):
        import sevenn._keys as KEY
        import sevenn.util as util

        self.spec = spec
        self.device = device
        layer = spec.get("layer")
        if layer not in LAYER_ALIASES:
            raise ValueError(
                f"model {spec.get('name', '?')!r}: SevenNet has one feature layer (the input of "
                f"{FEATURE_MODULE}); 'layer' must be omitted or one of "
                f"{', '.join(repr(x) for x in LAYER_ALIASES[1:])}, got {layer!r}"
            )
        source = str(spec["source"])
        self.seed = None
        self.architecture = None
        if source == "random":
            arch = spec.get("architecture")
            if not arch:
                raise ValueError(
                    f"model {spec.get('name', '?')!r}: source 'random' needs 'architecture' "
                    "(a SevenNet checkpoint key or path whose config is instantiated)"
                )
            if "seed" not in spec:
                raise ValueError(f"model {spec.get('name', '?')!r}: source 'random' needs 'seed'")
            self.architecture = str(arch)
            self.seed = int(spec["seed"])
            model, config, cp_path = build_random(
                self.architecture, self.seed, self._check_modal, overrides=spec.get("overrides")
            )
            self.conv_denominator = config[KEY.CONV_DENOMINATOR]
            self.weights_source = f"random(architecture={self.architecture}, seed={self.seed})"
            self.weights_sha256 = None
            self.architecture_sha256 = _sha256(cp_path)
        else:
            cp_path = resolve_checkpoint(source)
            cp = util.load_checkpoint(cp_path)
            config = cp.config
            self._check_modal(config)
            model = cp.build_model()
            self.weights_source = source if not os.path.isfile(source) else os.path.abspath(source)
            self.weights_sha256 = _sha256(cp_path)
            self.architecture_sha256 = None
        self.checkpoint_path = cp_path
        cp_hash = cp.hash if source != "random" else None
        self.checkpoint_hash = cp_hash if cp_hash and cp_hash != "Not found" else None

        if FEATURE_MODULE not in model._modules:
            raise SevenNetLoadError(
                f"model {spec.get('name', '?')!r}: the SevenNet model has no module {FEATURE_MODULE!r} "
                f"(readout_as_fcn checkpoints are not supported); modules: {list(model._modules)}"
            )
        self.cutoff = float(config[KEY.CUTOFF])
        self.type_map = {int(k): int(v) for k, v in config[KEY.TYPE_MAP].items()}
        if (model.modal_map or None) != (self.modal_map or None):  # pragma: no cover
            raise SevenNetLoadError(f"modal map of the built model {model.modal_map} != config's")

        # keep only the modules before the readout: the force/stress module never runs
        names = list(model._modules)
        stop = names.index(FEATURE_MODULE)
        self.module_names = names[:stop]
        feat_mod = model._modules[FEATURE_MODULE]
        irreps_in = getattr(feat_mod, "_irreps_in_wo_modal", None) or feat_mod.irreps_in
        self.dim = int(irreps_in.dim)
        expect = spec.get("dim")
        if expect is not None and int(expect) != self.dim:
            raise ValueError(
                f"model {spec.get('name', '?')!r}: spec dim {expect} but {FEATURE_MODULE} takes "
                f"{self.dim}-dim input"
            )
        self.n_params = int(sum(p.numel() for p in model.parameters()))

        model.set_is_batch_data(True)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model.to(device)
        self._z_to_idx = model.z_to_onehot_tensor.to(device)

    def _check_modal(self, config: dict) -> None:
        """Validate spec['modal'] against the checkpoint's modal map (before building the model)."""
        import sevenn._keys as KEY

        spec = self.spec
        modal_map = config.get(KEY.MODAL_MAP) or None
        self.modal_map = dict(modal_map) if modal_map else None
        self.default_modal = config.get("default_modal")

        modal = spec.get("modal")
        if self.modal_map:
            avail = list(self.modal_map)
            if not modal:
                raise ValueError(
                    f"model {spec.get('name', '?')!r}: multi-fidelity SevenNet checkpoint needs 'modal' "
                    f"(available: {', '.join(avail)}; checkpoint default: {self.default_modal})"
                )
            if modal not in self.modal_map:
                raise ValueError(
                    f"model {spec.get('name', '?')!r}: unknown modal {modal!r} "
                    f"(available: {', '.join(avail)})"
                )
            self.modal = modal
            self.modal_idx = int(self.modal_map[modal])
        else:
            if modal:
                raise ValueError(
                    f"model {spec.get('name', '?')!r}: 'modal' {modal!r} given but the checkpoint is "
                    "not multi-fidelity (no modal map)"
                )
            self.modal = None
            self.modal_idx = None

    # -- Embedder interface ---------------------------------------------------------------------
    def supported_numbers(self) -> set[int]:
        return set(self.type_map)

    def graphs(self, atoms_list: Sequence):
        """sevenn's own graph construction (as in its ASE calculator), batched with torch_geometric."""
        import sevenn._keys as KEY
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph
        from torch_geometric.data import Batch

        graphs = []
        for atoms in atoms_list:
            g = unlabeled_atoms_to_graph(atoms, self.cutoff, with_shift=False)
            g.pop(KEY.INFO, None)
            graphs.append(AtomGraphData.from_numpy_dict(g))
        return Batch.from_data_list(graphs)

    def embed_batch(self, atoms_list: Sequence) -> np.ndarray:
        import sevenn._keys as KEY
        import torch

        if len(atoms_list) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        known = set(self.type_map)
        for i, atoms in enumerate(atoms_list):
            bad = sorted(set(int(z) for z in atoms.numbers) - known)
            if bad:
                raise UnsupportedElementsError(
                    f"model {self.spec.get('name', '?')!r}: structure {i} of the batch has atomic "
                    f"number(s) {bad} outside the checkpoint's element table"
                )
        n_total = int(sum(len(a) for a in atoms_list))
        with torch.no_grad():
            data = self.graphs(atoms_list).to(self.device)
            # AtomGraphSequential._preprocess, without marking edge vectors for gradients
            data[KEY.NODE_FEATURE] = torch.index_select(
                self._z_to_idx, 0, data[KEY.ATOMIC_NUMBERS].to(torch.long)
            )
            if self.modal_idx is not None:
                data[KEY.MODAL_TYPE] = torch.full(
                    (len(atoms_list),), self.modal_idx, dtype=torch.int64, device=self.device
                )
            mods = self.model._modules
            for name in self.module_names:
                data = mods[name](data)
            x = data[KEY.NODE_FEATURE]
        if x.shape != (n_total, self.dim):
            raise RuntimeError(
                f"model {self.spec.get('name', '?')!r}: features of shape {tuple(x.shape)}, expected "
                f"({n_total}, {self.dim})"
            )
        return x.detach().to("cpu", torch.float32).numpy()

    def info(self) -> dict:
        layer = f"input of {FEATURE_MODULE}"
        if self.modal:
            layer += f" (modal {self.modal})"
        out = {
            "weights_source": self.weights_source,
            "weights_sha256": self.weights_sha256,
            "layer": layer,
            "versions": _versions(),
            "checkpoint_path": self.checkpoint_path,
            "cutoff": self.cutoff,
            "n_params": self.n_params,
            "dim": self.dim,
            "modal": self.modal,
            "available_modals": list(self.modal_map) if self.modal_map else None,
        }
        if self.checkpoint_hash is not None:
            out["sevenn_checkpoint_hash"] = self.checkpoint_hash
        if self.seed is not None:
            out.update(
                architecture=self.architecture,
                seed=self.seed,
                conv_denominator=self.conv_denominator,
                architecture_sha256=self.architecture_sha256,
            )
        return out


def load(spec: dict, device) -> SevenNetEmbedder:
    """Build the SevenNet embedder for ``spec`` on ``device`` (a ``torch.device``)."""
    import torch

    if not isinstance(device, torch.device):
        device = torch.device(device)
    if device.type == "cpu":
        tune_cpu_allocator()  # idempotent; load_embedder already did it for workflow jobs
    return SevenNetEmbedder(spec, device)


def bundled_path(key: str) -> str:
    """The checkpoint file of a key shipped inside the sevenn wheel (e.g. ``7net-0``)."""
    paths, _ = _expected_paths(key)
    if not os.path.isfile(paths[0]):
        raise SevenNetLoadError(f"SevenNet checkpoint {key!r} is not bundled with this sevenn installation")
    return paths[0]


def key_url(key: str) -> str:
    """sevenn's own download URL of a checkpoint key (``sevenn._const.CHECKPOINT_DOWNLOAD_LINKS``)."""
    _, url = _expected_paths(key)
    if url is None:
        raise SevenNetLoadError(f"SevenNet checkpoint {key!r} has no download link in sevenn")
    return url


class NaiveRoute(_NaiveRoute):
    """The package's own route (``base.NaiveRoute``): SevenNetCalculator per structure with forces, a
    pre-hook on the readout input."""

    def __init__(self, emb, device, workdir: Path):
        from sevenn.calculator import SevenNetCalculator

        if emb.seed is None:
            self.calc = SevenNetCalculator(emb.checkpoint_path, device=str(device), modal=emb.modal)
        else:  # the random control: a separate copy of the built model, parameters trainable as built
            model = copy.deepcopy(emb.model).cpu()
            for p in model.parameters():
                p.requires_grad_(True)
            self.calc = SevenNetCalculator(
                model, file_type="model_instance", device=str(device), modal=emb.modal
            )
        self.captured = []
        mod = self.calc.model._modules["reduce_input_to_hidden"]
        self.handle = mod.register_forward_pre_hook(self._hook)
        self.description = (
            "SevenNetCalculator per structure, atoms.get_forces() (energy, forces, stress), "
            "forward pre-hook on reduce_input_to_hidden"
        )

    def _hook(self, module, args):
        self.captured.append(args[0]["x"].detach())

    def __call__(self, atoms_list):
        self.captured.clear()
        for atoms in atoms_list:
            a = atoms.copy()
            self.calc.reset()  # the calculator caches results of an unchanged structure
            a.calc = self.calc
            a.get_forces()
        feats = [t.to("cpu").float().numpy() for t in self.captured]
        self.captured.clear()
        return np.concatenate(feats)

    def close(self):
        self.handle.remove()


def calculator(spec: dict, device):
    """SevenNet's own ASE calculator (``sevenn.calculator.SevenNetCalculator``: energy, forces, stress) of
    ``spec``, resolved exactly as ``load`` resolves it: a pretrained key or a local checkpoint file
    (``source``), ``spec["modal"]`` checked against the checkpoint's modal map and passed on, and for
    ``source: random`` the same seeded untrained model as the embedder (its parameters made trainable again,
    as the calculator takes forces by autograd). Random weights give a working but physically meaningless
    potential (a control).
    """
    import torch
    from sevenn.calculator import SevenNetCalculator

    if not isinstance(device, torch.device):
        device = torch.device(device)
    emb = SevenNetEmbedder(spec, torch.device("cpu"))  # validates layer/modal/source; cheap
    if emb.seed is None:
        return SevenNetCalculator(emb.checkpoint_path, device=device, modal=emb.modal)
    model = emb.model
    for p in model.parameters():
        p.requires_grad_(True)
    return SevenNetCalculator(model, file_type="model_instance", device=device, modal=emb.modal)
