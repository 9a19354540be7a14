"""Atypical structures from the shared space (OURS): k-NN distance to the run's reference atoms, proved on
perturbed probe copies.

Protocol (``platonic_mlip.atypical``): a structure's score in a model's space is the mean over its atoms
of the mean distance to the ``--knn-k`` nearest reference atoms (the run's atoms outside
``--holdout``; its own structure's atoms excluded), divided by the space's embedding scale. The
perturbed probe copies of the held-out structures must score above the held-out originals: ROC AUC and
paired win rate per model, space and perturbation. Parameters not in the paper, all OURS:
``--knn-k 5``, ``--top 20``, ``--scale-pairs 20000``, ``--seed 0``.

Outputs
-------
--out-auc       model, label, trained, space, perturbation, n_positive, n_negative, auc, win_rate,
                auc_parents (the AUC of the copies' own originals: what ``auc`` would be if the
                perturbation changed nothing)
--out-top       per model, the ``--top`` most atypical run structures in the raw space and the first
                Platonic space: model, label, trained, space, rank, material_id, kind, score, n_atoms,
                formula (Hill formula of the cell, from the atom table), n_models_top, n_trained_top
                (consensus: in how many models' top lists it is, of all models / of the trained ones)
--out-scores    every scored structure: model, space, material_id, kind (run / holdout / perturbed),
                variant, parent, score
--out-skipped   model, material_id, kind, reason: every structure a model did not score (its embedding
                job skipped it: NaN rows) -- held-out originals and perturbed copies left out of the AUC
                -- and a model whose reference set is too small (material_id empty)
--out-fig       AUC heatmaps (models x perturbations), raw and the first Platonic space; 0.5 = chance
"""

from __future__ import annotations

import argparse
import json
import time

import _paths  # noqa: F401
import numpy as np
import pandas as pd

from platonic_mlip.atypical import (
    HOLDOUT,
    PERTURBATION,
    PERTURBED,
    RUN,
    auc_table,
    hill_formula,
    space_atom_scores,
    structure_scores,
    top_table,
)
from platonic_mlip.cli import run
from platonic_mlip.io import write_csv
from platonic_mlip.plotting import save
from platonic_mlip.spaces import RAW, add_space_arguments, pair_scale, read_spaces

SCORE_COLUMNS = ["model", "space", "material_id", "kind", "variant", "parent", "score"]
SKIPPED_COLUMNS = ["model", "material_id", "kind", "reason"]


def read_table(path: str, columns: list[str], what: str) -> pd.DataFrame:
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SystemExit(f"ERROR: {path} ({what}): missing column(s) {missing}")
    return table


def run_structures(atoms: pd.DataFrame, path: str) -> pd.DataFrame:
    """One row per run structure (in structure_index order): structure_index, material_id, atom_start,
    atom_stop, n_atoms, formula. Each structure's atoms must be consecutive rows."""
    atoms = atoms.assign(row=np.arange(len(atoms)))
    g = atoms.groupby("structure_index", sort=True)
    table = pd.DataFrame(
        {
            "material_id": g["material_id"].first().astype(str),
            "atom_start": g["row"].min(),
            "atom_stop": g["row"].max() + 1,
            "n_atoms": g.size(),
            "formula": g["element"].agg(lambda e: hill_formula(list(e))),
        }
    ).reset_index()
    if ((table["atom_stop"] - table["atom_start"]) != table["n_atoms"]).any():
        raise SystemExit(f"ERROR: {path}: the atoms of a structure are not consecutive rows")
    if table["material_id"].duplicated().any():
        dup = table.loc[table["material_id"].duplicated(), "material_id"].iloc[0]
        raise SystemExit(f"ERROR: {path}: material_id {dup} names two structures")
    return table


