"""CHGNet family: 64-dim atom features after each atom-conv layer and at the input of the energy readout.

Imported only inside the chgnet environment. Sources (``spec["source"]``):

- a bundled key (``0.3.0``, ``0.2.0``, ``r2scan``): the checkpoint file shipped in the chgnet wheel, the same
  file ``CHGNet.load(model_name=key)`` reads (``bundled_path``). The workflow's weights layer
  (``base.local_weights``) hands over that file instead of the key; it is recognised and reported by key;
- a local checkpoint file (``*.pth.tar`` as ``chgnet.trainer.Trainer`` saves it; a pickle). The
  constructor's ``mlp_out_bias`` (which ``CHGNet.load`` sets for 0.2.0 only) is read off the state dict;
- ``random``: ``CHGNet(**model_args)`` with the hyperparameters of checkpoint ``spec["architecture"]`` (a
  bundled key or a file), weights initialised under ``torch.manual_seed(spec["seed"])`` inside
  ``torch.random.fork_rng`` (the global RNG is untouched). Only the network is random: the composition
  model (per-element reference energies, ``AtomRef``) is CHGNet's own fixed table, and it never enters the
  features.

Layers (``spec["layer"]`` / ``spec["layers"]``, names from ``platonic_mlip.families``), all read from one
forward pass by forward hooks on the package's own modules:

``conv1`` .. ``conv4``  output of ``model.atom_conv_layers[k - 1]``: the atom features after the k-th
                        atom-conv layer (residual update included). ``conv3`` is what CHGNet itself returns
                        with ``return_atom_feas=True`` (``idx == n_conv - 2``; the magmom head's input).
``readout_input``       the input of the energy readout MLP: output of ``model.readout_norm`` (a LayerNorm;
                        0.3.0, r2scan) or, where the model has none (0.2.0), of the last atom-conv layer.

Fast path: CHGNet's own graph builder (``model.graph_converter``, a ``CrystalGraphConverter`` with the
checkpoint's cutoffs) on ``pymatgen`` structures from ``AseAtomsAdaptor``, batched by the package's own
``BatchedGraph.from_graphs`` (as ``predict_structure`` / ``forward`` do), then ``model._compute`` with no
force, stress or magmom (a ``task="e"`` forward without the composition model) under ``torch.no_grad()``.
Hooks rather than a re-implementation of ``_compute``: the features are the package's own tensors, so a
change of CHGNet's forward cannot silently desynchronise them. The forward stops early (a private exception
raised by a hook once every requested layer is captured), so ``conv1`` alone skips most of the network.
Structures without angles (no bond under the bond-graph cutoff) run as a group of their own: CHGNet skips
its bond/angle layers per batch, not per structure (``embed_batch``). Rows follow the structures, then the
ASE atom order (the converter numbers atoms in site order and ``AseAtomsAdaptor`` keeps ASE order).

``NaiveRoute`` (the package's route for the contract test and the speed benchmark): ``predict_structure``
one structure at a time with forces, stress and magmoms, a hook on the same module (``return_atom_feas``
for ``conv3``). The package prints a line when a model is built (``CHGNet initialized with N parameters``);
the adapter swallows that stdout.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence

import numpy as np

from platonic_mlip.embed.base import Embedder, UnsupportedElementsError, requested_layers, tune_cpu_allocator
from platonic_mlip.embed.base import NaiveRoute as _NaiveRoute
from platonic_mlip.families import FAMILIES

FAMILY = FAMILIES["chgnet"]
LAYERS = tuple(FAMILY["layers"])
DEFAULT_LAYER = FAMILY["default_layer"]

#: bundled key -> file under chgnet/pretrained/, as in ``chgnet.model.model.CHGNet.load`` (chgnet 0.4.2;
#: tests/families/test_chgnet.py checks it against the path ``CHGNet.load`` opens)
BUNDLED = {
    "0.3.0": "0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar",
    "0.2.0": "0.2.0/chgnet_0.2.0_e30f77s348m32.pth.tar",
    "r2scan": "r2scan/chgnet_r2scan_transfer_learning_e15f36s161m23.pth.tar",
}


class CHGNetLoadError(RuntimeError):
    """A CHGNet checkpoint could not be found or built."""


class _StopForward(Exception):
    """Raised by the hook of the deepest requested layer: the rest of the forward pass is not needed."""


def _sha256(path: str) -> str:
    from platonic_mlip.structures import sha256_of

    return sha256_of(path)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import chgnet
    import torch

    out = {"chgnet": chgnet.__version__, "torch": torch.__version__}
    for dist in ("pymatgen", "pymatgen-core", "ase"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:  # pragma: no cover
            pass
    return out


def bundled_path(key: str) -> str:
    """The checkpoint file of bundled key ``key`` inside the installed chgnet package."""
    import chgnet

    if key not in BUNDLED:
        raise CHGNetLoadError(
            f"unknown bundled CHGNet checkpoint {key!r}; bundled keys: {', '.join(BUNDLED)} "
            "(or give the path of a local .pth.tar checkpoint)"
        )
    path = os.path.join(os.path.dirname(chgnet.__file__), "pretrained", BUNDLED[key])
    if not os.path.isfile(path):
        raise CHGNetLoadError(
            f"bundled CHGNet checkpoint {key!r} is missing from the installed chgnet {chgnet.__version__} "
            f"(expected {path})"
        )
    return path


def key_url(key: str) -> str:
    """CHGNet has no downloadable checkpoints: its keys ship in the wheel (``bundled_path``)."""
    raise ValueError(
        f"CHGNet checkpoint key {key!r} has no download URL: the chgnet package ships its checkpoints "
        f"({', '.join(BUNDLED)}) in its wheel and downloads none; use one of those keys or the path of a "
        "local .pth.tar checkpoint"
    )


def bundled_key_of(path: str) -> str | None:
    """The bundled key whose file ``path`` is (the weights layer hands adapters the file), else None."""
    import chgnet

    root = os.path.join(os.path.dirname(chgnet.__file__), "pretrained")
    for key, rel in BUNDLED.items():
        if os.path.isfile(path) and os.path.samefile(path, os.path.join(root, rel)):
            return key
    return None


def resolve_checkpoint(source: str) -> str:
    """Path of the checkpoint file of a bundled key or a local path."""
    if source in BUNDLED:
        return bundled_path(source)
    if os.path.isfile(source):
        return os.path.abspath(source)
    if os.sep in source or source.endswith((".tar", ".pth", ".pt")):
        raise CHGNetLoadError(f"CHGNet checkpoint file {source!r} does not exist")
    raise CHGNetLoadError(
        f"unknown CHGNet checkpoint {source!r}: not a file and not a bundled key "
        f"({', '.join(BUNDLED)}); CHGNet has no downloadable keys"
    )


def _read_checkpoint(path: str) -> dict:
    """The ``model`` entry (``model_args`` + ``state_dict``) of a CHGNet checkpoint file."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise CHGNetLoadError(f"cannot read CHGNet checkpoint {path}: {type(err).__name__}: {err}") from err
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict) or "model_args" not in model or "state_dict" not in model:
        raise CHGNetLoadError(
            f"{path} is not a CHGNet checkpoint (expected a dict with "
            "'model': {'model_args', 'state_dict'})"
        )
    return model


