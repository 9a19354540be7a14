"""Trained controls: the same architecture trained without physical labels, and its distilled twin (OURS).

Li & Walsh report that a generative model trained on the same structures without energy or force targets
does not reproduce the shared geometry; the model is not named and no crystal generative model ships
weights offline. These controls separate "physical targets" from "training at all", with everything else
held fixed (architecture, random initialisation, structures, noise, optimiser, budget):

``denoise``  self-supervised: positions of the run's structures displaced by Gaussian noise
             x~ = x + sigma * eps (eps ~ N(0, 1) per coordinate); the network's force output (the negative
             gradient of its scalar output, an equivariant vector) is trained to point back to the clean
             structure, target -eps (``denoise_target``). No energy, no force, no stress label: the
             objective of denoising pre-training (Zaidi et al., ICLR 2023), without any DFT data.
``distill``  the twin: the same noisy structures labelled by a pretrained teacher (its energies and
             forces), loss = energy-per-atom MSE + force MSE.

Both start from the same seeded random weights as the run's untrained control of the architecture, so
untrained -> self-supervised -> distilled differ only in what the training asked for. Family trainers
live in ``platonic_mlip.controls.<family>`` (``TRAINERS``); this module is pure numpy.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

OBJECTIVES = ("denoise", "distill")
#: families with a trainer (module ``platonic_mlip.controls.<family>``)
TRAINERS = ("sevenn",)


class ControlError(ValueError):
    """A trained control cannot be built as configured; the message names the setting."""


@dataclasses.dataclass
class Settings:
    """One trained control. All defaults OURS (nothing here comes from the paper)."""

    objective: str
    architecture: str = "7net-0"  # the checkpoint whose config is instantiated with random weights
    overrides: dict = dataclasses.field(default_factory=dict)  # config keys replaced (a smaller network)
    seed: int = 0  # of the random initialisation (the untrained control's seed) and of the data order
    teacher: str | None = None  # distill: the pretrained model whose energies and forces are the labels
    structures: int = 200  # run structures trained on (a seeded subset; 0 = all)
    max_atoms: int = 40  # structures with more atoms are left out of the training set
    copies: int = 2  # noisy copies per structure
    sigma: float = 0.1  # Angstrom, the noise of the positions
    epochs: int = 4
    batch_size: int = 8  # structures per optimiser step
    lr: float = 1e-3  # Adam
    energy_weight: float = 1.0  # distill
    force_weight: float = 1.0  # distill
    noise_seed: int = 0

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ControlError(f"objective {self.objective!r}: choose one of {', '.join(OBJECTIVES)}")
        if self.objective == "distill" and not self.teacher:
            raise ControlError("objective 'distill' needs a teacher (a pretrained model of the family)")
        for name in ("epochs", "batch_size", "copies"):
            if int(getattr(self, name)) < 1:
                raise ControlError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        for name in ("sigma", "lr"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ControlError(f"{name} must be a positive number, got {getattr(self, name)!r}")


def select_structures(n_atoms, count: int, max_atoms: int, seed: int) -> np.ndarray:
    """Indices (sorted) of at most ``count`` structures with at most ``max_atoms`` atoms, drawn with
    ``numpy.random.default_rng(seed)``; ``count`` 0 = every eligible structure."""
    n_atoms = np.asarray(n_atoms)
    eligible = np.flatnonzero(n_atoms <= int(max_atoms))
    if len(eligible) == 0:
        raise ControlError(f"no structure has at most {max_atoms} atoms (max_atoms)")
    if count and count < len(eligible):
        eligible = np.random.default_rng(int(seed)).choice(eligible, size=int(count), replace=False)
    return np.sort(eligible)


def noisy_copies(positions: np.ndarray, copies: int, sigma: float, rng: np.random.Generator):
    """``copies`` displaced copies of (n, 3) ``positions``: returns ((copies, n, 3) noisy positions,
    (copies, n, 3) eps) with noisy = positions + sigma * eps, eps ~ N(0, 1)."""
    positions = np.asarray(positions, dtype=np.float64)
    eps = rng.standard_normal((int(copies), *positions.shape))
    return positions[None] + float(sigma) * eps, eps


def denoise_target(clean: np.ndarray, noisy: np.ndarray, sigma: float) -> np.ndarray:
    """The denoising target of noisy positions: (clean - noisy) / sigma = -eps, the unit-scaled displacement
    back to the clean structure (no wrapping: the noise is added to Cartesian positions, never wrapped)."""
    return (np.asarray(clean, dtype=np.float64) - np.asarray(noisy, dtype=np.float64)) / float(sigma)


def training_set(atoms_list, settings: Settings):
    """The noisy structures both objectives train on: a list of (noisy ``ase.Atoms``, (n, 3) denoising
    target), ``settings.copies`` per structure, in structure order, seeded by ``settings.noise_seed``."""
    rng = np.random.default_rng([int(settings.noise_seed), 7])
    out = []
    for atoms in atoms_list:
        noisy, _ = noisy_copies(atoms.positions, settings.copies, settings.sigma, rng)
        for pos in noisy:
            a = atoms.copy()
            a.positions = pos
            out.append((a, denoise_target(atoms.positions, pos, settings.sigma)))
    return out
