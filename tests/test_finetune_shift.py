"""The fine-tuning experiment's analysis side (Fig. 5a-e): embedding shift measures
(platonic_mlip.finetune_shift) on synthetic stacks with known answers, and the analysis-env scripts
(finetune_probes, replay_structures, fig5abc, fig5de, finetune_accuracy) end to end on synthetic inputs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from platonic_mlip import finetune_shift as fs
from tests.conftest import ROOT

SCRIPTS = ROOT / "workflow" / "scripts"


def script(name, *args, timeout=300):
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_anchor_rows_orders_by_anchor_and_checks_the_set():
    assert fs.anchor_rows([-1, 2, -1, 0, 1]).tolist() == [3, 4, 1]
    with pytest.raises(ValueError, match="0..K-1"):
        fs.anchor_rows([-1, 0, 2])
    with pytest.raises(ValueError, match="0..K-1"):
        fs.anchor_rows([-1, -1])


def test_measures_on_known_vectors():
    x0 = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    xt = np.array([[1.5, 2.0], [0.0, 1.0], [0.0, -2.0]])
    m = fs.measures(x0, xt)
    np.testing.assert_allclose(m["norm_ratio"], [0.5, 1.0, 1.0])
    np.testing.assert_allclose(m["cosine"], [1.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(m["rel_shift"], [0.5, np.sqrt(2), 2.0])
    with pytest.raises(ValueError, match="shapes differ"):
        fs.measures(x0, xt[:2])


def _stack(rng, n=40, d=16, k=6, t=3):
    """(T, N, D) with the first k rows the anchors; later checkpoints as given by the caller."""
    e0 = rng.normal(size=(n, d)) + 0.5
    return e0, np.arange(k)


def test_spaces_see_a_global_rescaling_only_in_raw_and_a_rotation_only_in_fixed():
    rng = np.random.default_rng(0)
    e0, anchors = _stack(rng)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    stack = np.stack([e0, 0.3 * e0, e0 @ q])  # epoch 1: everything shrinks; epoch 2: the space rotates
    sp = fs.spaces(stack, anchors)
    raw1 = fs.measures(sp["raw"][0], sp["raw"][1])
    np.testing.assert_allclose(raw1["norm_ratio"], 0.3)
    # cosines are scale-free: a collapse toward the origin that keeps directions is invisible to both
    np.testing.assert_allclose(sp["fixed"][1], sp["fixed"][0], atol=1e-12)
    np.testing.assert_allclose(sp["own"][1], sp["own"][0], atol=1e-12)
    # a rotation of the whole space moves the fixed-anchor coordinates, not the own-anchor ones
    assert np.abs(sp["fixed"][2] - sp["fixed"][0]).max() > 0.1
    np.testing.assert_allclose(sp["own"][2], sp["own"][0], atol=1e-10)
    with pytest.raises(ValueError, match="checkpoints, atoms, dim"):
        fs.spaces(e0, anchors)


def test_shift_table_groups_atoms_and_leaves_anchors_out():
    rng = np.random.default_rng(1)
    n_anchor, n_run, n_au, n_cu = 6, 3, 5, 4
    e0 = rng.normal(size=(n_anchor + n_run + n_au + n_cu, 8)) + 0.3
    e1 = e0.copy()
    au = slice(n_anchor + n_run, n_anchor + n_run + n_au)
    e1[au] *= 0.5  # the Au atoms collapse toward the origin, nothing else moves
    atoms = pd.DataFrame(
        {
            "anchor": [*range(n_anchor), *[-1] * (n_run + n_au + n_cu)],
            "role": ["run"] * (n_anchor + n_run) + ["au_probe"] * n_au + ["cu_test"] * n_cu,
            "element": ["O"] * (n_anchor + n_run) + ["Au"] * n_au + ["Cu"] * n_cu,
        }
    )
    table = fs.shift_table({("naive", 0): (np.stack([e0, e1]), [0, 2])}, atoms)
    assert set(table["role"]) == {"au_probe", "cu_test", "run"}  # the anchor atoms themselves left out
    assert table.loc[table.role == "run", "n_atoms"].eq(n_run).all()
    assert set(table["space"]) == set(fs.SPACES) and set(table["epoch"]) == {0, 2}

    def value(space, role, measure, epoch=2):
        row = table[
            (table.space == space)
            & (table.role == role)
            & (table.measure == measure)
            & (table.epoch == epoch)
        ]
        assert len(row) == 1
        return row.iloc[0]

    assert value("raw", "au_probe", "norm_ratio")["mean"] == pytest.approx(0.5)
    assert value("raw", "cu_test", "norm_ratio")["mean"] == pytest.approx(1.0)
    assert value("raw", "au_probe", "cosine")["n_atoms"] == 5
    assert value("fixed", "au_probe", "cosine")["mean"] == pytest.approx(1.0)
    assert value("raw", "au_probe", "norm_ratio", epoch=0)["mean"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="embedded atoms"):
        fs.shift_table({("naive", 0): (np.stack([e0[:-1], e1[:-1]]), [0, 2])}, atoms)


# --------------------------------------------------------------------------------------------------
# scripts


def _write_labelled(path, atoms_list):
    from ase.calculators.emt import EMT

    from platonic_mlip import finetune_data as fd

    for i, a in enumerate(atoms_list):
        a.info.update(material_id=f"{a.get_chemical_formula()}-{i}", kind="bulk")
    labels = fd.emt_label(atoms_list)
    fd.write_labelled_extxyz(path, atoms_list, labels.energies, labels.forces)
    assert EMT  # EMT labels: the elements are EMT's


@pytest.fixture
def run_structures(tmp_path):
    from ase.build import bulk

    from platonic_mlip.structures import save_structures

    atoms = [
        bulk("NaCl", "rocksalt", a=5.6),
        bulk("Si", "diamond", a=5.43),
        bulk("Al", "fcc", a=4.05, cubic=True),
    ]
    save_structures(tmp_path / "run.npz", atoms, ["mp-1", "mp-2", "mp-3"])
    anchors = pd.DataFrame(
        {
            "anchor": [0, 1, 2],
            "structure_index": [0, 2, 2],
            "atom_in_structure": [1, 0, 3],
            "atom_index": [1, 4, 7],
        }
    )
    anchors.to_csv(tmp_path / "anchors.csv", index=False)
    return tmp_path


def test_finetune_probes_lists_roles_and_anchor_atoms(run_structures):
    from ase.build import bulk

    d = run_structures
    _write_labelled(d / "au.extxyz", [bulk("Au", "fcc", a=4.08), bulk("Au", "fcc", a=4.08, cubic=True)])
    _write_labelled(d / "cu.extxyz", [bulk("Cu", "fcc", a=3.61)])
    out = d / "out"
    res = script(
        "finetune_probes.py", "--au", d / "au.extxyz", "--cu-test", d / "cu.extxyz", "--structures",
        d / "run.npz", "--anchors", d / "anchors.csv", "--out-structures", out / "p.npz", "--out-atoms",
        out / "atoms.csv",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    atoms = pd.read_csv(out / "atoms.csv")
    assert atoms.groupby("role").size().to_dict() == {"run": 2 + 4, "au_probe": 1 + 4, "cu_test": 1}
    anchor = atoms[atoms.anchor >= 0].sort_values("anchor")
    assert anchor.element.tolist() == ["Cl", "Al", "Al"] and anchor.atom_in_structure.tolist() == [1, 0, 3]
    with np.load(out / "p.npz") as z:
        assert z["n_atoms"].sum() == len(atoms)
    # an anchor table without its columns: named
    pd.DataFrame({"anchor": [0]}).to_csv(d / "bad.csv", index=False)
    bad = script(
        "finetune_probes.py", "--au", d / "au.extxyz", "--cu-test", d / "cu.extxyz", "--structures",
        d / "run.npz", "--anchors", d / "bad.csv", "--out-structures", out / "q.npz", "--out-atoms",
        out / "q.csv",
    )  # fmt: skip
    assert bad.returncode != 0 and f"ERROR: {d / 'bad.csv'}: missing column(s)" in bad.stderr
    assert not (out / "q.csv").exists()


def test_replay_structures_draws_small_structures_with_the_seed(run_structures):
    d = run_structures
    a = script(
        "replay_structures.py",
        "--structures",
        d / "run.npz",
        "--n",
        2,
        "--max-atoms",
        3,
        "--out",
        d / "a.xyz",
    )
    assert a.returncode == 0, a.stderr
    from ase.io import read

    frames = read(d / "a.xyz", index=":")
    assert sorted(f.info["material_id"] for f in frames) == ["mp-1", "mp-2"]  # the 4-atom Al cell is too big
    bad = script(
        "replay_structures.py", "--structures", d / "run.npz", "--n", 3, "--max-atoms", 3, "--out", d / "b"
    )
    assert bad.returncode != 0 and "finetune.replay.structures" in bad.stderr and not (d / "b").exists()


def _morse(r, depth, r0, a=1.5):
    return depth * (1 - np.exp(-a * (r - r0))) ** 2 - depth


def test_dimer_figure_and_accuracy_table(tmp_path):
    r = np.array([1.8, 2.0, 2.2, 2.4, 2.6, 3.0, 3.5, 4.0, 5.0, 6.0])
    emt = pd.concat(
        [
            pd.DataFrame({"arm": "EMT", "pair": p, "r": r, "energy": _morse(r, 4.0, 2.3)})
            for p in ("Au-Au", "Cu-Cu")
        ]
    )
    emt.to_csv(tmp_path / "emt.csv", index=False)
    rows, acc = [], []
    for arm, au_depth in (("naive", 0.0), ("multihead", 1.3)):
        for epoch, depth in ((0, 1.4), (2, au_depth)):
            for pair in ("Au-Au", "Cu-Cu"):
                e = _morse(r, depth if pair == "Au-Au" else 1.7, 2.5) if depth else 2.0 * np.exp(-r)
                rows.append(
                    pd.DataFrame(
                        {"arm": arm, "epoch": epoch, "head": "single", "pair": pair, "r": r, "energy": e}
                    )
                )
            for s in ("cu_test", "au_probe"):
                acc.append(
                    dict(arm=arm, epoch=epoch, head="single", set=s, n_structures=2, n_atoms=8,
                         energy_rmse_meV_atom=10.0 + epoch, force_rmse_eV_A=0.1,
                         energy_rmse_vs_pretrained_meV_atom=float(epoch), force_rmse_vs_pretrained_eV_A=0.0)
                )  # fmt: skip
        pd.concat([x for x in rows if x["arm"].iloc[0] == arm]).to_csv(tmp_path / f"{arm}.csv", index=False)
        pd.DataFrame([a for a in acc if a["arm"] == arm]).to_csv(tmp_path / f"{arm}_acc.csv", index=False)
    out = tmp_path / "out"
    res = script(
        "fig5de_dimer_curves.py", "--emt", tmp_path / "emt.csv", "--dimers", tmp_path / "naive.csv",
        tmp_path / "multihead.csv", "--seeds", 0, 0, "--out-curves", out / "curves.csv", "--out-csv",
        out / "wells.csv", "--out-fig", out / "f.png", out / "f.pdf",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    wells = pd.read_csv(out / "wells.csv")
    by = {(c, p): row for c, p, row in zip(wells.curve, wells.pair, wells.itertuples(), strict=True)}
    assert by[("naive s0 ep2", "Au-Au")].repulsive and not by[("multihead s0 ep2", "Au-Au")].repulsive
    assert by[("pretrained", "Au-Au")].well_depth == pytest.approx(1.4, abs=0.05)
    assert by[("reference (EMT)", "Cu-Cu")].r_min == pytest.approx(2.3, abs=0.05)
    assert (out / "f.png").stat().st_size > 0 and (out / "f.pdf").stat().st_size > 0

    # the accuracy table joins errors, the Au shift and the wells per arm and epoch
    shift = pd.DataFrame(
        [
            dict(arm=a, seed=0, epoch=ep, space=sp, role="au_probe", element="Au", n_atoms=4, measure=m,
                 mean=(0.5 if (a == "naive" and ep == 2 and m == "norm_ratio") else 1.0), p10=0, p50=0, p90=0)
            for a in ("naive", "multihead") for ep in (0, 2) for sp in ("raw", "fixed")
            for m in ("norm_ratio", "cosine")
        ]
    )  # fmt: skip
    shift.to_csv(tmp_path / "shift.csv", index=False)
    res = script(
        "finetune_accuracy.py", "--accuracy", tmp_path / "naive_acc.csv", tmp_path / "multihead_acc.csv",
        "--seeds", 0, 0, "--shift", tmp_path / "shift.csv", "--dimers", out / "wells.csv", "--out",
        out / "acc.csv",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    t = pd.read_csv(out / "acc.csv").set_index(["arm", "epoch"])
    assert t.loc[("naive", 2), "au_norm_ratio_raw"] == pytest.approx(0.5)
    assert bool(t.loc[("naive", 2), "AuAu_repulsive"]) and not bool(t.loc[("multihead", 2), "AuAu_repulsive"])
    assert t.loc[("naive", 0), "AuAu_well_depth_eV"] == pytest.approx(
        1.4, abs=0.05
    )  # epoch 0: the pretrained
    assert t.loc[("multihead", 2), "au_probe_energy_rmse_vs_pretrained_meV_atom"] == 2.0


def test_fig5abc_script_on_a_synthetic_collapse(tmp_path):
    rng = np.random.default_rng(3)
    n_anchor, n_au, n_cu = 8, 6, 4
    atoms = pd.DataFrame(
        {
            "row": range(n_anchor + n_au + n_cu),
            "anchor": [*range(n_anchor), *[-1] * (n_au + n_cu)],
            "role": ["anchor"] * n_anchor + ["au_probe"] * n_au + ["cu_test"] * n_cu,
            "element": ["O"] * n_anchor + ["Au"] * n_au + ["Cu"] * n_cu,
            "kind": ["anchor"] * n_anchor + ["bulk"] * n_au + ["rattled"] * n_cu,
        }
    )
    atoms.to_csv(tmp_path / "atoms.csv", index=False)
    e0 = rng.normal(size=(len(atoms), 12)) + 0.4
    for arm, factor in (("naive", 0.2), ("multihead", 0.95)):
        stack = np.stack([e0, e0.copy(), e0.copy()])
        stack[1, n_anchor : n_anchor + n_au] *= (1 + factor) / 2
        stack[2, n_anchor : n_anchor + n_au] *= factor
        np.savez(tmp_path / f"{arm}.npz", embeddings=stack, epochs=np.array([0, 1, 2]), arm=np.asarray(arm))
    res = script(
        "fig5abc_finetune_embeddings.py", "--atoms", tmp_path / "atoms.csv", "--evals", tmp_path / "naive.npz",
        tmp_path / "multihead.npz", "--seeds", 0, 0, "--out-csv", tmp_path / "t.csv", "--out-fig",
        tmp_path / "f.png", tmp_path / "f.pdf",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    t = pd.read_csv(tmp_path / "t.csv")
    last = t[(t.epoch == 2) & (t.space == "raw") & (t.measure == "norm_ratio") & (t.element == "Au")]
    assert last.set_index("arm")["mean"].to_dict() == pytest.approx({"naive": 0.2, "multihead": 0.95})
    assert "naive: Au norm ratio 0.200" in res.stdout
    # an evaluation of another probe set is refused, naming the file
    np.savez(
        tmp_path / "bad.npz", embeddings=np.zeros((2, 3, 12)), epochs=np.array([0, 1]), arm=np.asarray("x")
    )
    bad = script(
        "fig5abc_finetune_embeddings.py", "--atoms", tmp_path / "atoms.csv", "--evals", tmp_path / "bad.npz",
        "--seeds", 0, "--out-csv", tmp_path / "u.csv", "--out-fig", tmp_path / "g.png",
    )  # fmt: skip
    assert bad.returncode != 0 and f"ERROR: {tmp_path / 'bad.npz'}: 3 atoms" in bad.stderr
    assert not (tmp_path / "u.csv").exists()