def _model_args(ckpt: dict, version: str | None) -> dict:
    """Constructor arguments of a checkpoint, with what ``CHGNet.load`` adds.

    ``CHGNet.load`` passes ``mlp_out_bias=True`` for 0.2.0 only; here it is read off the state dict (bias
    tensors in the atom-conv output MLPs), which gives the same for the bundled files and also builds a
    local checkpoint of either kind.
    """
    args = dict(ckpt["model_args"])
    state = ckpt["state_dict"]
    if "mlp_out_bias" not in args:
        args["mlp_out_bias"] = any(
            k.startswith("atom_conv_layers.") and ".mlp_out." in k and k.endswith(".bias") for k in state
        )
    if version and "version" not in args:
        args["version"] = version
    return args


def _build(args: dict):
    from chgnet.model import CHGNet

    with contextlib.redirect_stdout(io.StringIO()):  # "CHGNet vX initialized with N parameters"
        return CHGNet(**args)


def build_model(spec: dict):
    """(model on CPU, checkpoint path, weights sha256 or None) for a spec; the one builder of this module.

    Random weights: ``CHGNet(**model_args)`` of the architecture checkpoint, initialised under
    ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` (reproducible across processes; the global
    RNG is left as it was).
    """
    import torch

    name = spec.get("name", "?")
    source = str(spec["source"])
    if source == "random":
        arch = spec.get("architecture")
        if not arch:
            raise ValueError(
                f"model {name!r}: source 'random' needs 'architecture' (a bundled CHGNet key "
                f"({', '.join(BUNDLED)}) or a checkpoint path whose hyperparameters are instantiated)"
            )
        if spec.get("seed") is None:
            raise ValueError(f"model {name!r}: source 'random' needs 'seed'")
        path = resolve_checkpoint(str(arch))
        ckpt = _read_checkpoint(path)
        args = _model_args(ckpt, None)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(spec["seed"]))
            model = _build(args)
        return model, path, None
    path = resolve_checkpoint(source)
    ckpt = _read_checkpoint(path)
    args = _model_args(ckpt, bundled_key_of(path))
    # no initialisation worth a seed: every parameter is overwritten by the checkpoint below, but the
    # constructor still draws from the RNG, so fork it and leave the caller's stream alone
    with torch.random.fork_rng(devices=[]):
        model = _build(args)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise CHGNetLoadError(
            f"model {name!r}: checkpoint {path} does not fit its model_args: {err}"
        ) from err
    return model, path, _sha256(path)


