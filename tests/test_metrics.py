import numpy as np
import pytest
from pandas import testing as pd_testing

from platonic_mlip import metrics
from platonic_mlip.projection import project


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    return rng.normal(size=(400, 24)), rng.normal(size=(400, 40))


def test_identical_spaces_are_perfect(pair):
    a, _ = pair
    m = metrics.pair_metrics(a, a, k=10, with_ot=True, composite_weights={"mknn": 1, "ot_score": 1})
    assert m["mknn"] == 1.0
    assert m["cka"] == pytest.approx(1.0)
    assert m["procrustes_distance"] == pytest.approx(0.0, abs=1e-6)
    assert m["procrustes_score"] == pytest.approx(1.0, abs=1e-6)
    assert m["ot_cost"] == pytest.approx(0.0, abs=1e-12)
    assert m["composite"] == pytest.approx(1.0)


def test_independent_spaces_score_near_chance(pair):
    a, b = pair
    k = 10
    chance = k / (len(a) - 1)
    assert metrics.mutual_knn(a, b, k=k) < 3 * chance
    assert metrics.linear_cka(a, b) < 0.15
    assert metrics.procrustes(a, b)["procrustes_score"] < 0.4


def test_rotated_copy_is_perfect_after_projection(pair):
    a, _ = pair
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.normal(size=(24, 24)))
    b = 3.0 * a @ q
    idx = rng.choice(len(a), 30, replace=False)
    za, zb = project(a, idx, out_dtype=np.float64), project(b, idx, out_dtype=np.float64)
    m = metrics.pair_metrics(za, zb, k=10, with_ot=True)
    assert m["mknn"] == 1.0
    assert m["procrustes_score"] == pytest.approx(1.0, abs=1e-6)
    assert m["ot_cost"] == pytest.approx(0.0, abs=1e-8)
    # ... while in raw space OT is not even defined (different coordinates) and mKNN is already 1
    assert metrics.mutual_knn(a, b) == 1.0


