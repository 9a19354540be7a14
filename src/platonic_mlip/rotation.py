"""Rotational sensitivity of embeddings (Fig. 5g): how far a rigid rotation of a structure moves them.

Paper (Fig. 5g): "rotational sensitivity test on BaCeO3: equivariant models preserve embeddings under
rotation; Orb-v3 models do not". An invariant per-atom embedding (the scalar channels of an
equivariant network, or a network on interatomic distances only) gives every atom of a rotated copy
the vector of the same atom of the unrotated copy, up to floating-point noise.

For one model and one space (raw, or a Platonic space), probe rows ``x`` aligned with the probe atom
table, and the space's embedding scale ``s`` (``spaces.pair_scale`` over the run's atoms: the RMS
distance between two different atoms), the deviation of atom ``i`` in the copy rotated by ``R`` is

    rel_dev = || x[i of the rotated copy] - x[i of the identity copy] || / s

and the atom's statistics over the rotation grid are its maximum and root mean square. A model is
called invariant on a set of parents (``BaCeO3`` or the run's structures, ``mp20``) when the largest
deviation of any atom stays within ``noise_tol`` (OURS, 1e-4: numerical noise only; float32
embeddings of an exactly invariant network deviate by ~1e-7 to 1e-6 of the scale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from platonic_mlip.probes import BACEO3

#: OURS: largest relative deviation that counts as numerical noise
NOISE_TOL = 1e-4
#: lower edge of the figure's log axis: exact zeros are drawn there
FLOOR = 1e-9
MP20 = "mp20"

DEVIATION_COLUMNS = (
    "parent",
    "parent_set",
    "material_id",
    "variant",
    "axis",
    "angle_deg",
    "atom_in_structure",
    "atom_index",
    "element",
    "rel_dev",
)
ATOM_COLUMNS = (
    "parent",
    "parent_set",
    "atom_in_structure",
    "element",
    "n_rotations",
    "max_rel_dev",
    "rms_rel_dev",
)


def parent_set(parent: str) -> str:
    """``"BaCeO3"`` for the BaCeO3 parent, ``"mp20"`` for a structure of the run."""
    return BACEO3 if parent == BACEO3 else MP20


def rotation_pairs(probe_table: pd.DataFrame) -> pd.DataFrame:
    """The rotated copies of the probe table, each with its identity copy.

    Returns one row per rotated copy: material_id, parent, variant, axis, angle_deg, n_atoms,
    atom_start, atom_stop, ref_id, ref_start (the identity copy's id and first atom). Raises
    ValueError when a parent has rotated copies but no identity copy, or a copy with another atom count.
    """
    rot = probe_table[probe_table["kind"] == "rotation"]
    ident = rot[rot["variant"] == "identity"].set_index("parent")
    if ident.index.duplicated().any():
        raise ValueError(
            f"probe table: parents with two identity copies: {ident.index[ident.index.duplicated()]}"
        )
    moved = rot[rot["variant"] != "identity"].copy()
    missing = sorted(set(moved["parent"]) - set(ident.index))
    if missing:
        raise ValueError(
            f"probe table: rotated copies of {missing[:5]} have no identity copy (the reference)"
        )
    moved["ref_id"] = ident.loc[moved["parent"], "material_id"].to_numpy()
    moved["ref_start"] = ident.loc[moved["parent"], "atom_start"].to_numpy()
    ref_n = ident.loc[moved["parent"], "n_atoms"].to_numpy()
    bad = moved["n_atoms"].to_numpy() != ref_n
    if bad.any():
        raise ValueError(
            f"probe table: {moved['material_id'][bad].iloc[0]} has another atom count than its identity copy"
        )
    return moved.reset_index(drop=True)


def rotation_deviations(
    x_probe: np.ndarray, probe_table: pd.DataFrame, scale: float, elements: Sequence[str] | None = None
) -> pd.DataFrame:
    """Relative deviation of every atom of every rotated copy from the same atom of its identity copy.

    Parameters
    ----------
    x_probe : (N_probe, D) rows of one model in one space, aligned with the probe atom table; rows of
        structures the model skipped are NaN.
    probe_table : the probe table (``probes.probe_table``; kind, variant, parent, atom_start, ...).
    scale : the space's embedding scale (> 0).
    elements : optional (N_probe,) element symbols of the probe atoms.

    Returns
    -------
    DataFrame, one row per (rotated copy, atom), columns ``DEVIATION_COLUMNS``; a copy whose rows or
    whose identity copy's rows are not all finite (skipped structures) is left out.
    """
    if not scale > 0:
        raise ValueError(f"rotation_deviations: embedding scale {scale} must be > 0")
    pairs = rotation_pairs(probe_table)
    frames = []
    for row in pairs.itertuples(index=False):
        n = int(row.n_atoms)
        v = np.asarray(x_probe[row.atom_start : row.atom_start + n], dtype=np.float64)  # (n, D)
        ref = np.asarray(x_probe[row.ref_start : row.ref_start + n], dtype=np.float64)  # (n, D)
        if not (np.isfinite(v).all() and np.isfinite(ref).all()):
            continue
        idx = np.arange(row.atom_start, row.atom_start + n)
        frames.append(
            pd.DataFrame(
                {
                    "parent": row.parent,
                    "parent_set": parent_set(row.parent),
                    "material_id": row.material_id,
                    "variant": row.variant,
                    "axis": row.axis,
                    "angle_deg": float(row.angle_deg),
                    "atom_in_structure": np.arange(n),
                    "atom_index": idx,
                    "element": np.asarray(elements)[idx] if elements is not None else "",
                    "rel_dev": np.linalg.norm(v - ref, axis=1) / scale,
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=list(DEVIATION_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(DEVIATION_COLUMNS)]


def per_atom(deviations: pd.DataFrame) -> pd.DataFrame:
    """Per (parent, atom): n_rotations, max_rel_dev and rms_rel_dev over its rotated copies.

    ``deviations`` from ``rotation_deviations``; returns columns ``ATOM_COLUMNS``.
    """
    if deviations.empty:
        return pd.DataFrame(columns=list(ATOM_COLUMNS))
    keys = ["parent", "parent_set", "atom_in_structure", "element"]
    g = deviations.groupby(keys, sort=False)["rel_dev"]
    out = pd.DataFrame(
        {
            "n_rotations": g.size(),
            "max_rel_dev": g.max(),
            "rms_rel_dev": g.apply(lambda d: float(np.sqrt(np.mean(np.square(d))))),
        }
    ).reset_index()
    return out[list(ATOM_COLUMNS)]


def verdict(max_dev: float, median_dev: float, noise_tol: float = NOISE_TOL) -> tuple[bool | None, str]:
    """(invariant, the verdict text) from the largest and the median per-atom maximum deviation."""
    if not np.isfinite(max_dev):
        return None, "not tested: every probe structure of this set was skipped"
    if max_dev <= noise_tol:
        return True, (
            f"invariant: rotations move embeddings by at most {max_dev:.1e} of the embedding scale "
            f"(numerical noise, <= {noise_tol:g})"
        )
    return False, (
        f"not invariant: rotations move embeddings by up to {max_dev:.2g} of the embedding scale "
        f"(median atom {median_dev:.2g}; noise tolerance {noise_tol:g})"
    )


SUMMARY_COLUMNS = (
    "parent_set",
    "n_parents",
    "n_atoms",
    "median_max_rel_dev",
    "max_max_rel_dev",
    "invariant",
    "verdict",
)


def summarise(atoms: pd.DataFrame, noise_tol: float = NOISE_TOL, sets: Sequence[str] = ()) -> pd.DataFrame:
    """Per parent set of one model's space: the median and maximum over atoms of max_rel_dev, the verdict.

    ``atoms`` : ``per_atom`` rows of one model and space. ``sets`` : parent sets to report even when
    untested (every structure of the set skipped: NaN, invariant None, "not tested"); sets present in
    ``atoms`` follow. Returns columns ``SUMMARY_COLUMNS``.
    """
    rows = []
    for pset in dict.fromkeys([*sets, *atoms["parent_set"]]):
        sel = atoms[atoms["parent_set"] == pset]
        mx = float(sel["max_rel_dev"].max()) if len(sel) else float("nan")
        med = float(sel["max_rel_dev"].median()) if len(sel) else float("nan")
        invariant, text = verdict(mx, med, noise_tol)
        rows.append(
            {
                "parent_set": pset,
                "n_parents": int(sel["parent"].nunique()),
                "n_atoms": len(sel),
                "median_max_rel_dev": med,
                "max_max_rel_dev": mx,
                "invariant": invariant,
                "verdict": text,
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def rotation_figure(
    deviations: Mapping[str, pd.DataFrame],
    titles: Mapping[str, str],
    spaces: Sequence[str],
    parent: str = BACEO3,
    noise_tol: float = NOISE_TOL,
    floor: float = FLOOR,
    ncols: int = 4,
    untrained: Sequence[str] = (),
):
    """One panel per model: rel_dev (log axis, values below ``floor`` drawn at it) against the angle,
    for every atom of ``parent`` and every axis; ``spaces[0]`` solid, ``spaces[1]`` (if any) dashed.

    ``deviations`` : {model: ``rotation_deviations`` rows of all its spaces, with a ``space`` column}.
    ``titles`` : {model: panel title}; ``untrained`` : models whose titles are greyed.
    """
    from platonic_mlip.plotting import _legend_in_spare_slot, _plt, anchor_set_label, grid_shape

    plt = _plt()
    models = list(deviations)
    nrows, ncols = grid_shape(max(len(models), 1), ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.3 * ncols, 2.8 * nrows + 0.6), squeeze=False, layout="constrained"
    )
    styles = dict(zip(spaces[:2], ("-", "--"), strict=False))
    markers = ("o", "^", "s", "D", "v", "P")
    handles: dict[str, object] = {}
    atoms_seen: dict[str, str] = {}
    axes_seen: dict[str, str] = {}
    shown = {m: d[(d["parent"] == parent) & d["space"].isin(list(styles))] for m, d in deviations.items()}
    values = [d["rel_dev"].to_numpy(dtype=np.float64) for d in shown.values() if len(d)]
    top = max([10 * noise_tol, *(2 * float(np.max(v)) for v in values)])
    angles = sorted({float(a) for d in shown.values() for a in d["angle_deg"]}) or [0.0, 180.0]
    for ax, model in zip(axes.flat, models, strict=False):
        d = shown[model]
        if d.empty:
            ax.text(
                0.5,
                0.5,
                f"{parent} not embedded\n(skipped: see the skip table)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8,
            )
        for (space, atom, axis), line in d.groupby(["space", "atom_in_structure", "axis"], sort=True):
            line = line.sort_values("angle_deg")
            name = f"{line['element'].iloc[0]}{atom}"
            colour = f"C{int(atom) % 10}"
            atoms_seen.setdefault(name, colour)
            axes_seen.setdefault(str(axis), markers[len(axes_seen) % len(markers)])
            ax.plot(
                line["angle_deg"],
                np.maximum(line["rel_dev"].to_numpy(dtype=np.float64), floor),
                ls=styles[space],
                marker=axes_seen[str(axis)],
                color=colour,
                ms=3,
                lw=1.0,
                alpha=0.8,
            )
        ax.axhline(noise_tol, color="0.3", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, top)
        ax.set_xlim(angles[0] - 5, angles[-1] + 5)
        ax.set_xlabel("rotation angle (degrees)", fontsize=8)
        ax.set_ylabel("||v_rot - v_id|| / embedding scale", fontsize=7)
        ax.set_title(
            titles.get(model, model),
            fontsize=9,
            color="0.35" if model in untrained else "k",
            style="italic" if model in untrained else "normal",
        )
        ax.tick_params(labelsize=7)
    line2d = plt.Line2D
    for name, colour in atoms_seen.items():
        handles[f"atom {name}"] = line2d([], [], color=colour, lw=1.5, label=f"atom {name}")
    for axis, marker in axes_seen.items():
        handles[f"axis {axis}"] = line2d([], [], color="0.3", marker=marker, ls="", label=f"axis ({axis})")
    for space, ls in styles.items():
        label = "raw embeddings" if space == "raw" else f"Platonic ({anchor_set_label(space)})"
        handles[label] = line2d([], [], color="k", ls=ls, label=label)
    handles["noise"] = line2d([], [], color="0.3", ls=":", label=f"noise tolerance {noise_tol:g}")
    _legend_in_spare_slot(fig, axes.flat, len(models), list(handles.values()), fontsize=7)
    fig.suptitle(
        f"Rotational sensitivity on {parent}: distance of each atom's embedding from the unrotated copy's\n"
        f"relative to the embedding scale (values below {floor:g} drawn at {floor:g})",
        fontsize=10,
    )
    return fig
