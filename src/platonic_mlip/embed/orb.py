"""Orb family: per-atom ``node_features`` of the Orb message-passing trunk (``orb-models``).

Which features: the output of the GNS trunk, ``regressor.model(graph)["node_features"]`` (256-dim for
Orb-v3), i.e. what every head (energy, forces, stress, confidence) reads. This is the paper's choice
(NOTES.md section 1).

Fast path: each ``ase.Atoms`` becomes a graph with orb's own utilities (``ase_atoms_to_atom_graphs`` with
the model's ``system_config`` -- radius 6 A and 20 or 120 neighbours -- exactly as ``ORBCalculator`` builds
its graph); consecutive graphs are joined with ``base.batch_graphs`` into chunks of at most ``edge_chunk``
edges (CPU only, see ``CPU_EDGE_CHUNK``), and only the trunk runs, under ``torch.inference_mode`` (no heads,
no forces). For conservative models the edge vectors are recomputed from positions and unit-cell shifts with
``AtomGraphs.compute_differentiable_edge_vectors`` as ``ConservativeForcefieldRegressor.forward`` does (its
zero strain and identity rotation leave them unchanged), so the features match the full regressor forward to
float rounding; the graph builder's own vectors differ from those by ~1e-6 A.

The trunk runs through ``fast_trunk`` (same modules and weights, same result up to float32 rounding) where
the network is the plain Orb-v3 GNS (no conditioning, sigmoid attention); otherwise through the package's
``MoleculeGNS.forward``. ``fast_trunk`` differs from it only in evaluation order: the first Linear of each
edge MLP acts on ``cat([edges, nodes[senders], nodes[receivers]])``, so its sender and receiver blocks are
applied to the nodes before gathering (``(nodes @ W_s.T)[senders]``: per atom instead of per edge, a quarter
of the trunk's multiply-adds), SiLU runs in place, and the decoder and the last edge update (unused by
``node_features``) are skipped. See docs/orb_speed.md for the measurements.

Sources (``spec["source"]``):
- a loader name of ``orb_models.forcefield.pretrained`` (``orb_v3_conservative_inf_omat``,
  ``orb_v3_direct_inf_omat``, ...; hyphens allowed). The checkpoint URL is the loader's own default
  ``weights_path``. A local copy is looked for first (``$PLATONIC_WEIGHTS_DIR/<file name of the URL>``, then
  cached_path's cache entry for that URL); without one, the URL is probed with a short timeout and
  downloaded with cached_path (orb's own mechanism) into ``$PLATONIC_WEIGHTS_DIR`` (default: cached_path's
  cache dir, ``$CACHED_PATH_CACHE_ROOT`` or ``~/.cache/cached_path``, the one orb's loaders fill). The
  package's loader then loads that local file (``weights_path=``, ``compile=False``,
  ``precision="float32-high"``).
- a local checkpoint path or a URL (state dict, as orb ships them): needs ``spec["architecture"]`` (or a model
  name that is a loader name) to build the network, then orb's ``pretrained.load_model`` loads it.
- ``random``: an untrained control: the ``*_architecture`` builder and system config that the loader named
  by ``spec["architecture"]`` uses (``ARCHITECTURES``), weights initialised under
  ``torch.manual_seed(spec["seed"])`` on the CPU (then moved), in float32; the global RNG state is left as
  it was.

Pitfalls handled: orb's loaders call ``torch.set_default_dtype`` and ``torch.set_float32_matmul_precision``
(global state); both are restored after loading, graphs are built in the model's dtype explicitly, and the
model's matmul precision is set only around each forward pass.
"""

from __future__ import annotations

import contextlib
import copy
import os
import urllib.parse
import urllib.request
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import Embedder
from .base import NaiveRoute as _NaiveRoute

WEIGHTS_ENV = "PLATONIC_WEIGHTS_DIR"
TIMEOUT_ENV = "PLATONIC_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT_S = 15.0
PRECISION = "float32-high"
LAYER = "trunk node_features"
#: on the CPU, forward passes are split into chunks of whole structures with at most this many edges (about
#: 60 atoms of MP-20 crystals): 1024-wide per-edge float32 tensors then stay under 32 MB, glibc's largest
#: mmap threshold, so they are reused instead of page-faulted in afresh; 10-15% faster than 500-atom chunks
CPU_EDGE_CHUNK = 6000

