"""Fine-tuning data for the forgetting experiment (Fig. 5a-e): Cu target structures, Au probes, EMT labels.

The paper fine-tunes a pretrained MLIP on Cu data, naively and with multiple heads, and follows atoms
the fine-tune never sees (Au): under naive fine-tuning their embeddings collapse toward the origin and
Au-Au dimers turn repulsive. This module makes the data of that experiment without any download:

* ``cu_target_structures``: seeded Cu structures of six kinds (``KINDS``): the perfect fcc cell
  (``bulk``), isotropically and anisotropically ``strained`` cubic cells, ``rattled`` supercells,
  (111)/(100) ``surface`` slabs, small ``cluster``s and ``dimer``s in a large box;
* ``au_probe_structures``: Au in the same kinds of environments (fcc bulk, rattled bulk, slabs,
  clusters, dimers): the element is absent from the Cu data, so every Au environment is unseen;
* ``emt_label``: energies (eV), forces (eV/A) and, for fully periodic cells, stresses (eV/A^3) from
  ASE's EMT (elements ``EMT_ELEMENTS``);
* ``reference_shift`` / ``apply_shift``: per-element energy shifts onto the pretrained model's energy
  zero (see below);
* ``split``: train/validation/test by whole structures;
* ``write_labelled_extxyz`` / ``read_labelled_extxyz``: the labelled files, and the validation of a
  user's own labelled extended XYZ.

Why the shift. EMT's energy zero is its own: the fcc crystal of every element sits near 0 eV/atom
(Cu -0.006 eV/atom at a = 3.61 A), while a DFT-trained model puts fcc Cu near -4.1 eV/atom (7net-0:
-4.096). Fine-tuned on raw EMT labels, the network would first have to learn a ~4 eV/atom offset for
Cu, a large change of the energy readout that by itself moves Au and every other element; what the
experiment measures (forgetting of the unseen element caused by learning Cu's physics) would drown in
it. Shifting every EMT energy by ``sum over atoms of delta_Z``, with ``delta_Z = E_model(Z) -
E_EMT(Z)`` the per-atom energies of the same reference crystal, makes the reference crystal's labels
equal the model's own prediction: the fine-tune starts at zero error there and learns only EMT's
differences (elasticity, surfaces, clusters, dimers). A constant energy per atom changes neither forces
nor stresses, so those are left as they are.

Every parameter that is not from the paper is ours (OURS) and has its default given where it is
defined. Each generator draws from its own stream ``numpy.random.default_rng([seed, stream])``, so
changing the number of one kind leaves the other kinds' structures unchanged.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from platonic_mlip.structures import DEFAULT_MIN_DISTANCE, StructureError, check_geometry

#: the kinds of structures (``atoms.info["kind"]``) the generators make
KINDS = ("bulk", "strained", "rattled", "surface", "cluster", "dimer")
#: elements ASE's EMT has parameters for (``ase.calculators.emt.parameters``)
EMT_ELEMENTS = ("Ag", "Al", "Au", "C", "Cu", "H", "N", "Ni", "O", "Pd", "Pt")
#: the fine-tuning element and the unseen probe element of the experiment (paper: Cu, Au)
TARGET_ELEMENT = "Cu"
PROBE_ELEMENT = "Au"
#: fcc lattice constants (A): experimental, the reference crystals of the shift
CU_A = 3.61
AU_A = 4.08
#: OURS: largest strain component (fraction) of the strained cells: +-3 %
STRAIN_MAX = 0.03
#: OURS: standard deviation (A) of the Gaussian displacements of rattled cells, slabs and clusters
RATTLE_SIGMA = 0.05
#: OURS: rattled supercells repeat the 4-atom cubic fcc cell this many times per axis (2: 32 atoms)
RATTLE_SUPERCELL = 2
#: OURS: vacuum (A) on each side of slabs and clusters
VACUUM = 10.0
#: OURS: edge (A) of the cubic box of a dimer (not periodic)
DIMER_BOX = 20.0
#: OURS: dimer distances (A) of the Cu data and the Au probes: around the EMT minimum (~2.2-2.4 A),
#: one compressed point and two toward dissociation
DIMER_DISTANCES = (1.9, 2.1, 2.3, 2.5, 2.8, 3.2, 4.0)
#: OURS: slab layers are drawn from this range (inclusive)
SLAB_LAYERS = (3, 5)
#: OURS: train/validation/test fractions of ``split``
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)

# one random stream per generator and kind: changing one count leaves the other kinds unchanged
_STREAMS = {"strained": 1, "rattled": 2, "surface": 3, "cluster": 4, "probe": 5}


class Labels(NamedTuple):
    """Labels of n structures: energies (n,) eV; forces: list of (n_atoms_i, 3) eV/A; stresses: list of
    (6,) Voigt stresses in eV/A^3 (ASE order xx yy zz yz xz xy) or None where the cell is not fully
    periodic."""

    energies: np.ndarray
    forces: list
    stresses: list


class LabelledSet(NamedTuple):
    """A labelled extended XYZ file: atoms (list of clean ase.Atoms with info material_id and kind),
    energies (n,) eV, forces list of (n_atoms_i, 3) eV/A, stresses list of (6,) eV/A^3 or None."""

    atoms: list
    energies: np.ndarray
    forces: list
    stresses: list


# --------------------------------------------------------------------------------------------------
# Structures
# --------------------------------------------------------------------------------------------------


def _plain(atoms, material_id: str, kind: str, **info):
    """A plain ase.Atoms copy (no Cluster subclass, no calculator, no constraints) with clean info."""
    from ase import Atoms

    out = Atoms(
        numbers=atoms.numbers.copy(), positions=atoms.positions.copy(), cell=atoms.cell[:], pbc=atoms.pbc
    )
    out.info = {"material_id": material_id, "kind": kind, **info}
    return out


def fcc_bulk(symbol: str, a: float, cubic: bool = False):
    """The fcc crystal of ``symbol`` with lattice constant ``a`` (A): the 1-atom primitive cell, or the
    4-atom cubic cell."""
    from ase.build import bulk

    return bulk(symbol, "fcc", a=a, cubic=cubic)


def strain_cell(atoms, strain: np.ndarray):
    """``atoms`` deformed by the (3, 3) symmetric strain tensor ``strain``: cell' = cell (I + strain),
    scaled positions kept. The volume changes by the factor det(I + strain)."""
    strain = np.asarray(strain, dtype=float)
    out = atoms.copy()
    out.set_cell(atoms.cell[:] @ (np.eye(3) + strain), scale_atoms=True)
    return out


def _rattle(atoms, sigma: float, rng: np.random.Generator):
    out = atoms.copy()
    out.positions = out.positions + rng.normal(0.0, sigma, size=out.positions.shape)
    return out


def _dimer_atoms(symbol: str, r: float, box: float):
    from platonic_mlip.dimers import dimer

    return dimer(symbol, symbol, r, box=box)


def _clusters(symbol: str, a: float):
    """Templates of small clusters (13-55 atoms), cycled in this order by the generators."""
    from ase.cluster import Decahedron, Icosahedron, Octahedron

    return [
        ("icosahedron13", lambda: Icosahedron(symbol, noshells=2, latticeconstant=a)),
        ("octahedron19", lambda: Octahedron(symbol, length=3, cutoff=0, latticeconstant=a)),
        ("decahedron13", lambda: Decahedron(symbol, p=2, q=2, r=0, latticeconstant=a)),
        ("decahedron23", lambda: Decahedron(symbol, p=3, q=1, r=0, latticeconstant=a)),
        ("octahedron38", lambda: Octahedron(symbol, length=4, cutoff=1, latticeconstant=a)),
        ("icosahedron55", lambda: Icosahedron(symbol, noshells=3, latticeconstant=a)),
    ]


def _slab(symbol: str, a: float, facet: str, layers: int, vacuum: float):
    from ase.build import fcc100, fcc111

    make = {"111": fcc111, "100": fcc100}[facet]
    return make(symbol, size=(2, 2, layers), a=a, vacuum=vacuum)


def _checked(structures: list, min_distance: float | None) -> list:
    for i, atoms in enumerate(structures):
        check_geometry(atoms, f"generated structure {i} ({atoms.info['material_id']})", min_distance)
    return structures


def _check_distances(distances: Sequence[float]) -> list[float]:
    d = [float(r) for r in distances]
    if len(set(d)) != len(d):
        raise ValueError(f"dimer distances {d}: every distance must appear once")
    return d


def cu_target_structures(
    n_bulk_strained: int = 20,
    n_rattled: int = 20,
    n_surfaces: int = 8,
    n_clusters: int = 6,
    dimer_distances: Sequence[float] = DIMER_DISTANCES,
    seed: int = 0,
    a: float = CU_A,
    strain_max: float = STRAIN_MAX,
    rattle_sigma: float = RATTLE_SIGMA,
    rattle_supercell: int = RATTLE_SUPERCELL,
    vacuum: float = VACUUM,
    dimer_box: float = DIMER_BOX,
    include_bulk: bool = True,
    symbol: str = TARGET_ELEMENT,
    min_distance: float | None = DEFAULT_MIN_DISTANCE,
) -> list:
    """The fine-tuning structures of ``symbol`` (Cu), in the order bulk, strained, rattled, surface,
    cluster, dimer; deterministic given ``seed``.

    * ``bulk`` (``include_bulk``, OURS True): the perfect 1-atom fcc cell with lattice constant ``a``
      (A; Cu 3.61), the reference crystal of the energy shift.
    * ``strained`` (``n_bulk_strained``, OURS 20): the 4-atom cubic cell under a strain; even indices
      isotropic (``s I``, s uniform in +-``strain_max``), odd indices anisotropic (symmetric tensor,
      every component uniform in +-``strain_max``); ``strain_max`` OURS 0.03. ``info["strain"]``
      holds the (3, 3) tensor (not written to files).
    * ``rattled`` (``n_rattled``, OURS 20): the cubic cell repeated ``rattle_supercell`` (OURS 2) times
      per axis (32 atoms), every atom displaced by a Gaussian of sigma ``rattle_sigma`` (OURS 0.05 A).
    * ``surface`` (``n_surfaces``, OURS 8): 2x2 slabs alternating (111) and (100), 3-5 layers (drawn;
      OURS), ``vacuum`` (OURS 10 A) on each side, periodic in-plane only, rattled as above.
    * ``cluster`` (``n_clusters``, OURS 6): cycling through an icosahedron (13 atoms), octahedron (19),
      decahedra (13, 23), a truncated octahedron (38) and an icosahedron (55), rattled, centred in
      ``vacuum``, not periodic.
    * ``dimer``: one per distance in ``dimer_distances`` (A; OURS ``DIMER_DISTANCES``) in a cubic box
      of ``dimer_box`` (OURS 20 A), not periodic.

    ``info``: ``material_id`` (``<symbol>-<kind>-<index>``, dimers ``<symbol>-dimer-<r>A``) and
    ``kind``. Every structure passes ``structures.check_geometry`` with ``min_distance``. Returns a
    list of ase.Atoms.
    """
    counts = {"n_bulk_strained": n_bulk_strained, "n_rattled": n_rattled}
    counts |= {"n_surfaces": n_surfaces, "n_clusters": n_clusters}
    bad = [f"{k}={v}" for k, v in counts.items() if int(v) != v or v < 0]
    if bad:
        raise ValueError(f"structure counts must be whole numbers >= 0: {', '.join(bad)}")
    distances = _check_distances(dimer_distances)
    out = []
    if include_bulk:
        out.append(_plain(fcc_bulk(symbol, a), f"{symbol}-bulk-000", "bulk"))

    rng = np.random.default_rng([seed, _STREAMS["strained"]])
    cubic = fcc_bulk(symbol, a, cubic=True)
    for i in range(int(n_bulk_strained)):
        if i % 2 == 0:
            eps = rng.uniform(-strain_max, strain_max) * np.eye(3)
        else:
            upper = rng.uniform(-strain_max, strain_max, size=(3, 3))
            eps = np.triu(upper) + np.triu(upper, 1).T
        cell = strain_cell(cubic, eps)
        out.append(_plain(cell, f"{symbol}-strained-{i:03d}", "strained", strain=eps))

    rng = np.random.default_rng([seed, _STREAMS["rattled"]])
    supercell = cubic.repeat(int(rattle_supercell))
    for i in range(int(n_rattled)):
        out.append(_plain(_rattle(supercell, rattle_sigma, rng), f"{symbol}-rattled-{i:03d}", "rattled"))

    rng = np.random.default_rng([seed, _STREAMS["surface"]])
    for i in range(int(n_surfaces)):
        facet = ("111", "100")[i % 2]
        layers = int(rng.integers(SLAB_LAYERS[0], SLAB_LAYERS[1] + 1))
        slab = _rattle(_slab(symbol, a, facet, layers, vacuum), rattle_sigma, rng)
        out.append(_plain(slab, f"{symbol}-surface-{i:03d}", "surface", facet=facet))

    rng = np.random.default_rng([seed, _STREAMS["cluster"]])
    templates = _clusters(symbol, a)
    for i in range(int(n_clusters)):
        name, make = templates[i % len(templates)]
        cluster = _rattle(make(), rattle_sigma, rng)
        cluster.center(vacuum=vacuum)
        cluster.pbc = False
        out.append(_plain(cluster, f"{symbol}-cluster-{i:03d}", "cluster", shape=name))

    for r in distances:
        out.append(_plain(_dimer_atoms(symbol, r, dimer_box), f"{symbol}-dimer-{r:.3f}A", "dimer"))
    return _checked(out, min_distance)


def au_probe_structures(
    seed: int = 0,
    a: float = AU_A,
    n_rattled: int = 2,
    facets: Sequence[str] = ("111", "100"),
    clusters: int = 2,
    dimer_distances: Sequence[float] = DIMER_DISTANCES,
    rattle_sigma: float = RATTLE_SIGMA,
    vacuum: float = VACUUM,
    dimer_box: float = DIMER_BOX,
    symbol: str = PROBE_ELEMENT,
    min_distance: float | None = DEFAULT_MIN_DISTANCE,
) -> list:
    """Probe structures of ``symbol`` (Au), the element the fine-tune never sees; deterministic given
    ``seed``.

    The perfect fcc cell (``bulk``, ``a`` 4.08 A), ``n_rattled`` (OURS 2) rattled 32-atom supercells
    (sigma ``rattle_sigma``, OURS 0.05 A), one 4-layer 2x2 slab per facet in ``facets`` (OURS (111),
    (100); not rattled: the ideal surface), the first ``clusters`` (OURS 2: icosahedron 13, octahedron
    19) cluster templates unrattled, and one dimer per distance in ``dimer_distances`` (OURS
    ``DIMER_DISTANCES``). ``info`` as in ``cu_target_structures``. Returns a list of ase.Atoms.
    """
    if n_rattled < 0 or clusters < 0:
        raise ValueError(f"n_rattled={n_rattled}, clusters={clusters}: must be >= 0")
    bad = [f for f in facets if f not in ("111", "100")]
    if bad:
        raise ValueError(f"facets {bad}: only '111' and '100' are made")
    distances = _check_distances(dimer_distances)
    rng = np.random.default_rng([seed, _STREAMS["probe"]])
    out = [_plain(fcc_bulk(symbol, a), f"{symbol}-bulk-000", "bulk")]
    supercell = fcc_bulk(symbol, a, cubic=True).repeat(RATTLE_SUPERCELL)
    for i in range(int(n_rattled)):
        out.append(_plain(_rattle(supercell, rattle_sigma, rng), f"{symbol}-rattled-{i:03d}", "rattled"))
    for i, facet in enumerate(facets):
        slab = _slab(symbol, a, facet, 4, vacuum)
        out.append(_plain(slab, f"{symbol}-surface-{i:03d}", "surface", facet=facet))
    templates = _clusters(symbol, a)
    for i in range(int(clusters)):
        name, make = templates[i % len(templates)]
        cluster = make()
        cluster.center(vacuum=vacuum)
        cluster.pbc = False
        out.append(_plain(cluster, f"{symbol}-cluster-{i:03d}", "cluster", shape=name))
    for r in distances:
        out.append(_plain(_dimer_atoms(symbol, r, dimer_box), f"{symbol}-dimer-{r:.3f}A", "dimer"))
    return _checked(out, min_distance)


# --------------------------------------------------------------------------------------------------
# EMT labels and the energy shift
# --------------------------------------------------------------------------------------------------


def _name(atoms, i: int) -> str:
    mid = atoms.info.get("material_id")
    return f"structure {i}" + (f" ({mid})" if mid else "")


def check_emt_elements(atoms_list: Sequence) -> None:
    """Raise StructureError naming the first structure (index, material_id) with an element EMT lacks."""
    for i, atoms in enumerate(atoms_list):
        missing = sorted(set(atoms.get_chemical_symbols()) - set(EMT_ELEMENTS))
        if missing:
            raise StructureError(
                f"{_name(atoms, i)}: element(s) {', '.join(missing)} not covered by ASE's EMT "
                f"(it covers {', '.join(EMT_ELEMENTS)}): cannot label it with EMT"
            )


def emt_label(atoms_list: Sequence) -> Labels:
    """EMT energies (n,) eV, forces (n_atoms_i, 3) eV/A, and (6,) stresses eV/A^3 for fully periodic
    cells (None otherwise) of every structure. The structures are not modified (a copy carries the
    calculator). Raises StructureError (structure index, material_id, element) before any calculation
    when a structure holds an element EMT lacks."""
    from ase.calculators.emt import EMT

    check_emt_elements(atoms_list)
    energies, forces, stresses = [], [], []
    for atoms in atoms_list:
        work = atoms.copy()
        work.calc = EMT()
        energies.append(float(work.get_potential_energy()))
        forces.append(np.array(work.get_forces(), dtype=float))
        stresses.append(np.array(work.get_stress(voigt=True), dtype=float) if work.pbc.all() else None)
    return Labels(np.asarray(energies, dtype=float), forces, stresses)


def emt_bulk_energy(symbol: str, a: float) -> float:
    """EMT energy per atom (eV/atom) of the perfect fcc crystal of ``symbol`` with lattice constant ``a``."""
    return float(emt_label([fcc_bulk(symbol, a)]).energies[0])


def reference_shift(
    model_e_per_atom: Mapping[str, float], emt_e_per_atom: Mapping[str, float]
) -> dict[str, float]:
    """Per-element shifts ``delta_Z = model_e_per_atom[Z] - emt_e_per_atom[Z]`` (eV/atom).

    Both dicts give the energy per atom of the same reference crystal of each element (fcc at the
    lattice constant used for the EMT value). They must name the same elements, with finite values;
    otherwise ValueError names the elements that differ.
    """
    model, emt = set(model_e_per_atom), set(emt_e_per_atom)
    if model != emt:
        raise ValueError(
            "reference energies for different elements: only the model has "
            f"{sorted(model - emt) or 'none'}, only EMT has {sorted(emt - model) or 'none'}"
        )
    shift = {}
    for el in sorted(model):
        value = float(model_e_per_atom[el]) - float(emt_e_per_atom[el])
        if not math.isfinite(value):
            raise ValueError(f"reference energy of {el} is not finite")
        shift[el] = value
    return shift


def apply_shift(energies: Sequence[float], atoms_list: Sequence, shift: Mapping[str, float]) -> np.ndarray:
    """``energies`` (n,) eV plus ``sum over the atoms of shift[element]`` for every structure: (n,) eV.

    Forces and stresses do not change (a constant energy per atom). Raises StructureError naming the
    structure and the element when ``shift`` has no value for an element of a structure.
    """
    energies = np.asarray(energies, dtype=float)
    if energies.shape != (len(atoms_list),):
        raise ValueError(
            f"{energies.shape[0] if energies.ndim else 0} energies for {len(atoms_list)} structures"
        )
    out = energies.copy()
    for i, atoms in enumerate(atoms_list):
        symbols = atoms.get_chemical_symbols()
        missing = sorted(set(symbols) - set(shift))
        if missing:
            raise StructureError(
                f"{_name(atoms, i)}: no energy shift for element(s) {', '.join(missing)} "
                f"(the shift covers {', '.join(sorted(shift)) or 'nothing'})"
            )
        out[i] += sum(float(shift[s]) for s in symbols)
    return out


# --------------------------------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------------------------------


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Whole counts summing to ``n``, proportional to ``fractions`` (largest remainders get the rest)."""
    f = np.asarray(fractions, dtype=float)
    if f.ndim != 1 or len(f) == 0 or (f < 0).any() or not np.isfinite(f).all() or abs(f.sum() - 1) > 1e-9:
        raise ValueError(f"fractions {list(fractions)}: must be >= 0 and sum to 1")
    raw = f * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts.tolist()


