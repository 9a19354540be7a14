import numpy as np
import pandas as pd
import pytest

from platonic_mlip.anchor_studies import (
    paper_sample,
    platonic_metrics,
    platonic_sample,
    reference_sensitivity,
    summarise_sweep,
)
from platonic_mlip.elements import cosine_matrix, element_means, similarity_correlation
from platonic_mlip.metrics import sample_indices
from platonic_mlip.projection import project


def test_platonic_sample_equals_the_full_projection_rows():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(500, 16)).astype(np.float32)
    sample, anchors = rng.choice(500, 60, replace=False), np.array([3, 99, 250, 7])
    np.testing.assert_array_equal(platonic_sample(emb, sample, anchors), project(emb, anchors)[sample])


def test_paper_sample_is_the_pairwise_sample_over_valid_atoms():
    valid = np.arange(0, 300, 3)
    np.testing.assert_array_equal(paper_sample(valid, 20, 42), valid[sample_indices(100, 20, 42)])


def test_platonic_metrics_identical_models_score_one():
    rng = np.random.default_rng(1)
    e = rng.normal(size=(300, 8))
    t = platonic_metrics({"a": e, "b": 2.0 * e}, np.arange(100), np.arange(200, 220), "direct", k=5)
    cross = t[(t.model_a == "a") & (t.model_b == "b")].set_index("metric")["value"]
    assert cross["mknn"] == pytest.approx(1.0) and cross["ot_cost"] == pytest.approx(0.0, abs=1e-6)
    assert set(t.anchors) == {"direct"} and set(t.space) == {"platonic"}


def sweep_rows(k, method, seed, values):
    pairs = [("a", "a"), ("a", "b"), ("a", "ctl"), ("b", "b"), ("b", "ctl"), ("ctl", "ctl")]
    return [(k, method, seed, a, b, "mknn", v) for (a, b), v in zip(pairs, values, strict=True)]


def test_summarise_sweep_averages_pairs_then_spreads_over_seeds():
    rows = sweep_rows(10, "direct", -1, [1, 0.6, 0.1, 1, 0.2, 1])
    rows += sweep_rows(10, "random", 0, [1, 0.4, 0.1, 1, 0.1, 1])
    rows += sweep_rows(10, "random", 1, [1, 0.2, 0.1, 1, 0.1, 1])
    t = pd.DataFrame(rows, columns=["k", "method", "seed", "model_a", "model_b", "metric", "value"])
    s = summarise_sweep(t, exclude=["ctl"]).set_index("method")
    assert s.loc["direct", "mean"] == pytest.approx(0.6) and s.loc["direct", "n_seeds"] == 1
    assert s.loc["random", "mean"] == pytest.approx(0.3)
    assert (s.loc["random", "min"], s.loc["random", "max"]) == pytest.approx((0.2, 0.4))
    assert s.loc["random", "n_pairs"] == 1
    with_ctl = summarise_sweep(t).set_index("method")
    assert with_ctl.loc["direct", "mean"] == pytest.approx(0.3) and with_ctl.loc["direct", "n_pairs"] == 3


def test_reference_sensitivity_deltas():
    cols = ["model_a", "model_b", "metric", "value"]
    base = pd.DataFrame([("a", "b", "mknn", 0.5), ("a", "a", "mknn", 1.0)], columns=cols)
    other = pd.DataFrame([("a", "b", "mknn", 0.3), ("a", "a", "mknn", 1.0)], columns=cols)
    detail, summary = reference_sensitivity({"r0": base, "r1": other}, "r0")
    assert detail.loc[detail.model_b == "b", "delta"].item() == pytest.approx(-0.2)
    row = summary.set_index("metric").loc["mknn"]
    assert row["mean_abs_delta"] == pytest.approx(0.2) and row["n_pairs"] == 1
    assert row["reference_model"] == "r1" and row["primary_reference"] == "r0"


def test_element_means_match_a_groupby_and_honour_the_mask():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(1000, 5))
    numbers = rng.choice([1, 8, 26], size=1000)
    valid = rng.random(1000) > 0.2
    els, means, counts = element_means(z, numbers, valid, chunk=128)
    ref = pd.DataFrame(z[valid]).groupby(numbers[valid]).mean()
    np.testing.assert_array_equal(els, ref.index)
    np.testing.assert_allclose(means, ref.to_numpy())
    assert counts.sum() == valid.sum()
    with pytest.raises(ValueError, match="rows"):
        element_means(z, numbers[:10])


def test_similarity_correlation():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 6))
    sims = {"a": cosine_matrix(x), "b": cosine_matrix(3 * x), "c": cosine_matrix(rng.normal(size=(12, 6)))}
    assert np.allclose(np.diag(sims["a"]), 1.0)
    t = similarity_correlation(sims).set_index(["model_a", "model_b"])["correlation"]
    assert t[("a", "b")] == pytest.approx(1.0) and t[("a", "a")] == pytest.approx(1.0)
    assert abs(t[("a", "c")]) < 0.5
    with pytest.raises(ValueError, match="shape"):
        similarity_correlation({"a": np.eye(3), "b": np.eye(4)})