def test_mknn_equals_brute_force_definition(pair):
    a, b = pair
    a, b = a[:120], b[:120, :24] + 0.8 * a[:120]  # partly related spaces
    k = 7

    def neighbours(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        out = []
        for i in range(len(x)):
            sims = [(float(x[i] @ x[j]), j) for j in range(len(x)) if j != i]
            out.append({j for _, j in sorted(sims, reverse=True)[:k]})
        return out

    na, nb = neighbours(a), neighbours(b)
    expect = np.mean([len(na[i] & nb[i]) / k for i in range(len(a))])
    got = metrics.mutual_knn(a, b, k=k)
    assert got == pytest.approx(expect)
    assert 0.1 < got < 1.0


def test_ot_normalisation_bounds(pair):
    a, b = pair
    m = metrics.optimal_transport(a[:, :20], b[:, :20])
    assert 0.0 < m["ot_normalised"] <= 1.0
    assert m["ot_score"] == pytest.approx(1 - m["ot_normalised"])
    with pytest.raises(ValueError, match="equal width"):
        metrics.optimal_transport(a, b)


def test_ot_is_distribution_level_and_matches_permutation(pair):
    a, _ = pair
    perm = np.random.default_rng(3).permutation(len(a))
    # zero up to the rounding of sqrt in the Euclidean cost
    assert metrics.optimal_transport(a, a[perm])["ot_cost"] == pytest.approx(0.0, abs=1e-6)


def test_composite_renormalises_missing_scores():
    s = {"mknn": 0.2, "procrustes_score": 0.6}
    assert metrics.composite(s, {"mknn": 1, "procrustes_score": 1, "ot_score": 1}) == pytest.approx(0.4)
    assert metrics.composite(s, {"mknn": 3, "procrustes_score": 1}) == pytest.approx(0.3)


def test_sample_indices_equal_paper_torch_protocol():
    torch = pytest.importorskip("torch")
    torch.manual_seed(42)
    expect = torch.randperm(5000)[:1000].numpy()
    np.testing.assert_array_equal(metrics.sample_indices(5000, 1000, 42), expect)
    assert len(metrics.sample_indices(50, 1000)) == 50


def test_pairwise_table_is_tidy(pair):
    a, b = pair
    t = metrics.pairwise_table(
        {"A": a[:, :20], "B": b[:, :20]}, "platonic", "direct", composite_weights={"mknn": 1}
    )
    # without resamples: the original columns, then the k-NN tie shares (ours)
    assert list(t.columns) == ["model_a", "model_b", "space", "anchors", "metric", "value"] + [
        "mknn_tied_a",
        "mknn_tied_b",
    ]
    pairs = set(zip(t.model_a, t.model_b, strict=True))
    assert pairs == {("A", "A"), ("A", "B"), ("B", "B")}
    assert set(t.metric) >= {"mknn", "cka", "procrustes_score", "ot_cost", "composite"}
    assert not t.duplicated(["model_a", "model_b", "metric"]).any()


def test_row_mismatch_is_an_error(pair):
    a, b = pair
    with pytest.raises(ValueError, match="same rows"):
        metrics.linear_cka(a, b[:-1])


# --- the table's fast path and the intervals from redrawn samples (ours) ---
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pandas as pd  # noqa: E402
from conftest import ROOT  # noqa: E402

WEIGHTS = {"mknn": 1, "procrustes_score": 1, "ot_score": 1}
MAIN = ["mknn", "cka", "procrustes_score", "ot_normalised", "composite"]


@pytest.fixture(scope="module")
def population():
    """Three related 'models' over 3,000 atoms (a shared latent through different maps) + one unrelated."""
    rng = np.random.default_rng(11)
    latent = rng.normal(size=(3000, 6))
    spaces = {}
    for name, d in (("A", 16), ("B", 24), ("C", 16)):
        w = rng.normal(size=(6, d))
        spaces[name] = np.tanh(latent @ w / 2) + 0.15 * rng.normal(size=(3000, d))
    spaces["U"] = rng.normal(size=(3000, 16))
    return spaces


def _cell(t, a, b, metric, col="value"):
    row = t[(t.model_a == a) & (t.model_b == b) & (t.metric == metric)]
    assert len(row) == 1, (a, b, metric)
    return float(row[col].iloc[0])


def test_fast_table_equals_pair_metrics_on_every_draw(population):
    """value = pair_metrics on the sample rows; mean = mean of pair_metrics over the redrawn rows."""
    spaces = {m: population[m][:, :16] for m in ("A", "B", "U")}  # equal widths: OT is defined
    sample = metrics.sample_indices(3000, 150, seed=42)
    redrawn = metrics.resample_indices(3000, 150, repeats=3, seed=5)
    t = metrics.pairwise_table(
        spaces, "platonic", "x", k=5, composite_weights=WEIGHTS, sample=sample, resamples=redrawn
    )
    for a, b in (("A", "B"), ("A", "U"), ("B", "B")):
        ref = metrics.pair_metrics(
            spaces[a][sample], spaces[b][sample], k=5, with_ot=True, composite_weights=WEIGHTS
        )
        per_draw = [
            metrics.pair_metrics(spaces[a][r], spaces[b][r], k=5, with_ot=True, composite_weights=WEIGHTS)
            for r in redrawn
        ]
        for metric, v in ref.items():
            # arccos near 1 amplifies rounding; a self-pair's OT skips the solver (identity coupling)
            tol = 1e-6 if metric == "procrustes_distance" or a == b else 1e-9
            assert _cell(t, a, b, metric) == pytest.approx(v, abs=tol), (a, b, metric)
            draws = np.array([d[metric] for d in per_draw])
            assert _cell(t, a, b, metric, "mean") == pytest.approx(draws.mean(), abs=tol), (a, b, metric)
            assert _cell(t, a, b, metric, "ci_low") == pytest.approx(np.quantile(draws, 0.025), abs=tol)
            assert _cell(t, a, b, metric, "ci_high") == pytest.approx(np.quantile(draws, 0.975), abs=tol)
    assert (t[t.model_a == t.model_b].query("metric == 'ot_cost'").value.abs() < 1e-6).all()


def test_computed_pairs_keep_every_pair_with_a_trained_model():
    models = ["t1", "t2", "u1", "u2", "e1", "p1"]
    roles = {"u1": "untrained", "u2": "untrained", "e1": "element", "p1": "physics"}  # t1, t2: trained
    every = metrics.computed_pairs(models, roles, "all")
    assert every == [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]
    kept = metrics.computed_pairs(models, roles, "same_role")
    assert kept == [
        ("t1", "t2"), ("t1", "u1"), ("t1", "u2"), ("t1", "e1"), ("t1", "p1"),
        ("t2", "u1"), ("t2", "u2"), ("t2", "e1"), ("t2", "p1"),
        ("u1", "u2"),
    ]  # fmt: skip
    assert metrics.computed_pairs(models, None, "same_role") == every  # no roles: every model trained
    with pytest.raises(ValueError, match="control_pairs='some'"):
        metrics.computed_pairs(models, roles, "some")


def test_table_of_chosen_pairs_is_the_full_table_without_the_others(population):
    spaces = {m: population[m][:, :16] for m in ("A", "B", "U")}
    sample = metrics.sample_indices(3000, 150, seed=42)
    redrawn = metrics.resample_indices(3000, 150, repeats=2, seed=5)
    opts = dict(k=5, composite_weights=WEIGHTS, sample=sample, resamples=redrawn)
    full = metrics.pairwise_table(spaces, "platonic", "x", **opts)
    part = metrics.pairwise_table(spaces, "platonic", "x", pairs=[("A", "B")], **opts)
    pairs = set(zip(part.model_a, part.model_b, strict=True))
    assert pairs == {("A", "A"), ("B", "B"), ("U", "U"), ("A", "B")}  # self-pairs always
    keep = [(a, b) in pairs for a, b in zip(full.model_a, full.model_b, strict=True)]
    pd_testing.assert_frame_equal(part, full[keep].reset_index(drop=True))
    with pytest.raises(ValueError, match=r"pairs name model\(s\) \['Z'\]"):
        metrics.pairwise_table(spaces, "platonic", "x", pairs=[("A", "Z")], **opts)


def test_interval_columns_and_no_repeats(population):
    spaces = {m: population[m][:200] for m in ("A", "B")}
    t = metrics.pairwise_table(spaces, "raw", k=5, resamples=metrics.resample_indices(200, 200, 4, 0))
    assert list(t.columns) == metrics.TABLE_COLUMNS + metrics.UNCERTAINTY_COLUMNS + metrics.TIE_COLUMNS
    assert list(t.columns[6:12]) == ["mean", "std", "ci_low", "ci_high", "ci_level", "n_repeats"]
    assert (t.n_repeats == 4).all() and (t.ci_level == 0.95).all()
    assert (t.ci_low <= t["mean"] + 1e-12).all() and (t["mean"] <= t.ci_high + 1e-12).all()
    # repeats = 0: the same columns, intervals NaN
    t0 = metrics.pairwise_table(spaces, "raw", k=5, resamples=metrics.resample_indices(200, 50, 0, 0))
    assert list(t0.columns) == list(t.columns)
    assert t0[["mean", "std", "ci_low", "ci_high"]].isna().all().all() and (t0.n_repeats == 0).all()
    np.testing.assert_allclose(t0.value, t.value)


def test_interval_contains_value_of_a_stable_case(population):
    """A and C share their structure strongly: the paper-sample value lies inside its interval."""
    spaces = {m: population[m] for m in ("A", "C")}
    sample = metrics.sample_indices(3000, 300, seed=42)
    t = metrics.pairwise_table(
        spaces,
        "raw",
        k=10,
        composite_weights=WEIGHTS,
        sample=sample,
        resamples=metrics.resample_indices(3000, 300, repeats=40, seed=0),
        level=0.99,
    )
    for metric in ("mknn", "cka", "procrustes_score", "composite"):
        value, lo, hi = (_cell(t, "A", "C", metric, c) for c in ("value", "ci_low", "ci_high"))
        assert lo <= value <= hi, (metric, lo, value, hi)
        assert 0 < hi - lo < 0.1, (metric, lo, hi)  # a real spread, and a narrow one
    assert _cell(t, "A", "C", "cka") > 0.5  # the case is indeed related


def test_intervals_shrink_with_larger_samples(population):
    spaces = {m: population[m][:, :16] for m in ("A", "C", "U")}
    widths = {}
    for n in (60, 600):
        t = metrics.pairwise_table(
            spaces,
            "platonic",
            "x",
            k=5,
            sample=np.arange(n),
            resamples=metrics.resample_indices(3000, n, repeats=15, seed=3),
        )
        t = t[t.model_a != t.model_b]
        widths[n] = (t.ci_high - t.ci_low).groupby(t.metric).mean()
        assert t.n_repeats.eq(15).all()
    for metric in ("mknn", "cka", "procrustes_score", "ot_normalised"):
        assert widths[600][metric] < 0.6 * widths[60][metric], (
            metric,
            widths[60][metric],
            widths[600][metric],
        )


def test_intervals_reproducible_by_seed_and_independent_of_workers(population):
    spaces = {m: population[m][:, :16] for m in ("A", "B", "U")}

    def run(seed, workers=1):
        res = metrics.resample_indices(3000, 120, repeats=6, seed=seed)
        return metrics.pairwise_table(
            spaces, "platonic", "x", k=5, sample=np.arange(120), resamples=res, workers=workers
        )

    first, again, threaded, other = run(1), run(1), run(1, workers=2), run(2)
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first, threaded)
    cross = first.model_a != first.model_b
    assert not np.allclose(first.loc[cross, "ci_low"], other.loc[cross, "ci_low"])
    pd.testing.assert_series_equal(first.value, other.value)  # the paper's value does not move


