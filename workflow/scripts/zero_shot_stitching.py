"""Zero-shot model stitching: a readout fit on model A's vectors, applied unchanged to model B's, for
every ordered model pair and every space (protocol OURS; see ``platonic_mlip.stitching``).

Split by structure (``--test-fraction`` OURS 0.25, ``--seed`` 0; the same for every model and task);
only held-out structures are scored. Tasks:

* ``element_group`` (per atom): IUPAC group by logistic regression on standardised vectors, accuracy.
  f-block atoms have no group and are left out (counted in the log). The readout trains on a seeded
  subsample of ``--max-train-atoms`` (OURS 3000) training atoms, the same atoms for every model (speed);
  every held-out atom is scored.
* one task per ``--property-names`` column of ``--properties`` (OURS: formation_energy_per_atom,
  band_gap; the table from ``structure_properties.py``), per structure: ridge regression (RidgeCV) on the
  mean of the structure's atom vectors, R^2. Structures without a finite value are left out. A property
  the table lacks, or with too few values to fit and score (``MIN_STRUCTURES``), is a row of the table
  with empty space and models, NaN scores and the reason in ``note``.

Per task, space and ordered pair (source A, target B): ``score_transfer`` A's readout on B's held-out
vectors; ``score_transfer_target_scaled`` the same with A's standardisation replaced by B's own
(label-free: mean and standard deviation of B's training vectors); ``score_own`` B's readout on B's;
``score_baseline`` the constant readout (A's majority group / mean property) on B's held-out labels. Raw
spaces only where the widths are equal; else NaN and the reason in ``note``. Atoms (structures) a model
skipped are left out of that model's training and held-out sets: ``n_skipped_source`` /
``n_skipped_target`` count them (atoms for the atom task, structures for the others).

Output: ``--out-csv`` (task, space, source_model, target_model, source_label, target_label, n_train,
n_test, score_transfer, score_transfer_target_scaled, score_own, score_baseline, metric,
n_skipped_source, n_skipped_target, note); ``--out-fig`` png/pdf: per task, the transfer score in the
first Platonic space (rows source, columns target; diagonal = own), and the median scores by
trained/untrained source and target.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.checks import MatrixError
from platonic_mlip.chemistry import group_of
from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.spaces import RAW, add_space_arguments, read_spaces
from platonic_mlip.stitching import (
    CLASSIFY,
    MAX_ITER,
    MAX_TRAIN_ATOMS,
    METRICS,
    REGRESS,
    TEST_FRACTION,
    Split,
    atom_split,
    pool,
    split_structures,
    stitch,
)

ATOM_TASK = "element_group"
#: OURS: properties scored by default (config diagnostics.stitching.properties)
PROPERTIES = ("formation_energy_per_atom", "band_gap")
#: a property task needs at least this many training and 2 held-out structures with a value
MIN_STRUCTURES = 10
COLUMNS = [
    "task",
    "space",
    "source_model",
    "target_model",
    "source_label",
    "target_label",
    "n_train",
    "n_test",
    "score_transfer",
    "score_transfer_target_scaled",
    "score_own",
    "score_baseline",
    "metric",
    "n_skipped_source",
    "n_skipped_target",
    "note",
]


def structure_ids(atoms: pd.DataFrame) -> list[str]:
    """material_id of every structure, by structure_index (0..S-1)."""
    first = atoms.drop_duplicates("structure_index").sort_values("structure_index")
    if not np.array_equal(first["structure_index"].to_numpy(), np.arange(len(first))):
        raise SystemExit("ERROR: atom table: structure_index is not 0..S-1")
    return first["material_id"].astype(str).tolist()


def read_properties(path: str, ids: list[str]) -> pd.DataFrame:
    """The property table indexed by the run's material_ids (rows it lacks are NaN)."""
    table = pd.read_csv(path, dtype={"material_id": str}, encoding="utf-8-sig")
    if "material_id" not in table.columns:
        raise SystemExit(f"ERROR: {path}: no material_id column (found {', '.join(table.columns)})")
    table = table.drop_duplicates("material_id").set_index("material_id")
    missing = len(set(ids) - set(table.index))
    if missing:
        print(f"{path}: {missing} structure(s) of the run have no row (their properties are NaN)")
    return table.reindex(ids)


