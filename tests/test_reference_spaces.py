"""Reference spaces built without learning (platonic_mlip.reference_spaces) and the element-identity reading
of the metrics (metrics.pairwise_table with elements, claims 8-element / 8-physics)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk

from platonic_mlip import reference_spaces as rs
from platonic_mlip.claims import Roster, claim_controls, with_blocks
from platonic_mlip.metrics import BEYOND_ELEMENT, beyond_element, element_shuffle, pairwise_table

pytest.importorskip("dscribe")


@pytest.fixture(scope="module")
def soap():
    return rs.Soap()


def _rotated(atoms, seed=0):
    from scipy.spatial.transform import Rotation

    rot = Rotation.random(random_state=seed).as_matrix()
    out = atoms.copy()
    out.set_cell(atoms.cell[:] @ rot.T, scale_atoms=False)
    out.set_positions(atoms.positions @ rot.T)
    return out


def _structures():
    nacl = bulk("NaCl", "rocksalt", a=5.64) * (2, 1, 1)
    zno = bulk("ZnO", "wurtzite", a=3.25, c=5.2)
    zno.rattle(0.05, seed=3)
    return [nacl, zno]


@pytest.mark.parametrize("kind", ["soap", "atomic-states"])
def test_physics_descriptors_are_rotation_invariant(kind, soap):
    for atoms in _structures():
        f = (lambda a: soap([a])) if kind == "soap" else (lambda a: rs.atomic_states([a], soap))
        here, turned = f(atoms), f(_rotated(atoms, seed=len(atoms)))
        assert np.abs(here - turned).max() < 1e-6
        # and it can fail: a distorted copy moves the vectors
        strained = atoms.copy()
        strained.set_cell(atoms.cell[:] * [1.0, 1.0, 1.1], scale_atoms=True)
        assert np.abs(here - f(strained)).max() > 1e-3


@pytest.mark.parametrize("kind", ["soap", "atomic-states"])
def test_physics_descriptors_follow_a_permutation_of_the_atoms(kind, soap):
    atoms = _structures()[1]
    perm = np.random.default_rng(0).permutation(len(atoms))
    f = (lambda a: soap([a])) if kind == "soap" else (lambda a: rs.atomic_states([a], soap))
    assert np.abs(f(atoms)[perm] - f(atoms[perm])).max() < 1e-6


def test_equivalent_atoms_coincide_and_different_environments_differ(soap):
    nacl = bulk("NaCl", "rocksalt", a=5.64) * (2, 1, 1)  # two equivalent Na, two equivalent Cl
    x = rs.atomic_states([nacl], soap)
    na = np.flatnonzero(nacl.numbers == 11)
    assert np.abs(x[na[0]] - x[na[1]]).max() < 1e-6
    # O in wurtzite ZnO and O in rocksalt MgO: the same element, different environments
    zno, mgo = bulk("ZnO", "wurtzite", a=3.25, c=5.2), bulk("MgO", "rocksalt", a=4.21)
    for f in (lambda a: soap([a]), lambda a: rs.atomic_states([a], soap)):
        o1 = f(zno)[zno.numbers == 8][0]
        o2 = f(mgo)[mgo.numbers == 8][0]
        assert np.abs(o1 - o2).max() > 1e-2
    # the element baselines cannot tell them apart
    assert np.array_equal(rs.element_onehot([8]), rs.element_onehot([8]))
    assert np.array_equal(rs.element_random([8, 8], 16, 1)[0], rs.element_random([8], 16, 1)[0])


def test_rows_have_unit_norm(soap):
    for f in (lambda a: soap(a), lambda a: rs.atomic_states(a, soap)):
        x = f(_structures())
        assert np.allclose(np.linalg.norm(x, axis=1), 1.0)


def test_charges_of_a_dimer_are_the_two_site_solution():
    props = rs.element_properties()
    dimer = Atoms("NaCl", positions=[[0, 0, 0], [2.4, 0, 0]], cell=[30, 30, 30], pbc=True)
    q = rs.environment_charges(dimer)
    chi, eta = props[[11, 17], 2], props[[11, 17], 3]
    expect = (chi[1] - chi[0]) / (eta[0] + eta[1])
    assert q[0] == pytest.approx(expect) and q[1] == pytest.approx(-expect)
    assert 0.1 < q[0] < 1  # electrons flow to chlorine
    assert np.abs(rs.environment_charges(bulk("Cu", "fcc", a=3.6))).max() == 0
    lone = Atoms("Na", positions=[[0, 0, 0]], cell=[20, 20, 20], pbc=True)
    assert rs.environment_charges(lone).tolist() == [0.0]


def test_state_weights_split_the_charge():
    w = rs.state_weights(np.array([0.3, -0.2, 0.0, 1.5]))
    assert np.allclose(w.sum(1), 1.0)
    assert np.allclose(w[0], [0.7, 0.3, 0.0]) and np.allclose(w[1], [0.8, 0.0, 0.2])
    assert np.allclose(w[2], [1, 0, 0]) and np.allclose(w[3], [0, 1, 0])


def test_elements_without_tabulated_data_are_refused(soap):
    odd = bulk("Cu", "fcc", a=3.6)
    odd.numbers[0] = 95
    with pytest.raises(ValueError, match="95"):
        soap([odd])


def test_element_shuffle_moves_rows_only_within_an_element():
    labels = np.array(list("ABABCCCA"))
    perm = element_shuffle(labels, np.random.default_rng(0))
    assert sorted(perm) == list(range(len(labels)))
    assert (labels[perm] == labels).all()


def _spaces(n=400, seed=0):
    """An element part shared by every space; environment signal shared by a and b, not by c."""
    rng = np.random.default_rng(seed)
    elements = rng.integers(0, 8, size=n)
    table = rng.normal(size=(8, 16)) * 3
    env = rng.normal(size=(n, 16))
    return elements, {
        "a": table[elements] + env,
        "b": table[elements] + env + 0.1 * rng.normal(size=(n, 16)),
        "c": table[elements] + rng.normal(size=(n, 16)),
        "onehot": np.eye(8)[elements],
    }


def test_beyond_element_separates_shared_environment_from_shared_elements():
    elements, spaces = _spaces()
    t = pairwise_table(spaces, "raw", elements=elements, resamples=np.zeros((0, 400), dtype=int))
    t = t[t["metric"].isin(["mknn", BEYOND_ELEMENT])].set_index(["model_a", "model_b", "metric"])["value"]
    # a-c agree on elements only: high raw mknn, nothing beyond element identity
    assert t[("a", "c", "mknn")] > 0.15
    assert abs(t[("a", "c", BEYOND_ELEMENT)]) < 0.05
    assert t[("a", "b", BEYOND_ELEMENT)] > 0.5
    assert abs(t[("a", "onehot", BEYOND_ELEMENT)]) < 0.05
    assert t[("a", "a", BEYOND_ELEMENT)] == pytest.approx(1.0)
    assert beyond_element(1.0, 1.0) == 0.0


def test_without_elements_the_table_has_no_beyond_element_rows():
    _, spaces = _spaces(100)
    assert BEYOND_ELEMENT not in set(pairwise_table(spaces, "raw")["metric"])
    with pytest.raises(ValueError, match="elements"):
        pairwise_table(spaces, "raw", elements=np.zeros(5))


def _roster():
    models = ["t1", "t2", "u1", "e1", "p1"]
    roles = {"t1": "trained", "t2": "trained", "u1": "untrained", "e1": "element", "p1": "physics"}
    fams = {"t1": "x", "t2": "y", "u1": "x", "e1": "reference", "p1": "reference"}
    return Roster.make(models, ["u1", "e1", "p1"], fams, roles)


def test_roster_pairs_by_role():
    r = _roster()
    assert r.trained == ["t1", "t2"] and r.untrained == ["u1"]
    assert r.pairs("trained") == [("t1", "t2")]
    assert r.pairs("control") == [("t1", "u1"), ("t2", "u1")]
    assert r.pairs("same-control") == [("t1", "u1")]
    assert r.pairs("element") == [("t1", "e1"), ("t2", "e1")]
    assert r.pairs("physics") == [("t1", "p1"), ("t2", "p1")]
    with pytest.raises(ValueError, match="contradicts"):
        Roster.make(["t1", "e1"], [], {"t1": "x", "e1": "y"}, {"e1": "element"})


def _table(values):
    rows = []
    for (a, b), (v, lo, hi) in values.items():
        for metric in ("mknn", BEYOND_ELEMENT):
            rows.append(
                dict(
                    model_a=a,
                    model_b=b,
                    space="raw",
                    anchors="",
                    metric=metric,
                    value=v,
                    mean=v,
                    ci_low=lo,
                    ci_high=hi,
                )
            )
    return with_blocks(pd.DataFrame(rows))


def test_claims_8_read_the_groups():
    r = _roster()
    good = {("t1", "t2"): (0.6, 0.55, 0.65)}
    good.update({(t, "u1"): (0.1, 0.05, 0.15) for t in ("t1", "t2")})
    good.update({(t, "e1"): (0.3, 0.25, 0.35) for t in ("t1", "t2")})
    good.update({(t, "p1"): (0.4, 0.35, 0.45) for t in ("t1", "t2")})
    rows = pd.DataFrame(claim_controls(_table(good), r, "raw"))
    verdicts = dict(zip(rows["claim_id"] + "/" + rows["metric"], rows["verdict"], strict=True))
    assert verdicts == {
        "8-element/mknn": "supported",
        f"8-element/{BEYOND_ELEMENT}": "supported",
        "8-physics/mknn": "supported",
    }
    assert "trained–physics 0.400" in rows["comparison"].iloc[0]
    bad = dict(good)
    bad.update({(t, "p1"): (0.1, 0.05, 0.15) for t in ("t1", "t2")})
    bad[("t1", "t2")] = (0.3, 0.25, 0.35)
    rows = pd.DataFrame(claim_controls(_table(bad), r, "raw"))
    assert set(rows["verdict"]) == {"not supported", "supported"}
    assert (rows.loc[rows["claim_id"] == "8-physics", "verdict"] == "not supported").all()


def test_claim_5_averages_trained_models_only_and_contrasts_untrained_ones():
    from platonic_mlip.claims import claim_element_purity, element_purity_table

    rng = np.random.default_rng(0)
    numbers = np.array([3, 11, 19, 37, 4, 12, 20, 38, 9, 17, 35, 53])
    group = {3: 0, 11: 0, 19: 0, 37: 0, 4: 1, 12: 1, 20: 1, 38: 1, 9: 2, 17: 2, 35: 2, 53: 2}
    centres = rng.normal(size=(3, 8)) * 5
    grouped = np.array([centres[group[z]] for z in numbers]) + rng.normal(size=(12, 8))
    vectors = {m: rng.normal(size=(12, 8)) for m in ("u1", "e1", "p1")}
    vectors.update(t1=grouped, t2=grouped + 0.1 * rng.normal(size=(12, 8)))
    elements = {"numbers": numbers, "counts": None, "vectors": vectors}
    r = _roster()
    rows = claim_element_purity(elements, r, "direct")
    table = element_purity_table(elements, r)
    group_rows = table[table["key"] == "group"]
    trained_mean = group_rows[group_rows["role"] == "trained"]["score"].mean()
    assert rows[0]["ours"] == pytest.approx(trained_mean)
    assert rows[0]["ours"] != pytest.approx(group_rows[group_rows["role"] != "untrained"]["score"].mean())
    assert "untrained controls (1): u1" in rows[0]["pairs"]