def test_resample_indices_draw_without_replacement():
    r = metrics.resample_indices(1000, 300, repeats=5, seed=0)
    assert r.shape == (5, 300) and r.dtype == np.int64
    assert all(len(np.unique(row)) == 300 for row in r)  # no duplicated atom inside a sample
    assert r.min() >= 0 and r.max() < 1000
    assert not np.array_equal(r[0], r[1])
    np.testing.assert_array_equal(r, metrics.resample_indices(1000, 300, repeats=5, seed=0))
    assert metrics.resample_indices(50, 300, repeats=2, seed=0).shape == (2, 50)  # capped at n
    assert metrics.resample_indices(50, 30, repeats=0, seed=0).shape == (0, 30)
    with pytest.raises(ValueError):
        metrics.resample_indices(50, 30, repeats=-1)


def test_pairwise_table_rejects_bad_level_and_rows(population):
    spaces = {"A": population["A"][:100], "B": population["B"][:100]}
    with pytest.raises(ValueError, match="level"):
        metrics.pairwise_table(spaces, "raw", resamples=np.zeros((1, 50), dtype=int), level=1.0)
    with pytest.raises(ValueError, match="same rows"):
        metrics.pairwise_table({"A": population["A"][:100], "B": population["B"][:99]}, "raw")