def split(atoms_list: Sequence, fractions: Sequence[float] = SPLIT_FRACTIONS, seed: int = 0) -> list:
    """Indices of whole structures per part (train, val, test for three fractions; OURS 0.8/0.1/0.1).

    A seeded permutation of the structures cut into ``split_counts(len(atoms_list), fractions)`` parts;
    each part is returned sorted (source order). Returns a list of int arrays, one per fraction.
    """
    counts = split_counts(len(atoms_list), fractions)
    perm = np.random.default_rng(seed).permutation(len(atoms_list))
    edges = np.concatenate([[0], np.cumsum(counts)])
    return [np.sort(perm[edges[k] : edges[k + 1]]) for k in range(len(counts))]


# --------------------------------------------------------------------------------------------------
# Labelled extended XYZ
# --------------------------------------------------------------------------------------------------


def _frame_text(atoms, energy: float, forces: np.ndarray, stress) -> str:
    """One extended XYZ frame; floats written with ``repr`` (exact round trip, unlike ASE's %16.8f)."""
    from ase.io.extxyz import key_val_dict_to_str

    info = {"material_id": str(atoms.info["material_id"]), "kind": str(atoms.info["kind"])}
    info["energy"] = float(energy)
    if stress is not None:
        from ase.stress import voigt_6_to_full_3x3_stress

        info["stress"] = voigt_6_to_full_3x3_stress(np.asarray(stress, dtype=float))
    info["pbc"] = np.asarray(atoms.pbc, dtype=bool)
    head = ""
    if atoms.cell.any():
        lattice = " ".join(repr(float(x)) for x in np.asarray(atoms.cell[:], dtype=float).reshape(9))
        head = f'Lattice="{lattice}" '
    head += "Properties=species:S:1:pos:R:3:forces:R:3 " + key_val_dict_to_str(info)
    lines = [str(len(atoms)), head]
    for sym, pos, frc in zip(atoms.get_chemical_symbols(), atoms.positions, forces, strict=True):
        lines.append(" ".join([sym, *(repr(float(x)) for x in pos), *(repr(float(x)) for x in frc)]))
    return "\n".join(lines) + "\n"