def _layer_module(model, layer: str, name: str):
    """The module whose forward output is ``layer``'s features, checking the layer against the model."""
    n_conv = len(model.atom_conv_layers)
    if layer == "readout_input":
        return model.readout_norm if model.readout_norm is not None else model.atom_conv_layers[-1]
    if layer.startswith("conv") and layer[4:].isdigit():
        k = int(layer[4:])
        if 1 <= k <= n_conv:
            return model.atom_conv_layers[k - 1]
        raise ValueError(
            f"model {name!r}: layer {layer!r} but this CHGNet has {n_conv} atom-conv layers "
            f"(conv1..conv{n_conv})"
        )
    raise ValueError(f"model {name!r}: unknown CHGNet layer {layer!r}; choose from {', '.join(LAYERS)}")


def _layer_text(model, layer: str) -> str:
    n_conv = len(model.atom_conv_layers)
    if layer == "readout_input":
        if model.readout_norm is not None:
            return (
                "readout_input: input of the energy readout MLP (output of readout_norm, after the last "
                "atom conv)"
            )
        return (
            f"readout_input: input of the energy readout MLP (output of atom_conv_layers[{n_conv - 1}]; "
            "this model has no readout_norm)"
        )
    k = int(layer[4:])
    extra = " = return_atom_feas" if k == n_conv - 1 else ""
    return f"{layer}: atom features after atom-conv layer {k} of {n_conv} (atom_conv_layers[{k - 1}]{extra})"


def _check_layers(spec: dict) -> list[str]:
    layers = [DEFAULT_LAYER if x is None else str(x) for x in requested_layers(spec)]
    name = spec.get("name", "?")
    for layer in layers:
        if layer not in LAYERS:
            raise ValueError(
                f"model {name!r}: unknown CHGNet layer {layer!r}; choose from {', '.join(LAYERS)}"
            )
    if len(set(layers)) != len(layers):
        raise ValueError(f"model {name!r}: layers {layers} name a layer twice")
    return layers


def _check_numbers(supported: set[int], atoms_list: Sequence, name: str) -> None:
    for i, atoms in enumerate(atoms_list):
        bad = sorted({int(z) for z in atoms.numbers} - supported)
        if bad:
            raise UnsupportedElementsError(
                f"model {name!r}: structure {i} of the batch has atomic number(s) {bad} outside CHGNet's "
                f"element embedding (Z = {min(supported)}..{max(supported)})"
            )


