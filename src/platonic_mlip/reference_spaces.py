"""Reference spaces built without learning: element identity and physics-constructed descriptors.

Pure functions over ``ase.Atoms``; the ``reference`` model family (``platonic_mlip.embed.reference``) turns
them into models of a run, so every metric, figure and claim applies to them as to a trained MLIP.

Element identity (the null of "agreement is only element identity"):

``element_onehot``   one-hot of the atomic number, width 118: atoms of one element coincide, atoms of
                     different elements are orthogonal.
``element_random``   a fixed random vector per element (standard normal, width ``dim``, seeded): the same
                     partition into elements without the one-hot's orthogonality.

Physics-constructed (OURS throughout; the construction follows the idea of atomic states mixed by their
environment in "Latent space design of interatomic potentials" (Atlas, 2026), not a published recipe):

``soap``             two species-agnostic SOAP power spectra (dscribe, ``compression: mu2``) of the same
                     neighbourhood: one with every atom weighted 1 (geometry), one with each atom weighted by
                     its Mulliken electronegativity (chemistry of the neighbourhood, the centre included);
                     each block scaled to unit norm, the two side by side over sqrt(2).
``atomic_states``    per atom, charges from environment-averaged electronegativity equalisation
                     (``environment_charges``) turned into
                     weights over three atomic states -- neutral, cation, anion (``state_weights``) -- each
                     state's slot holding the element's standardised tabulated properties
                     (``element_properties``: first ionisation energy, electron affinity, Mulliken
                     electronegativity, hardness IE - EA, covalent radius), then the charge itself; that
                     block at unit norm beside the ``soap`` vector (each half over sqrt(2)). The excited
                     state of the seed has no tabulated counterpart here and is left out.

Tabulated data: ionisation energies and electron affinities from pymatgen's periodic table (NIST values),
covalent radii from ASE. Elements 1..94 (every element with both numbers); others are unsupported.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: elements with tabulated ionisation energy and electron affinity (the physics references' table)
MAX_Z = 94
STATES = ("neutral", "cation", "anion")
PROPERTIES = ("ionisation_energy", "electron_affinity", "mulliken_electronegativity", "hardness", "radius")

#: defaults of the descriptors (OURS); a run overrides them with ``model_options.<model>.descriptor``
SOAP_DEFAULTS = dict(r_cut=5.0, n_max=6, l_max=4, sigma=0.5)
CHARGE_DEFAULTS = dict(r_cut=6.0, decay=0.5)


def element_onehot(numbers: np.ndarray) -> np.ndarray:
    """(n,) atomic numbers -> (n, 118) float32 one-hot rows (column Z - 1)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size and (numbers.min() < 1 or numbers.max() > 118):
        raise ValueError(f"atomic numbers must lie in 1..118, got {sorted(set(numbers.tolist()))}")
    out = np.zeros((numbers.size, 118), dtype=np.float32)
    out[np.arange(numbers.size), numbers - 1] = 1.0
    return out


def element_table(dim: int, seed: int) -> np.ndarray:
    """(119, dim) float64 table of standard normal vectors, row Z, from ``numpy.random.default_rng(seed)``."""
    return np.random.default_rng(int(seed)).standard_normal((119, int(dim)))


def element_random(numbers: np.ndarray, dim: int = 128, seed: int = 0) -> np.ndarray:
    """(n,) atomic numbers -> (n, dim) float32: each element's fixed random vector (``element_table``)."""
    return element_table(dim, seed)[np.asarray(numbers, dtype=np.int64)].astype(np.float32)


