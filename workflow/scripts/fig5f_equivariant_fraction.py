"""Paper Fig. 5f: the equivariant fraction of the embeddings (two-nearest-neighbour analysis), per model and
space (raw and every Platonic space).

Protocol (OURS where the paper is silent; ``platonic_mlip.symmetry``): spglib's symmetry-equivalent atoms
(``--symprec``, default 0.01 A) of every structure; the fraction of equivalent pairs whose embeddings
coincide (distance <= ``--coincide-tol`` x the embedding scale, default 1e-4; the scale is
``spaces.pair_scale`` over the model's embedded atoms, ``--scale-pairs`` random pairs, ``--seed``), the
median equivalent-pair distance relative to the scale, the two-NN collapse fraction (atoms whose nearest
other atom of the subset lies within the same tolerance) and the TwoNN intrinsic dimension of the
de-duplicated rows (rows within the tolerance merged; ``twonn_points`` unique rows; NaN below 10).

Subsets: ``sg<N>`` = the structures whose space group is in ``--spacegroups`` (default 221, as in the
paper; the atom table's ``spacegroup`` column, spglib's number where it is -1) and, OURS, ``all`` = every
structure of the run; structures spglib cannot analyse are in neither. The equivalent pairs use every
atom of the subset. The neighbour analysis (collapse fraction, TwoNN; quadratic in the atoms) of a subset
with more than ``--max-atoms`` atoms (OURS, default 5000; 0 = all) runs on a random sample of whole
structures within that budget (``--seed``), the same for every model and space (``neighbour_atoms``).

Outputs:

- ``--out-csv``: one row per subset x model x space: subset, model, label, trained, space, n_structures,
  n_atoms (atoms used: the model's skipped atoms excluded), n_atoms_skipped (the subset's atoms the
  model's embedding job skipped), n_equivalent_pairs, equivariant_fraction, median_pair_distance_rel,
  neighbour_atoms (atoms of the neighbour analysis), collapse_fraction, twonn_dimension, twonn_points,
  scale.
- ``--out-skipped``: material_id, reason: structures spglib cannot analyse (left out of every subset and
  model) and structures a model's embedding job skipped (left out for that model; the reason names it).
- ``--out-fig``: per model, raw vs the first Platonic space: equivariant fraction and collapse fraction
  of the space-group subset, TwoNN dimension of both subsets; untrained controls marked.
"""

from __future__ import annotations

import argparse

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.plotting import _plt, anchor_set_label, save
from platonic_mlip.spaces import RAW, add_space_arguments, pair_scale, read_spaces
from platonic_mlip.structures import load_structures
from platonic_mlip.symmetry import (
    DEFAULT_COINCIDE_TOL,
    DEFAULT_SYMPREC,
    equivalent_pairs,
    sample_structures,
    space_diagnostics,
    structure_orbits,
)