def _npy_run(tmp_path, population, n_atoms=600):
    """Write a tiny workflow run (atoms.csv, raw and Platonic .npy) for the metrics script."""
    models = ["A", "B", "C"]
    atoms = pd.DataFrame(
        {
            "atom_index": np.arange(n_atoms),
            "material_id": [f"mp-{i // 4}" for i in range(n_atoms)],
            "atom_in_structure": np.arange(n_atoms) % 4,
            "element": ["O"] * n_atoms,
        }
    )
    atoms.to_csv(tmp_path / "atoms.csv", index=False)
    raw, plat = [], []
    for m in models:
        np.save(tmp_path / f"{m}.npy", population[m][:n_atoms].astype(np.float32))
        raw.append(str(tmp_path / f"{m}.npy"))
        np.save(tmp_path / f"{m}_p.npy", population[m][:n_atoms, :16].astype(np.float32))
        plat.append(str(tmp_path / f"{m}_p.npy"))
    return models, raw, plat


def test_metrics_script_value_is_the_paper_sample_and_carries_intervals(tmp_path, population):
    models, raw, plat = _npy_run(tmp_path, population)
    out = tmp_path / "pairwise.csv"
    cmd = [sys.executable, str(ROOT / "workflow" / "scripts" / "pairwise_metrics.py"), "--models", *models]
    cmd += [
        "--raw",
        *raw,
        "--anchor-sets",
        "direct",
        "--platonic",
        *plat,
        "--atoms",
        str(tmp_path / "atoms.csv"),
    ]
    cmd += [
        "--n-sample",
        "100",
        "--k",
        "5",
        "--knn-tie-tol",
        "1e-6",
        "--composite-weights",
        json.dumps(WEIGHTS),
    ]
    cmd += ["--repeats", "5", "--resample-seed", "3", "--workers", "2"]
    cmd += ["--out", str(out), "--out-sample", str(tmp_path / "sample.csv")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    t = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert {"value", "mean", "std", "ci_low", "ci_high", "n_repeats", "n_sample"} <= set(t.columns)
    assert {"mknn_tied_a", "mknn_tied_b"} <= set(t.columns)
    assert (t.n_repeats == 5).all() and (t.n_sample == 100).all()
    assert set(t.space) == {"raw", "platonic"}
    # value: the paper's sample (torch.randperm seeded 42) of the float32 files, as before the intervals
    idx = metrics.sample_indices(600, 100, 42)
    a = np.load(raw[0])[idx].astype(np.float64)
    b = np.load(raw[1])[idx].astype(np.float64)
    ref = metrics.pair_metrics(a, b, k=5)
    raw_ab = t[t.space == "raw"]
    for metric in ("mknn", "cka", "procrustes_score"):
        assert _cell(raw_ab, "A", "B", metric) == pytest.approx(ref[metric], abs=1e-9)
    # mean: over the redrawn samples of the same size, drawn over all atoms with --resample-seed
    draws = metrics.resample_indices(600, 100, 5, seed=3)
    mk = [
        metrics.mutual_knn(np.load(raw[0])[r].astype(float), np.load(raw[1])[r].astype(float), k=5)
        for r in draws
    ]
    assert _cell(raw_ab, "A", "B", "mknn", "mean") == pytest.approx(np.mean(mk), abs=1e-12)
    assert pd.read_csv(tmp_path / "sample.csv").atom_index.tolist() == idx.tolist()

    # the fig4 heatmap shows the mean, the CI table has one "mean [lo, hi]" cell per pair and space
    scripts = ROOT / "workflow" / "scripts"
    sys.path.insert(0, str(scripts))
    try:
        import fig4_heatmap
        import pairwise_ci_table
    finally:
        sys.path.remove(str(scripts))
    shown, note = fig4_heatmap.choose_statistic(t, "auto")
    np.testing.assert_array_equal(shown.value, t["mean"])
    assert "5 redrawn samples of 100 atoms" in note
    assert fig4_heatmap.choose_statistic(t, "value")[0] is t
    page = pairwise_ci_table.render(t, models, {"A": "alpha-label"})
    mean_ab = _cell(raw_ab, "A", "B", "mknn", "mean")
    lo, hi = _cell(raw_ab, "A", "B", "mknn", "ci_low"), _cell(raw_ab, "A", "B", "mknn", "ci_high")
    assert f"{mean_ab:.3f} [{lo:.3f}, {hi:.3f}]" in page
    assert page.count("<table>") == 5 and "Platonic (direct)" in page and "<td>alpha-label</td>" in page


def _script(name, *args, timeout=300):
    cmd = [sys.executable, str(ROOT / "workflow" / "scripts" / f"{name}.py"), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_per_space_jobs_merge_to_the_one_process_table(tmp_path, population):
    """The workflow's split (rule pairwise_space per space, then merge_pairwise) gives the same table as
    computing every space in one process; the merge refuses spaces compared on different atoms."""
    models, raw, plat = _npy_run(tmp_path, population)
    common = ["--models", *models, "--atoms", tmp_path / "atoms.csv", "--n-sample", 100, "--k", 5]
    common += ["--composite-weights", json.dumps(WEIGHTS), "--repeats", 3, "--beyond-element"]
    one = _script(
        "pairwise_metrics",
        *common,
        *("--raw", *raw, "--anchor-sets", "direct", "--platonic", *plat),
        *("--out", tmp_path / "one.csv", "--out-sample", tmp_path / "one_sample.csv"),
    )
    assert one.returncode == 0, one.stderr
    parts = {"raw": ["--raw", *raw], "direct": ["--anchor-sets", "direct", "--platonic", *plat]}
    for space, files in parts.items():
        res = _script(
            "pairwise_metrics",
            *common,
            *files,
            *("--out", tmp_path / f"{space}.csv", "--out-sample", tmp_path / f"{space}_sample.csv"),
        )
        assert res.returncode == 0, res.stderr
        table = pd.read_csv(tmp_path / f"{space}.csv", keep_default_na=False)
        assert set(table.space) == {"raw" if space == "raw" else "platonic"}
    merged = _script(
        "merge_pairwise",
        *("--tables", tmp_path / "raw.csv", tmp_path / "direct.csv"),
        *("--samples", tmp_path / "raw_sample.csv", tmp_path / "direct_sample.csv"),
        *("--out", tmp_path / "merged.csv", "--out-sample", tmp_path / "merged_sample.csv"),
    )
    assert merged.returncode == 0, merged.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "merged.csv"), pd.read_csv(tmp_path / "one.csv"))
    assert (tmp_path / "merged_sample.csv").read_text() == (tmp_path / "one_sample.csv").read_text()

    # a space compared on another sample (another seed) is refused, naming the file; nothing is written
    res = _script(
        "pairwise_metrics",
        *common,
        *("--seed", 7, "--anchor-sets", "direct", "--platonic", *plat),
        *("--out", tmp_path / "other.csv", "--out-sample", tmp_path / "other_sample.csv"),
    )
    assert res.returncode == 0, res.stderr
    bad = _script(
        "merge_pairwise",
        *("--tables", tmp_path / "raw.csv", tmp_path / "other.csv"),
        *("--samples", tmp_path / "raw_sample.csv", tmp_path / "other_sample.csv"),
        *("--out", tmp_path / "bad.csv", "--out-sample", tmp_path / "bad_sample.csv"),
    )
    assert bad.returncode != 0 and "other_sample.csv" in bad.stderr and "same atoms" in bad.stderr
    assert not (tmp_path / "bad.csv").exists() and not (tmp_path / "bad_sample.csv").exists()
    # no space at all is refused
    res = _script(
        "pairwise_metrics", *common, "--out", tmp_path / "x.csv", "--out-sample", tmp_path / "y.csv"
    )
    assert res.returncode != 0 and "no space" in res.stderr


