"""Probe structures: rigidly rotated copies (Fig. 5g) and perturbed copies (the atypical-structure test).

Probe structures are not part of the run; every checkpoint embeds them in one extra job, and the
diagnostics compare their embeddings with the run's.

Rotations (Fig. 5g: "rotational sensitivity test on BaCeO3"). A rigid rotation R turns the cell vectors
and the Cartesian positions together (``cell' = cell R^T``, ``pos' = pos R^T``, i.e. every vector
v -> R v): the periodic crystal is the same crystal, seen from another direction. The parents are cubic
BaCeO3 (Pm-3m, Ba 0,0,0; Ce 1/2,1/2,1/2; O 1/2,0,1/2; ``a`` OURS, 4.44 A) and a seeded sample of the
run's structures (OURS). Every parent gets one unrotated copy (variant ``identity``, the reference)
and one copy per axis and angle of the grid (OURS: axes (0,0,1), (1,1,1); angles 15..180 degrees).

Perturbations (OURS: the paper has no protocol). A seeded fraction of the run's structures is held out
(the atypical reference excludes them); a seeded subset of those gets one copy per perturbation:

* ``rattle``: Gaussian displacements of every atom, sigma ``rattle_sigma`` (OURS, 0.1 A);
* ``strain``: isotropic strain of the lattice lengths by ``strain`` (OURS, 0.08), scaled positions kept;
* ``swap_within_group``: every atom of one element becomes another element of the same IUPAC group;
* ``swap_across_groups``: ... another element of the same period but a different group;
* ``remove_atom``: one atom removed (not for single-atom structures).

Replacement elements come from the elements of the run (which the run's models embedded). A perturbed
copy must pass ``structures.check_geometry``; a draw that fails it (rattle bringing atoms too close) is
redrawn with the next seed up to ``attempts`` times. A perturbation that cannot be made is returned as
a skip (``Skip``), never silently dropped. Everything is deterministic given the seed: each random
choice has its own generator ``numpy.random.default_rng([seed, stream, ...])``.

Probe ids: ``<parent>~identity``, ``<parent>~rot:<axis>:<angle>`` (axis ``x``/``y``/``z`` for the
coordinate axes, else its components joined by ``_``, e.g. ``1_1_1``), ``<parent>~<perturbation>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from platonic_mlip.chemistry import group_of, period_of

BACEO3 = "BaCeO3"
#: OURS: lattice parameter of cubic BaCeO3 (Angstrom)
BACEO3_A = 4.44
#: OURS: the rotation grid
DEFAULT_AXES = ("0,0,1", "1,1,1")
DEFAULT_ANGLES = (15.0, 30.0, 45.0, 60.0, 90.0, 135.0, 180.0)
PERTURBATIONS = ("rattle", "strain", "swap_within_group", "swap_across_groups", "remove_atom")
#: OURS: perturbation sizes
RATTLE_SIGMA = 0.1
STRAIN = 0.08
#: draws of a random perturbation whose copy fails ``check_geometry`` before it is skipped
ATTEMPTS = 5
#: perturbations whose geometry depends on the random draw (the others fail the same way every time)
REDRAWN = frozenset({"rattle"})

PROBE_COLUMNS = (
    "probe_index",
    "material_id",
    "parent",
    "kind",
    "variant",
    "axis",
    "angle_deg",
    "n_atoms",
    "atom_start",
    "atom_stop",
    "detail",
)
SKIP_COLUMNS = ("material_id", "parent", "kind", "variant", "reason")

# random streams: [seed, stream, ...] seeds one generator per decision
_SAMPLE, _HOLDOUT, _PERTURBED, _DRAW = 0, 1, 2, 3


class PerturbationError(ValueError):
    """A perturbation that cannot be made on a structure; the message says why."""


@dataclass
class Probe:
    """One probe structure: its atoms and its row of the probe table (without the atom offsets)."""

    atoms: object  # ase.Atoms
    material_id: str
    parent: str
    kind: str  # "rotation" | "perturbation"
    variant: str
    axis: str = ""
    angle_deg: float = float("nan")
    detail: str = ""


@dataclass
class Skip:
    """A probe that could not be made: its would-be id and why."""

    material_id: str
    parent: str
    kind: str
    variant: str
    reason: str


def _fresh(numbers, positions, cell, pbc):
    from ase import Atoms

    return Atoms(numbers=np.array(numbers), positions=np.array(positions), cell=np.array(cell), pbc=pbc)


def bacec_o3(a: float = BACEO3_A):
    """Cubic perovskite BaCeO3 (space group 221), 5 atoms: Ba, Ce, O, O, O; lattice parameter ``a`` A."""
    from ase.spacegroup import crystal

    atoms = crystal(
        ["Ba", "Ce", "O"],
        basis=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0, 0.5)],
        spacegroup=221,
        cellpar=[a, a, a, 90, 90, 90],
    )
    return _fresh(atoms.numbers, atoms.positions, atoms.cell[:], True)


def parse_axis(text: str) -> np.ndarray:
    """``"0,0,1"`` -> the (3,) unit vector; ValueError for a malformed or zero axis."""
    try:
        v = np.array([float(p) for p in str(text).split(",")], dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"rotation axis {text!r}: expected three numbers like 0,0,1") from err
    if v.shape != (3,) or not np.isfinite(v).all() or np.linalg.norm(v) == 0:
        raise ValueError(f"rotation axis {text!r}: expected three numbers like 0,0,1, not all zero")
    return v / np.linalg.norm(v)


def parse_axis_raw(text: str) -> np.ndarray:
    """The three components of an axis as given (not normalised); ValueError as ``parse_axis``."""
    parse_axis(text)
    return np.array([float(p) for p in str(text).split(",")])


def axis_name(text: str) -> str:
    """Short name of an axis in probe ids: ``x``/``y``/``z`` for a coordinate axis, else ``1_1_1``."""
    unit, v = parse_axis(text), parse_axis_raw(text)
    for name, e in zip("xyz", np.eye(3), strict=True):
        if np.allclose(unit, e):
            return name
    return "_".join(f"{c:g}" for c in v)


def rotation_matrix(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """(3, 3) proper rotation by ``angle_deg`` degrees about the (3,) ``axis`` (right-hand rule)."""
    from scipy.spatial.transform import Rotation

    axis = np.asarray(axis, dtype=np.float64)
    return Rotation.from_rotvec(np.deg2rad(angle_deg) * axis / np.linalg.norm(axis)).as_matrix()


def rotate(atoms, rot: np.ndarray):
    """A copy of ``atoms`` rigidly rotated by the (3, 3) matrix ``rot``: cell vectors and Cartesian
    positions both map v -> rot @ v; numbers and pbc kept (positions are not wrapped)."""
    rot = np.asarray(rot, dtype=np.float64)
    return _fresh(atoms.numbers, atoms.positions @ rot.T, np.asarray(atoms.cell[:]) @ rot.T, atoms.pbc)


def rotation_probes(
    parents: Sequence[tuple[str, object]], axes: Sequence[str], angles: Sequence[float]
) -> list[Probe]:
    """Per parent ``(material_id, atoms)``: the identity copy, then one copy per axis x angle.

    Returns ``len(parents) * (1 + len(axes) * len(angles))`` probes in that order.
    """
    if len({axis_name(a) for a in axes}) != len(axes):
        raise ValueError(f"rotation axes {list(axes)}: two axes have the same name")
    if len({f"{float(a):g}" for a in angles}) != len(angles):
        raise ValueError(f"rotation angles {list(angles)}: repeated")
    out = []
    for parent, atoms in parents:
        ref = rotate(atoms, np.eye(3))
        out.append(
            Probe(ref, f"{parent}~identity", parent, "rotation", "identity", "", 0.0, "unrotated copy")
        )
        for axis in axes:
            unit, name = parse_axis(axis), axis_name(axis)
            for angle in angles:
                variant = f"{name}:{float(angle):g}"
                out.append(
                    Probe(
                        rotate(atoms, rotation_matrix(unit, float(angle))),
                        f"{parent}~rot:{variant}",
                        parent,
                        "rotation",
                        variant,
                        ",".join(f"{c:g}" for c in parse_axis_raw(axis)),
                        float(angle),
                        f"rigid rotation of cell and positions by {float(angle):g} deg about ({axis})",
                    )
                )
    return out


def sample_indices(n: int, k: int, seed: int, stream: int) -> np.ndarray:
    """``min(k, n)`` distinct sorted indices of ``range(n)`` drawn with ``default_rng([seed, stream])``."""
    rng = np.random.default_rng([seed, stream])
    return np.sort(rng.choice(n, size=min(int(k), n), replace=False)).astype(np.int64)


def rotation_parent_indices(n: int, k: int, seed: int) -> np.ndarray:
    """Sorted indices of the ``min(k, n)`` run structures (of ``n``) rotated next to BaCeO3, seeded."""
    return sample_indices(n, k, seed, _SAMPLE)


def perturbed_indices(held: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The ``min(k, len(held))`` held-out structure indices (of sorted ``held``) to perturb, seeded."""
    held = np.asarray(held, dtype=np.int64)
    return held[sample_indices(len(held), k, seed, _PERTURBED)]


