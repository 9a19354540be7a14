import numpy as np
import pytest

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
    assert list(t.columns) == ["model_a", "model_b", "space", "anchors", "metric", "value"]
    pairs = set(zip(t.model_a, t.model_b, strict=True))
    assert pairs == {("A", "A"), ("A", "B"), ("B", "B")}
    assert set(t.metric) >= {"mknn", "cka", "procrustes_score", "ot_cost", "composite"}
    assert not t.duplicated(["model_a", "model_b", "metric"]).any()


def test_row_mismatch_is_an_error(pair):
    a, b = pair
    with pytest.raises(ValueError, match="same rows"):
        metrics.linear_cka(a, b[:-1])