#: loader name -> (architecture builder in ``orb_models.forcefield.pretrained``, radius,
#: max_num_neighbors), as the loaders of orb-models 0.5.5 build them (tests/families/test_orb.py checks
#: this against the loaders)
ARCHITECTURES: dict[str, tuple[str, float, int]] = {
    f"orb_v3_{kind}_{nb}_{data}": (f"orb_v3_{kind}_architecture", 6.0, 20 if nb == "20" else 120)
    for kind in ("conservative", "direct")
    for nb in ("20", "inf")
    for data in ("omat", "mpa")
}


class OrbWeightsError(RuntimeError):
    """An Orb checkpoint is missing, unreachable or unusable; the message says what to do."""


def _norm_name(name: str) -> str:
    return str(name).strip().replace("-", "_")


def _pretrained():
    from orb_models.forcefield import pretrained

    return pretrained


def _loader(name: str):
    """The loader function of orb's ``pretrained`` module called ``name``, or None."""
    import inspect

    fn = getattr(_pretrained(), _norm_name(name), None)
    if fn is None or not callable(fn) or _norm_name(name).endswith("_architecture"):
        return None
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    wp = params.get("weights_path")
    if wp is None or not isinstance(wp.default, str):
        return None
    return fn


def _pretrained_url(name: str) -> str:
    """The checkpoint URL of loader ``name``: the default of its ``weights_path`` argument."""
    import inspect

    fn = _loader(name)
    if fn is None:
        raise OrbWeightsError(f"{name!r} is not an orb_models.forcefield.pretrained loader")
    return inspect.signature(fn).parameters["weights_path"].default