def _structures(atoms_list: Sequence):
    from pymatgen.io.ase import AseAtomsAdaptor

    return [AseAtomsAdaptor.get_structure(a) for a in atoms_list]


class CHGNetEmbedder(Embedder):
    def __init__(self, spec: dict, device):
        self.spec = spec
        self.device = device
        name = spec.get("name", "?")
        self.layers = _check_layers(spec)
        source = str(spec["source"])
        self.seed = int(spec["seed"]) if source == "random" and spec.get("seed") is not None else None
        self.architecture = str(spec.get("architecture")) if source == "random" else None
        model, path, sha = build_model(spec)
        self.checkpoint_path = path
        self.bundled_key = None
        self.weights_sha256 = sha
        if source == "random":
            self.weights_source = f"random(architecture={self.architecture}, seed={self.seed})"
            self.architecture_sha256 = _sha256(path)
        else:
            # the weights layer passes bundled checkpoints as their file: name them by their key
            self.bundled_key = bundled_key_of(path)
            self.weights_source = self.bundled_key or os.path.abspath(source)
            self.architecture_sha256 = None
        self.n_conv = len(model.atom_conv_layers)
        self.has_readout_norm = model.readout_norm is not None
        modules = {layer: _layer_module(model, layer, name) for layer in self.layers}
        self.layer_text = [_layer_text(model, layer) for layer in self.layers]
        width = int(model.atom_fea_dim)
        self.layer_dims = {layer: width for layer in self.layers}
        self.dim = width * len(self.layers)
        expect = spec.get("dim")
        if expect is not None and int(expect) != self.dim:
            raise ValueError(
                f"model {name!r}: spec dim {expect} but CHGNet layers {', '.join(self.layers)} give "
                f"{self.dim} columns ({width} each)"
            )
        self.n_params = int(model.n_params)
        self.n_elements = int(model.atom_embedding.embedding.num_embeddings)
        self.cutoffs = (
            float(model.graph_converter.atom_graph_cutoff),
            float(model.graph_converter.bond_graph_cutoff),
        )

        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model.to(device)
        self.converter = model.graph_converter  # CPU work (pymatgen neighbour list + C graph builder)

        # forward hooks on the requested layers' modules; once every layer is captured the pass stops
        self._captured: dict[str, object] = {}
        self._active = False
        self._handles = [module.register_forward_hook(self._hook(layer)) for layer, module in modules.items()]

    def _hook(self, layer: str):
        def hook(module, args, output):
            if not self._active:
                return
            self._captured[layer] = output
            if len(self._captured) == len(self.layers):
                raise _StopForward

        return hook

    # -- Embedder interface ---------------------------------------------------------------------
    def supported_numbers(self) -> set[int]:
        # AtomEmbedding is nn.Embedding(94, dim) indexed by Z - 1
        return set(range(1, self.n_elements + 1))

    def structure_problem(self, atoms) -> str | None:
        """Atoms with no neighbour (periodic images included) within the atom-graph cutoff: CHGNet's graph
        converter refuses such a structure ("isolated atoms"), so it is reported before any forward pass."""
        from ase.neighborlist import neighbor_list

        cutoff = self.cutoffs[0]
        centres = neighbor_list("i", atoms, cutoff)
        isolated = sorted(set(range(len(atoms))) - {int(i) for i in centres})
        if not isolated:
            return None
        return f"{len(isolated)} atom(s) with no neighbour within the {cutoff:g} A atom-graph cutoff"

    def graphs(self, atoms_list: Sequence) -> list:
        """CHGNet's own crystal graphs (as ``predict_structure`` builds them), on the model's device."""
        out = []
        for i, structure in enumerate(_structures(atoms_list)):
            try:
                g = self.converter(structure, graph_id=str(i))
            except ValueError as err:  # isolated atoms (no neighbour within the atom-graph cutoff)
                raise ValueError(
                    f"model {self.spec.get('name', '?')!r}: structure {i} of the batch: {err}"
                ) from err
            out.append(g.to(self.device))
        return out

    def _forward(self, graphs: list):
        """(atoms of ``graphs``, dim) features of one batched forward pass (no forces), on the device."""
        import torch
        from chgnet.model.model import BatchedGraph

        model = self.model
        batched = BatchedGraph.from_graphs(
            graphs,
            bond_basis_expansion=model.bond_basis_expansion,
            angle_basis_expansion=model.angle_basis_expansion,
            compute_stress=False,
        )
        self._captured = {}
        self._active = True
        try:
            model._compute(batched, compute_force=False, compute_stress=False, compute_magmom=False)
        except _StopForward:
            pass
        finally:
            self._active = False
        missing = [x for x in self.layers if x not in self._captured]
        if missing:  # pragma: no cover - a change of CHGNet's forward
            raise RuntimeError(f"model {self.spec.get('name', '?')!r}: layers {missing} were not reached")
        x = torch.cat([self._captured[layer] for layer in self.layers], dim=1)
        self._captured = {}
        return x

    def embed_batch(self, atoms_list: Sequence) -> np.ndarray:
        import torch

        if len(atoms_list) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        _check_numbers(self.supported_numbers(), atoms_list, self.spec.get("name", "?"))
        n_total = int(sum(len(a) for a in atoms_list))
        with torch.no_grad():
            graphs = self.graphs(atoms_list)
            # CHGNet runs its bond-conv and angle-update layers only when the *batch* has angles. A
            # structure with no bond under the bond-graph cutoff (3 A; 13 of the first 100 MP-20 sample
            # structures, e.g. In5Mg) skips them alone, but in a batch with angles its bonds get the
            # bond convs' output bias (0.2.0 has mlp_out biases): its features would depend on its batch
            # mates. Such structures therefore run in a forward pass of their own group, which equals
            # running each alone (predict_structure one at a time, the NaiveRoute).
            with_angles = [len(g.bond_graph) != 0 for g in graphs]
            groups = [
                idx
                for idx in (
                    [i for i, h in enumerate(with_angles) if h],
                    [i for i, h in enumerate(with_angles) if not h],
                )
                if idx
            ]
            if len(groups) == 1:
                x = self._forward(graphs)
            else:
                rows: dict[int, object] = {}
                for idx in groups:
                    feats = self._forward([graphs[i] for i in idx])
                    sizes = [len(atoms_list[i]) for i in idx]
                    rows.update(zip(idx, torch.split(feats, sizes), strict=True))
                x = torch.cat([rows[i] for i in range(len(graphs))])
        if x.shape != (n_total, self.dim):
            raise RuntimeError(
                f"model {self.spec.get('name', '?')!r}: features of shape {tuple(x.shape)}, expected "
                f"({n_total}, {self.dim})"
            )
        return x.to("cpu", torch.float32).numpy()

    def info(self) -> dict:
        out = {
            "weights_source": self.weights_source,
            "weights_sha256": self.weights_sha256,
            "layer": "; ".join(self.layer_text),
            "layers": list(self.layers),
            "versions": _versions(),
            "checkpoint_path": self.checkpoint_path,
            "bundled_key": self.bundled_key,
            "n_params": self.n_params,
            "dim": self.dim,
            "n_conv": self.n_conv,
            "readout_norm": self.has_readout_norm,
            "atom_graph_cutoff": self.cutoffs[0],
            "bond_graph_cutoff": self.cutoffs[1],
        }
        if self.seed is not None:
            out.update(
                architecture=self.architecture, seed=self.seed, architecture_sha256=self.architecture_sha256
            )
        return out