def _raw_properties() -> np.ndarray:
    """(MAX_Z + 1, 5) properties of ``PROPERTIES`` in eV / Angstrom, row Z (row 0 unused, zeros)."""
    import warnings

    from ase.data import covalent_radii
    from pymatgen.core.periodic_table import Element

    out = np.zeros((MAX_Z + 1, len(PROPERTIES)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for z in range(1, MAX_Z + 1):
            el = Element.from_Z(z)
            ie, ea = float(el.ionization_energies[0]), float(el.electron_affinity)
            out[z] = [ie, ea, 0.5 * (ie + ea), ie - ea, float(covalent_radii[z])]
    return out


_PROPS: dict[str, np.ndarray] = {}


def element_properties(standardised: bool = False) -> np.ndarray:
    """(MAX_Z + 1, 5) tabulated properties (``PROPERTIES``), row Z; ``standardised``: each column centred
    and scaled to unit standard deviation over elements 1..MAX_Z (a fixed table, not the run's atoms)."""
    if "raw" not in _PROPS:
        raw = _raw_properties()
        body = raw[1:]
        std = (body - body.mean(0)) / body.std(0)
        _PROPS["raw"], _PROPS["std"] = raw, np.vstack([np.zeros((1, raw.shape[1])), std])
    return (_PROPS["std"] if standardised else _PROPS["raw"]).copy()


def check_numbers(numbers) -> None:
    bad = sorted({int(z) for z in np.asarray(numbers).ravel() if not 1 <= int(z) <= MAX_Z})
    if bad:
        raise ValueError(f"no tabulated ionisation energy / electron affinity for atomic number(s) {bad}")


def environment_charges(
    atoms, r_cut: float = CHARGE_DEFAULTS["r_cut"], decay: float = CHARGE_DEFAULTS["decay"]
) -> np.ndarray:
    """Partial charges (n,): two-site electronegativity equalisation averaged over the environment (OURS).

    For a pair of atoms alone, minimising chi_i q + 1/2 eta_i q^2 - chi_j q + 1/2 eta_j q^2 gives atom i the
    charge q_ij = (chi_j - chi_i) / (eta_i + eta_j), with chi the Mulliken electronegativity (IE + EA) / 2
    and eta the hardness IE - EA (eV): electrons flow to the more electronegative atom. An atom's charge is
    the mean of q_ij over its neighbours j (periodic images included, within ``r_cut``), weighted by
    w_ij = exp(-(r_ij - R_i - R_j) / decay), capped at 1 (R: covalent radii, Angstrom): bonded neighbours
    count most, neighbours of its own element pull towards zero. No long-range electrostatics and no
    global neutrality (an environment model, not a charge model of the crystal); an atom without a
    neighbour within ``r_cut`` gets 0. Charges lie in (-1, 1) for every pair of tabulated elements.
    """
    from ase.neighborlist import neighbor_list

    numbers = atoms.numbers
    check_numbers(numbers)
    props = element_properties()
    chi, eta, radius = props[numbers, 2], props[numbers, 3], props[numbers, 4]
    i, j, d = neighbor_list("ijd", atoms, float(r_cut))
    q = np.zeros(len(atoms))
    if len(i):
        w = np.minimum(np.exp(-(d - radius[i] - radius[j]) / float(decay)), 1.0)
        pair = (chi[j] - chi[i]) / (eta[i] + eta[j])
        num, den = np.zeros(len(atoms)), np.zeros(len(atoms))
        np.add.at(num, i, w * pair)
        np.add.at(den, i, w)
        q = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return np.clip(q, -1.0, 1.0)


def state_weights(charges: np.ndarray) -> np.ndarray:
    """(n,) charges in [-1, 1] -> (n, 3) weights over ``STATES`` (neutral, cation, anion), rows summing to 1:
    a charge q > 0 puts weight q on the cation, q < 0 puts |q| on the anion, the rest on the neutral atom."""
    q = np.clip(np.asarray(charges, dtype=np.float64), -1.0, 1.0)
    cation, anion = np.clip(q, 0, 1), np.clip(-q, 0, 1)
    return np.stack([1.0 - cation - anion, cation, anion], axis=1)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class Soap:
    """The ``soap`` descriptor (module docstring) with fixed parameters; ``__call__(atoms_list)`` -> rows."""

    def __init__(self, params: Mapping | None = None):
        from dscribe.descriptors import SOAP

        self.params = dict(SOAP_DEFAULTS, **(params or {}))
        unknown = set(self.params) - set(SOAP_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown SOAP parameter(s) {sorted(unknown)}; known: {sorted(SOAP_DEFAULTS)}")
        species = list(range(1, MAX_Z + 1))
        chi = element_properties()[:, 2]
        kw = dict(
            r_cut=float(self.params["r_cut"]),
            n_max=int(self.params["n_max"]),
            l_max=int(self.params["l_max"]),
            sigma=float(self.params["sigma"]),
            species=species,
            periodic=True,
        )
        self.geometry = SOAP(**kw, compression={"mode": "mu2", "species_weighting": None})
        self.chemistry = SOAP(
            **kw, compression={"mode": "mu2", "species_weighting": {z: float(chi[z]) for z in species}}
        )
        self.dim = 2 * self.geometry.get_number_of_features()

    def one(self, atoms) -> np.ndarray:
        """(n, dim) rows of one structure."""
        check_numbers(atoms.numbers)
        a = atoms.copy()
        a.pbc = True  # MP-20 cells are periodic in every direction
        g = _unit_rows(np.atleast_2d(self.geometry.create(a)))
        c = _unit_rows(np.atleast_2d(self.chemistry.create(a)))
        return np.hstack([g, c]) / np.sqrt(2.0)

    def __call__(self, atoms_list) -> np.ndarray:
        if not atoms_list:
            return np.empty((0, self.dim))
        return np.vstack([self.one(a) for a in atoms_list])


def atomic_state_block(atoms, charges: Mapping | None = None) -> np.ndarray:
    """(n, 3 * 5 + 1) state block of ``atomic_states`` before normalisation: the three states' weights times
    the element's standardised properties, slot by slot, then the charge (``environment_charges``)."""
    q = environment_charges(atoms, **dict(CHARGE_DEFAULTS, **(charges or {})))
    w = state_weights(q)
    u = element_properties(standardised=True)[atoms.numbers]
    return np.hstack([(w[:, s : s + 1] * u) for s in range(len(STATES))] + [q[:, None]])


def atomic_states(atoms_list, soap: Soap, charges: Mapping | None = None) -> np.ndarray:
    """(sum n, 16 + soap.dim) rows of the ``atomic_states`` descriptor (module docstring); ``charges``:
    parameters of ``environment_charges`` (defaults ``CHARGE_DEFAULTS``)."""
    if not atoms_list:
        return np.empty((0, 16 + soap.dim))
    rows = []
    for atoms in atoms_list:
        state = _unit_rows(atomic_state_block(atoms, charges))
        rows.append(np.hstack([state / np.sqrt(2.0), soap.one(atoms) / np.sqrt(2.0)]))
    return np.vstack(rows)