def test_metrics_script_leaves_out_pairs_of_controls_of_different_roles(tmp_path, population):
    """metrics.control_pairs same_role: B (untrained) and C (physics) are not compared; the pairs kept
    equal the full table's; a role for a model not in the run is refused."""
    models, raw, plat = _npy_run(tmp_path, population)
    common = ["--models", *models, "--atoms", tmp_path / "atoms.csv", "--n-sample", 100, "--k", 5]
    common += ["--composite-weights", json.dumps(WEIGHTS), "--repeats", 2, "--raw", *raw]
    roles = json.dumps({"A": "trained", "B": "untrained", "C": "physics"})
    tables = {}
    for how in ("all", "same_role"):
        out = tmp_path / f"{how}.csv"
        res = _script(
            "pairwise_metrics",
            *common,
            *("--roles", roles, "--control-pairs", how, "--out", out, "--out-sample", tmp_path / "s.csv"),
        )
        assert res.returncode == 0, res.stderr
        tables[how] = pd.read_csv(out)
    pairs = {how: set(zip(t.model_a, t.model_b, strict=True)) for how, t in tables.items()}
    assert pairs["all"] - pairs["same_role"] == {("B", "C")}
    full = tables["all"]
    kept = full[[(a, b) != ("B", "C") for a, b in zip(full.model_a, full.model_b, strict=True)]]
    pd.testing.assert_frame_equal(tables["same_role"], kept.reset_index(drop=True))
    bad = _script(
        "pairwise_metrics",
        *common,
        *("--roles", json.dumps({"Z": "physics"}), "--control-pairs", "same_role"),
        *("--out", tmp_path / "bad.csv", "--out-sample", tmp_path / "bad_s.csv"),
    )
    assert bad.returncode != 0 and "['Z']" in bad.stderr and not (tmp_path / "bad.csv").exists()


