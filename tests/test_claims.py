"""The claims table (platonic_mlip.claims, workflow/scripts/claims.py) on synthetic tables whose verdicts
are known in advance."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from platonic_mlip.claims import (
    COLUMNS,
    NOT_SUPPORTED,
    NOT_TESTABLE,
    SHARED_METRICS,
    SUPPORTED,
    ClaimParams,
    Roster,
    claim_convergence,
    claim_direct_vs_random_sweep,
    claim_element_purity,
    claims_table,
    group_stats,
    nearest_elements,
    neighbourhood_purity,
    periodic_labels,
    purity_interval,
    render_html,
    with_blocks,
)

PLATONIC = ("mknn", "cka", "procrustes_score", "ot_score", "composite")

# two trained models of different families, one trained of the first family, two untrained controls
FAMILIES = {"mace-a": "mace", "orb-a": "orb", "mace-b": "mace", "ctl-mace": "mace", "ctl-orb": "orb"}
CONTROLS = ["ctl-mace", "ctl-orb"]


def roster(models=None, controls=CONTROLS, families=FAMILIES):
    models = models or list(families)
    return Roster.make(models, [c for c in controls if c in models], families)


def pairwise(models, value, blocks=("raw", "direct", "random"), half_width=0.02, repeats=20):
    """A tidy pairwise table: ``value(block, metric, a, b)`` -> mean over redrawn samples.

    The interval is mean +- half_width; ``repeats=0`` gives the table without intervals (NaN).
    """
    rows = []
    for block in blocks:
        space, anchors = ("raw", "") if block == "raw" else ("platonic", block)
        if block.endswith("@space-centred"):
            space, anchors = "platonic-centred", block.split("@")[0]
        metrics = SHARED_METRICS if block == "raw" else (*PLATONIC, "ot_normalised")
        for i, a in enumerate(models):
            for b in models[i:]:
                for m in metrics:
                    v = 1.0 if a == b else value(block, m, a, b)
                    ci = (v - half_width, v + half_width) if repeats else (np.nan, np.nan)
                    mean = v if repeats else np.nan
                    rows.append((a, b, space, anchors, m, v + 0.001, mean, *ci, repeats))
    cols = [
        "model_a",
        "model_b",
        "space",
        "anchors",
        "metric",
        "value",
        "mean",
        "ci_low",
        "ci_high",
        "n_repeats",
    ]
    return pd.DataFrame(rows, columns=cols)


def alike(block, metric, a, b, raw=0.2, platonic=0.6, control=0.1, random=0.45):
    """Trained pairs: ``raw`` in raw space, ``platonic`` (DIRECT) / ``random``; with a control: ``control``."""
    if a.startswith("ctl") or b.startswith("ctl"):
        return control
    return {"raw": raw, "random": random}.get(block, platonic)


def rows_of(table, claim_id, anchors=None):
    sel = table[table["claim_id"] == claim_id]
    return sel if anchors is None else sel[sel["anchors"] == anchors]


# ------------------------------------------------------------------------------------------------
# pairs
# ------------------------------------------------------------------------------------------------


def test_pair_kinds():
    r = roster()
    assert r.pairs("cross") == [("mace-a", "orb-a"), ("orb-a", "mace-b")]
    assert r.pairs("same") == [("mace-a", "mace-b")]
    assert len(r.pairs("trained")) == 3
    assert ("mace-a", "ctl-orb") in r.pairs("control") and ("ctl-mace", "ctl-orb") not in r.pairs("control")
    assert r.pairs("same-control") == [("mace-a", "ctl-mace"), ("orb-a", "ctl-orb"), ("mace-b", "ctl-mace")]
    # one checkpoint at two layers is not a pair of models
    layers = Roster.make(["m", "m@last", "o"], [], {"m": "mace", "m@last": "mace", "o": "orb"})
    assert layers.pairs("trained") == [("m", "o"), ("m@last", "o")] and layers.pairs("same") == []
    with pytest.raises(ValueError, match="not among the models"):
        Roster.make(["a"], ["b"], {"a": "x"})
    with pytest.raises(ValueError, match="no family"):
        Roster.make(["a", "b"], [], {"a": "x"})


def test_group_stats_means_points_and_bounds_and_names_a_missing_pair():
    t = with_blocks(
        pairwise(["mace-a", "orb-a", "mace-b"], lambda bl, m, a, b: 0.5 if a == "mace-a" else 0.8)
    )
    g = group_stats(t, "direct", "mknn", [("mace-a", "orb-a"), ("orb-a", "mace-b")])
    assert g.mean == pytest.approx(0.65) and g.low == pytest.approx(0.63) and g.high == pytest.approx(0.67)
    # order inside a pair does not matter
    assert group_stats(t, "direct", "mknn", [("orb-a", "mace-a")]).mean == pytest.approx(0.5)
    with pytest.raises(KeyError, match="nope"):
        group_stats(t, "direct", "mknn", [("mace-a", "nope")])


# ------------------------------------------------------------------------------------------------
# claim 1
# ------------------------------------------------------------------------------------------------


def test_claim1_supported_when_platonic_beats_raw_beyond_the_intervals():
    r = roster()
    table = claims_table(pairwise(list(FAMILIES), alike), r, "direct")
    c1 = rows_of(table, "1")
    assert list(c1["metric"]) == list(SHARED_METRICS)
    assert (c1["verdict"] == SUPPORTED).all(), c1["reason"].tolist()
    assert (c1["n_pairs"] == 2).all() and c1["pairs"].iloc[0].startswith(
        "cross-architecture trained pairs (2)"
    )
    assert c1["ours"].iloc[0] == pytest.approx(0.6)
    assert c1["ci_low"].iloc[0] == pytest.approx(0.58) and c1["ci_high"].iloc[0] == pytest.approx(0.62)
    assert "2 of 2 pairs" in c1["comparison"].iloc[0]
    assert set(table.columns) >= set(COLUMNS)
    assert set(table["verdict"]) <= {SUPPORTED, NOT_SUPPORTED, NOT_TESTABLE}


def test_claim1_not_supported_when_intervals_overlap_or_platonic_is_lower():
    r = roster()
    overlap = claims_table(pairwise(list(FAMILIES), lambda *a: alike(*a, raw=0.58)), r, "direct")
    c1 = rows_of(overlap, "1")
    assert (c1["verdict"] == NOT_SUPPORTED).all()
    assert c1["reason"].str.contains("overlap").all()
    lower = claims_table(pairwise(list(FAMILIES), lambda *a: alike(*a, raw=0.9)), r, "direct")
    assert rows_of(lower, "1")["reason"].str.contains("below").all()
    assert (rows_of(lower, "1")["verdict"] == NOT_SUPPORTED).all()


def test_claim1_one_pair_cannot_carry_the_mean():
    fams = {"a": "x", "b": "y", "c": "z"}

    def value(block, metric, a, b):
        if block == "raw":
            return 0.3
        return 0.9 if (a, b) == ("a", "b") else 0.31  # one pair far above, two inside raw's interval

    r = Roster.make(list(fams), [], fams)
    c1 = rows_of(claims_table(pairwise(list(fams), value), r, "direct"), "1")
    assert (c1["verdict"] == NOT_SUPPORTED).all()
    assert c1["reason"].str.contains("only 1 of 3 pairs").all()
    relaxed = claims_table(pairwise(list(fams), value), r, "direct", params=ClaimParams(min_pair_share=0.3))
    assert (rows_of(relaxed, "1")["verdict"] == SUPPORTED).all()


def test_claim1_not_testable_without_cross_architecture_pairs_but_same_family_numbers_shown():
    fams = {"7a": "sevenn", "7b": "sevenn", "7c": "sevenn", "ctl-mace": "mace"}
    r = Roster.make(list(fams), ["ctl-mace"], fams)
    table = claims_table(pairwise(list(fams), alike), r, "direct")
    c1 = rows_of(table, "1")
    assert (c1["verdict"] == NOT_TESTABLE).all() and c1["ours"].isna().all()
    assert c1["reason"].str.contains("sevenn: 7a, 7b, 7c").all()
    same = rows_of(table, "1-same")
    assert (same["verdict"] == SUPPORTED).all() and (same["n_pairs"] == 3).all()
    assert same["ours"].iloc[0] == pytest.approx(0.6)


def test_claim1_without_intervals_compares_points_and_says_so():
    r = roster()
    table = claims_table(pairwise(list(FAMILIES), alike, repeats=0), r, "direct")
    c1 = rows_of(table, "1")
    assert (c1["verdict"] == SUPPORTED).all()
    assert c1["reason"].str.contains("no intervals").all()
    assert c1["ours"].iloc[0] == pytest.approx(0.601)  # ``value`` when there is no mean


def test_centred_variants_get_claim1_and_claim3_rows():
    r = roster()

    def value(block, metric, a, b):  # centred: 0.4 lower than uncentred (DIRECT 0.2 = raw, random 0.05)
        return alike(block.replace("-centred", ""), metric, a, b) - (0.4 if "centred" in block else 0.0)

    blocks = ("raw", "direct", "random", "direct-centred", "random-centred")
    table = claims_table(pairwise(list(FAMILIES), value, blocks=blocks), r, "direct")
    assert (rows_of(table, "1", "direct")["verdict"] == SUPPORTED).all()
    c1c = rows_of(table, "1", "direct-centred")
    assert len(c1c) == 3 and (c1c["verdict"] == NOT_SUPPORTED).all()
    assert c1c["ours"].iloc[0] == pytest.approx(0.2)
    c3c = rows_of(table, "3", "direct-centred vs random-centred")
    assert len(c3c) == 5 and (c3c["verdict"] == SUPPORTED).all()
    assert c3c["ours"].iloc[0] == pytest.approx(0.2)


def test_centred_variant_written_as_a_space_is_recognised():
    r = roster()
    blocks = ("raw", "direct", "random", "direct@space-centred")
    table = claims_table(pairwise(list(FAMILIES), alike, blocks=blocks), r, "direct")
    assert len(rows_of(table, "1", "direct-centred")) == 3
    c3 = rows_of(table, "3", "direct-centred vs random-centred")
    assert (c3["verdict"] == NOT_TESTABLE).all() and c3["reason"].str.contains("random-centred").all()


# ------------------------------------------------------------------------------------------------
# claims 2 and 3
# ------------------------------------------------------------------------------------------------


def test_claim2_trained_align_and_controls_do_not():
    r = roster()
    table = claims_table(pairwise(list(FAMILIES), alike), r, "direct")
    c2 = rows_of(table, "2")
    assert list(c2["metric"]) == list(PLATONIC)  # OT and composite too: Platonic vs Platonic
    assert (c2["verdict"] == SUPPORTED).all()
    same = rows_of(table, "2-same")
    assert (same["verdict"] == SUPPORTED).all()
    assert "same-architecture trained–control pairs (3)" in same["pairs"].iloc[0]
    # controls that align as well as trained models: not supported
    flat = claims_table(pairwise(list(FAMILIES), lambda *a: alike(*a, control=0.6)), r, "direct")
    assert (rows_of(flat, "2")["verdict"] == NOT_SUPPORTED).all()
    # trained higher, but not beyond the intervals (0.6 +- 0.02 vs 0.57 +- 0.02): not supported
    close = rows_of(
        claims_table(pairwise(list(FAMILIES), lambda *a: alike(*a, control=0.57)), r, "direct"), "2"
    )
    assert (close["verdict"] == NOT_SUPPORTED).all() and close["reason"].str.contains("overlap").all()


def test_claim2_not_testable_without_controls():
    fams = {k: v for k, v in FAMILIES.items() if not k.startswith("ctl")}
    r = Roster.make(list(fams), [], fams)
    c2 = rows_of(claims_table(pairwise(list(fams), alike), r, "direct"), "2")
    assert (c2["verdict"] == NOT_TESTABLE).all() and c2["reason"].str.contains("no untrained control").all()


def test_claim3_direct_vs_random():
    r = roster()
    good = rows_of(claims_table(pairwise(list(FAMILIES), alike), r, "direct"), "3")
    assert (good["verdict"] == SUPPORTED).all() and (good["n_pairs"] == 3).all()
    assert good["anchors"].iloc[0] == "direct vs random"
    bad = rows_of(claims_table(pairwise(list(FAMILIES), lambda *a: alike(*a, random=0.61)), r, "direct"), "3")
    assert (bad["verdict"] == NOT_SUPPORTED).all()
    only_direct = claims_table(pairwise(list(FAMILIES), alike, blocks=("raw", "direct")), r, "direct")
    c3 = rows_of(only_direct, "3")
    assert (c3["verdict"] == NOT_TESTABLE).all() and c3["reason"].str.contains("random").all()


# ------------------------------------------------------------------------------------------------
# claims 3 (sweep) and 4
# ------------------------------------------------------------------------------------------------


def sweep_table(curve, models=("mace-a", "orb-a", "mace-b", "ctl-mace"), random_offset=-0.1, ks=None):
    """Per-K sweep rows: trained pairs follow ``curve(k)``; pairs with a control are wild (must be ignored)."""
    ks = ks or [3, 10, 50, 100, 200]
    rows = []
    for k in ks:
        for i, a in enumerate(models):
            for b in models[i:]:
                for method, seeds in (("direct", [-1]), ("random", [0, 1, 2])):
                    for s in seeds:
                        v = curve(k) + (random_offset + 0.01 * s if method == "random" else 0.0)
                        if "ctl" in a + b:
                            v = 10.0 * k  # would break every verdict if controls were counted
                        for m in ("mknn", "cka"):
                            rows.append((k, method, s, a, b, m, 1.0 if a == b else v))
    return pd.DataFrame(rows, columns=["k", "method", "seed", "model_a", "model_b", "metric", "value"])


def test_claim4_converged_curve_is_supported():
    r = roster()
    rows = claim_convergence(sweep_table(lambda k: 0.6 - 0.5 * np.exp(-k / 20)), r)
    assert [x["verdict"] for x in rows] == [SUPPORTED, SUPPORTED]
    assert rows[0]["ours"] == pytest.approx(0.6 - 0.5 * np.exp(-10))
    assert "K=100→200" in rows[0]["comparison"]


def test_claim4_still_rising_is_not_supported_and_few_k_not_testable():
    r = roster()
    rising = claim_convergence(sweep_table(lambda k: k / 400), r)
    assert [x["verdict"] for x in rising] == [NOT_SUPPORTED, NOT_SUPPORTED]
    two = claim_convergence(sweep_table(lambda k: 0.5, ks=[50, 100]), r)
    assert {x["verdict"] for x in two} == {NOT_TESTABLE}
    off = claim_convergence(None, r)
    assert {x["verdict"] for x in off} == {NOT_TESTABLE} and "anchors.sweep.k" in off[0]["reason"]


def test_claim4_flat_curve_counts_as_converged():
    rows = claim_convergence(sweep_table(lambda k: 0.5 + 1e-4 * (k % 7)), roster())
    assert {x["verdict"] for x in rows} == {SUPPORTED}


def test_claim3_on_the_sweep():
    r = roster()
    good = claim_direct_vs_random_sweep(sweep_table(lambda k: 0.5), r, 100)
    assert {x["verdict"] for x in good} == {SUPPORTED}
    assert "at 5 of 5 K" in good[0]["comparison"]
    # random seeds at 0.485, 0.495, 0.505: seed 2 beats DIRECT (0.5)
    bad = claim_direct_vs_random_sweep(sweep_table(lambda k: 0.5, random_offset=-0.015), r, 100)
    assert {x["verdict"] for x in bad} == {NOT_SUPPORTED}
    assert {x["verdict"] for x in claim_direct_vs_random_sweep(sweep_table(lambda k: 0.5), r, 77)} == {
        NOT_TESTABLE
    }


# ------------------------------------------------------------------------------------------------
# claim 5: neighbourhood purity
# ------------------------------------------------------------------------------------------------


def test_periodic_labels():
    assert periodic_labels([11, 19, 17, 26, 57, 92]) == [1, 1, 17, 8, None, None]
    assert periodic_labels([57, 1], f_block="class") == ["Ln/An", 1]
    assert periodic_labels([3, 26, 55], key="period") == [2, 4, 6]


def test_purity_on_a_constructed_case():
    # six elements in three classes; each element's nearest neighbour is its partner
    labels = ["a", "a", "b", "b", "c", "c"]
    vec = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.1, 0.9, 0], [0, 0, 1], [0, 0.1, 0.9]])
    np.testing.assert_array_equal(nearest_elements(vec, 1)[:, 0], [1, 0, 3, 2, 5, 4])
    p = neighbourhood_purity(vec, labels, n=1)
    assert p["observed"] == 1.0 and p["chance"] == pytest.approx(1 / 5) and p["score"] == pytest.approx(1.0)
    # with two neighbours: the partner plus one other -> observed 1/2, score (1/2 - 1/5) / (4/5) = 3/8
    p2 = neighbourhood_purity(vec, labels, n=2)
    assert p2["observed"] == pytest.approx(0.5) and p2["score"] == pytest.approx(3 / 8)
    # shuffle the labels so that no neighbour shares a class: below chance
    wrong = ["a", "b", "c", "a", "b", "c"]
    pw = neighbourhood_purity(vec, wrong, n=1)
    assert pw["observed"] == 0.0 and pw["score"] == pytest.approx(-0.25)


def test_purity_leaves_out_singletons_and_unlabelled_elements_as_queries():
    labels = ["a", "a", "lonely", None]
    vec = np.array([[1.0, 0], [0.9, 0.1], [0.95, 0.05], [0.97, 0.03]])
    p = neighbourhood_purity(vec, labels, n=1)
    assert p["n_queries"] == 2 and list(p["query"]) == [0, 1]
    # element 0's nearest is None-labelled 3 (no match); element 1's nearest is 2 ("lonely")
    assert p["observed"] == 0.0 and p["chance"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no class has two"):
        neighbourhood_purity(vec, ["a", "b", "c", None], n=1)


def test_purity_interval_contains_the_score_and_random_vectors_score_near_zero():
    rng = np.random.default_rng(0)
    labels = [i % 6 for i in range(60)]
    p = neighbourhood_purity(rng.normal(size=(60, 20)), labels, n=3)
    lo, hi = purity_interval(p, 2000, 0.95, 0)
    assert lo < p["score"] < hi and lo < 0.0 < hi
    assert all(np.isnan(purity_interval(p, 0)))


def element_data(models, structured, n_groups=6, per_group=4, seed=0):
    """Element vectors for real atomic numbers: ``structured`` models cluster by group, others are random."""
    # groups 1, 2, 13, 14, 15, 16 of periods 2-5 (24 elements)
    numbers = [3, 11, 19, 37, 4, 12, 20, 38, 5, 13, 31, 49, 6, 14, 32, 50, 7, 15, 33, 51, 8, 16, 34, 52]
    numbers = numbers[: n_groups * per_group]
    groups = periodic_labels(numbers)
    centres = {g: np.eye(n_groups * 2)[i] for i, g in enumerate(sorted(set(groups)))}
    rng = np.random.default_rng(seed)
    vectors = {}
    for m in models:
        if m in structured:
            vectors[m] = np.array([centres[g] + 0.05 * rng.normal(size=n_groups * 2) for g in groups])
        else:
            vectors[m] = rng.normal(size=(len(numbers), n_groups * 2))
    return {"numbers": np.array(numbers), "counts": np.full(len(numbers), 10), "vectors": vectors}


def test_claim5_trained_keep_groups_controls_do_not():
    r = roster()
    trained = ["mace-a", "orb-a", "mace-b"]
    rows = claim_element_purity(element_data(list(FAMILIES), trained), r, "direct")
    group = rows[0]
    assert group["metric"] == "group_purity@3" and group["verdict"] == SUPPORTED
    assert group["ours"] == pytest.approx(1.0) and group["ci_low"] == pytest.approx(1.0)
    assert "ctl-mace" in group["comparison"] and "untrained controls" in group["pairs"]
    # trained models without structure: not supported
    flat = claim_element_purity(element_data(list(FAMILIES), []), r, "direct")
    assert flat[0]["verdict"] == NOT_SUPPORTED
    # a control as structured as the trained models: not supported (no contrast)
    ctl = claim_element_purity(element_data(list(FAMILIES), [*trained, "ctl-orb", "ctl-mace"]), r, "direct")
    assert ctl[0]["verdict"] == NOT_SUPPORTED and "not above the controls" in ctl[0]["reason"]
    none = claim_element_purity(None, r, "direct")
    assert {x["verdict"] for x in none} == {NOT_TESTABLE}


# ------------------------------------------------------------------------------------------------
# HTML and the command line
# ------------------------------------------------------------------------------------------------


def test_render_html_escapes_and_colours():
    table = claims_table(pairwise(list(FAMILIES), alike), roster(), "direct")
    page = render_html(table, note="a < b")
    assert page.count('<tr class="supported">') == int((table["verdict"] == SUPPORTED).sum())
    assert "a &lt; b" in page and "<table>" in page


def run_cli(tmp_path, *extra, anchor_sets=("direct", "random")):
    pw = tmp_path / "pairwise.csv"
    pairwise(list(FAMILIES), alike).to_csv(pw, index=False)
    sweep = tmp_path / "k.csv"
    sweep_table(lambda k: 0.6 - 0.5 * np.exp(-k / 20)).to_csv(sweep, index=False)
    empty = tmp_path / "k999.csv"
    empty.write_text("k,method,seed,model_a,model_b,metric,value,n_sample\n")
    el = element_data(list(FAMILIES), ["mace-a", "orb-a", "mace-b"])
    npz = tmp_path / "el.npz"
    arrays = {f"vectors_{i}": el["vectors"][m] for i, m in enumerate(FAMILIES)}
    np.savez(npz, numbers=el["numbers"], counts=el["counts"], models=np.array(list(FAMILIES)), **arrays)
    cmd = [sys.executable, str(ROOT / "workflow" / "scripts" / "claims.py"), "--pairwise", str(pw)]
    cmd += ["--sweep", str(sweep), str(empty), "--elements", str(npz), "--models", *FAMILIES]
    cmd += ["--controls", *CONTROLS, "--families", json.dumps(FAMILIES), "--anchor-sets", *anchor_sets]
    cmd += [
        "--run-k",
        "100",
        "--out-csv",
        str(tmp_path / "claims.csv"),
        "--out-html",
        str(tmp_path / "claims.html"),
    ]
    return subprocess.run([*cmd, *extra], capture_output=True, text=True, timeout=120)


def test_cli_writes_csv_and_html(tmp_path):
    res = run_cli(tmp_path)
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(tmp_path / "claims.csv")
    assert list(table.columns) == COLUMNS
    verdicts = table.groupby("claim_id")["verdict"].agg(set).to_dict()
    assert verdicts == {
        "1": {SUPPORTED},
        "1-same": {SUPPORTED},
        "2": {SUPPORTED},
        "2-same": {SUPPORTED},
        "3": {SUPPORTED},
        "3-sweep": {SUPPORTED},
        "4": {SUPPORTED},
        "5": {SUPPORTED, NOT_SUPPORTED},
    }
    # the synthetic element vectors cluster by group, not by period
    c5 = table[table["claim_id"] == "5"].set_index("metric")["verdict"]
    assert c5["group_purity@3"] == SUPPORTED and c5["period_purity@3"] == NOT_SUPPORTED
    assert "<table>" in (tmp_path / "claims.html").read_text()


def test_cli_names_the_file_when_an_anchor_set_is_missing(tmp_path):
    res = run_cli(tmp_path, anchor_sets=("direct", "published"))
    assert res.returncode != 0
    assert "pairwise.csv has no rows for anchor set(s) published" in res.stderr
    assert not (tmp_path / "claims.csv").exists()


def _rotation(moves, tol=1e-4):
    """A rotation summary: {model: largest move} in raw and direct space, two parent sets."""
    rows = [
        dict(model=m, space=s, parent_set=p, max_max_rel_dev=v, invariant=v <= tol)
        for m, v in moves.items()
        for s in ("raw", "direct")
        for p in ("BaCeO3", "mp20")
    ]
    return pd.DataFrame(rows)


def test_claim6_invariant_families_keep_rotations_and_orb_does_not():
    from platonic_mlip.claims import claim_rotation

    r = Roster.make(
        ["m1", "s1", "o1", "o0"], ["o0"], {"m1": "mace", "s1": "sevenn", "o1": "orb", "o0": "orb"}
    )
    table = pd.DataFrame(
        claim_rotation(_rotation({"m1": 1e-6, "s1": 2e-6, "o1": 0.05, "o0": 0.07}), r, "direct")
    )
    assert (table[table.claim_id == "6"].verdict == "supported").all()
    assert (table[table.claim_id == "6-orb"].verdict == "supported").all()
    assert np.allclose(table[table.claim_id == "6"].ours, 2e-6)
    # one invariant-by-construction model that moves: not supported; an Orb that does not move: neither
    table = pd.DataFrame(
        claim_rotation(_rotation({"m1": 1e-6, "s1": 3e-3, "o1": 1e-7, "o0": 0.07}), r, "direct")
    )
    assert set(table.verdict) == {"not supported"}
    # no trained Orb: 6-orb is not testable, and the untrained architecture's move is in the reason
    r = Roster.make(["m1", "o0"], ["o0"], {"m1": "mace", "o0": "orb"})
    table = pd.DataFrame(claim_rotation(_rotation({"m1": 1e-6, "o0": 0.07}), r, "direct"))
    orb = table[table.claim_id == "6-orb"]
    assert (orb.verdict == "not testable on this run").all() and orb.reason.str.contains("7.0e-02").all()


def test_claim7_equivalent_atoms_coincide_in_invariant_models():
    from platonic_mlip.claims import claim_symmetry

    r = Roster.make(["s1", "c1", "o0"], ["o0"], {"s1": "sevenn", "c1": "chgnet", "o0": "orb"})

    def table(fracs, pairs=12):
        return pd.DataFrame(
            [
                dict(subset=sub, model=m, space=s, n_equivalent_pairs=pairs, equivariant_fraction=f)
                for m, f in fracs.items()
                for s in ("raw", "direct")
                for sub in ("sg221", "all")
            ]
        )

    rows = pd.DataFrame(claim_symmetry(table({"s1": 1.0, "c1": 1.0, "o0": 0.0}), r, "direct"))
    assert list(rows.verdict) == ["supported", "supported"] and "o0 0.000" in rows.comparison.iloc[0]
    rows = pd.DataFrame(claim_symmetry(table({"s1": 1.0, "c1": 0.9, "o0": 0.0}), r, "direct"))
    assert list(rows.verdict) == ["not supported"] * 2 and np.allclose(rows.ours, 0.9)
    rows = pd.DataFrame(claim_symmetry(table({"s1": 1.0, "c1": 1.0}, pairs=0), r, "direct"))
    assert (rows.verdict == "not testable on this run").all()