def write_labelled_extxyz(
    path: str | Path,
    atoms_list: Sequence,
    energies: Sequence[float],
    forces: Sequence[np.ndarray],
    stresses: Sequence | None = None,
) -> None:
    """Write labelled structures to an extended XYZ file, atomically (``io.atomic_path``).

    Per frame: the cell (``Lattice``), ``pbc``, ``material_id`` and ``kind`` (from ``atoms.info``; both
    required, ids unique), ``energy`` (eV), optionally ``stress`` (3x3, eV/A^3; from (6,) Voigt or
    None per frame), and per atom species, positions (A) and ``forces`` (eV/A), all floats exact.
    ASE reads the file back with a SinglePointCalculator holding energy, forces (and stress).
    energies (n,); forces list of (n_atoms_i, 3); stresses list of (6,) or None, or None.
    """
    from platonic_mlip.io import atomic_path

    n = len(atoms_list)
    energies = np.asarray(energies, dtype=float)
    stresses = [None] * n if stresses is None else list(stresses)
    if energies.shape != (n,) or len(forces) != n or len(stresses) != n:
        raise ValueError(
            f"{n} structures but {energies.size} energies, {len(forces)} force arrays, "
            f"{len(stresses)} stresses"
        )
    seen = set()
    frames = []
    for i, atoms in enumerate(atoms_list):
        for key in ("material_id", "kind"):
            if not str(atoms.info.get(key, "")).strip():
                raise StructureError(f"{path}: structure {i} has no info key {key!r}")
        mid = str(atoms.info["material_id"])
        if mid in seen:
            raise StructureError(f"{path}: structure {i}: duplicate material_id {mid!r}")
        seen.add(mid)
        f = np.asarray(forces[i], dtype=float)
        if f.shape != (len(atoms), 3):
            raise ValueError(
                f"{path}: structure {i} ({mid}): forces of shape {f.shape}, expected ({len(atoms)}, 3)"
            )
        frames.append(_frame_text(atoms, energies[i], f, stresses[i]))
    with atomic_path(path, keep_suffix=True) as tmp:
        tmp.write_text("".join(frames))