# --- mutual k-NN under ties (ours): float64, ties within knn_tie_tol, lower row index wins ---


def _plain_topk(x, k):
    """The former rule: the k largest inner products by a partial sort (ties decided by float noise)."""
    sim = np.asarray(x) @ np.asarray(x).T
    np.fill_diagonal(sim, -np.inf)
    return [set(r) for r in np.argpartition(-sim, kth=k - 1, axis=1)[:, :k].tolist()]


def _rule_reference(x, k, tol):
    """Brute force of ``knn_indices``' documented rule: per row, the other rows sorted by decreasing
    similarity; a step of at most ``tol`` to the previous value keeps the tie group; then by (group,
    row index); returns (neighbour sets, tied rows = k-th and (k+1)-th in one group)."""
    x = np.asarray(x, dtype=np.float64)
    sim = x @ x.T
    sets, tied = [], []
    for i in range(len(x)):
        cand = sorted(((sim[i, j], j) for j in range(len(x)) if j != i), key=lambda t: -t[0])
        groups, g = [], 0
        for p, (s, j) in enumerate(cand):
            g += p > 0 and cand[p - 1][0] - s > tol
            groups.append((g, j))
        sets.append({j for _, j in sorted(groups)[:k]})
        tied.append(groups[k - 1][0] == groups[k][0])
    return sets, np.array(tied)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _crystal_like(n_sites, copies, d, noise, seed, rng_sites=0):
    """Rows = ``n_sites`` distinct environments, each repeated ``copies`` times (symmetry-equivalent
    atoms), interleaved, plus float32-sized noise drawn with ``seed``."""
    sites = np.random.default_rng(rng_sites).normal(size=(n_sites, d))
    x = np.tile(sites, (copies, 1))  # row r is site r % n_sites
    return _unit(x + noise * np.random.default_rng(seed).normal(size=x.shape))


