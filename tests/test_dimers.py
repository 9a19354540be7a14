"""Dimer curves (platonic_mlip.dimers): geometry, curves with any ASE calculator, well features on analytic
curves with known answers, and EMT's Au-Au and Cu-Cu dimers."""

import numpy as np
import pandas as pd
import pytest
from ase.calculators.emt import EMT

from platonic_mlip import dimers as dm

GRID = np.round(np.arange(1.5, 8.0001, 0.05), 10)
H = 0.05


def morse(r, d_e, r_e, a):
    return d_e * (1 - np.exp(-a * (r - r_e))) ** 2 - d_e


def test_dimer_geometry():
    atoms = dm.dimer("Au", "Cu", 2.37, box=20.0)
    assert atoms.get_chemical_symbols() == ["Au", "Cu"] and not atoms.pbc.any()
    assert atoms.get_distance(0, 1) == pytest.approx(2.37, abs=1e-14)
    assert np.allclose(atoms.positions.mean(axis=0), [10, 10, 10])
    with pytest.raises(ValueError, match="box/2"):
        dm.dimer("Au", "Au", 10.5, box=20.0)
    with pytest.raises(ValueError, match="pair of element symbols"):
        dm.dimer_curve(EMT(), "Au-Xx", [2.0])


@pytest.mark.parametrize(("d_e", "r_e", "a"), [(2.3, 2.47, 1.6), (0.4, 3.1, 1.1), (5.0, 2.2, 2.0)])
def test_features_recover_a_morse_well_within_the_grid_spacing(d_e, r_e, a):
    e = morse(GRID, d_e, r_e, a)
    for refine in (True, False):
        f = dm.curve_features(GRID, e, refine=refine)
        assert abs(f["r_min"] - r_e) <= (H / 10 if refine else H / 2)
        # the grid minimum misses -D_e by at most D_e (a h/2)^2 (harmonic near r_e)
        assert f["e_min"] == pytest.approx(-d_e, abs=d_e * (a * H / 2) ** 2 + 1e-12)
        assert f["e_inf"] == e[-1] and f["well_depth"] == pytest.approx(e[-1] - f["e_min"], abs=1e-12)
        assert f["well_depth"] == pytest.approx(d_e, abs=d_e * (a * H) ** 2 + abs(e[-1]))
        assert not f["repulsive"] and not f["monotonic"] and not f["min_at_shortest"]
    assert f["n_points"] == len(GRID) and (f["r_first"], f["r_last"]) == (1.5, 8.0)


def test_features_do_not_depend_on_the_order_or_an_energy_offset():
    e = morse(GRID, 2.0, 2.5, 1.5)
    perm = np.random.default_rng(0).permutation(len(GRID))
    a = dm.curve_features(GRID, e)
    b = dm.curve_features(GRID[perm], e[perm] + 7.0)
    assert b["r_min"] == pytest.approx(a["r_min"]) and b["well_depth"] == pytest.approx(a["well_depth"])


def test_a_purely_repulsive_exponential_is_flagged_repulsive():
    f = dm.curve_features(GRID, 20.0 * np.exp(-2.0 * GRID))
    assert f["repulsive"] and f["monotonic"] and not f["min_at_shortest"]
    assert f["r_min"] == GRID[-1] and f["well_depth"] == 0.0


def test_a_well_shallower_than_the_tolerance_is_repulsive_and_a_deeper_one_is_not():
    shallow = 10.0 * np.exp(-3.0 * GRID) + morse(GRID, 0.03, 3.5, 1.5)
    assert dm.curve_features(GRID, shallow)["repulsive"]
    assert not dm.curve_features(GRID, shallow, tol=0.01)["repulsive"]


def test_a_curve_without_a_wall_in_the_grid_is_not_called_repulsive():
    r = GRID[GRID >= 3.0]  # the grid starts beyond the minimum at 2.4 A
    f = dm.curve_features(r, morse(r, 2.0, 2.4, 1.5))
    assert f["min_at_shortest"] and not f["repulsive"] and f["r_min"] == 3.0


def test_bad_curves_are_refused():
    with pytest.raises(ValueError, match="length >= 3"):
        dm.curve_features([1.0, 2.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="appear once"):
        dm.curve_features([1.0, 2.0, 2.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        dm.curve_features([1.0, 2.0, 3.0], [0.0, np.nan, 2.0])


@pytest.mark.parametrize("pair", ["Au-Au", "Cu-Cu"])
def test_emt_dimers_have_a_well_between_2_and_3_angstrom(pair):
    e = dm.dimer_curve(EMT(), pair, dm.DIMER_GRID)
    f = dm.curve_features(dm.DIMER_GRID, e)
    assert 2.0 < f["r_min"] < 3.0
    assert f["well_depth"] > 1.0 and not f["repulsive"] and not f["min_at_shortest"]
    assert f["e_inf"] == pytest.approx(0.0, abs=1e-9)  # 6 A is past EMT's cutoff: the free atoms


def test_dimer_curve_takes_a_calculator_a_class_or_a_factory():
    r = [2.0, 2.5, 3.0]
    by_instance = dm.dimer_curve(EMT(), ("Cu", "Cu"), r)
    assert np.array_equal(by_instance, dm.dimer_curve(EMT, "Cu-Cu", r))
    assert np.array_equal(by_instance, dm.dimer_curve(lambda: EMT(), ["Cu", "Cu"], r))
    raw = dm.dimer_curve(EMT(), "Cu-Cu", r, relative=False)
    iso = dm.isolated_atom("Cu")
    iso.calc = EMT()
    assert raw - by_instance == pytest.approx(2 * iso.get_potential_energy())
    with pytest.raises(TypeError, match="neither an ASE calculator"):
        dm.dimer_curve(3.0, "Cu-Cu", r)


def test_features_table_has_one_row_per_arm_and_pair():
    curves = {
        ("pretrained", "Au-Au"): (GRID, morse(GRID, 2.3, 2.47, 1.6)),
        ("naive", "Au-Au"): (GRID, 20.0 * np.exp(-2.0 * GRID)),
        ("naive", "Cu-Cu"): (GRID, morse(GRID, 2.0, 2.22, 1.5)),
    }
    long = dm.curves_frame(curves)
    assert list(long.columns) == ["arm", "pair", "r", "energy"] and len(long) == 3 * len(GRID)
    table = dm.features_table(long.sample(frac=1.0, random_state=0))
    assert list(table.columns) == ["arm", "pair", *dm.FEATURE_COLUMNS]
    t = table.set_index(["arm", "pair"])
    assert len(t) == 3
    assert not t.loc[("pretrained", "Au-Au"), "repulsive"] and t.loc[("naive", "Au-Au"), "repulsive"]
    assert t.loc[("naive", "Cu-Cu"), "r_min"] == pytest.approx(2.22, abs=H)
    pd.testing.assert_frame_equal(dm.features_table(curves), dm.features_table(long))


def test_calculator_curves_for_several_arms():
    r = [2.0, 2.3, 2.6, 6.0]
    long = dm.calculator_curves({"EMT": EMT, "EMT-again": EMT()}, pairs=("Au-Au", ("Cu", "Cu")), distances=r)
    assert long.groupby(["arm", "pair"]).size().to_dict() == {
        ("EMT", "Au-Au"): 4,
        ("EMT", "Cu-Cu"): 4,
        ("EMT-again", "Au-Au"): 4,
        ("EMT-again", "Cu-Cu"): 4,
    }
    a = long[long["arm"] == "EMT"]["energy"].to_numpy()
    assert np.array_equal(a, long[long["arm"] == "EMT-again"]["energy"].to_numpy())
