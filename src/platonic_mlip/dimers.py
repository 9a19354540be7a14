"""Dimer energy curves (Fig. 5c-e): an A-B pair scanned over distance with any ASE calculator.

The paper shows that after naive fine-tuning on Cu the Au-Au dimer of the fine-tuned model turns
repulsive while multi-head fine-tuning keeps its well. ``dimer_curve`` computes E(r) with any ASE
calculator (EMT as the offline reference; model calculators of the families), ``curve_features``
reads off the well (depth, position) and whether the curve is repulsive, and ``features_table`` makes
one row per (arm, pair) from a long table of curves (``curves_frame``).

Energies are binding energies: ``E_AB(r) - E_A - E_B``, the isolated atoms computed with the same
calculator in the same box (``relative=True``). Models differ in their per-element energy zero by
eV per atom (EMT vs DFT ~3-4 eV/atom), and a fine-tune may move the isolated-atom energy itself; the
binding energy removes both, so curves of different models and arms share one axis. The features do
not depend on this choice: the well depth is measured from ``e_inf``, the energy at the largest
distance of the grid (OURS), not from the isolated atoms.

Parameters not from the paper are OURS, with defaults where they are defined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

#: OURS: edge (A) of the cubic, non-periodic box of dimers and isolated atoms
DIMER_BOX = 20.0
#: OURS: distance grid (A) of the curves: 1.6 to 6.0 A every 0.05 A (89 points); 6 A lies beyond the
#: cutoff of EMT and of most MLIPs (5-6 A), so the last point is the dissociated pair
DIMER_GRID = tuple(np.round(np.linspace(1.6, 6.0, 89), 10).tolist())
#: OURS: a curve is repulsive when its minimum lies less than this (eV) below ``e_inf``
REPULSIVE_TOL = 0.05
#: OURS: a curve is monotonic when no step rises by more than this (eV) with distance
MONOTONIC_TOL = 1e-6

FEATURE_COLUMNS = (
    "n_points",
    "r_first",
    "r_last",
    "r_min",
    "e_min",
    "e_inf",
    "well_depth",
    "repulsive",
    "monotonic",
    "min_at_shortest",
)


def pair_name(symbol_a: str, symbol_b: str) -> str:
    """``"Au-Au"`` for ("Au", "Au"): the pair label of the tables."""
    return f"{symbol_a}-{symbol_b}"


def parse_pair(symbols) -> tuple[str, str]:
    """Two element symbols from ("Au", "Au") or "Au-Au"; ValueError for anything else."""
    from ase.data import atomic_numbers

    parts = symbols.split("-") if isinstance(symbols, str) else list(symbols)
    if len(parts) != 2 or any(p not in atomic_numbers for p in parts):
        raise ValueError(f"{symbols!r}: expected a pair of element symbols, e.g. ('Au', 'Au') or 'Au-Au'")
    return parts[0], parts[1]


def dimer(symbol_a: str, symbol_b: str, r: float, box: float = DIMER_BOX):
    """Atoms ``symbol_a`` and ``symbol_b`` ``r`` A apart along x, centred in a cubic box of edge ``box``
    (OURS 20 A), not periodic. ``0 < r <= box / 2`` (so that even a periodic copy keeps its images
    farther than ``r``)."""
    from ase import Atoms

    r = float(r)
    if not 0.0 < r <= box / 2:
        raise ValueError(f"dimer distance {r} A: must be > 0 and <= box/2 = {box / 2} A")
    c = box / 2
    positions = [[c - r / 2, c, c], [c + r / 2, c, c]]
    return Atoms([symbol_a, symbol_b], positions=positions, cell=[box] * 3, pbc=False)


def isolated_atom(symbol: str, box: float = DIMER_BOX):
    """One atom at the centre of a cubic box of edge ``box``, not periodic."""
    from ase import Atoms

    return Atoms([symbol], positions=[[box / 2] * 3], cell=[box] * 3, pbc=False)


def _calculator(calc):
    """An ASE calculator from ``calc``: a calculator, or a zero-argument factory returning one."""
    if hasattr(calc, "get_potential_energy") and not isinstance(calc, type):
        return calc
    if callable(calc):  # a class (EMT) or a function
        made = calc()
        if not hasattr(made, "get_potential_energy"):
            raise TypeError(f"calculator factory returned {type(made).__name__}, not an ASE calculator")
        return made
    raise TypeError(f"{type(calc).__name__} is neither an ASE calculator nor a factory of one")


def _energy(atoms, calc) -> float:
    atoms.calc = calc
    return float(atoms.get_potential_energy())


def dimer_curve(
    calc,
    symbols,
    distances: Sequence[float] = DIMER_GRID,
    box: float = DIMER_BOX,
    relative: bool = True,
) -> np.ndarray:
    """Energies (n,) eV of the dimer ``symbols`` at each of ``distances`` (n,) A.

    ``calc``: any ASE calculator, or a zero-argument factory of one (called once). ``relative``: the
    binding energy ``E_AB(r) - E_A - E_B`` with the isolated atoms in the same box (default; see the
    module docstring), else the raw ``E_AB(r)``. ``box`` OURS 20 A.
    """
    a, b = parse_pair(symbols)
    calc = _calculator(calc)
    r = np.asarray(distances, dtype=float)
    if r.ndim != 1 or len(r) == 0:
        raise ValueError("distances must be a non-empty 1-D sequence")
    e = np.array([_energy(dimer(a, b, x, box), calc) for x in r])
    if relative:
        e -= _energy(isolated_atom(a, box), calc) + _energy(isolated_atom(b, box), calc)
    return e


def _vertex(r3: np.ndarray, e3: np.ndarray) -> tuple[float, float] | None:
    """Minimum (r, e) of the parabola through three points, if it opens upward and lies between them."""
    c2, c1, c0 = np.polyfit(r3, e3, 2)
    if c2 <= 0:
        return None
    rv = -c1 / (2 * c2)
    if not r3[0] <= rv <= r3[2]:
        return None
    return float(rv), float(c0 + c1 * rv + c2 * rv * rv)


def curve_features(
    r: Sequence[float],
    e: Sequence[float],
    tol: float = REPULSIVE_TOL,
    monotonic_tol: float = MONOTONIC_TOL,
    refine: bool = True,
) -> dict:
    """The well of a dimer curve: r (n,) A, e (n,) eV (any order; sorted by r here; n >= 3).

    * ``e_inf``: the energy at the largest distance (OURS: the grid should reach past the cutoff);
    * ``r_min``, ``e_min``: the lowest point; with ``refine`` (OURS True) and an interior minimum, the
      vertex of the parabola through it and its two neighbours (error well below the grid spacing);
    * ``well_depth = e_inf - e_min`` (eV, >= 0 up to refinement);
    * ``repulsive``: ``well_depth <= tol`` (OURS 0.05 eV): no minimum below the dissociated pair;
    * ``monotonic``: the energy never rises with r by more than ``monotonic_tol`` (OURS 1e-6 eV);
    * ``min_at_shortest``: the lowest point is the shortest distance of the grid: the curve has no
      repulsive wall inside the grid (a collapsing pair), so ``r_min`` and ``well_depth`` are only
      bounds; such a curve is not flagged repulsive.

    Returns a dict with the keys of ``FEATURE_COLUMNS``.
    """
    r = np.asarray(r, dtype=float)
    e = np.asarray(e, dtype=float)
    if r.ndim != 1 or r.shape != e.shape or len(r) < 3:
        raise ValueError(f"r {r.shape} and e {e.shape}: need two 1-D arrays of the same length >= 3")
    if not (np.isfinite(r).all() and np.isfinite(e).all()):
        raise ValueError("r and e must be finite")
    order = np.argsort(r, kind="stable")
    r, e = r[order], e[order]
    if (np.diff(r) <= 0).any():
        raise ValueError("every distance must appear once")
    k = int(np.argmin(e))
    r_min, e_min = float(r[k]), float(e[k])
    if refine and 0 < k < len(r) - 1:
        vertex = _vertex(r[k - 1 : k + 2], e[k - 1 : k + 2])
        if vertex is not None:
            r_min, e_min = vertex
    e_inf = float(e[-1])
    depth = e_inf - e_min
    return {
        "n_points": len(r),
        "r_first": float(r[0]),
        "r_last": float(r[-1]),
        "r_min": r_min,
        "e_min": e_min,
        "e_inf": e_inf,
        "well_depth": depth,
        "repulsive": bool(depth <= tol),
        "monotonic": bool((np.diff(e) <= monotonic_tol).all()),
        "min_at_shortest": k == 0,
    }


def curves_frame(curves: Mapping[tuple[str, str], tuple[Sequence[float], Sequence[float]]]):
    """Long table (DataFrame: arm, pair, r, energy) of ``{(arm, pair): (r (n,), e (n,))}``."""
    import pandas as pd

    parts = []
    for (arm, pair), (r, e) in curves.items():
        r, e = np.asarray(r, dtype=float), np.asarray(e, dtype=float)
        if r.shape != e.shape or r.ndim != 1:
            raise ValueError(f"curve ({arm}, {pair}): r {r.shape} and e {e.shape} differ")
        parts.append(pd.DataFrame({"arm": arm, "pair": pair, "r": r, "energy": e}))
    if not parts:
        return pd.DataFrame(columns=["arm", "pair", "r", "energy"])
    return pd.concat(parts, ignore_index=True)


def features_table(curves, tol: float = REPULSIVE_TOL, refine: bool = True):
    """One row per (arm, pair): ``curve_features`` of each curve, in first-seen order.

    ``curves``: a long DataFrame (arm, pair, r, energy), or a mapping as for ``curves_frame``. Returns
    a DataFrame with columns arm, pair and ``FEATURE_COLUMNS``.
    """
    import pandas as pd

    frame = curves if isinstance(curves, pd.DataFrame) else curves_frame(curves)
    missing = {"arm", "pair", "r", "energy"} - set(frame.columns)
    if missing:
        raise ValueError(f"curve table lacks column(s) {', '.join(sorted(missing))}")
    rows = []
    for (arm, pair), group in frame.groupby(["arm", "pair"], sort=False):
        feats = curve_features(group["r"].to_numpy(), group["energy"].to_numpy(), tol=tol, refine=refine)
        rows.append({"arm": arm, "pair": pair, **feats})
    return pd.DataFrame(rows, columns=["arm", "pair", *FEATURE_COLUMNS])


def calculator_curves(
    calcs: Mapping[str, object | Callable],
    pairs: Sequence = (("Au", "Au"), ("Cu", "Cu")),
    distances: Sequence[float] = DIMER_GRID,
    box: float = DIMER_BOX,
):
    """Long curve table (arm, pair, r, energy) for every arm in ``calcs`` ({arm: calculator or
    factory}) and every pair in ``pairs`` (OURS Au-Au and Cu-Cu), binding energies on ``distances``."""
    curves = {}
    for arm, calc in calcs.items():
        calc = _calculator(calc)
        for pair in pairs:
            a, b = parse_pair(pair)
            curves[(arm, pair_name(a, b))] = (distances, dimer_curve(calc, (a, b), distances, box))
    return curves_frame(curves)
