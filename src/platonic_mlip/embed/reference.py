"""Reference family: spaces built without learning, as models of a run (``platonic_mlip.reference_spaces``).

Runs in the analysis environment (numpy, ASE, pymatgen, dscribe). The spec's ``architecture`` names the
construction: ``element-onehot``, ``element-random`` (seeded by ``spec["seed"]``), ``soap`` or
``atomic-states``; ``spec["descriptor"]`` overrides the descriptors' parameters (``soap``: r_cut, n_max,
l_max, sigma; ``charges``: r_cut, decay). Nothing is downloaded and nothing is trained: the weights source
is ``constructed`` (``random`` for the seeded element table).

``NaiveRoute``: the same construction one structure at a time (the descriptors' own per-structure calls),
which the contract test compares with the batched route. There is no ASE calculator: these spaces have no
energy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from platonic_mlip.embed.base import Embedder
from platonic_mlip.embed.base import NaiveRoute as _NaiveRoute

ARCHITECTURES = ("element-onehot", "element-random", "soap", "atomic-states")


class ReferenceLoadError(ValueError):
    """A reference model's spec names an unknown construction or parameter."""


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("numpy", "ase", "pymatgen", "dscribe"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover
            out[pkg] = None
    return out


class ReferenceEmbedder(Embedder):
    def __init__(self, spec: dict, device):
        from platonic_mlip import reference_spaces as rs

        self.spec, self.device = spec, device
        self.architecture = str(spec.get("architecture"))
        if self.architecture not in ARCHITECTURES:
            raise ReferenceLoadError(
                f"model {spec.get('name')!r}: unknown reference construction {self.architecture!r}; "
                f"choose from {', '.join(ARCHITECTURES)}"
            )
        params = dict(spec.get("descriptor") or {})
        unknown = set(params) - {"soap", "charges", "dim"}
        if unknown:
            raise ReferenceLoadError(
                f"'model_options.{spec.get('checkpoint', spec.get('name'))}.descriptor': unknown key(s) "
                f"{sorted(unknown)}; known: charges, dim, soap"
            )
        self.charges = dict(rs.CHARGE_DEFAULTS, **(params.get("charges") or {}))
        unknown = set(self.charges) - set(rs.CHARGE_DEFAULTS)
        if unknown:
            raise ReferenceLoadError(f"unknown charge parameter(s) {sorted(unknown)}; known: r_cut, decay")
        self.soap = None
        if self.architecture in ("soap", "atomic-states"):
            self.soap = rs.Soap(params.get("soap"))
        if self.architecture == "element-onehot":
            self.dim = 118
        elif self.architecture == "element-random":
            self.dim = int(params.get("dim", 128))
            self.seed = int(spec.get("seed") or 0)
        elif self.architecture == "soap":
            self.dim = self.soap.dim
        else:
            self.dim = self.soap.dim + 3 * len(rs.PROPERTIES) + 1

    def supported_numbers(self) -> set[int] | None:
        from platonic_mlip.reference_spaces import MAX_Z

        if self.architecture.startswith("element-"):
            return None if self.architecture == "element-random" else set(range(1, 119))
        return set(range(1, MAX_Z + 1))

    def embed_batch(self, atoms_list: Sequence) -> np.ndarray:
        from platonic_mlip import reference_spaces as rs

        if not atoms_list:
            return np.empty((0, self.dim), dtype=np.float32)
        if self.architecture == "element-onehot":
            out = rs.element_onehot(np.concatenate([a.numbers for a in atoms_list]))
        elif self.architecture == "element-random":
            numbers = np.concatenate([a.numbers for a in atoms_list])
            out = rs.element_random(numbers, self.dim, self.seed)
        elif self.architecture == "soap":
            out = self.soap(list(atoms_list))
        else:
            out = rs.atomic_states(list(atoms_list), self.soap, self.charges)
        return np.asarray(out, dtype=np.float32)

    def info(self) -> dict:
        from platonic_mlip import reference_spaces as rs

        out = {
            "weights_source": self.spec.get("source"),
            "weights_sha256": None,
            "layer": f"constructed reference space: {self.architecture}",
            "versions": _versions(),
            "dim": self.dim,
        }
        if self.soap is not None:
            out["soap"] = self.soap.params
        if self.architecture == "atomic-states":
            out["charges"] = self.charges
            out["properties"] = list(rs.PROPERTIES)
            out["states"] = list(rs.STATES)
        if self.architecture == "element-random":
            out["seed"] = self.seed
        return out


def load(spec: dict, device) -> ReferenceEmbedder:
    return ReferenceEmbedder(spec, device)


def key_url(key: str) -> str:
    raise ValueError(f"reference spaces are constructed, not downloaded: no URL for {key!r}")


class NaiveRoute(_NaiveRoute):
    """The same construction, one structure at a time."""

    description = "the reference construction, one structure per call"

    def __init__(self, emb, device, workdir=None):
        self.emb = emb

    def __call__(self, atoms_list) -> np.ndarray:
        if not atoms_list:
            return np.empty((0, self.emb.dim), dtype=np.float32)
        return np.vstack([self.emb.embed_batch([a]) for a in atoms_list])