def holdout_indices(n: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the held-out structures: ``round(fraction * n)`` of ``n``, seeded."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"holdout fraction {fraction}: must be in [0, 1)")
    return sample_indices(n, int(round(fraction * n)), seed, _HOLDOUT)


# --------------------------------------------------------------------------------------------------
# perturbations: (atoms, rng, run elements, options) -> (atoms, detail); PerturbationError if impossible
# --------------------------------------------------------------------------------------------------


def rattle(atoms, rng, sigma: float = RATTLE_SIGMA):
    """Every atom displaced by an isotropic Gaussian of standard deviation ``sigma`` A per component."""
    shift = rng.normal(0.0, sigma, size=atoms.positions.shape)
    new = _fresh(atoms.numbers, atoms.positions + shift, atoms.cell[:], atoms.pbc)
    rms = float(np.sqrt(np.mean(np.sum(shift**2, axis=1))))
    return new, f"Gaussian displacements, sigma {sigma:g} A per component (RMS displacement {rms:.3f} A)"


def strain(atoms, s: float = STRAIN):
    """Isotropic strain: lattice lengths x (1 + s), scaled positions kept (volume x (1 + s)^3)."""
    if s <= -1:
        raise PerturbationError(f"strain {s}: must be > -1")
    cell = np.asarray(atoms.cell[:]) * (1.0 + s)
    new = _fresh(atoms.numbers, atoms.get_scaled_positions(wrap=False) @ cell, cell, atoms.pbc)
    return new, f"isotropic strain {100 * s:+g}% on lattice lengths (volume x{(1 + s) ** 3:.3f})"


def _swap(atoms, rng, run_elements, same_group: bool):
    from ase.data import chemical_symbols

    present = sorted(set(int(z) for z in atoms.numbers))
    run_elements = sorted(set(int(z) for z in run_elements))
    options = {}
    for z in present:
        g, p = group_of(z), period_of(z)
        if same_group:
            cands = [y for y in run_elements if y not in present and g is not None and group_of(y) == g]
        else:
            cands = [y for y in run_elements if y not in present and period_of(y) == p and group_of(y) != g]
        if cands:
            options[z] = cands
    if not options:
        what = "the same group" if same_group else "the same period and another group"
        f_block = (
            " (f-block elements have no IUPAC group)" if any(group_of(z) is None for z in present) else ""
        )
        raise PerturbationError(
            f"no element of the run in {what} as an element of the structure "
            f"({', '.join(chemical_symbols[z] for z in present)}) and absent from it{f_block}"
        )
    old = int(rng.choice(sorted(options)))
    new_z = int(rng.choice(options[old]))
    numbers = atoms.numbers.copy()
    count = int(np.sum(numbers == old))
    numbers[numbers == old] = new_z
    a, b = chemical_symbols[old], chemical_symbols[new_z]
    g_old, g_new = group_of(old), group_of(new_z)
    if same_group:
        how = f"group {g_old}"
    else:
        how = f"period {period_of(old)}, group {g_old or 'Ln/An'} -> {g_new or 'Ln/An'}"
    new = _fresh(numbers, atoms.positions, atoms.cell[:], atoms.pbc)
    return new, f"all {count} {a} -> {b} ({how})"


def swap_within_group(atoms, rng, run_elements):
    """Every atom of one seeded-chosen element of the structure -> another element of the same IUPAC
    group, drawn from ``run_elements`` (atomic numbers) and absent from the structure. Lanthanides
    and actinides (no group) are not swapped this way."""
    return _swap(atoms, rng, run_elements, True)


def swap_across_groups(atoms, rng, run_elements):
    """Every atom of one seeded-chosen element -> an element of ``run_elements`` absent from the
    structure, of the same period and another group (the f-block counts as its own group)."""
    return _swap(atoms, rng, run_elements, False)


def remove_atom(atoms, rng):
    """One seeded-chosen atom removed; PerturbationError for a single-atom structure."""
    if len(atoms) < 2:
        raise PerturbationError("a single-atom structure has no atom to remove")
    i = int(rng.integers(len(atoms)))
    keep = np.arange(len(atoms)) != i
    new = _fresh(atoms.numbers[keep], atoms.positions[keep], atoms.cell[:], atoms.pbc)
    return new, f"removed atom {i} ({atoms.get_chemical_symbols()[i]}) of {len(atoms)}"


def perturb(
    atoms,
    name: str,
    rng,
    run_elements: Sequence[int] = (),
    rattle_sigma: float = RATTLE_SIGMA,
    strain_value: float = STRAIN,
):
    """Apply perturbation ``name`` (one of ``PERTURBATIONS``) -> (new atoms, detail text)."""
    if name == "rattle":
        return rattle(atoms, rng, rattle_sigma)
    if name == "strain":
        return strain(atoms, strain_value)
    if name == "swap_within_group":
        return swap_within_group(atoms, rng, run_elements)
    if name == "swap_across_groups":
        return swap_across_groups(atoms, rng, run_elements)
    if name == "remove_atom":
        return remove_atom(atoms, rng)
    raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(PERTURBATIONS)}")