def skipped_row(task: str, metric: str, reason: str) -> dict:
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        task=task,
        metric=metric,
        n_train=0,
        n_test=0,
        score_transfer=np.nan,
        score_transfer_target_scaled=np.nan,
        score_own=np.nan,
        score_baseline=np.nan,
        n_skipped_source=0,
        n_skipped_target=0,
        note=f"skipped: {reason}",
    )
    return row


def run_task(task, kind, spaces, features, train, test, y, skipped, max_iter) -> list[dict]:
    """Rows of one task in every space. ``features(space, model)`` -> (n, D) rows of the task's items
    (atoms or structures); ``train``/``test`` item indices; ``y`` labels of all items; ``skipped[model]``
    bool per item."""
    out = []
    for space in spaces.spaces:
        data, n_skip = {}, {}
        for m in spaces.models:
            x = features(space, m)
            tr, te = train[~skipped[m][train]], test[~skipped[m][test]]
            data[m] = Split(x[tr], y[tr], x[te], y[te])
            n_skip[m] = (int(skipped[m][train].sum()), int(skipped[m][test].sum()))
        for r in stitch(kind, data, max_iter=max_iter):
            s, t = r["source"], r["target"]
            out.append(
                dict(
                    task=task,
                    space=space,
                    source_model=s,
                    target_model=t,
                    source_label=spaces.label(s),
                    target_label=spaces.label(t),
                    n_train=r["n_train"],
                    n_test=r["n_test"],
                    score_transfer=r["score_transfer"],
                    score_transfer_target_scaled=r["score_transfer_target_scaled"],
                    score_own=r["score_own"],
                    score_baseline=r["score_baseline"],
                    metric=METRICS[kind],
                    n_skipped_source=n_skip[s][0],
                    n_skipped_target=n_skip[t][1],
                    note=r["note"],
                )
            )
    return out


def summary(table: pd.DataFrame, controls, space: str) -> pd.DataFrame:
    """Median transfer scores per task by (trained/untrained source -> target), off-diagonal pairs only,
    with the median own and baseline scores of the targets (medians: a failed regression transfer has an
    unbounded negative R^2)."""
    sel = table[(table["space"] == space) & (table["source_model"] != table["target_model"])].copy()
    kind = {True: "untrained", False: "trained"}
    sel["pair"] = [
        f"{kind[s in controls]} -> {kind[t in controls]}"
        for s, t in zip(sel["source_model"], sel["target_model"], strict=True)
    ]
    return sel.groupby(["task", "pair"], sort=True).agg(
        transfer=("score_transfer", "median"),
        target_scaled=("score_transfer_target_scaled", "median"),
        own=("score_own", "median"),
        baseline=("score_baseline", "median"),
    )


def annotate(ax, im, mat: np.ndarray, fontsize: float = 5) -> None:
    """Each finite value on its cell (values below -1, a failed regression transfer, as "<-1")."""
    for i, j in zip(*np.nonzero(np.isfinite(mat)), strict=True):
        v = mat[i, j]
        shade = im.cmap(im.norm(v))
        light = v < im.norm.vmin or 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] > 0.55
        text = f"{v:.2f}" if v >= -1 else "<-1"
        ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color="k" if light else "w")