def test_knn_ties_do_not_depend_on_float_noise():
    """Duplicated rows + noise of 1e-8: the former partial sort follows the noise, the rule does not."""
    k = 10
    x1, x2 = (_crystal_like(60, 4, 32, 1e-8, seed) for seed in (1, 2))
    assert _plain_topk(x1, k) != _plain_topk(x2, k)  # the case is noise-sensitive (former rule)
    n1, t1 = metrics.knn_indices(x1, k, return_tied=True)
    n2, t2 = metrics.knn_indices(x2, k, return_tied=True)
    assert [set(r) for r in n1.tolist()] == [set(r) for r in n2.tolist()]
    np.testing.assert_array_equal(t1, t2)
    assert t1.mean() > 0.5  # 10th and 11th neighbour: copies of one site in most rows
    # ... and the mutual k-NN of two noisy copies of one crystal is exactly 1, whatever the noise
    assert metrics.mutual_knn(x1, x2, k=k) == 1.0
    assert metrics.mutual_knn(x1.astype(np.float32), x2.astype(np.float32), k=k) == 1.0


def test_knn_tie_break_takes_the_lowest_row_index():
    # row 0: rows 1..5 tied at cosine 0.6, row 6 nearest; k = 3 -> {6, 1, 2} whatever the noise
    v = np.array([1.0, 0.0, 0.0])
    tied_dir = np.array([0.6, 0.8, 0.0])
    near = np.array([0.9, np.sqrt(1 - 0.81), 0.0])
    far = np.array([-1.0, 0.0, 0.0])
    x = np.array([v, *[tied_dir] * 5, near, far, far])
    rng = np.random.default_rng(0)
    for _ in range(5):
        noisy = _unit(x + 1e-9 * rng.normal(size=x.shape))
        nb, tied = metrics.knn_indices(noisy, 3, return_tied=True)
        assert set(nb[0]) == {6, 1, 2} and tied[0]
    # noise can reorder the tied rows; the rule still takes the lowest indices
    perm = np.array([0, 5, 4, 3, 2, 1, 6, 7, 8])
    assert set(metrics.knn_indices(_unit(x[perm] + 1e-9 * rng.normal(size=x.shape)), 3)[0]) == {6, 1, 2}


