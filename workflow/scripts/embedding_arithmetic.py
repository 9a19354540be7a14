"""Element analogies by embedding arithmetic, in every space of every model (protocol OURS; see
``platonic_mlip.arithmetic``).

Per model and space (raw, each Platonic space): element centroids (mean vector of the element's atoms;
elements with fewer than ``--min-atoms`` atoms, OURS 5, left out), the analogies "one period down the
same group" (A -> B) scored by leave-one-out offset + nearest-centroid retrieval, and a shuffled-label
baseline (``--shuffles`` permutations of the atoms' element labels, OURS 20, seeded by ``--seed``, the
same permutations for every model and space): its mean and central 95 % range; and the zero-offset
baseline (retrieval from A's own centroid: is B simply A's nearest other element?), which the arithmetic
must beat to add anything.

Cross-model transfer: the offset learned in model S's space, added to model T's centroid of the query's
source element, retrieved among T's centroids, for every ordered pair (S, T) and every space. In a
Platonic space the coordinates are shared (cosines to the same anchor atoms); raw spaces are compared only
where their widths are equal, else the row is NaN with the reason in ``note``.

Atoms: those every model embedded (``Spaces.valid``), so that every model has the same elements and
queries; the atoms left out (structures a model skipped) and the elements under ``--min-atoms`` are
counted in the main table (``n_atoms_skipped``, ``n_elements_left_out``) and in the log.

Outputs: ``--out-csv`` one row per model x space (model, label, trained, space, n_queries, accuracy,
shuffled_mean, shuffled_lo, shuffled_hi, zero_offset_accuracy, n_elements, n_elements_left_out, n_atoms,
n_atoms_skipped);
``--out-transfer`` one row per ordered model pair x space (source_model, target_model, space, n_queries,
accuracy, note; source = target is the model's own accuracy); ``--out-fig`` png/pdf: accuracy per model
and space with the shuffled band, and the transfer heatmap in the first Platonic space.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.arithmetic import (
    MIN_ATOMS,
    SHUFFLES,
    analogy_accuracy,
    analogy_pairs,
    element_centroids,
    permutations,
    shuffled_accuracies,
    summarise,
)
from platonic_mlip.checks import MatrixError
from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.spaces import RAW, add_space_arguments, read_spaces

TRANSFER_COLUMNS = ["source_model", "target_model", "space", "n_queries", "accuracy", "note"]


def space_title(space: str) -> str:
    from platonic_mlip.plotting import anchor_set_label

    return "raw" if space == RAW else f"Platonic ({anchor_set_label(space)})"


def transfer_rows(spaces, cents: dict, pairs) -> list[dict]:
    """Cross-model transfer accuracy for every space and ordered model pair."""
    rows = []
    for space in spaces.spaces:
        for s in spaces.models:
            for t in spaces.models:
                cs, ct = cents[(space, s)], cents[(space, t)]
                note = ""
                if cs.shape[1] != ct.shape[1]:
                    n, acc = 0, float("nan")
                    note = (
                        f"not computed: raw widths differ ({cs.shape[1]} vs {ct.shape[1]}), an offset of one "
                        "model cannot be added to the other's vectors"
                    )
                else:
                    n, acc, _ = analogy_accuracy(ct, pairs, offsets_from=cs)
                    if s == t:
                        note = "own space (the model's accuracy)"
                    elif space == RAW:
                        note = "raw coordinates of different models share no basis"
                rows.append(
                    dict(source_model=s, target_model=t, space=space, n_queries=n, accuracy=acc, note=note)
                )
    return rows


def figure(table: pd.DataFrame, transfer: pd.DataFrame, spaces, shuffles: int):
    from platonic_mlip.plotting import (
        MAX_WIDTH_IN,
        _annotate_cells,
        _controls_last,
        _mark_control_block,
        _plt,
    )

    plt = _plt()
    models = spaces.models
    order, n_trained = _controls_last([m in spaces.controls for m in models])
    models = [models[i] for i in order]
    labels = [spaces.label(m) for m in models]
    primary = spaces.spaces[1] if len(spaces.spaces) > 1 else RAW
    n = len(models)
    cell = min(0.45, 5.5 / max(n, 1))
    fig, (ax, hx) = plt.subplots(
        1,
        2,
        figsize=(min(MAX_WIDTH_IN, 0.22 * n * len(spaces.spaces) + 2.0 + cell * n + 3.0), cell * n + 3.2),
        width_ratios=[0.22 * n * len(spaces.spaces) + 1.0, cell * n + 1.0],
        layout="constrained",
    )
    width = 0.8 / len(spaces.spaces)
    x = np.arange(n)
    for k, space in enumerate(spaces.spaces):
        sel = table[table["space"] == space].set_index("model").loc[models]
        pos = x - 0.4 + width * (k + 0.5)
        ax.bar(pos, sel["accuracy"], width, color=f"C{k}", label=space_title(space))
        ax.vlines(pos, sel["shuffled_lo"], sel["shuffled_hi"], color="k", lw=1.2)
        ax.plot(pos, sel["shuffled_mean"], "k_", ms=5)
        ax.plot(pos, sel["zero_offset_accuracy"], "wD", ms=3.5, mec="k", mew=0.6)
    ax.plot([], [], "k_", ms=5, label=f"shuffled labels ({shuffles}x): mean, 95 % range")
    ax.plot([], [], "wD", ms=3.5, mec="k", mew=0.6, label="zero offset (B = nearest other element to A)")
    if 0 < n_trained < n:
        ax.axvline(n_trained - 0.5, color="k", lw=1.5)
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    for t in ax.get_xticklabels()[n_trained:]:
        t.set_color("0.35")
        t.set_fontstyle("italic")
    top = np.nanmax(table[["accuracy", "shuffled_hi", "zero_offset_accuracy"]].to_numpy(dtype=float))
    ax.set_ylim(0, min(1.05, (top if np.isfinite(top) else 0.7) + 0.35))
    ax.set_ylabel("analogy accuracy (nearest centroid = B)", fontsize=8)
    nq = int(table["n_queries"].max()) if len(table) else 0
    ax.set_title(f"A -> B one period down the same group ({nq} queries, leave-one-out offset)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right", framealpha=0.9, edgecolor="none")
    ax.tick_params(labelsize=7)

    sel = transfer[transfer["space"] == primary]
    pos = {m: i for i, m in enumerate(models)}
    mat = np.full((n, n), np.nan)
    for s, t, v in zip(sel["source_model"], sel["target_model"], sel["accuracy"], strict=True):
        mat[pos[s], pos[t]] = v
    im = hx.imshow(mat, vmin=0, vmax=1, cmap="viridis")
    hx.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=7)
    hx.set_yticks(range(n), labels, fontsize=7)
    hx.set_xlabel("target model (centroids, retrieval)", fontsize=8)
    hx.set_ylabel("source model (offset learned)", fontsize=8)
    _annotate_cells(hx, im, mat, fontsize=6 if n <= 12 else 5)
    _mark_control_block(hx, n_trained, n)
    hx.set_title(f"cross-model transfer, {space_title(primary)}\n(diagonal: own accuracy)", fontsize=9)
    fig.colorbar(im, ax=hx, shrink=0.8).set_label("analogy accuracy", fontsize=8)
    fig.suptitle("Embedding arithmetic: element analogies (ours)", fontsize=10)
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", required=True, help="atom table (atoms.csv)")
    add_space_arguments(ap)
    with contextlib.suppress(argparse.ArgumentError):  # unless the shared space arguments define it
        ap.add_argument("--dpi", type=int, default=150, help="resolution of the png figure")
    ap.add_argument("--shuffles", type=int, default=SHUFFLES, help="OURS: label permutations (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the permutations")
    ap.add_argument("--min-atoms", type=int, default=MIN_ATOMS, help="OURS: atoms per element (default 5)")
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-transfer", required=True)
    ap.add_argument("--out-fig", nargs="+", required=True, help="figure paths (png, pdf)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    atoms = pd.read_csv(args.atoms)
    ids = atoms["material_id"].astype(str).to_numpy()
    try:
        spaces = read_spaces(args, ids)
    except (MatrixError, ValueError) as err:
        raise SystemExit(f"ERROR: {err}") from None
    valid = spaces.valid()
    rows = np.flatnonzero(valid)
    numbers = atoms["Z"].to_numpy()[rows]
    skipped_structures = sorted(set(ids[~valid]))
    if skipped_structures:
        more = " ..." if len(skipped_structures) > 5 else ""
        print(
            f"{int((~valid).sum())} atoms of {len(skipped_structures)} structure(s) left out (a model "
            f"skipped them): {', '.join(skipped_structures[:5])}{more}"
        )
    elements_all, counts_all = np.unique(numbers, return_counts=True)
    few = elements_all[counts_all < args.min_atoms]
    if len(few):
        from ase.data import chemical_symbols

        print(
            f"{len(few)} element(s) with fewer than {args.min_atoms} atoms left out: "
            + " ".join(chemical_symbols[int(z)] for z in few)
        )
    perms = permutations(len(rows), args.shuffles, args.seed)
    out, cents, pairs = [], {}, None
    for space in spaces.spaces:
        for model in spaces.models:
            x = np.asarray(spaces.get(space, model)[rows], dtype=np.float64)
            elements, cent, _ = element_centroids(x, numbers, args.min_atoms)
            pairs = analogy_pairs(elements)
            cents[(space, model)] = cent
            n, acc, _ = analogy_accuracy(cent, pairs)
            mean, lo, hi = summarise(shuffled_accuracies(x, numbers, perms, args.min_atoms))
            out.append(
                dict(
                    model=model,
                    label=spaces.label(model),
                    trained=model not in spaces.controls,
                    space=space,
                    n_queries=n,
                    accuracy=acc,
                    shuffled_mean=mean,
                    shuffled_lo=lo,
                    shuffled_hi=hi,
                    zero_offset_accuracy=analogy_accuracy(cent, pairs, zero_offset=True)[1],
                    n_elements=len(elements),
                    n_elements_left_out=len(few),
                    n_atoms=len(rows),
                    n_atoms_skipped=int((~valid).sum()),
                )
            )
    table = pd.DataFrame(out)
    transfer = pd.DataFrame(transfer_rows(spaces, cents, pairs), columns=TRANSFER_COLUMNS)
    write_csv(args.out_csv, table)
    write_csv(args.out_transfer, transfer)
    from platonic_mlip.plotting import save

    save(figure(table, transfer, spaces, args.shuffles), *args.out_fig, dpi=args.dpi)
    print(
        f"{len(pairs)} analogy pairs over {len(pairs.elements)} elements, {len(spaces.models)} models x "
        f"{len(spaces.spaces)} spaces, {args.shuffles} shuffles: {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    run(main)