def perturbation_probes(
    structures: Sequence[tuple[int, str, object]],
    perturbations: Sequence[str],
    seed: int,
    run_elements: Sequence[int],
    rattle_sigma: float = RATTLE_SIGMA,
    strain_value: float = STRAIN,
    min_distance: float | None = None,
    attempts: int = ATTEMPTS,
) -> tuple[list[Probe], list[Skip]]:
    """One copy per perturbation of each ``(structure_index, material_id, atoms)``.

    A copy must pass ``structures.check_geometry(min_distance)`` (default: the structures module's).
    Each copy has its own generator ``default_rng([seed, 3, structure_index, perturbation, attempt])``;
    a ``REDRAWN`` perturbation (rattle) whose draw fails the check is redrawn with the next attempt
    up to ``attempts`` times; the others fail the same way every time and are skipped at once.
    Returns (probes, skips): every perturbation that could not be made is a ``Skip`` with its reason.
    """
    from platonic_mlip.structures import DEFAULT_MIN_DISTANCE, StructureError, check_geometry

    unknown = [p for p in perturbations if p not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"unknown perturbation(s) {unknown}; known: {', '.join(PERTURBATIONS)}")
    min_distance = DEFAULT_MIN_DISTANCE if min_distance is None else min_distance
    probes, skips = [], []
    for index, mid, atoms in structures:
        for name in perturbations:
            pid = f"{mid}~{name}"
            code = PERTURBATIONS.index(name)
            reason, draws = None, attempts if name in REDRAWN else 1
            for attempt in range(draws):
                rng = np.random.default_rng([seed, _DRAW, int(index), code, attempt])
                try:
                    new, detail = perturb(atoms, name, rng, run_elements, rattle_sigma, strain_value)
                    check_geometry(new, pid, min_distance)
                except (PerturbationError, StructureError) as err:
                    reason = str(err)
                    if isinstance(err, PerturbationError):
                        break  # not a matter of the random draw: redrawing cannot help
                    continue
                if attempt:
                    detail += f" (draw {attempt + 1}: {attempt} earlier draw(s) failed the geometry check)"
                probes.append(Probe(new, pid, mid, "perturbation", name, detail=detail))
                reason = None
                break
            if reason is not None:
                if draws > 1:
                    reason = f"{draws} draws failed the geometry check; the last: {reason}"
                skips.append(Skip(pid, mid, "perturbation", name, reason))
    return probes, skips


