"""Harmonic phonons of a structure under one model's ASE calculator: a test of physical failures.

Runs inside a family environment (needs ase and phonopy; phonopy is imported lazily). The pipeline for one
structure and one calculator (``phonons``):

1. ``relax``: positions and cell relaxed with the space group kept (ASE ``FixSymmetry`` on the atoms, a
   ``FrechetCellFilter`` over positions and cell), until the largest filter force is below ``fmax`` or after
   ``steps`` optimizer steps;
2. ``supercell_matrix``: a diagonal supercell whose every periodic image is at least ``min_length`` A away
   (the perpendicular height of the supercell along each lattice vector);
3. phonopy's symmetry-reduced finite displacements of ``distance`` A, forces from the calculator
   (``supercell_forces``: minus the forces of the undisplaced supercell, i.e. the residual of an incomplete
   relaxation), phonopy's force constants (not symmetrised by default, so that a model's own violation of
   translational invariance shows up in the acoustic modes at Gamma);
4. frequencies (THz; imaginary modes as negative numbers, phonopy's convention) along a band path
   (``band_path``) and on a Gamma-centred q mesh without symmetry reduction (``mesh`` points per reciprocal
   axis; the same q points for every model, so frequencies of models can be compared point by point);
5. ``imaginary_summary``: modes below ``-imag_tol`` THz on the mesh (the three acoustic modes at Gamma are
   reported apart, as ``acoustic_gamma_max_THz``).

Band path (``band_path``): for cubic lattices an explicit path per Bravais lattice (``CUBIC_PATHS``,
Setyawan-Curtarolo labels, G = Gamma): fcc ``GXWKGLUWLK,UX``, bcc ``GHNGPH,PN``, simple cubic ``GXMGRX,MR``.
Other lattices: ASE's default special path of the lattice (``ase.lattice`` ``special_path``, also
Setyawan-Curtarolo). ASE maps the special points onto the given cell, whatever its orientation and choice of
primitive vectors; a supercell gets the path of its own (folded) Brillouin zone.

Disagreement between models: ``platonic_mlip.phonon_tables.frequency_disagreement`` (pure numpy, also used
from the analysis environment), re-exported here.

Reference structures (``reference_structure``): fcc Cu, fcc Au, cubic perovskite BaCeO3, diamond Si and
rock-salt NaCl, primitive cells built with ASE, lattice constants from ``REFERENCE_LATTICE`` (experimental
room-temperature values, OURS; BaCeO3 as ``platonic_mlip.probes``).

Every default below marked OURS is ours (the paper states no phonon settings).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from platonic_mlip.phonon_tables import frequency_disagreement  # noqa: F401  (re-exported)

#: OURS: the named reference structures and their lattice constants (A)
REFERENCE_LATTICE = {"Cu": 3.615, "Au": 4.078, "BaCeO3": 4.44, "Si": 5.431, "NaCl": 5.64}
REFERENCE_STRUCTURES = tuple(REFERENCE_LATTICE)

#: explicit band paths of the cubic Bravais lattices (ASE lattice names), Setyawan-Curtarolo labels
CUBIC_PATHS = {"FCC": "GXWKGLUWLK,UX", "BCC": "GHNGPH,PN", "CUB": "GXMGRX,MR"}

#: OURS: phonon parameters (see ``phonons``)
DEFAULTS = dict(
    fmax=0.005,  # eV/A, relaxation threshold on the filter's forces (atoms and cell)
    steps=300,  # optimizer steps at most
    min_length=10.0,  # A, smallest periodic-image distance of the supercell
    distance=0.01,  # A, finite displacement
    npoints=151,  # q points on the band path
    mesh=8,  # q points per reciprocal axis of the mesh
    imag_tol=0.05,  # THz: a mode below -imag_tol is imaginary
    acoustic_tol=0.1,  # THz: Gamma acoustic modes within this of 0 count as ~0
    symprec=1e-3,  # A, symmetry tolerance of FixSymmetry and phonopy
)


class PhononError(RuntimeError):
    """A model cannot evaluate a structure (or a displaced supercell of it); the message names both."""


# --- reference structures ---------------------------------------------------------------------------------
def reference_structure(name: str, a: float | None = None):
    """The primitive cell of reference structure ``name`` (``REFERENCE_STRUCTURES``), ``info["name"]`` set.

    ``a``: cubic lattice constant (A); default ``REFERENCE_LATTICE[name]``. Cu, Au: fcc, 1 atom; Si: diamond,
    2 atoms; NaCl: rock salt, 2 atoms; BaCeO3: cubic perovskite Pm-3m, 5 atoms (Ba, Ce, O, O, O).
    """
    from ase.build import bulk

    if name not in REFERENCE_LATTICE:
        raise ValueError(f"unknown reference structure {name!r}; known: {', '.join(REFERENCE_STRUCTURES)}")
    a = float(REFERENCE_LATTICE[name] if a is None else a)
    if not a > 0:
        raise ValueError(f"reference structure {name}: lattice constant {a} must be positive")
    if name in ("Cu", "Au"):
        atoms = bulk(name, "fcc", a=a)
    elif name == "Si":
        atoms = bulk("Si", "diamond", a=a)
    elif name == "NaCl":
        atoms = bulk("NaCl", "rocksalt", a=a)
    else:
        from platonic_mlip.probes import bacec_o3

        atoms = bacec_o3(a)
    atoms.info["name"] = name
    return atoms


# --- relaxation -------------------------------------------------------------------------------------------
def relax(atoms, calc, fmax: float = DEFAULTS["fmax"], steps: int = DEFAULTS["steps"], symprec=1e-3):
    """Relax positions and cell of a copy of ``atoms`` with ``calc``, keeping its space group.

    ASE ``FixSymmetry(symprec)`` + ``FrechetCellFilter`` + ``BFGS`` (OURS) until the largest filter force
    (atomic forces and the cell's generalised forces, eV/A) is below ``fmax`` or ``steps`` steps were made.
    Returns (relaxed copy without calculator or constraint, info) with info ``converged`` (bool), ``steps``
    (int), ``max_force`` (largest atomic force after relaxation, eV/A), ``max_stress_GPa`` (largest absolute
    stress component after relaxation) and ``volume_per_atom`` (A^3).
    """
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS
    from ase.units import GPa

    work = atoms.copy()
    work.calc = calc
    work.set_constraint(FixSymmetry(work, symprec=symprec))
    opt = BFGS(FrechetCellFilter(work), logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    work.set_constraint()
    calc.reset()
    forces = work.get_forces()
    stress = work.get_stress()
    out = atoms.copy()
    out.set_cell(work.cell[:], scale_atoms=False)
    out.set_positions(work.positions)
    info = dict(
        converged=converged,
        steps=int(opt.nsteps),
        max_force=float(np.linalg.norm(forces, axis=1).max()),
        max_stress_GPa=float(np.abs(stress).max() / GPa),
        volume_per_atom=float(work.get_volume() / len(work)),
    )
    return out, info


# --- supercells and forces --------------------------------------------------------------------------------
def supercell_matrix(cell: np.ndarray, min_length: float = DEFAULTS["min_length"]) -> np.ndarray:
    """Diagonal supercell matrix, (3, 3) int, whose periodic images are at least ``min_length`` A apart.

    ``cell``: (3, 3) lattice vectors as rows. Along lattice vector i the repetition is
    ``ceil(min_length / h_i)``, h_i the height of the cell perpendicular to the other two vectors (OURS: a
    diagonal matrix, no search over non-diagonal supercells).
    """
    cell = np.asarray(cell, dtype=float)
    if cell.shape != (3, 3):
        raise ValueError(f"cell of shape {cell.shape}, expected (3, 3)")
    volume = abs(np.linalg.det(cell))
    if volume < 1e-9:
        raise ValueError("cell has zero volume")
    heights = np.array(
        [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]
    )
    reps = np.maximum(1, np.ceil(min_length / heights - 1e-9)).astype(int)
    return np.diag(reps)


def to_phonopy_atoms(atoms):
    """phonopy's ``PhonopyAtoms`` of an ``ase.Atoms`` (symbols, cell, scaled positions; phonopy's masses)."""
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=np.array(atoms.cell[:]),
        scaled_positions=atoms.get_scaled_positions(),
    )


def to_ase(cell):
    """An ``ase.Atoms`` (periodic) of a ``PhonopyAtoms``."""
    from ase import Atoms

    return Atoms(symbols=list(cell.symbols), cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True)


def checked_forces(calc, atoms, model: str, structure: str, what: str = "") -> np.ndarray:
    """Forces (n_atoms, 3), eV/A, of ``atoms`` under ``calc``; PhononError naming model and structure when
    the calculator fails (e.g. an element it does not cover) or gives non-finite or misshapen forces."""
    where = f"structure {structure!r}{' (' + what + ')' if what else ''}"
    a = atoms.copy()
    calc.reset()  # calculators cache results by structure; never reuse them
    try:
        a.calc = calc  # some calculators (sevenn) check the elements here
        forces = np.asarray(a.get_forces(), dtype=float)
    except Exception as err:
        symbols = ", ".join(sorted(set(atoms.get_chemical_symbols())))
        raise PhononError(
            f"model {model!r} cannot evaluate {where} (elements {symbols}): {type(err).__name__}: {err}"
        ) from err
    if forces.shape != (len(atoms), 3):
        raise PhononError(
            f"model {model!r}: {where}: forces of shape {forces.shape}, expected ({len(atoms)}, 3)"
        )
    if not np.isfinite(forces).all():
        bad = int((~np.isfinite(forces)).any(axis=1).sum())
        raise PhononError(f"model {model!r}: {where}: non-finite forces on {bad} of {len(atoms)} atoms")
    return forces


def supercell_forces(calc, supercells: Sequence, model: str, structure: str, reference=None) -> np.ndarray:
    """Forces of every displaced supercell, (n_displacements, n_atoms, 3) eV/A, via ``checked_forces``.

    ``reference``: the undisplaced supercell; when given its forces (the residual of the relaxation) are
    subtracted from each displaced cell's forces.
    """
    n = len(supercells)
    forces = np.stack(
        [
            checked_forces(calc, sc, model, structure, f"displaced supercell {i + 1} of {n}")
            for i, sc in enumerate(supercells)
        ]
    )
    if reference is not None:
        forces = forces - checked_forces(calc, reference, model, structure, "undisplaced supercell")[None]
    return forces


# --- q points ---------------------------------------------------------------------------------------------
def path_string(atoms) -> tuple[str, str]:
    """(Bravais lattice name (ASE), band path string) of ``atoms``' cell: ``CUBIC_PATHS`` or ASE's default."""
    lat = atoms.cell.get_bravais_lattice()
    return lat.name, CUBIC_PATHS.get(lat.name, lat.special_path)


def band_path(atoms, npoints: int = DEFAULTS["npoints"]) -> dict:
    """q points of the band path of ``atoms``' cell (see the module docstring).

    Returns ``qpoints`` (nq, 3) fractional in the reciprocal basis of ``atoms.cell``, ``distances`` (nq,)
    along the path (1/A, ASE's reciprocal length without 2 pi; a break (``,``) adds no length),
    ``segments`` (nq,) int, the continuous piece each point lies on, ``label_x`` (nl,) and ``labels`` (nl,)
    str (``Γ`` for Gamma; ``K|U`` at a break), ``lattice`` and ``path``.
    """
    lattice, path = path_string(atoms)
    bp = atoms.cell.bandpath(path, npoints=npoints)
    x, label_x, labels = bp.get_linear_kpoint_axis()
    q = np.asarray(bp.kpts, dtype=float)
    jumps = np.r_[False, (np.diff(x) == 0) & (np.abs(np.diff(q, axis=0)).sum(axis=1) > 1e-9)]
    merged_x, merged = [], []
    for pos, name in zip(label_x, labels, strict=True):  # ASE lists both ends of a break at one distance
        name = "Γ" if str(name) == "G" else str(name)
        if merged_x and abs(pos - merged_x[-1]) < 1e-12:
            merged[-1] = f"{merged[-1]}|{name}"
        else:
            merged_x.append(float(pos))
            merged.append(name)
    return dict(
        qpoints=q,
        distances=np.asarray(x, dtype=float),
        segments=np.cumsum(jumps).astype(np.int64),
        label_x=np.asarray(merged_x, dtype=float),
        labels=np.array(merged),
        lattice=lattice,
        path=path,
    )


# --- summaries --------------------------------------------------------------------------------------------
def imaginary_summary(
    qpoints: np.ndarray,
    frequencies: np.ndarray,
    imag_tol: float = DEFAULTS["imag_tol"],
    acoustic_tol: float = DEFAULTS["acoustic_tol"],
) -> dict:
    """Imaginary modes on a q mesh.

    ``qpoints`` (nq, 3) fractional, ``frequencies`` (nq, n_modes) THz (imaginary as negative). The three
    modes of smallest |f| at Gamma (a q point of integer coordinates) are the acoustic modes: their largest
    |f| is ``acoustic_gamma_max_THz`` and ``acoustic_ok`` says whether it is below ``acoustic_tol``; they are
    left out of the rest. ``n_imaginary``: modes (q point x branch) below ``-imag_tol``;
    ``imaginary_fraction``: that over all such modes; ``min_frequency_THz``: the lowest frequency.
    Raises ValueError without Gamma.
    """
    q = np.asarray(qpoints, dtype=float)
    f = np.asarray(frequencies, dtype=float)
    if q.ndim != 2 or f.ndim != 2 or len(q) != len(f) or f.shape[1] < 3:
        raise ValueError(f"qpoints {q.shape} and frequencies {f.shape} do not fit (nq, 3) and (nq, >=3)")
    gamma = np.flatnonzero(np.abs(q - np.round(q)).max(axis=1) < 1e-8)
    if len(gamma) == 0:
        raise ValueError("the q points hold no Gamma point")
    keep = np.ones(f.shape, dtype=bool)
    acoustic = np.argsort(np.abs(f[gamma[0]]))[:3]
    keep[gamma[0], acoustic] = False
    rest = f[keep]
    acoustic_max = float(np.abs(f[gamma[0], acoustic]).max())
    n_imag = int((rest < -imag_tol).sum())
    return dict(
        n_imaginary=n_imag,
        imaginary_fraction=n_imag / rest.size,
        min_frequency_THz=float(rest.min()),
        acoustic_gamma_max_THz=acoustic_max,
        acoustic_ok=bool(acoustic_max < acoustic_tol),
    )


# --- the pipeline -----------------------------------------------------------------------------------------
def phonons(atoms, calc, model: str, structure: str, **params) -> dict:
    """Relaxation, finite-displacement force constants and frequencies of ``atoms`` under ``calc``.

    ``params`` (defaults ``DEFAULTS``, all OURS): ``fmax``, ``steps`` (``relax``), ``min_length``
    (``supercell_matrix``), ``distance`` (A, displacement), ``npoints`` (``band_path``), ``mesh`` (int or 3
    ints), ``imag_tol``, ``acoustic_tol`` (``imaginary_summary``), ``symprec``, ``relax`` (bool, default
    True), ``symmetrize_fc`` (bool, default False: phonopy's force-constant symmetrisation, which also
    imposes translational invariance), ``subtract_residual`` (bool, default True; ``supercell_forces``).

    Returns a dict: ``relaxed`` (``ase.Atoms``), ``relax`` (``relax``'s info; without relaxation converged
    None and the forces of the input), ``supercell_matrix`` (3, 3), ``n_supercell_atoms``,
    ``n_displacements``, ``band`` (``band_path`` + ``frequencies`` (nq, 3 n_atoms) THz), ``mesh`` (``qpoints``
    (nq, 3), ``frequencies`` (nq, 3 n_atoms), ``numbers`` (3,)), ``summary`` (``imaginary_summary``),
    ``wall_s``. Raises PhononError (naming ``model`` and ``structure``) when the model cannot evaluate a cell.
    """
    from phonopy import Phonopy

    unknown = set(params) - set(DEFAULTS) - {"relax", "symmetrize_fc", "subtract_residual"}
    if unknown:
        raise TypeError(f"unknown phonon parameter(s): {', '.join(sorted(unknown))}")
    p = {**DEFAULTS, "relax": True, "symmetrize_fc": False, "subtract_residual": True, **params}
    t0 = time.perf_counter()
    forces0 = checked_forces(calc, atoms, model, structure, "input cell")
    if p["relax"]:
        try:
            relaxed, info = relax(atoms, calc, fmax=p["fmax"], steps=int(p["steps"]), symprec=p["symprec"])
        except PhononError:
            raise
        except Exception as err:
            raise PhononError(
                f"model {model!r}: relaxation of structure {structure!r} failed: {type(err).__name__}: {err}"
            ) from err
        checked_forces(calc, relaxed, model, structure, "relaxed cell")
    else:
        relaxed = atoms.copy()
        info = dict(
            converged=None,
            steps=0,
            max_force=float(np.linalg.norm(forces0, axis=1).max()),
            max_stress_GPa=float("nan"),
            volume_per_atom=float(atoms.get_volume() / len(atoms)),
        )
    matrix = supercell_matrix(relaxed.cell[:], p["min_length"])
    ph = Phonopy(
        to_phonopy_atoms(relaxed), supercell_matrix=matrix, primitive_matrix=None, symprec=p["symprec"]
    )
    ph.generate_displacements(distance=p["distance"])
    cells = [to_ase(sc) for sc in ph.supercells_with_displacements]
    reference = to_ase(ph.supercell) if p["subtract_residual"] else None
    ph.forces = supercell_forces(calc, cells, model, structure, reference)
    ph.produce_force_constants()
    if p["symmetrize_fc"]:
        ph.symmetrize_force_constants()

    band = band_path(relaxed, int(p["npoints"]))
    ph.run_qpoints(band["qpoints"])
    band["frequencies"] = np.asarray(ph.qpoints.frequencies, dtype=float)
    numbers = np.broadcast_to(np.asarray(p["mesh"], dtype=int), (3,)).copy()
    ph.run_mesh(numbers, is_gamma_center=True, is_mesh_symmetry=False)
    mesh = dict(
        qpoints=np.asarray(ph.mesh.qpoints, dtype=float),
        frequencies=np.asarray(ph.mesh.frequencies, dtype=float),
        numbers=numbers,
    )
    summary = imaginary_summary(mesh["qpoints"], mesh["frequencies"], p["imag_tol"], p["acoustic_tol"])
    return dict(
        relaxed=relaxed,
        relax=info,
        supercell_matrix=matrix,
        n_supercell_atoms=len(ph.supercell),
        n_displacements=len(cells),
        band=band,
        mesh=mesh,
        summary=summary,
        params=p,
        wall_s=time.perf_counter() - t0,
    )