def weights_dir() -> Path:
    """Where downloaded checkpoints go: ``$PLATONIC_WEIGHTS_DIR``, else cached_path's cache (orb's own)."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env).expanduser()
    from cached_path import get_cache_dir

    return Path(get_cache_dir())


def _url_basename(url: str) -> str:
    return os.path.basename(urllib.parse.urlsplit(url).path) or "orb-checkpoint.ckpt"


def _cached_copy(url: str) -> Path | None:
    """A local copy of ``url``: ``<weights_dir>/<basename>``, else a cached_path entry (ours, then orb's)."""
    from cached_path import get_cache_dir
    from cached_path.util import find_latest_cached

    plain = weights_dir() / _url_basename(url)
    if plain.is_file():
        return plain
    dirs = [weights_dir()]
    if Path(get_cache_dir()) != dirs[0]:
        dirs.append(Path(get_cache_dir()))
    for d in dirs:
        if d.is_dir():
            hit = find_latest_cached(url, d)
            if hit is not None and hit.is_file():
                return hit
    return None


def _probe(url: str, timeout: float) -> None:
    """Raise OSError unless ``url`` answers a HEAD request within ``timeout`` seconds."""
    req = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if resp.status >= 400:
            raise OSError(f"HTTP {resp.status}")


def fetch_weights(url: str, model_name: str = "?", source: str | None = None) -> Path:
    """Local path of the checkpoint at ``url``: a cached copy, else downloaded with cached_path.

    The server is probed first with a ``$PLATONIC_DOWNLOAD_TIMEOUT``-second (default 15) timeout, so that an
    offline machine fails in seconds with an OrbWeightsError that names the file to provide.
    """
    hit = _cached_copy(url)
    if hit is not None:
        return hit
    expected = weights_dir() / _url_basename(url)
    timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    try:
        _probe(url, timeout)
        from cached_path import cached_path

        dest = weights_dir()
        dest.mkdir(parents=True, exist_ok=True)
        return Path(cached_path(url, cache_dir=dest, quiet=True))
    except Exception as err:  # URLError, HTTPError, socket timeouts, requests errors
        raise OrbWeightsError(
            f"Orb model {model_name!r} (source {source or url!r}): weights not found locally and the "
            f"download from {url} failed ({type(err).__name__}: {err}). Expected file: {str(expected)!r}. "
            f"Without network: download {url} elsewhere and copy it to exactly that path (the directory is "
            f"${WEIGHTS_ENV}, default cached_path's cache ~/.cache/cached_path), or set the model's source "
            "(config model_options.<model>.source) to a local checkpoint path."
        ) from err


@contextlib.contextmanager
def _torch_globals():
    """Restore torch's default dtype and float32 matmul precision on exit (orb's loaders change both)."""
    import torch

    dtype, matmul = torch.get_default_dtype(), torch.get_float32_matmul_precision()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting global torch default dtype")
            yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_float32_matmul_precision(matmul)


@contextlib.contextmanager
def _matmul_precision(value: str):
    import torch

    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(value)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def _architecture_name(spec: dict) -> str:
    arch = spec.get("architecture")
    if arch:
        return _norm_name(arch)
    for cand in (spec.get("source"), spec.get("name")):
        if cand and _norm_name(cand) in ARCHITECTURES:
            return _norm_name(cand)
    raise OrbWeightsError(
        f"Orb model {spec.get('name', '?')!r}: source {spec.get('source')!r} needs spec['architecture'] "
        f"(one of {', '.join(sorted(ARCHITECTURES))}) to know which network to build"
    )


def build_architecture(name: str, device="cpu"):
    """An untrained regressor with the architecture and system config of loader ``name`` (current RNG)."""
    from orb_models.forcefield.atomic_system import SystemConfig

    key = _norm_name(name)
    if key not in ARCHITECTURES:
        raise ValueError(f"unknown Orb architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    builder, radius, max_nb = ARCHITECTURES[key]
    fn = getattr(_pretrained(), builder)
    return fn(device=device, system_config=SystemConfig(radius=radius, max_num_neighbors=max_nb))


def build_random_model(architecture: str, seed: int = 0):
    """Untrained control: ``build_architecture`` under ``torch.manual_seed(seed)`` in float32 on the CPU.

    Deterministic for a fixed seed; torch's global RNG state and default dtype are left unchanged.
    """
    import torch

    with _torch_globals(), torch.random.fork_rng(devices=[]):
        torch.set_default_dtype(torch.float32)
        torch.manual_seed(int(seed))
        model = build_architecture(architecture, device="cpu")
    return model


def _sha256(path: Path) -> str:
    from ..structures import sha256_of

    return sha256_of(path)


def _is_url(source: str) -> bool:
    return "://" in str(source)


class OrbEmbedder(Embedder):
    """Orb-v3 trunk node features; ``model`` is an orb Direct/ConservativeForcefieldRegressor."""

    def __init__(
        self, spec: dict, device, model, weights_source: str, weights_path: Path | None, architecture: str
    ):
        import torch
        from orb_models.forcefield.conservative_regressor import ConservativeForcefieldRegressor

        self.spec = spec
        self.device = torch.device(device)
        name = spec.get("name", "?")
        if getattr(model.model, "conditioner", None) is not None:
            raise OrbWeightsError(
                f"Orb model {name!r}: charge/spin-conditioned Orb models (omol) need per-structure charge "
                "and spin; not supported for periodic crystals here"
            )
        self.model = model.to(self.device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.dtype = next(self.model.parameters()).dtype
        self.conservative = isinstance(model, ConservativeForcefieldRegressor)
        self.system_config = model.system_config
        self.weights_source = weights_source
        self.architecture = architecture
        self.weights_path = weights_path
        self.weights_sha256 = _sha256(weights_path) if weights_path is not None else None
        self.matmul_precision = "highest" if PRECISION.endswith("highest") else "high"
        self.dim = self._latent_dim()
        #: whether ``fast_trunk`` applies to this network (else the package's ``MoleculeGNS.forward``)
        self.fast = fast_trunk_applies(self.model.model)
        #: largest number of edges per forward pass (None: the whole batch at once)
        self.edge_chunk = CPU_EDGE_CHUNK if self.device.type == "cpu" else None
        expect = spec.get("dim")
        if expect is not None and int(expect) != self.dim:
            raise ValueError(f"Orb model {name!r}: trunk width is {self.dim}, spec says dim={expect}")

    def _latent_dim(self) -> int:
        import torch

        last = None
        for mod in self.model.model.gnn_stacks[-1]._node_mlp.modules():
            if isinstance(mod, torch.nn.Linear):
                last = mod
        return int(last.out_features)

    def supported_numbers(self) -> set[int]:
        # the trunk's AtomEmbedding table has 119 rows (Z 0..118), but orb's graph builder one-hot encodes
        # Z with num_classes=118 (featurization_utilities.get_atom_embedding), so Z = 118 (Og) fails: 1..117
        return set(range(1, 118))

    def graphs(self, atoms_list: Sequence) -> list:
        """One AtomGraphs per structure on ``self.device``, as ORBCalculator builds each graph."""
        from orb_models.forcefield.atomic_system import ase_atoms_to_atom_graphs

        return [
            ase_atoms_to_atom_graphs(
                atoms,
                self.system_config,
                device=self.device,
                output_dtype=self.dtype,
                graph_construction_dtype=self.dtype,
            )
            for atoms in atoms_list
        ]

    def graph(self, atoms_list: Sequence):
        """One batched AtomGraphs of ``atoms_list`` on ``self.device``, as ORBCalculator builds each graph."""
        return _join(self.graphs(atoms_list))

    def trunk(self, batch):
        """Trunk ``node_features`` of a batched graph (edge vectors as the regressor computes them)."""
        if self.conservative:
            vectors, _, _ = batch.compute_differentiable_edge_vectors(
                use_stress_displacement=False, use_rotation=False
            )
            batch.edge_features["vectors"] = vectors
        if self.fast:
            return fast_trunk(self.model.model, batch)
        return self.model.model(batch)["node_features"]

    def embed_batch(self, atoms_list: Sequence) -> np.ndarray:
        import torch

        if len(atoms_list) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode(), _matmul_precision(self.matmul_precision):
            graphs = self.graphs(atoms_list)
            feats = [self.trunk(_join(chunk)) for chunk in _chunks(graphs, self.edge_chunk)]
            feats = feats[0] if len(feats) == 1 else torch.cat(feats)
        return feats.to("cpu", torch.float32).numpy()

    def info(self) -> dict:
        from importlib.metadata import version

        import torch

        return {
            "weights_source": self.weights_source,
            "weights_sha256": self.weights_sha256,
            "weights_path": str(self.weights_path) if self.weights_path is not None else None,
            "layer": LAYER,
            "architecture": self.architecture,
            "regressor": type(self.model).__name__,
            "cutoff": float(self.system_config.radius),
            "max_num_neighbors": int(self.system_config.max_num_neighbors),
            "precision": PRECISION,
            "dtype": str(self.dtype).replace("torch.", ""),
            "n_params": int(sum(p.numel() for p in self.model.parameters())),
            "n_params_trunk": int(sum(p.numel() for p in self.model.model.parameters())),
            "versions": {"orb-models": version("orb-models"), "torch": torch.__version__},
        }


def _join(graphs: list):
    from orb_models.forcefield.base import batch_graphs

    return graphs[0] if len(graphs) == 1 else batch_graphs(graphs)


def _chunks(graphs: list, max_edges: int | None) -> list[list]:
    """Consecutive runs of ``graphs`` with at most ``max_edges`` edges in all (a larger graph alone)."""
    if max_edges is None:
        return [graphs]
    out, cur, total = [], [], 0
    for g in graphs:
        n = int(g.n_edge.sum())
        if cur and total + n > max_edges:
            out.append(cur)
            cur, total = [], 0
        cur.append(g)
        total += n
    if cur:
        out.append(cur)
    return out


def fast_trunk_applies(gns) -> bool:
    """Whether ``fast_trunk`` computes what ``gns.forward`` does: a MoleculeGNS without conditioning whose
    interaction blocks use sigmoid attention and an edge MLP that starts with a Linear on the concatenated
    [edge, sender, receiver] latents."""
    import torch
    from orb_models.forcefield.gns import AttentionInteractionNetwork, MoleculeGNS

    if not isinstance(gns, MoleculeGNS) or gns.conditioner is not None:
        return False
    for gnn in gns.gnn_stacks:
        if not isinstance(gnn, AttentionInteractionNetwork):
            return False
        first = gnn._edge_mlp.mlp[0] if len(gnn._edge_mlp.mlp) else None
        if (
            gnn.conditioning_type != ("none", "none")
            or gnn._attention_gate != "sigmoid"
            or not isinstance(first, torch.nn.Linear)
            or first.in_features != 3 * gnn.latent_dim
        ):
            return False
    return True


def _run(modules, x, fresh: bool):
    """Apply ``modules`` in order; SiLU in place on tensors this function made (``fresh``)."""
    import torch
    import torch.nn.functional as F

    for mod in modules:
        if isinstance(mod, torch.nn.Sequential):
            x = _run(mod, x, fresh)
        elif fresh and isinstance(mod, torch.nn.SiLU):
            x = F.silu(x, inplace=True)
        else:
            x = mod(x)
        fresh = fresh or not isinstance(mod, torch.nn.Identity | torch.nn.Dropout)
    return x


def _interaction(gnn, nodes, edges, senders, receivers, cutoff, last: bool):
    """``AttentionInteractionNetwork.forward`` (no conditioning, sigmoid gate), first edge Linear split."""
    import torch
    from orb_models.forcefield import segment_ops

    receive_attn = torch.sigmoid(gnn._receive_attn(edges))
    send_attn = torch.sigmoid(gnn._send_attn(edges))
    if gnn._distance_cutoff:
        receive_attn = receive_attn * cutoff
        send_attn = send_attn * cutoff

    # Linear(cat([edges, nodes[senders], nodes[receivers]])) with the node blocks applied per node
    mlp = gnn._edge_mlp.mlp
    first, d = mlp[0], edges.shape[1]
    w = first.weight
    from_senders = nodes @ w[:, d : 2 * d].t()
    if first.bias is not None:
        from_senders += first.bias
    from_receivers = nodes @ w[:, 2 * d :].t()
    hidden = from_senders.index_select(0, senders)
    hidden += from_receivers.index_select(0, receivers)
    hidden = torch.addmm(hidden, edges, w[:, :d].t(), out=hidden)
    updated_edges = gnn._edge_mlp.layer_norm(_run(list(mlp)[1:], hidden, fresh=True))

    sent = segment_ops.segment_sum(updated_edges * send_attn, senders, nodes.shape[0])
    received = segment_ops.segment_sum(updated_edges * receive_attn, receivers, nodes.shape[0])
    updated_nodes = _run(gnn._node_mlp, torch.cat([nodes, received, sent], dim=1), fresh=False)
    return nodes + updated_nodes, None if last else edges + updated_edges


def fast_trunk(gns, batch):
    """``gns(batch)["node_features"]`` for a plain Orb-v3 MoleculeGNS (``fast_trunk_applies``), up to float32
    rounding; no decoder, no final edge update. Call under ``torch.inference_mode`` or ``no_grad``."""
    from orb_models.forcefield.nn_util import get_cutoff

    edge_features = gns.featurize_edges(batch)
    node_features = gns.featurize_nodes(batch)
    nodes = _run(gns._encoder._node_fn, node_features, fresh=False)
    edges = _run(gns._encoder._edge_fn, edge_features, fresh=False)
    cutoff = get_cutoff(batch.edge_features["vectors"].norm(dim=-1))
    last = len(gns.gnn_stacks) - 1
    for i, gnn in enumerate(gns.gnn_stacks):
        nodes, edges = _interaction(gnn, nodes, edges, batch.senders, batch.receivers, cutoff, i == last)
    return nodes


def load(spec: dict, device) -> OrbEmbedder:
    """Load the Orb model of ``spec`` (see the module docstring for the sources) onto ``device``."""
    import torch

    device = torch.device(device)
    name = spec.get("name", "?")
    source = str(spec.get("source", "")).strip()
    if not source:
        raise OrbWeightsError(f"Orb model {name!r}: spec has no 'source'")

    if source == "random":
        arch = _architecture_name(spec)
        seed = int(spec.get("seed", 0))
        model = build_random_model(arch, seed)
        return OrbEmbedder(spec, device, model, f"random ({arch}, seed {seed})", None, arch)

    pretrained = _pretrained()
    compile_ = False  # torch.compile buys nothing for one pass per batch and fails on some CPUs
    with _torch_globals():
        loader = None if _is_url(source) or os.sep in source else _loader(source)
        if loader is not None:
            url = _pretrained_url(source)
            path = fetch_weights(url, name, source)
            model = _load_or_explain(
                lambda: loader(weights_path=str(path), device=device, precision=PRECISION, compile=compile_),
                name,
                path,
            )
            return OrbEmbedder(spec, device, model, url, path, _norm_name(source))
        arch = _architecture_name(spec)
        if _is_url(source):
            path = fetch_weights(source, name, source)
            origin = source
        else:
            path = Path(source).expanduser()
            if not path.is_file():
                raise OrbWeightsError(
                    f"Orb model {name!r}: checkpoint {str(path)!r} not found (source {source!r}); give a "
                    f"local checkpoint path, a URL, a loader name ({', '.join(sorted(ARCHITECTURES))}) or "
                    "'random'"
                )
            origin = str(path.resolve())
        skeleton = build_architecture(arch, device="cpu")
        model = _load_or_explain(
            lambda: pretrained.load_model(
                skeleton, str(path), device=device, precision=PRECISION, compile=compile_
            ),
            name,
            path,
        )
        return OrbEmbedder(spec, device, model, origin, Path(path), arch)


def key_url(key: str) -> str:
    """orb-models' own download URL of a loader key (the default ``weights_path`` of that loader)."""
    return _pretrained_url(key)


def _load_or_explain(fn, name: str, path: Path):
    try:
        return fn()
    except Exception as err:  # truncated download, HTML error page, wrong architecture
        raise OrbWeightsError(
            f"Orb model {name!r}: could not load checkpoint {str(path)!r} ({type(err).__name__}: "
            f"{str(err)[:500]}); delete it and download again, or check spec['architecture']"
        ) from err


__all__ = [
    "ARCHITECTURES",
    "OrbEmbedder",
    "OrbWeightsError",
    "build_architecture",
    "build_random_model",
    "fast_trunk",
    "fast_trunk_applies",
    "fetch_weights",
    "key_url",
    "load",
    "weights_dir",
]


class NaiveRoute(_NaiveRoute):
    """The package's own route (``base.NaiveRoute``): ORBCalculator per structure with forces, a hook on
    the trunk."""

    def __init__(self, emb, device, workdir: Path):
        from orb_models.forcefield.calculator import ORBCalculator

        model = copy.deepcopy(emb.model)  # own copy, parameters trainable as orb's loaders leave them
        for p in model.parameters():
            p.requires_grad_(True)
        self.matmul_precision = emb.matmul_precision  # what orb's loaders set for the calculator
        self.calc = ORBCalculator(model, device=str(device))
        self.captured = []
        self.handle = model.model.register_forward_hook(self._hook)
        what = "autograd forces and stress" if emb.conservative else "direct force and stress heads"
        self.description = (
            f"ORBCalculator per structure, atoms.get_forces() ({what}), "
            "forward hook on the trunk's node_features"
        )

    def _hook(self, module, inputs, output):
        self.captured.append(output["node_features"].detach())

    def __call__(self, atoms_list):
        import torch

        self.captured.clear()
        with _matmul_precision(self.matmul_precision):
            for atoms in atoms_list:
                a = atoms.copy()
                self.calc.reset()
                a.calc = self.calc
                a.get_forces()
        feats = [t.to("cpu", torch.float32).numpy() for t in self.captured]
        self.captured.clear()
        return np.concatenate(feats)

    def close(self):
        self.handle.remove()


def calculator(spec: dict, device):
    """orb-models' own ASE calculator (``ORBCalculator``: energy, forces, stress) over the regressor that
    ``load(spec, device)`` loads (same sources: loader names, local checkpoints, URLs; ``source: random``:
    the same seeded untrained network, a physically meaningless control). Conservative models take forces
    and stress by autograd, direct models from their heads. The model's float32 matmul precision (what orb's
    loaders set) is applied around each calculation only, so torch's global setting is left as it was.
    """
    from orb_models.forcefield.calculator import ORBCalculator

    emb = load(spec, device)
    model = emb.model
    for p in model.parameters():
        p.requires_grad_(True)  # as orb's loaders leave them
    precision = emb.matmul_precision

    class _Calculator(ORBCalculator):
        def calculate(self, *args, **kwargs):
            with _matmul_precision(precision):
                return super().calculate(*args, **kwargs)

    return _Calculator(model, device=str(emb.device))
