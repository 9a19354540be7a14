"""Atypical-structure detection (platonic_mlip.atypical, workflow/scripts/atypical_structures.py):
known-answer cases."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from platonic_mlip.atypical import (
    auc_table,
    auc_win,
    hill_formula,
    knn_scores,
    space_atom_scores,
    structure_scores,
    top_table,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "workflow" / "scripts" / "atypical_structures.py"


def test_knn_scores_known_distances():
    reference = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    queries = np.array([[0.0], [10.0], [2.5]])
    # k = 2: 0 -> (0, 1); 10 -> (0, 7); 2.5 -> (0.5, 0.5)
    assert knn_scores(reference, queries, 2) == pytest.approx([0.5, 3.5, 0.5], abs=1e-12)


def test_planted_outlier_ranks_first_with_auc_one():
    rng = np.random.default_rng(1)
    n_struct, per, d = 40, 3, 8
    x = rng.normal(size=(n_struct * per, d))
    outlier = 17
    x[outlier * per : (outlier + 1) * per] += 10.0
    groups = np.repeat(np.arange(n_struct), per)
    atom = knn_scores(x, x, 5, groups, groups)
    start = np.arange(n_struct) * per
    scores = structure_scores(atom, start, start + per)
    assert int(np.argmax(scores)) == outlier
    others = np.delete(scores, outlier)
    auc, win = auc_win(scores[[outlier]], others, np.array([np.nan]))
    assert auc == 1.0
    assert np.isnan(win)


def test_leave_one_structure_out_excludes_own_atoms():
    # five 2-atom structures at the origin; structure 9 has 8 atoms at distance L (more atoms than k + 1,
    # so dropping only the nearest hit would not do)
    L, k = 3.0, 3
    cluster = np.zeros((10, 3))
    far = np.tile([L, 0.0, 0.0], (8, 1))
    reference = np.vstack([cluster, far])
    ref_groups = np.r_[np.repeat(np.arange(5), 2), np.full(8, 9)]
    q_groups = np.full(8, 9)
    own_excluded = knn_scores(reference, far, k, q_groups, ref_groups)
    assert own_excluded == pytest.approx(np.full(8, L), abs=1e-12)
    # without groups the structure finds itself at distance 0
    assert knn_scores(reference, far, k) == pytest.approx(np.zeros(8), abs=1e-12)
    # a second copy (another structure) in the reference is a true neighbour: score 0
    twice = np.vstack([reference, far])
    twice_groups = np.r_[ref_groups, np.full(8, 10)]
    assert knn_scores(twice, far, k, q_groups, twice_groups) == pytest.approx(np.zeros(8), abs=1e-12)


def test_too_few_reference_rows_outside_own_structure():
    reference = np.zeros((6, 2))
    groups = np.array([0, 0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="fewer than k = 3"):
        knn_scores(reference, np.zeros((1, 2)), 3, np.array([0]), groups)


def test_identical_copies_give_chance_auc_and_half_win_rate():
    rng = np.random.default_rng(2)
    per, n_run, n_hold = 2, 30, 10
    run = rng.normal(size=(n_run * per, 5))
    groups = np.repeat(np.arange(n_run), per)
    held = np.arange(n_hold)  # the first structures are held out
    reference = np.flatnonzero(~np.isin(groups, held))
    probe = run[: n_hold * per].copy()  # exact copies of the held-out originals
    run_atom, probe_atom = space_atom_scores(run, probe, reference, groups, groups[: n_hold * per], 3, 1.7)
    start = np.arange(n_run) * per
    run_s = structure_scores(run_atom, start, start + per)
    probe_s = structure_scores(probe_atom, start[:n_hold], start[:n_hold] + per)
    np.testing.assert_array_equal(probe_s, run_s[:n_hold])  # bit-identical: recomputed exactly
    ids = [f"s{i}" for i in range(n_run)]
    rows = [("m", "raw", ids[i], "holdout" if i < n_hold else "run", "", "", run_s[i]) for i in range(n_run)]
    rows += [("m", "raw", f"s{i}~same", "perturbed", "same", ids[i], probe_s[i]) for i in range(n_hold)]
    scores = pd.DataFrame(
        rows, columns=["model", "space", "material_id", "kind", "variant", "parent", "score"]
    )
    table = auc_table(scores, ["same", "absent"])
    same = table[table["perturbation"] == "same"].iloc[0]
    assert same["auc"] == 0.5
    assert same["win_rate"] == 0.5
    assert same["auc_parents"] == 0.5
    assert (same["n_positive"], same["n_negative"]) == (n_hold, n_hold)
    absent = table[table["perturbation"] == "absent"].iloc[0]
    assert absent["n_positive"] == 0 and np.isnan(absent["auc"]) and np.isnan(absent["win_rate"])


def test_structure_scores_nan_for_skipped_and_auc_win_edge_cases():
    atom = np.array([1.0, 3.0, np.nan, np.nan, 5.0])
    assert structure_scores(atom, [0, 2, 4], [2, 4, 5])[[0, 2]] == pytest.approx([2.0, 5.0])
    assert np.isnan(structure_scores(atom, [0, 2, 4], [2, 4, 5])[1])
    auc, win = auc_win(np.array([2.0, 1.0, 0.0]), np.array([]), np.array([1.0, 1.0, np.nan]))
    assert np.isnan(auc)
    assert win == 0.75  # one win, one tie; the third copy has no parent score
    assert auc_win(np.array([0.0]), np.array([1.0]), np.array([1.0])) == (0.0, 0.0)


def test_hill_formula_and_top_consensus():
    assert hill_formula(["O", "Si", "O"]) == "O2Si"
    assert hill_formula(["H", "O", "C", "H", "Ba"]) == "CH2BaO"
    scores = pd.DataFrame(
        {
            "model": ["a"] * 3 + ["b"] * 3,
            "space": "raw",
            "material_id": ["x", "y", "z"] * 2,
            "kind": ["run", "holdout", "run"] * 2,
            "variant": "",
            "parent": "",
            "score": [3.0, 2.0, 1.0, 0.5, 2.0, 4.0],
        }
    )
    top = top_table(scores, 2, ["raw"])
    assert list(top.loc[top["model"] == "a", "material_id"]) == ["x", "y"]
    assert list(top.loc[top["model"] == "b", "material_id"]) == ["z", "y"]
    consensus = dict(zip(top["material_id"], top["n_models_top"], strict=False))
    assert consensus == {"x": 1, "y": 2, "z": 1}


# ---------------------------------------------------------------- the script, end to end on a tiny run


def _write_synthetic_run(tmp: Path):
    """30 run structures (2-4 atoms) from one Gaussian cluster, one planted far structure (mp-far, not held
    out), 8 held out (mp-0 .. mp-7). Probes: per held-out structure a copy shifted far ('shift') and an
    exact copy ('same'), plus one rotation probe (ignored). Models: 'a' (trained) and 'ctrl' (untrained):
    both are rotated and scaled copies of one base space, so every score is the same in every space.
    'ctrl' skipped mp-1 in the run, both copies of mp-1 and the 'shift' copy of mp-2 in the probes."""
    rng = np.random.default_rng(5)
    d = 6
    sizes = [2 + i % 3 for i in range(30)]
    ids = [f"mp-{i}" for i in range(29)] + ["mp-far"]
    elements = np.array(["O", "Si", "Mg"])
    rows, base = [], []
    for s, (mid, n) in enumerate(zip(ids, sizes, strict=True)):
        x = rng.normal(size=(n, d))
        if mid == "mp-far":
            x += 25.0
        base.append(x)
        for j in range(n):
            rows.append([len(rows), s, mid, j, 8, elements[(s + j) % 3] if mid != "mp-far" else "O", -1])
    cols = ["atom_index", "structure_index", "material_id", "atom_in_structure", "Z", "element", "spacegroup"]
    atoms = pd.DataFrame(rows, columns=cols)
    atoms.loc[atoms["material_id"] == "mp-far", "element"] = ["Si", "O", "O", "O"][: sizes[-1]]
    base = np.vstack(base)
    held = ids[:8]
    starts = np.r_[0, np.cumsum(sizes)]

    probe_rows, probe_atoms, probe_base = [], [], []
    for s, mid in enumerate(held):
        x = base[starts[s] : starts[s + 1]]
        for variant, y in (("shift", x + 8.0), ("same", x.copy())):
            pid = f"{mid}~{variant}"
            a = len(probe_atoms)
            probe_rows.append(
                [len(probe_rows), pid, mid, "perturbation", variant, "", "", len(x), a, a + len(x)]
            )
            probe_atoms += [pid] * len(x)
            probe_base.append(y)
    x = base[starts[3] : starts[4]]
    a = len(probe_atoms)
    probe_rows.append(
        [len(probe_rows), "mp-3~rot", "mp-3", "rotation", "identity", "0,0,1", 0, len(x), a, a + len(x)]
    )
    probe_atoms += ["mp-3~rot"] * len(x)
    probe_base.append(x + 100.0)  # would be the most atypical of all if it were scored
    probe_base = np.vstack(probe_base)
    pcols = ["probe_index", "material_id", "parent", "kind", "variant", "axis", "angle_deg", "n_atoms"]
    probes = pd.DataFrame(probe_rows, columns=[*pcols, "atom_start", "atom_stop"]).assign(detail="")

    atoms.to_csv(tmp / "atoms.csv", index=False)
    probes.to_csv(tmp / "probes.csv", index=False)
    pd.DataFrame({"material_id": held}).to_csv(tmp / "holdout.csv", index=False)
    pd.DataFrame({"material_id": probe_atoms}).to_csv(tmp / "probe_atoms.csv", index=False)

    def rotation(seed, scale):
        q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
        return q * scale

    maps = {("raw", "a"): rotation(10, 1.0), ("direct", "a"): rotation(11, 3.0)}
    maps |= {("raw", "ctrl"): rotation(12, 0.1), ("direct", "ctrl"): rotation(13, 7.0)}
    run_skip = [("mp-1", starts[1], starts[2])]
    prow = probes.set_index("material_id")
    probe_skip = [
        (p, prow.loc[p, "atom_start"], prow.loc[p, "atom_stop"]) for p in ("mp-1~shift", "mp-1~same")
    ]
    probe_skip.append(
        ("mp-2~shift", prow.loc["mp-2~shift", "atom_start"], prow.loc["mp-2~shift", "atom_stop"])
    )
    args = {"raw": [], "meta": [], "platonic": [], "probe-raw": [], "probe-meta": [], "probe-platonic": []}
    for space in ("raw", "direct"):
        for model in ("a", "ctrl"):
            for what, x, skip in (("", base, run_skip), ("probe-", probe_base, probe_skip)):
                y = (x @ maps[(space, model)]).astype(np.float32)
                if model == "ctrl":
                    for _, lo, hi in skip:
                        y[lo:hi] = np.nan
                path = tmp / f"{what}{space}-{model}.npy"
                np.save(path, y)
                args[f"{what}{'platonic' if space != 'raw' else 'raw'}"].append(path)
                if space == "raw":
                    entries = [
                        {
                            "material_id": m,
                            "atom_start": int(lo),
                            "atom_stop": int(hi),
                            "reason": "no potential",
                        }
                        for m, lo, hi in (skip if model == "ctrl" else [])
                    ]
                    meta = tmp / f"{what}{model}.json"
                    meta.write_text(json.dumps({"skipped": entries}))
                    args[f"{what}meta"].append(meta)
    return args


def _run_script(tmp: Path, args: dict, holdout: Path | None = None):
    cmd = [sys.executable, str(SCRIPT), "--atoms", tmp / "atoms.csv", "--probe-table", tmp / "probes.csv"]
    cmd += ["--probe-atoms", tmp / "probe_atoms.csv", "--holdout", holdout or tmp / "holdout.csv"]
    cmd += ["--models", "a", "ctrl", "--controls", "ctrl", "--labels", json.dumps({"a": "Model A"})]
    cmd += ["--spaces", "direct"]
    for key, paths in args.items():
        cmd += [f"--{key}", *paths]
    out = {n: tmp / f"out_{n}.csv" for n in ("auc", "top", "scores", "skipped")}
    cmd += ["--knn-k", "3", "--top", "5"]
    for n, path in out.items():
        cmd += [f"--out-{n}", path]
    cmd += ["--out-fig", tmp / "fig.png", tmp / "fig.pdf"]
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300)
    return res, out


def test_script_end_to_end(tmp_path):
    args = _write_synthetic_run(tmp_path)
    res, out = _run_script(tmp_path, args)
    assert res.returncode == 0, res.stderr + res.stdout

    auc = pd.read_csv(out["auc"])
    assert list(auc.columns) == [
        "model",
        "label",
        "trained",
        "space",
        "perturbation",
        "n_positive",
        "n_negative",
        "auc",
        "win_rate",
        "auc_parents",
    ]
    assert len(auc) == 2 * 2 * 2  # models x spaces x perturbations
    # model a: every held-out original has copies, so the copies' originals are all the negatives
    assert (auc.loc[auc["model"] == "a", "auc_parents"] == 0.5).all()
    assert set(auc["label"]) == {"Model A", "ctrl (untrained)"}
    assert dict(zip(auc["model"], auc["trained"], strict=False)) == {"a": True, "ctrl": False}
    key = auc.set_index(["model", "space", "perturbation"])
    for space in ("raw", "direct"):
        shift, same = key.loc[("a", space, "shift")], key.loc[("a", space, "same")]
        assert (shift["auc"], shift["win_rate"], shift["n_positive"], shift["n_negative"]) == (1.0, 1.0, 8, 8)
        assert (same["auc"], same["win_rate"], same["n_positive"], same["n_negative"]) == (0.5, 0.5, 8, 8)
        # ctrl skipped mp-1 (run) and both its copies, and the shifted copy of mp-2
        shift, same = key.loc[("ctrl", space, "shift")], key.loc[("ctrl", space, "same")]
        assert (shift["auc"], shift["win_rate"], shift["n_positive"], shift["n_negative"]) == (1.0, 1.0, 6, 7)
        assert (same["auc"], same["win_rate"], same["n_positive"], same["n_negative"]) == (0.5, 0.5, 7, 7)

    scores = pd.read_csv(out["scores"], keep_default_na=False)
    assert list(scores.columns) == ["model", "space", "material_id", "kind", "variant", "parent", "score"]
    counts = scores.groupby(["model", "space", "kind"]).size()
    assert counts[("a", "raw", "run")] == 22 and counts[("a", "raw", "holdout")] == 8
    assert counts[("a", "raw", "perturbed")] == 16
    assert counts[("ctrl", "direct", "holdout")] == 7 and counts[("ctrl", "direct", "perturbed")] == 13
    assert not scores["material_id"].str.contains("rot").any()  # rotation probes are not scored
    # the space's scale is divided out: rotated and scaled copies of one space give the same scores
    wide = scores.pivot_table(index=["model", "material_id"], columns="space", values="score")
    np.testing.assert_allclose(wide["raw"], wide["direct"], rtol=1e-5)
    same = scores[scores["variant"] == "same"].set_index(["model", "space", "parent"])["score"]
    originals = scores[scores["kind"] == "holdout"].set_index(["model", "space", "material_id"])["score"]
    np.testing.assert_array_equal(same.to_numpy(), originals.reindex(same.index).to_numpy())

    top = pd.read_csv(out["top"])
    assert list(top.columns) == [
        "model",
        "label",
        "trained",
        "space",
        "rank",
        "material_id",
        "kind",
        "score",
        "n_atoms",
        "formula",
        "n_models_top",
        "n_trained_top",
    ]
    assert len(top) == 2 * 2 * 5
    first = top[top["rank"] == 1]
    assert set(first["material_id"]) == {"mp-far"} and len(first) == 4
    assert set(first["formula"]) == {"O3Si"} and set(first["n_atoms"]) == {4}
    assert set(first["n_models_top"]) == {2} and set(first["n_trained_top"]) == {1}
    assert (top.groupby(["model", "space"])["score"].apply(lambda s: s.is_monotonic_decreasing)).all()

    skipped = pd.read_csv(out["skipped"])
    assert list(skipped.columns) == ["model", "material_id", "kind", "reason"]
    assert set(skipped["model"]) == {"ctrl"}
    assert sorted(skipped["material_id"]) == ["mp-1", "mp-1~same", "mp-1~shift", "mp-2~shift"]
    assert skipped["reason"].str.contains("no potential").all()
    assert (tmp_path / "fig.png").stat().st_size > 0 and (tmp_path / "fig.pdf").stat().st_size > 0


def test_script_names_holdout_of_another_run(tmp_path):
    args = _write_synthetic_run(tmp_path)
    pd.DataFrame({"material_id": ["mp-0", "mp-999"]}).to_csv(tmp_path / "bad.csv", index=False)
    res, out = _run_script(tmp_path, args, holdout=tmp_path / "bad.csv")
    assert res.returncode == 1
    assert "ERROR:" in res.stderr and "mp-999" in res.stderr and "bad.csv" in res.stderr
    assert not out["auc"].exists()