def perturbation_probes(probes: pd.DataFrame, probe_atoms: pd.DataFrame, args) -> pd.DataFrame:
    """The perturbation rows of the probe table, checked against the probe atom table."""
    ids = probe_atoms["material_id"].to_numpy()
    for row in probes.itertuples():
        rows = ids[int(row.atom_start) : int(row.atom_stop)]
        if int(row.atom_stop) > len(ids) or len(rows) != int(row.n_atoms) or (rows != row.material_id).any():
            raise SystemExit(
                f"ERROR: {args.probe_table}: probe {row.material_id} (rows {row.atom_start}-{row.atom_stop}) "
                f"does not match {args.probe_atoms}; rerun probe_structures"
            )
    return probes[probes["kind"] == PERTURBATION].reset_index(drop=True)


def skip_reasons(meta_path: str) -> dict[str, str]:
    """{material_id: reason} of the structures one embedding job skipped."""
    with open(meta_path) as fh:
        entries = json.load(fh).get("skipped", [])
    return {str(s.get("material_id", "")): str(s.get("reason", "")) for s in entries}


def structure_skipped(mask: np.ndarray, start, stop) -> np.ndarray:
    return np.array([bool(mask[a:b].any()) for a, b in zip(start, stop, strict=True)])


def auc_figure(auc: pd.DataFrame, spaces, panels: list[str], perturbations: list[str], k: int):
    """Heatmaps of the AUC (models x perturbations), one panel per space in ``panels``."""
    from platonic_mlip.plotting import _annotate_cells, _controls_last, _plt, anchor_set_label

    plt = _plt()
    order, n_trained = _controls_last([m in spaces.controls for m in spaces.models])
    models = [spaces.models[i] for i in order]
    labels = [spaces.label(m) for m in models]
    n, p = len(models), max(len(perturbations), 1)
    cell = min(0.55, 6.0 / max(n, p))
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(len(panels) * (cell * p + 1.2) + 2.6, cell * n + 2.0),
        squeeze=False,
        layout="constrained",
    )
    norm = plt.Normalize(vmin=0.0, vmax=1.0)
    im = None
    for col, (ax, space) in enumerate(zip(axes[0], panels, strict=True)):
        sub = auc[auc["space"] == space].set_index(["model", "perturbation"])["auc"]
        mat = np.array([[sub.get((m, q), np.nan) for q in perturbations] for m in models], dtype=float)
        im = ax.imshow(mat, norm=norm, cmap="RdBu_r", aspect="auto")
        ax.set_facecolor("0.85")
        _annotate_cells(ax, im, mat, fontsize=6 if n <= 12 else 5)
        ax.set_xticks(range(len(perturbations)), perturbations, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(n), labels if col == 0 else [], fontsize=7)
        if col == 0:
            for t in ax.get_yticklabels()[n_trained:]:
                t.set_color("0.35")
                t.set_fontstyle("italic")
        if 0 < n_trained < n:
            ax.axhline(n_trained - 0.5, color="k", lw=2.0)
        title = "raw embeddings" if space == RAW else f"Platonic space ({anchor_set_label(space)} anchors)"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("perturbation", fontsize=8)
    cbar = fig.colorbar(im, ax=list(axes[0]), shrink=0.8)
    cbar.set_label(
        "ROC AUC: perturbed copies vs held-out originals\n(0.5 = chance; grey = no copy)", fontsize=8
    )
    fig.suptitle(
        f"Atypical-structure score (mean distance to the {k} nearest reference atoms): "
        "do perturbed copies stand out?",
        fontsize=10,
    )
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", required=True, help="the run's atom table (structures/atoms.csv)")
    ap.add_argument("--probe-table", required=True, help="probes/probes.csv")
    ap.add_argument("--probe-atoms", required=True, help="probes/atoms.csv")
    ap.add_argument(
        "--holdout", required=True, help="probes/holdout.csv (material_id of held-out structures)"
    )
    add_space_arguments(ap)
    add_space_arguments(ap, prefix="probe-")
    ap.add_argument("--knn-k", type=int, default=5, help="neighbours per atom (OURS: 5)")
    ap.add_argument("--top", type=int, default=20, help="structures in each model's top list (OURS: 20)")
    ap.add_argument("--scale-pairs", type=int, default=20000, help="pairs for the embedding scale (OURS)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the embedding-scale pairs (OURS: 0)")
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--out-auc", required=True)
    ap.add_argument("--out-top", required=True)
    ap.add_argument("--out-scores", required=True)
    ap.add_argument("--out-skipped", required=True)
    ap.add_argument("--out-fig", nargs="+", required=True)
    args = ap.parse_args(argv)
    if args.knn_k < 1 or args.top < 1:
        raise SystemExit("ERROR: --knn-k and --top must be at least 1")
    t0 = time.perf_counter()

    atoms = read_table(args.atoms, ["structure_index", "material_id", "element"], "atom table")
    structures = run_structures(atoms, args.atoms)
    holdout = set(read_table(args.holdout, ["material_id"], "held-out structures")["material_id"].astype(str))
    unknown = sorted(holdout - set(structures["material_id"]))
    if unknown:
        raise SystemExit(
            f"ERROR: {args.holdout}: {len(unknown)} held-out material_id(s) not in {args.atoms}, e.g. "
            f"{unknown[:3]}; the probes were made for another run"
        )
    probe_cols = ["material_id", "parent", "kind", "variant", "n_atoms", "atom_start", "atom_stop"]
    probes = read_table(args.probe_table, probe_cols, "probe table")
    probe_atoms = read_table(args.probe_atoms, ["material_id"], "probe atom table")
    pert = perturbation_probes(probes, probe_atoms, args)
    pert["parent"] = pert["parent"].astype(str)
    index_of = dict(zip(structures["material_id"], structures["structure_index"], strict=True))
    orphans = sorted(set(pert["parent"]) - set(index_of))
    if orphans:
        raise SystemExit(
            f"ERROR: {args.probe_table}: perturbed copies of {orphans[:3]} ({len(orphans)} parent(s)), "
            f"which are not structures of {args.atoms}"
        )
    not_held = sorted(set(pert["parent"]) - holdout)
    if not_held:
        print(f"note: {len(not_held)} perturbed parent(s) not held out, e.g. {not_held[:3]}")
    perturbations = list(dict.fromkeys(pert["variant"].astype(str)))
    pert["variant"] = pert["variant"].astype(str)

    spaces = read_spaces(args, atoms["material_id"].to_numpy())
    probe_spaces = read_spaces(args, probe_atoms["material_id"].to_numpy(), prefix="probe-")

    # rows of the perturbed copies in the probe matrices, and their structures' offsets among those rows
    sizes = (pert["atom_stop"] - pert["atom_start"]).to_numpy(int)
    pert_rows = np.concatenate(
        [np.arange(a, b) for a, b in zip(pert["atom_start"], pert["atom_stop"], strict=True)] or [[]]
    ).astype(np.int64)
    pert_stop = np.cumsum(sizes)
    pert_start = pert_stop - sizes
    parent_group = pert["parent"].map(index_of).to_numpy(np.int64)
    run_groups = atoms["structure_index"].to_numpy(np.int64)
    probe_groups = np.repeat(parent_group, sizes)
    in_holdout = structures["material_id"].isin(holdout).to_numpy()
    held_atoms = np.repeat(in_holdout, structures["n_atoms"].to_numpy())
    largest = int(structures.loc[~in_holdout, "n_atoms"].max()) if (~in_holdout).any() else 0

    scores, skipped = [], []
    for i, model in enumerate(spaces.models):
        tm = time.perf_counter()
        run_reason, probe_reason = skip_reasons(args.meta[i]), skip_reasons(args.probe_meta[i])
        run_skip = structure_skipped(spaces.skipped[model], structures["atom_start"], structures["atom_stop"])
        probe_skip = structure_skipped(probe_spaces.skipped[model], pert["atom_start"], pert["atom_stop"])
        for s in structures[run_skip].itertuples():
            held = s.material_id in holdout
            why = run_reason.get(s.material_id, "") or "rows NaN"
            what = "held-out original: left out of the AUC" if held else "not in the reference set"
            skipped.append(
                [
                    model,
                    s.material_id,
                    HOLDOUT if held else RUN,
                    f"skipped by the embedding job ({why}); {what}",
                ]
            )
        for s in pert[probe_skip].itertuples():
            why = probe_reason.get(s.material_id, "") or "rows NaN"
            skipped.append(
                [
                    model,
                    s.material_id,
                    PERTURBED,
                    f"{s.variant} copy of {s.parent} skipped by the embedding job ({why}); "
                    "left out of the AUC",
                ]
            )
        reference = np.flatnonzero(~held_atoms & ~spaces.skipped[model])
        if len(reference) - largest < args.knn_k or len(reference) < 2:
            skipped.append(
                [
                    model,
                    "",
                    "",
                    f"only {len(reference)} reference atoms (largest structure {largest} atoms): too few for "
                    f"--knn-k {args.knn_k}; model not scored",
                ]
            )
            continue
        for space in spaces.spaces:
            x = spaces.get(space, model)
            xp = np.asarray(probe_spaces.get(space, model)[pert_rows], dtype=np.float64)
            scale = pair_scale(x, reference, args.scale_pairs, args.seed)
            run_atom, probe_atom = space_atom_scores(
                x, xp, reference, run_groups, probe_groups, args.knn_k, scale
            )
            run_s = structure_scores(run_atom, structures["atom_start"], structures["atom_stop"])
            probe_s = structure_scores(probe_atom, pert_start, pert_stop)
            ok = np.isfinite(run_s)
            scores.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "space": space,
                        "material_id": structures["material_id"].to_numpy()[ok],
                        "kind": np.where(in_holdout[ok], HOLDOUT, RUN),
                        "variant": "",
                        "parent": "",
                        "score": run_s[ok],
                    }
                )
            )
            ok = np.isfinite(probe_s)
            scores.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "space": space,
                        "material_id": pert["material_id"].to_numpy()[ok],
                        "kind": PERTURBED,
                        "variant": pert["variant"].to_numpy()[ok],
                        "parent": pert["parent"].to_numpy()[ok],
                        "score": probe_s[ok],
                    }
                )
            )
        print(f"{model}: scored in {len(spaces.spaces)} space(s) in {time.perf_counter() - tm:.1f} s")

    table = pd.concat(scores, ignore_index=True) if scores else pd.DataFrame(columns=SCORE_COLUMNS)
    table = table[SCORE_COLUMNS]
    trained = {m: m not in spaces.controls for m in spaces.models}
    labels = {m: spaces.label(m) for m in spaces.models}

    auc = auc_table(table, perturbations)
    auc.insert(1, "label", auc["model"].map(labels))
    auc.insert(2, "trained", auc["model"].map(trained))

    panels = [RAW, *spaces.spaces[1:2]]
    top = top_table(table, args.top, panels)
    info = structures.set_index("material_id")
    top = top.assign(
        label=top["model"].map(labels),
        trained=top["model"].map(trained).astype(bool),
        n_atoms=top["material_id"].map(info["n_atoms"]),
        formula=top["material_id"].map(info["formula"]),
    )
    in_trained = top[top["trained"]].groupby(["space", "material_id"])["model"].nunique()
    keys = pd.MultiIndex.from_frame(top[["space", "material_id"]])
    top["n_trained_top"] = in_trained.reindex(keys, fill_value=0).to_numpy()
    top_cols = ["model", "label", "trained", "space", "rank", "material_id", "kind", "score", "n_atoms"]
    top = top[[*top_cols, "formula", "n_models_top", "n_trained_top"]]

    write_csv(args.out_scores, table)
    write_csv(args.out_auc, auc)
    write_csv(args.out_top, top)
    write_csv(args.out_skipped, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS))
    save(auc_figure(auc, spaces, panels, perturbations, args.knn_k), *args.out_fig, dpi=args.dpi)

    if len(auc):
        summary = auc.pivot_table(index=["trained", "space"], columns="perturbation", values="auc")
        print("mean AUC (perturbed copies vs held-out originals):")
        print(summary.round(3).to_string())
        means = auc.groupby(["trained", "space"])[["auc", "auc_parents", "win_rate"]].mean()
        print("over perturbations (auc_parents: the copies' originals; win_rate: copy above its original):")
        print(means.round(3).to_string())
    print(f"{len(skipped)} skipped row(s); done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    run(main)