def test_knn_tie_share_on_a_constructed_example():
    """Rows 0-2 copies of e0, rows 3-6 copies of e1, row 7 their bisector; k = 2.

    Rows 0-2: two other copies at cosine 1, the 3rd neighbour at 0.71: untied. Rows 3-6: three other
    copies at 1 for two places: tied. Row 7: all seven at cosine 1/sqrt(2): tied, takes rows 0 and 1.
    """
    e0, e1 = np.eye(3)[0], np.eye(3)[1]
    x = np.array([e0] * 3 + [e1] * 4 + [(e0 + e1) / np.sqrt(2)])
    nb, tied = metrics.knn_indices(x, 2, return_tied=True)
    np.testing.assert_array_equal(tied, [False] * 3 + [True] * 5)
    assert [set(r) for r in nb.tolist()] == [{1, 2}, {0, 2}, {0, 1}, {4, 5}, {3, 5}, {3, 4}, {3, 4}, {0, 1}]
    ref_sets, ref_tied = _rule_reference(x, 2, 1e-6)
    assert ref_sets == [set(r) for r in nb.tolist()]
    np.testing.assert_array_equal(ref_tied, tied)
    # the table reports the share per model (model_a, model_b); an untied random model has none
    rand = np.random.default_rng(3).normal(size=(8, 3))
    t = metrics.pairwise_table({"X": x, "R": rand}, "raw", k=2)
    row = t[(t.model_a == "X") & (t.model_b == "R") & (t.metric == "mknn")].iloc[0]
    assert row.mknn_tied_a == pytest.approx(5 / 8) and row.mknn_tied_b == 0.0
    assert (t[(t.model_a == "X") & (t.model_b == "X")][["mknn_tied_a", "mknn_tied_b"]] == 5 / 8).all().all()


@pytest.mark.parametrize(
    ("n_sites", "copies", "noise"),
    [(40, 5, 1e-8), (2, 150, 1e-9), (300, 1, 0.0)],  # small groups; groups > 4k + 32 (whole-row path); none
)
def test_knn_equals_brute_force_rule(n_sites, copies, noise):
    x = _crystal_like(n_sites, copies, 16, noise, seed=7)
    for k in (1, 10):
        nb, tied = metrics.knn_indices(x, k, return_tied=True)
        ref_sets, ref_tied = _rule_reference(x, k, 1e-6)
        assert [set(r) for r in nb.tolist()] == ref_sets
        np.testing.assert_array_equal(tied, ref_tied)
        assert nb.shape == (len(x), k) and all(i not in r for i, r in enumerate(ref_sets))  # self excluded


def test_untied_knn_and_mknn_unchanged(pair):
    """Without ties the rule is the plain top-k: the same neighbour sets and mknn as before."""
    a, b = pair
    b = b[:, :24] + 0.8 * a  # partly related
    ua, ub = _unit(a), _unit(b)
    na, ta = metrics.knn_indices(ua, 10, return_tied=True)
    assert not ta.any()
    assert [set(r) for r in na.tolist()] == _plain_topk(ua, 10)
    ref_a, ref_b = _plain_topk(ua, 10), _plain_topk(ub, 10)
    expect = np.mean([len(ref_a[i] & ref_b[i]) / 10 for i in range(len(a))])
    assert metrics.mutual_knn(a, b, k=10) == pytest.approx(expect, abs=1e-15)
    t = metrics.pairwise_table({"A": a, "B": b}, "raw", k=10)
    assert _cell(t, "A", "B", "mknn") == pytest.approx(expect, abs=1e-15)
    assert (t[["mknn_tied_a", "mknn_tied_b"]] == 0.0).all().all()


def test_knn_tie_tol_option():
    x = _unit(np.random.default_rng(4).normal(size=(50, 8)))
    # cosines lie in [-1, 1]: with tol 2 all other rows are one tie group -> the k lowest indices
    nb, tied = metrics.knn_indices(x, 3, tie_tol=2.0, return_tied=True)
    assert [set(r) for r in nb.tolist()] == [set([j for j in range(4) if j != i][:3]) for i in range(50)]
    assert tied.all()
    t = metrics.pairwise_table({"A": x, "B": x[:, ::-1]}, "raw", k=3, knn_tie_tol=2.0)
    assert (t.mknn_tied_a == 1.0).all() and _cell(t, "A", "B", "mknn") == 1.0
    # tol 0 ties exact equals only, which still go to the lower index (exact cosines 1 and 1/sqrt(2))
    e0, e1 = np.eye(3)[0], np.eye(3)[1]
    c = np.array([e0] * 3 + [e1] * 4 + [(e0 + e1) / np.sqrt(2)])
    nb0, tied0 = metrics.knn_indices(c, 2, tie_tol=0.0, return_tied=True)
    assert set(nb0[7]) == {0, 1} and set(nb0[6]) == {3, 4} and tied0.tolist() == [False] * 3 + [True] * 5
    with pytest.raises(ValueError, match="tie_tol"):
        metrics.knn_indices(x, 3, tie_tol=-1e-6)
    with pytest.raises(ValueError, match="k="):
        metrics.knn_indices(x, 50)