def figure(table: pd.DataFrame, spaces, skipped_tasks: list[str]):
    from platonic_mlip.plotting import (
        MAX_WIDTH_IN,
        _controls_last,
        _mark_control_block,
        _plt,
        anchor_set_label,
        grid_shape,
    )

    plt = _plt()
    primary = spaces.spaces[1] if len(spaces.spaces) > 1 else RAW
    title = "raw" if primary == RAW else f"Platonic ({anchor_set_label(primary)})"
    models = spaces.models
    order, n_trained = _controls_last([m in spaces.controls for m in models])
    models = [models[i] for i in order]
    labels = [spaces.label(m) for m in models]
    tasks = [t for t in dict.fromkeys(table["task"]) if t not in skipped_tasks]
    n = len(models)
    nrows, ncols = grid_shape(len(tasks) + 1, 2)
    cell = min(0.42, (MAX_WIDTH_IN / ncols - 2.8) / max(n, 1))
    side = cell * n + 2.8
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(side * ncols, (side + 0.3) * nrows), squeeze=False, layout="constrained"
    )
    cmap = plt.get_cmap("viridis").with_extremes(under="0.85")
    pos = {m: i for i, m in enumerate(models)}
    im = None
    for ax, task in zip(axes.flat, tasks, strict=False):
        sel = table[(table["task"] == task) & (table["space"] == primary)]
        mat = np.full((n, n), np.nan)
        for s, t, v in zip(sel["source_model"], sel["target_model"], sel["score_transfer"], strict=True):
            mat[pos[s], pos[t]] = v
        im = ax.imshow(mat, vmin=0, vmax=1, cmap=cmap)
        ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=6)
        ax.set_yticks(range(n), labels, fontsize=6)
        annotate(ax, im, mat, fontsize=5 if n > 8 else 6)
        _mark_control_block(ax, n_trained, n)
        metric = sel["metric"].iloc[0] if len(sel) else ""
        base = sel["score_baseline"].mean() if len(sel) else np.nan
        ax.set_title(f"{task} ({metric}; constant readout {base:.2f})", fontsize=8)
        ax.set_xlabel("target model (held-out vectors)", fontsize=7)
        ax.set_ylabel("source model (readout fit)", fontsize=7)
    spare = list(axes.flat)[len(tasks) :]
    for ax in spare:
        ax.axis("off")
    if spare:
        lines = [
            f"median over off-diagonal pairs, {title}:",
            "transfer | target-scaled transfer | own | constant",
        ]
        for task, sub in summary(table, spaces.controls, primary).groupby(level=0, sort=False):
            lines.append(f"{task}:")
            for (_, pair), r in sub.iterrows():
                lines.append(
                    f"  {pair:22s} {r['transfer']:7.2f} {r['target_scaled']:7.2f} {r['own']:5.2f} "
                    f"{r['baseline']:5.2f}"
                )
        lines += [f"skipped: {t}" for t in skipped_tasks]
        spare[0].text(0, 1, "\n".join(lines), va="top", ha="left", fontsize=7, family="monospace")
    if im is not None:
        cbar = fig.colorbar(im, ax=list(axes.flat[: len(tasks)]), shrink=0.6, extend="min")
        cbar.set_label(
            'score of the source\'s readout on the target\n(accuracy or R^2; grey: < 0, "<-1": R^2 below -1)',
            fontsize=7,
        )
    fig.suptitle(
        f"Zero-shot stitching (ours): a readout fit on one model's {title} vectors, applied to another's\n"
        "held-out structures only; diagonal = the model's own readout",
        fontsize=9,
    )
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", required=True, help="atom table (atoms.csv)")
    ap.add_argument("--structures", help="structures.npz: checked to list the atom table's structures")
    ap.add_argument("--properties", required=True, help="properties.csv (structure_properties.py)")
    add_space_arguments(ap)
    with contextlib.suppress(argparse.ArgumentError):  # unless the shared space arguments define it
        ap.add_argument("--dpi", type=int, default=150, help="resolution of the png figure")
    ap.add_argument("--property-names", nargs="*", default=list(PROPERTIES), help="OURS: structure tasks")
    ap.add_argument("--test-fraction", type=float, default=TEST_FRACTION, help="OURS: held-out structures")
    ap.add_argument("--seed", type=int, default=0, help="seed of the split and the atom subsample")
    ap.add_argument(
        "--max-train-atoms", type=int, default=MAX_TRAIN_ATOMS, help="OURS: training atoms of the atom task"
    )
    ap.add_argument("--max-iter", type=int, default=MAX_ITER, help="OURS: logistic regression iterations")
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-fig", nargs="+", required=True, help="figure paths (png, pdf)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    atoms = pd.read_csv(args.atoms)
    ids = atoms["material_id"].astype(str).to_numpy()
    sids = structure_ids(atoms)
    if args.structures:
        with np.load(args.structures) as z:
            npz_ids = [str(m) for m in z["material_ids"]]
        if npz_ids != sids:
            raise SystemExit(
                f"ERROR: {args.structures} lists {len(npz_ids)} structures that are not the {len(sids)} "
                f"structures of {args.atoms} in the same order"
            )
    try:
        spaces = read_spaces(args, ids)
    except (MatrixError, ValueError) as err:
        raise SystemExit(f"ERROR: {err}") from None
    sidx = atoms["structure_index"].to_numpy()
    n_struct = len(sids)
    test_struct = split_structures(n_struct, args.test_fraction, args.seed)
    rows: list[dict] = []

    # per atom: element group
    groups = np.array([group_of(int(z)) or 0 for z in atoms["Z"]])
    labelled = groups > 0
    print(f"{int((~labelled).sum())} f-block atoms (no group) left out of {ATOM_TASK}")
    train, test = atom_split(sidx, test_struct, labelled, args.max_train_atoms, args.seed)
    cache: dict = {}

    def atom_features(space, model):
        return np.asarray(spaces.get(space, model), dtype=np.float64)

    rows += run_task(
        ATOM_TASK, CLASSIFY, spaces, atom_features, train, test, groups, spaces.skipped, args.max_iter
    )

    # per structure: properties from mean-pooled vectors
    props = read_properties(args.properties, sids)
    struct_skipped = {
        m: np.bincount(sidx, weights=spaces.skipped[m], minlength=n_struct) > 0 for m in spaces.models
    }

    def pooled(space, model):
        if (space, model) not in cache:
            cache[(space, model)] = pool(spaces.get(space, model), sidx, n_struct)
        return cache[(space, model)]

    skipped_tasks = []
    for prop in args.property_names:
        reason = None
        if prop not in props.columns:
            reason = f"{args.properties} has no column {prop}"
        else:
            y = pd.to_numeric(props[prop], errors="coerce").to_numpy(dtype=np.float64)
            finite = np.isfinite(y)
            train_s = np.flatnonzero(finite & ~test_struct)
            test_s = np.flatnonzero(finite & test_struct)
            if len(train_s) < MIN_STRUCTURES or len(test_s) < 2:
                reason = (
                    f"{prop}: {len(train_s)} training / {len(test_s)} held-out structures with a value "
                    f"(need {MIN_STRUCTURES} / 2)"
                )
            elif (~finite).any():
                print(f"{prop}: {int((~finite).sum())} structure(s) without a value left out")
        if reason:
            print(f"task {prop} skipped: {reason}")
            skipped_tasks.append(prop)
            rows.append(skipped_row(prop, METRICS[REGRESS], reason))
            continue
        rows += run_task(prop, REGRESS, spaces, pooled, train_s, test_s, y, struct_skipped, args.max_iter)

    table = pd.DataFrame(rows, columns=COLUMNS)
    write_csv(args.out_csv, table)
    from platonic_mlip.plotting import save

    save(figure(table, spaces, skipped_tasks), *args.out_fig, dpi=args.dpi)
    primary = spaces.spaces[1] if len(spaces.spaces) > 1 else RAW
    with pd.option_context("display.width", 200, "display.max_columns", 10, "display.precision", 3):
        print(summary(table[table["metric"] != ""], spaces.controls, primary))
    print(
        f"{n_struct} structures ({int(test_struct.sum())} held out), {len(train)} training / {len(test)} "
        f"held-out atoms, {len(spaces.models)} models x {len(spaces.spaces)} spaces: "
        f"{time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    run(main)