def _frame_energy(atoms, key: str):
    calc_results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    if key in calc_results:
        return calc_results[key]
    return atoms.info.get(key)


def _frame_forces(atoms, key: str):
    calc_results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    if key in calc_results:
        return calc_results[key]
    return atoms.arrays.get(key)


def read_labelled_extxyz(
    path: str | Path,
    energy_key: str = "energy",
    forces_key: str = "forces",
    min_distance: float | None = DEFAULT_MIN_DISTANCE,
    name: str | None = None,
) -> LabelledSet:
    """Read and validate a labelled extended XYZ file (a user's fine-tuning data, or ours).

    Every frame must carry a scalar energy (eV; ``energy_key`` in the info line, OURS ``energy``) and
    per-atom forces of shape (n_atoms, 3) (eV/A; ``forces_key`` column, OURS ``forces``), all finite,
    and pass ``structures.check_geometry`` with ``min_distance``; a ``stress`` (3x3 or 6 values) is
    kept when present. Otherwise StructureError names the file (``name`` when given), the frame index
    (0-based) and what is wrong. ``material_id`` defaults to ``<file stem>-<frame>`` (ids must be
    unique), ``kind`` to ``user``. Returns a LabelledSet of clean ase.Atoms (no calculator; info only
    material_id and kind).
    """
    from ase.io import read

    name = name or str(path)
    if not Path(path).exists():
        raise StructureError(f"{name}: labelled extended XYZ file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = read(path, index=":", format="extxyz")
    except Exception as err:  # ASE raises many types on bad files
        raise StructureError(f"{name}: extended XYZ does not parse: {type(err).__name__}: {err}") from err
    if not frames:
        raise StructureError(f"{name}: the file has no structures")
    stem = Path(name).stem
    atoms_out, energies, forces, stresses = [], [], [], []
    seen: dict[str, int] = {}
    for i, atoms in enumerate(frames):
        mid = str(atoms.info.get("material_id", f"{stem}-{i}"))
        where = f"{name}: frame {i} (material_id {mid})"
        if mid in seen:
            raise StructureError(f"{where}: duplicate material_id (first at frame {seen[mid]})")
        seen[mid] = i
        energy = _frame_energy(atoms, energy_key)
        f = _frame_forces(atoms, forces_key)
        if energy is None and f is None:
            raise StructureError(
                f"{where}: no energy (info key {energy_key!r}) and no forces ({forces_key!r})"
            )
        if energy is None:
            raise StructureError(f"{where}: no energy (info key {energy_key!r})")
        if f is None:
            raise StructureError(f"{where}: no forces (per-atom column {forces_key!r})")
        try:
            energy = float(np.asarray(energy, dtype=float).reshape(()))
        except (TypeError, ValueError) as err:
            raise StructureError(f"{where}: energy {energy!r} is not one number") from err
        f = np.asarray(f, dtype=float)
        if f.shape != (len(atoms), 3):
            raise StructureError(f"{where}: forces of shape {f.shape}, expected ({len(atoms)}, 3)")
        if not math.isfinite(energy) or not np.isfinite(f).all():
            raise StructureError(f"{where}: energy or forces are not finite (NaN or inf)")
        check_geometry(atoms, where, min_distance)
        stress = _frame_energy(atoms, "stress")
        if stress is not None:
            stress = _voigt(np.asarray(stress, dtype=float), where)
        clean = _plain(atoms, mid, str(atoms.info.get("kind", "user")))
        atoms_out.append(clean)
        energies.append(energy)
        forces.append(f)
        stresses.append(stress)
    return LabelledSet(atoms_out, np.asarray(energies, dtype=float), forces, stresses)


def _voigt(stress: np.ndarray, where: str) -> np.ndarray:
    from ase.stress import full_3x3_to_voigt_6_stress

    if stress.shape == (6,):
        out = stress
    elif stress.shape in ((3, 3), (9,)):
        out = full_3x3_to_voigt_6_stress(stress.reshape(3, 3))
    else:
        raise StructureError(f"{where}: stress of shape {stress.shape}, expected 6 or 3x3 values")
    if not np.isfinite(out).all():
        raise StructureError(f"{where}: stress is not finite (NaN or inf)")
    return out