def load(spec: dict, device) -> CHGNetEmbedder:
    """Build the CHGNet embedder for ``spec`` on ``device`` (a ``torch.device``)."""
    import torch

    if not isinstance(device, torch.device):
        device = torch.device(device)
    if device.type == "cpu":
        tune_cpu_allocator()  # idempotent; load_embedder already did it for workflow jobs
    return CHGNetEmbedder(spec, device)


class NaiveRoute(_NaiveRoute):
    """The package's own route (``base.NaiveRoute``), one structure at a time: ``CHGNet.predict_structure``
    with its default task (energy, forces, stress, magmoms), the features of the first requested layer taken
    by a forward hook on the layer's module (``return_atom_feas=True`` for ``conv3`` of a 4-conv model).

    ``NaiveRoute(embedder_or_spec, device, workdir)``: the loaded ``CHGNetEmbedder`` (as the contract test
    and the speed benchmark pass it) or a model spec. Its own model instance from the same weights:
    ``CHGNet.load(model_name=key)`` for a bundled checkpoint (given by key or by its file),
    ``CHGNet.from_file`` for another file, the same seeded construction as the embedder for random weights;
    parameters left trainable, as the package's loaders leave them. ``workdir`` is not used.
    """

    def __init__(self, emb, device, workdir=None):
        import torch
        from chgnet.model import CHGNet

        spec = emb if isinstance(emb, dict) else emb.spec
        name = spec.get("name", "?")
        layer = _check_layers(spec)[0]
        self.device = torch.device(device)
        source = str(spec["source"])
        with contextlib.redirect_stdout(io.StringIO()):  # "CHGNet vX initialized with N parameters"
            if source == "random":
                model, _, _ = build_model(spec)
                how = f"CHGNet(**model_args of {spec.get('architecture')}, seed {spec.get('seed')})"
            else:
                path = resolve_checkpoint(source)
                key = bundled_key_of(path)
                if key is not None:
                    model = CHGNet.load(model_name=key, use_device=str(self.device), verbose=False)
                    how = f"CHGNet.load(model_name={key!r})"
                else:
                    # mlp_out_bias where the file's args lack it, as CHGNet.load passes it for 0.2.0
                    ckpt = _read_checkpoint(path)
                    extra = {}
                    if "mlp_out_bias" not in ckpt["model_args"]:
                        extra["mlp_out_bias"] = _model_args(ckpt, None)["mlp_out_bias"]
                    model = CHGNet.from_file(path, **extra)
                    how = f"CHGNet.from_file({os.path.basename(path)!r})"
        self.model = model.to(self.device)
        self.layer = layer
        self.use_atom_feas = layer == f"conv{len(model.atom_conv_layers) - 1}"
        self.captured = []
        self.handle = None
        if not self.use_atom_feas:
            module = _layer_module(model, layer, name)
            self.handle = module.register_forward_hook(lambda m, a, out: self.captured.append(out.detach()))
        what = "return_atom_feas=True" if self.use_atom_feas else f"forward hook for {layer}"
        self.description = (
            f"{how}.predict_structure per structure (task='efsm': energy, forces, stress, magmoms), {what}"
        )

    def __call__(self, atoms_list) -> np.ndarray:
        import torch

        feats = []
        for structure in _structures(atoms_list):
            self.captured.clear()
            pred = self.model.predict_structure(structure, return_atom_feas=self.use_atom_feas)
            if self.use_atom_feas:
                feats.append(np.asarray(pred["atom_fea"], dtype=np.float32))
            else:
                (out,) = self.captured
                feats.append(out.to("cpu", torch.float32).numpy())
        self.captured.clear()
        return np.concatenate(feats)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


def calculator(spec: dict, device):
    """CHGNet's own ASE calculator (``chgnet.model.dynamics.CHGNetCalculator``: energy, forces, stress) over
    the model ``build_model(spec)`` builds -- the embedder's checkpoint resolution (bundled key, the bundled
    file the weights layer hands over, a local checkpoint; ``source: random``: the same seeded untrained
    network, a physically meaningless control). Stress in eV/A^3 (the calculator's default conversion).
    """
    from chgnet.model.dynamics import CHGNetCalculator

    model, _, _ = build_model(spec)
    with contextlib.redirect_stdout(io.StringIO()):  # "CHGNet will run on cpu"
        return CHGNetCalculator(model=model, use_device=str(device))