def probe_table(probes: Sequence[Probe]):
    """The probe table (pandas DataFrame, columns ``PROBE_COLUMNS``): atom offsets in probe order."""
    import pandas as pd

    ids = [p.material_id for p in probes]
    dup = sorted({m for m in ids if ids.count(m) > 1})
    if dup:
        raise ValueError(f"probe ids are not unique: {dup[:5]}")
    n = np.array([len(p.atoms) for p in probes], dtype=np.int64)
    stop = np.cumsum(n)
    return pd.DataFrame(
        {
            "probe_index": np.arange(len(probes)),
            "material_id": ids,
            "parent": [p.parent for p in probes],
            "kind": [p.kind for p in probes],
            "variant": [p.variant for p in probes],
            "axis": [p.axis for p in probes],
            "angle_deg": [p.angle_deg for p in probes],
            "n_atoms": n,
            "atom_start": stop - n,
            "atom_stop": stop,
            "detail": [p.detail for p in probes],
        },
        columns=list(PROBE_COLUMNS),
    )


def skip_table(skips: Sequence[Skip]):
    """Skipped probes as a DataFrame with columns ``SKIP_COLUMNS`` (header only when none)."""
    import pandas as pd

    return pd.DataFrame([vars(s) for s in skips], columns=list(SKIP_COLUMNS))