COLUMNS = [
    "subset",
    "model",
    "label",
    "trained",
    "space",
    "n_structures",
    "n_atoms",
    "n_atoms_skipped",
    "n_equivalent_pairs",
    "equivariant_fraction",
    "median_pair_distance_rel",
    "neighbour_atoms",
    "collapse_fraction",
    "twonn_dimension",
    "twonn_points",
    "scale",
]
ALL = "all"
#: OURS: atoms of the neighbour analysis (collapse fraction, TwoNN) of one subset; larger ones are sampled
DEFAULT_MAX_ATOMS = 5000


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The docstring as written, and every option's default."""


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=_Formatter)
    ap.add_argument("--structures", required=True, help="structures.npz of the run")
    ap.add_argument("--atoms", required=True, help="atoms.csv of the run")
    add_space_arguments(ap)
    ap.add_argument("--symprec", type=float, default=DEFAULT_SYMPREC, help="spglib tolerance, A (OURS)")
    ap.add_argument(
        "--coincide-tol",
        type=float,
        default=DEFAULT_COINCIDE_TOL,
        help="two embeddings coincide within this fraction of the embedding scale (OURS)",
    )
    ap.add_argument("--spacegroups", type=int, nargs="+", default=[221], help="space groups of the subset")
    ap.add_argument("--scale-pairs", type=int, default=20000, help="random atom pairs of the embedding scale")
    ap.add_argument(
        "--max-atoms",
        type=int,
        default=DEFAULT_MAX_ATOMS,
        help="collapse fraction and TwoNN of a larger subset on a random sample of whole structures "
        "holding at most this many atoms; 0 = all (OURS)",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the scale's pairs and of the sample")
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-skipped", required=True)
    ap.add_argument("--out-fig", nargs="+", required=True, help="figure paths (png, pdf)")
    return ap.parse_args(argv)


def read_run(structures_path, atoms_path):
    """(atoms_list, material_ids, atom table), checked against each other."""
    atoms_list, ids = load_structures(structures_path)
    table = pd.read_csv(atoms_path)
    n = np.array([len(a) for a in atoms_list])
    if len(table) != int(n.sum()):
        raise SystemExit(
            f"ERROR: {atoms_path} has {len(table)} atoms but {structures_path} has {int(n.sum())}: "
            "they are not of the same run"
        )
    flat_ids = np.repeat(np.asarray(ids, dtype=object), n)
    if not np.array_equal(table["material_id"].astype(str).to_numpy(), flat_ids.astype(str)):
        raise SystemExit(f"ERROR: {atoms_path} and {structures_path} list different structures")
    return atoms_list, ids, table


def structure_spacegroups(table, n_structures: int, spglib_numbers: np.ndarray) -> np.ndarray:
    """(S,) space group per structure: the atom table's, spglib's where the table has -1."""
    per = table.groupby("structure_index")["spacegroup"].first().reindex(range(n_structures), fill_value=-1)
    groups = per.to_numpy(dtype=np.int64)
    return np.where(groups < 0, spglib_numbers, groups)


def subset_name(spacegroups) -> str:
    return "sg" + "+".join(str(g) for g in spacegroups)


def diagnose(spaces, structure_of_atom, subsets, orbits, scale_pairs, seed, coincide_tol, max_atoms=0):
    """Table rows: every subset x model x space (see the module docstring).

    structure_of_atom : (N,) structure index of every atom; subsets : {name: (S,) bool structures};
    orbits : (N,) run-wide orbit ids (-1: none). The neighbour sample of each subset is drawn once (whole
    structures, ``max_atoms``, ``seed``) and shared by every model and space.
    """
    pairs = equivalent_pairs(orbits)
    n_atoms = np.bincount(structure_of_atom, minlength=len(next(iter(subsets.values()))))
    samples = {name: sample_structures(n_atoms, chosen, max_atoms, seed) for name, chosen in subsets.items()}
    pair_structure = structure_of_atom[pairs[:, 0]]
    rows = []
    for model in spaces.models:
        skipped = spaces.skipped[model]
        valid = np.flatnonzero(~skipped)
        for space in spaces.spaces:
            x_all = spaces.get(space, model)
            scale = pair_scale(x_all, valid, scale_pairs, seed)
            for name, in_subset in subsets.items():
                atom_in = in_subset[structure_of_atom]
                use = np.flatnonzero(atom_in & ~skipped)
                local = np.full(len(structure_of_atom), -1, dtype=np.int64)
                local[use] = np.arange(len(use))
                p = local[pairs[in_subset[pair_structure]]]
                p = p[(p >= 0).all(axis=1)]
                x = np.asarray(x_all[use], dtype=np.float64)
                sample = np.flatnonzero(samples[name][structure_of_atom[use]])
                rows.append(
                    {
                        "subset": name,
                        "model": model,
                        "label": spaces.label(model),
                        "trained": model not in spaces.controls,
                        "space": space,
                        "n_structures": len(np.unique(structure_of_atom[use])),
                        "n_atoms": len(use),
                        "n_atoms_skipped": int(np.sum(atom_in & skipped)),
                        **space_diagnostics(x, p, scale, coincide_tol, sample),
                        "scale": scale,
                    }
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def model_skips(spaces, structure_of_atom, ids):
    """[(material_id, reason)] of the structures each model's embedding job skipped."""
    out = []
    for model in spaces.models:
        for s in np.unique(structure_of_atom[spaces.skipped[model]]):
            out.append(
                (
                    ids[s],
                    f"not embedded by model {model} (its embedding job skipped it): left out for that model",
                )
            )
    return out


def figure(table, spaces, first_subset: str):
    """Bars per model: raw vs the first Platonic space, for the four Fig. 5f numbers."""
    plt = _plt()
    shown = [RAW] + spaces.spaces[1:2]
    order = [m for m in spaces.models if m not in spaces.controls] + [
        m for m in spaces.models if m in spaces.controls
    ]
    panels = [
        ("equivariant_fraction", first_subset, "equivariant fraction\n(equivalent pairs that coincide)"),
        ("collapse_fraction", first_subset, "two-NN collapse fraction\n(nearest atom at distance 0)"),
        ("twonn_dimension", first_subset, "TwoNN intrinsic dimension"),
        ("twonn_dimension", ALL, "TwoNN intrinsic dimension"),
    ]
    width = max(7.0, 0.55 * len(order) * 2 + 1.5)
    fig, axes = plt.subplots(2, 2, figsize=(width, 7.5), squeeze=False, layout="constrained")
    pos = np.arange(len(order))
    w = 0.8 / len(shown)
    for ax, (col, subset, ylabel) in zip(axes.flat, panels, strict=True):
        part = table[table["subset"] == subset].set_index(["model", "space"])
        for k, space in enumerate(shown):
            vals = [part[col].get((m, space), np.nan) for m in order]
            name = "raw embeddings" if space == RAW else f"Platonic ({anchor_set_label(space)} anchors)"
            x = pos + (k - (len(shown) - 1) / 2) * w
            ax.bar(x, vals, w, color=f"C{k}", label=name)
            for xi, v in zip(x, vals, strict=True):  # a zero or missing bar is still visible
                if not np.isfinite(v) or v == 0:
                    ax.text(xi, 0, "n/a" if not np.isfinite(v) else "0", ha="center", va="bottom", fontsize=5)
        n_struct = int(part["n_structures"].max()) if len(part) else 0
        title = f"{subset}: {n_struct} structures"
        if col != "equivariant_fraction" and len(part):
            n_used, n_all = int(part["neighbour_atoms"].max()), int(part["n_atoms"].max())
            title += f", {n_all} atoms" if n_used == n_all else f", {n_used} of {n_all} atoms (sampled)"
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xticks(pos, [spaces.label(m) for m in order], rotation=60, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        if col != "twonn_dimension":
            ax.set_ylim(0, 1.05)
        n_trained = sum(m not in spaces.controls for m in order)
        if 0 < n_trained < len(order):
            ax.axvline(n_trained - 0.5, color="k", lw=1.0)
            for t in ax.get_xticklabels()[n_trained:]:
                t.set_color("0.35")
                t.set_fontstyle("italic")
        if not len(part) or n_struct == 0:
            ax.text(0.5, 0.5, "no structures", transform=ax.transAxes, ha="center", va="center")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(shown), fontsize=8, frameon=False)
    fig.suptitle("Fig. 5f: do symmetry-equivalent atoms get the same embedding?", fontsize=10)
    return fig


def main(argv=None):
    args = parse_args(argv)
    atoms_list, ids, table = read_run(args.structures, args.atoms)
    n = np.array([len(a) for a in atoms_list])
    structure_of_atom = np.repeat(np.arange(len(atoms_list)), n)
    orbits, sg_spglib, sym_skipped = structure_orbits(atoms_list, ids, args.symprec)
    analysed = sg_spglib >= 0
    groups = structure_spacegroups(table, len(atoms_list), sg_spglib)
    subsets = {
        subset_name(args.spacegroups): analysed & np.isin(groups, args.spacegroups),
        ALL: analysed,
    }
    spaces = read_spaces(args, table["material_id"].astype(str).to_numpy())
    result = diagnose(
        spaces,
        structure_of_atom,
        subsets,
        orbits,
        args.scale_pairs,
        args.seed,
        args.coincide_tol,
        args.max_atoms,
    )
    skipped = pd.DataFrame(
        sym_skipped + model_skips(spaces, structure_of_atom, ids), columns=["material_id", "reason"]
    )
    write_csv(args.out_csv, result)
    write_csv(args.out_skipped, skipped)
    save(figure(result, spaces, subset_name(args.spacegroups)), *args.out_fig, dpi=args.dpi)
    print(
        f"fig5f: {len(atoms_list)} structures ({len(sym_skipped)} without symmetry), "
        f"{int(subsets[subset_name(args.spacegroups)].sum())} in {subset_name(args.spacegroups)}; "
        f"{len(result)} rows -> {args.out_csv}"
    )


if __name__ == "__main__":
    run(main)
