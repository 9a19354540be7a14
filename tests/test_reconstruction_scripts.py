"""The Chorna et al. reconstruction scripts end to end on tiny synthetic runs, with answers known from
construction: feature_reconstruction, structure_cumulants, cumulant_orders, structure_reconstruction,
reconstruction_heatmaps, finetune_bias, papers_side_by_side and layer_dependence (workflow/scripts)."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

SCRIPTS = ROOT / "workflow" / "scripts"
ENV = os.environ | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}

#: space group -> crystal system of the synthetic structures (International Tables ranges)
SPACEGROUPS = {225: "cubic", 62: "orthorhombic", 194: "hexagonal", 14: "monoclinic"}


def _run(script: str, *args, ok: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPTS / script), *map(str, args)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=ENV)
    if ok:
        assert res.returncode == 0, f"{script} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    else:
        assert res.returncode != 0, f"{script} succeeded but should not have:\n{res.stdout[-3000:]}"
    return res


def _atoms(sizes, spacegroups, first_id: int = 100) -> pd.DataFrame:
    """atoms.csv of structures with the given sizes; material ids mp-<first_id + s> (all the same length,
    so that no id is a substring of another)."""
    rows = []
    for s, (n, sg) in enumerate(zip(sizes, spacegroups, strict=True)):
        for j in range(n):
            rows.append([len(rows), s, f"mp-{first_id + s}", j, ["O", "Si", "Mg"][(s + j) % 3], sg])
    cols = ["atom_index", "structure_index", "material_id", "atom_in_structure", "element", "spacegroup"]
    return pd.DataFrame(rows, columns=cols)


def _meta(path: Path, skipped=()):
    entries = [
        {"material_id": m, "atom_start": int(a), "atom_stop": int(b), "reason": "unsupported element"}
        for m, a, b in skipped
    ]
    path.write_text(json.dumps({"skipped": entries}))


def _span(atoms: pd.DataFrame, material_id: str) -> tuple[int, int]:
    idx = np.flatnonzero(atoms["material_id"].to_numpy() == material_id)
    return int(idx[0]), int(idx[-1]) + 1


# ---------------------------------------------------------------- feature_reconstruction (atom level)

MODELS = ("mA", "mB", "mC")
WIDTHS = {"mA": 6, "mB": 8, "mC": 5}
SKIPPED_ID = "mp-105"  # model mC's embedding job skipped this structure: NaN rows in mC only


def _write_atom_run(tmp: Path) -> dict:
    """40 structures of 8-12 atoms (400 atoms), four crystal systems. mB = mA @ M with M (6, 8) of full
    rank (an exact invertible map onto its image), mC independent noise; mC skipped mp-105."""
    rng = np.random.default_rng(7)
    sizes = [8 + s % 5 for s in range(40)]
    atoms = _atoms(sizes, [list(SPACEGROUPS)[s % 4] for s in range(40)])
    n = len(atoms)
    a = rng.normal(size=(n, WIDTHS["mA"]))
    mats = {
        "mA": a,
        "mB": a @ rng.normal(size=(WIDTHS["mA"], WIDTHS["mB"])),
        "mC": rng.normal(size=(n, WIDTHS["mC"])),
    }
    start, stop = _span(atoms, SKIPPED_ID)
    mats["mC"][start:stop] = np.nan
    atoms.to_csv(tmp / "atoms.csv", index=False)
    for m in MODELS:
        np.save(tmp / f"{m}.npy", mats[m].astype(np.float32))
        _meta(tmp / f"{m}.json", [(SKIPPED_ID, start, stop)] if m == "mC" else [])
    valid = np.ones(n, dtype=bool)
    valid[start:stop] = False
    return dict(atoms=atoms, valid=valid, skipped=(start, stop))


def _feature_args(tmp: Path, out: Path, n_test: int, *extra, matrices=None):
    matrices = matrices or [tmp / f"{m}.npy" for m in MODELS]
    return [
        "--atoms",
        tmp / "atoms.csv",
        "--space",
        "raw",
        "--models",
        *MODELS,
        "--matrices",
        *matrices,
        "--meta",
        *[tmp / f"{m}.json" for m in MODELS],
        "--n-test",
        n_test,
        "--out",
        out / "table.csv",
        "--out-split",
        out / "split.csv",
        *extra,
    ]


@pytest.fixture(scope="module")
def atom_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("atom_run")
    run = _write_atom_run(tmp)
    _run(
        "feature_reconstruction.py",
        *_feature_args(tmp, tmp, 100, "--repeats", 2, "--lfre-test", 30, "--seed", 3),
    )
    return run | dict(
        dir=tmp,
        table=pd.read_csv(tmp / "table.csv"),
        split=pd.read_csv(tmp / "split.csv", dtype={"stratum": str}),
    )


def test_feature_reconstruction_pairs_draws_and_known_errors(atom_run):
    table = atom_run["table"]
    expected = {(d, s, t) for d in (0, 1, 2) for s in MODELS for t in MODELS}
    got = list(zip(table["draw"], table["source"], table["target"], strict=True))
    assert len(got) == len(set(got)) == 27
    assert set(got) == expected
    assert (table["space"] == "raw").all()
    n_valid = int(atom_run["valid"].sum())
    assert (table["n_test"] == 100).all()
    assert (table["n_test_lfre"] == 30).all()
    assert (table["n_train"] + table["n_test"] == n_valid).all()  # the skipped structure is in neither set
    k = [min(WIDTHS[s], WIDTHS[t]) for s, t in zip(table["source"], table["target"], strict=True)]
    assert (table["k"] == k).all()
    assert np.isfinite(table[["gfre", "lfre"]].to_numpy()).all()
    g = table.set_index(["draw", "source", "target"])["gfre"]
    for d in (0, 1, 2):
        for m in MODELS:
            assert g[(d, m, m)] < 1e-4  # a space rebuilds itself
        assert g[(d, "mA", "mB")] < 1e-4  # mB = mA @ M exactly (up to float32)
        assert g[(d, "mB", "mA")] < 1e-4  # M has a left inverse
        for s, t in [("mA", "mC"), ("mC", "mA"), ("mB", "mC"), ("mC", "mB")]:
            assert 0.8 < g[(d, s, t)] < 1.2, (d, s, t)  # independent noise: no better than the mean


def test_feature_reconstruction_split_file(atom_run):
    split, atoms, valid = atom_run["split"], atom_run["atoms"], atom_run["valid"]
    assert list(split.columns) == ["atom_index", "material_id", "element", "stratum"]
    assert len(split) == 100
    assert split["atom_index"].is_unique
    assert valid[split["atom_index"].to_numpy()].all()
    assert SKIPPED_ID not in set(split["material_id"])
    by_atom = atoms.set_index("atom_index")
    assert (
        split["material_id"].to_numpy() == by_atom.loc[split["atom_index"], "material_id"].to_numpy()
    ).all()
    expected_stratum = by_atom.loc[split["atom_index"], "spacegroup"].map(SPACEGROUPS).to_numpy()
    assert (split["stratum"].to_numpy() == expected_stratum).all()
    # stratified: every crystal system of the run is drawn
    assert set(split["stratum"]) == set(SPACEGROUPS.values())


def test_feature_reconstruction_unlisted_nan_names_model_and_structure(atom_run, tmp_path):
    src, atoms = atom_run["dir"], atom_run["atoms"]
    x = np.load(src / "mA.npy")
    start, _ = _span(atoms, "mp-117")
    x[start + 1, 2] = np.nan  # not listed as skipped in mA.json
    np.save(tmp_path / "mA_bad.npy", x)
    matrices = [tmp_path / "mA_bad.npy", src / "mB.npy", src / "mC.npy"]
    res = _run("feature_reconstruction.py", *_feature_args(src, tmp_path, 100, matrices=matrices), ok=False)
    err = res.stderr + res.stdout
    assert "model mA" in err
    assert "mp-117" in err
    assert not (tmp_path / "table.csv").exists()


def test_feature_reconstruction_row_count_mismatch_names_file(atom_run, tmp_path):
    src = atom_run["dir"]
    np.save(tmp_path / "mB_short.npy", np.load(src / "mB.npy")[:-1])
    matrices = [src / "mA.npy", tmp_path / "mB_short.npy", src / "mC.npy"]
    res = _run("feature_reconstruction.py", *_feature_args(src, tmp_path, 100, matrices=matrices), ok=False)
    err = res.stderr + res.stdout
    assert "mB_short.npy" in err
    assert "model mB" in err
    assert not (tmp_path / "table.csv").exists()


def test_feature_reconstruction_test_set_larger_than_half(atom_run, tmp_path):
    n_valid = int(atom_run["valid"].sum())
    res = _run(
        "feature_reconstruction.py", *_feature_args(atom_run["dir"], tmp_path, n_valid // 2 + 1), ok=False
    )
    assert "reconstruction.n_test" in res.stderr + res.stdout
    assert not (tmp_path / "table.csv").exists()


# ---------------------------------------------------------------- structure level: cumulants and orders

N_MULTI = 100  # multi-atom structures kept (the skipped one excluded)
STRUCT_SKIPPED = "mp-240"  # model q skipped it


@pytest.fixture(scope="module")
def cumulant_run(tmp_path_factory):
    """101 structures of 3-7 atoms and 3 single-atom structures; model p (D=3), model q = p @ M (D=2),
    q skipped mp-240 (a 4-atom structure)."""
    tmp = tmp_path_factory.mktemp("cumulant_run")
    rng = np.random.default_rng(11)
    sizes = [3 + s % 5 for s in range(N_MULTI + 1)]
    singles = {10, 50, 90}  # positions of the single-atom structures
    all_sizes, k = [], 0
    for s in range(N_MULTI + 4):
        if s in singles:
            all_sizes.append(1)
        else:
            all_sizes.append(sizes[k])
            k += 1
    atoms = _atoms(all_sizes, [list(SPACEGROUPS)[s % 4] for s in range(len(all_sizes))], first_id=200)
    n = len(atoms)
    p = rng.normal(size=(n, 3)) + rng.normal(size=(len(all_sizes), 3))[atoms["structure_index"]]
    q = p @ rng.normal(size=(3, 2))
    start, stop = _span(atoms, STRUCT_SKIPPED)
    assert stop - start > 1
    q[start:stop] = np.nan
    atoms.to_csv(tmp / "atoms.csv", index=False)
    np.save(tmp / "p.npy", p.astype(np.float32))
    np.save(tmp / "q.npy", q.astype(np.float32))
    _meta(tmp / "p.json")
    _meta(tmp / "q.json", [(STRUCT_SKIPPED, start, stop)])
    _run(
        "structure_cumulants.py",
        "--atoms",
        tmp / "atoms.csv",
        "--models",
        "p",
        "q",
        "--raw",
        tmp / "p.npy",
        tmp / "q.npy",
        "--meta",
        tmp / "p.json",
        tmp / "q.json",
        "--out",
        tmp / "cp.npy",
        tmp / "cq.npy",
        "--out-structures",
        tmp / "structures.csv",
        "--out-dropped",
        tmp / "dropped.csv",
    )
    single_ids = {f"mp-{200 + s}" for s in singles}
    return dict(dir=tmp, atoms=atoms, p=p, q=q, single_ids=single_ids)


def test_structure_cumulants_dropped_and_blocks(cumulant_run):
    tmp, atoms = cumulant_run["dir"], cumulant_run["atoms"]
    dropped = pd.read_csv(tmp / "dropped.csv")
    reasons = dict(zip(dropped["material_id"], dropped["reason"], strict=True))
    assert set(reasons) == cumulant_run["single_ids"] | {STRUCT_SKIPPED}
    for mid in cumulant_run["single_ids"]:
        assert "fewer than 2 atoms" in reasons[mid]
    assert "skipped" in reasons[STRUCT_SKIPPED]
    assert (dropped.set_index("material_id").loc[list(cumulant_run["single_ids"]), "n_atoms"] == 1).all()

    structures = pd.read_csv(tmp / "structures.csv")
    dropped_ids = set(reasons)
    expected_ids = [m for m in atoms["material_id"].unique() if m not in dropped_ids]
    assert list(structures["material_id"]) == expected_ids
    assert len(structures) == N_MULTI
    assert list(structures["row"]) == list(range(N_MULTI))
    assert list(structures["stratum"]) == list(structures["spacegroup"].map(SPACEGROUPS))

    for name, width in (("p", 3), ("q", 2)):
        blocks = np.load(tmp / f"c{name}.npy")
        assert blocks.shape == (N_MULTI, 8, width)
        assert np.isfinite(blocks).all()
        x = np.asarray(cumulant_run[name], dtype=np.float32).astype(np.float64)
        frame = pd.DataFrame(x).assign(material_id=atoms["material_id"])
        means = frame.groupby("material_id").mean().loc[expected_ids].to_numpy()
        np.testing.assert_allclose(blocks[:, 0, :], means, rtol=1e-5, atol=1e-5)


def test_cumulant_orders_known_answers(cumulant_run, tmp_path):
    tmp = cumulant_run["dir"]
    _run(
        "cumulant_orders.py",
        "--models",
        "p",
        "q",
        "--cumulants",
        tmp / "cp.npy",
        tmp / "cq.npy",
        "--structures",
        tmp / "structures.csv",
        "--n-test",
        20,
        "--out",
        tmp_path / "orders.csv",
        "--out-fig",
        tmp_path / "orders.png",
    )
    table = pd.read_csv(tmp_path / "orders.csv")
    keys = list(zip(table["model"], table["source_order"], table["target_order"], strict=True))
    expected = {(m, s, t) for m in ("p", "q") for s in range(1, 9) for t in range(1, 9)}
    assert len(keys) == len(set(keys)) == 128
    assert set(keys) == expected
    assert (table["n_test"] == 20).all() and (table["n_train"] == N_MULTI - 20).all()
    width = {"p": 3, "q": 2}
    k = [min(s, t) * width[m] for m, s, t in keys]
    assert (table["k"] == k).all()  # below --lfre-k-max (100)
    g = table.set_index(["model", "source_order", "target_order"])["gfre"]
    for m, s, t in expected:
        if s >= t:  # order s holds blocks 1..t: an exact projection
            assert g[(m, s, t)] < 1e-5, (m, s, t)
    for m in ("p", "q"):
        assert g[(m, 1, 8)] > 0.05  # the means alone do not give the higher cumulants
    assert (tmp_path / "orders.png").stat().st_size > 0


def test_structure_reconstruction_pairs(cumulant_run, tmp_path):
    tmp = cumulant_run["dir"]
    _run(
        "structure_reconstruction.py",
        "--models",
        "p",
        "q",
        "--cumulants",
        tmp / "cp.npy",
        tmp / "cq.npy",
        "--structures",
        tmp / "structures.csv",
        "--order",
        1,
        "--n-test",
        20,
        "--out",
        tmp_path / "struct.csv",
        "--out-fig",
        tmp_path / "struct.png",
    )
    table = pd.read_csv(tmp_path / "struct.csv")
    pairs = list(zip(table["source"], table["target"], strict=True))
    assert len(pairs) == len(set(pairs)) == 4
    assert set(pairs) == set(itertools.product(("p", "q"), repeat=2))
    assert (table["order"] == 1).all() and (table["n_test"] == 20).all()
    g = table.set_index(["source", "target"])["gfre"]
    assert g[("p", "p")] < 1e-5 and g[("q", "q")] < 1e-5
    assert g[("p", "q")] < 1e-4  # the mean of p @ M is (mean of p) @ M
    assert g[("q", "p")] > 0.1  # 2 columns cannot rebuild 3 independent ones
    assert (tmp_path / "struct.png").stat().st_size > 0


@pytest.mark.parametrize("script", ["structure_reconstruction.py", "cumulant_orders.py"])
def test_structure_test_set_larger_than_half(cumulant_run, tmp_path, script):
    tmp = cumulant_run["dir"]
    res = _run(
        script,
        "--models",
        "p",
        "q",
        "--cumulants",
        tmp / "cp.npy",
        tmp / "cq.npy",
        "--structures",
        tmp / "structures.csv",
        "--n-test",
        N_MULTI // 2 + 1,
        "--out",
        tmp_path / "t.csv",
        "--out-fig",
        tmp_path / "t.png",
        ok=False,
    )
    assert "reconstruction.structures.n_test" in res.stderr + res.stdout
    assert not (tmp_path / "t.csv").exists()


# ---------------------------------------------------------------- reconstruction_heatmaps (summary)

HEAT_MODELS = ("a", "b", "c")
GFRE_OFFSETS = [0.05, 0.01, 0.04, 0.02, 0.03]  # draws 1..5: mean 0.03, 25 % / 75 % quantiles 0.02 / 0.04
LFRE_OFFSETS = [0.5, 0.1, 0.3, 0.2, 0.4]  # mean 0.3, quantiles 0.2 / 0.4


def _base(space: str, s: str, t: str, measure: str) -> float:
    i, j = HEAT_MODELS.index(s), HEAT_MODELS.index(t)
    return 0.1 * i + 0.03 * j + (0.2 if space == "direct" else 0.0) + (0.05 if measure == "lfre" else 0.0)


def test_reconstruction_heatmaps_summary(tmp_path):
    tables = []
    for space in ("raw", "direct"):
        rows = []
        for d in range(6):
            for s, t in itertools.product(HEAT_MODELS, repeat=2):
                g = _base(space, s, t, "gfre") + (GFRE_OFFSETS[d - 1] if d else 0.0)
                lf = _base(space, s, t, "lfre") + (LFRE_OFFSETS[d - 1] if d else 0.0)
                rows.append([space, d, s, t, g, lf, 3, 50, 10, 10, 0.1])
        cols = ["space", "draw", "source", "target", "gfre", "lfre", "k", "n_train", "n_test", "n_test_lfre"]
        path = tmp_path / f"{space}.csv"
        pd.DataFrame(rows, columns=[*cols, "seconds"]).to_csv(path, index=False)
        tables.append(path)
    _run(
        "reconstruction_heatmaps.py",
        "--tables",
        *tables,
        "--models",
        *HEAT_MODELS,
        "--controls",
        "c",
        "--level",
        0.5,
        "--out-summary",
        tmp_path / "summary.csv",
        "--out-fig",
        tmp_path / "fig.png",
        tmp_path / "fig.pdf",
    )
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert len(summary) == 18
    for _, row in summary.iterrows():
        space, s, t = row["space"], row["source"], row["target"]
        for m, offsets in (("gfre", GFRE_OFFSETS), ("lfre", LFRE_OFFSETS)):
            base = _base(space, s, t, m)
            assert row[m] == pytest.approx(base, abs=1e-12)  # draw 0
            assert row[f"{m}_mean"] == pytest.approx(base + np.mean(offsets), abs=1e-12)
            assert row[f"{m}_lo"] == pytest.approx(base + sorted(offsets)[1], abs=1e-12)
            assert row[f"{m}_hi"] == pytest.approx(base + sorted(offsets)[3], abs=1e-12)
        assert row["gfre_std"] == pytest.approx(np.sqrt(2.5e-4), abs=1e-12)
        assert row["n_draws"] == 5
        # gfre(s -> t) - gfre(t -> s) at draw 0 = 0.1 (i - j) + 0.03 (j - i)
        i, j = HEAT_MODELS.index(s), HEAT_MODELS.index(t)
        assert row["gfre_asymmetry"] == pytest.approx(0.07 * (i - j), abs=1e-12)
    for name in ("fig.png", "fig.pdf"):
        assert (tmp_path / name).stat().st_size > 0


# ---------------------------------------------------------------- finetune_bias

FT_MODELS = ("a", "a_ft", "b", "c", "u")  # u: an untrained control
FT_CKPT = {"a": "ca", "a_ft": "ca_ft", "b": "cb", "c": "cc", "u": "cu"}
FT_FAM = {"a": "f1", "a_ft": "f1", "b": "f1", "c": "f2", "u": "f2"}
RELATED_GFRE = {("a", "a_ft"): 0.05, ("a_ft", "a"): 0.07, ("b", "c"): 0.95, ("c", "b"): 0.9}
#: the unrelated pairs of trained models (related pairs and the control excluded): 8 ordered pairs
UNRELATED_GFRE = {
    ("a", "b"): 0.31,
    ("b", "a"): 0.42,
    ("a", "c"): 0.55,
    ("c", "a"): 0.6,
    ("a_ft", "b"): 0.33,
    ("b", "a_ft"): 0.45,
    ("a_ft", "c"): 0.58,
    ("c", "a_ft"): 0.62,
}


def _ft_summary(path: Path):
    rows = []
    for s, t in itertools.product(FT_MODELS, repeat=2):
        if s == t:
            g = 0.0
        elif "u" in (s, t):
            g = 0.01  # would beat every related pair if the control counted as unrelated
        else:
            g = RELATED_GFRE.get((s, t), UNRELATED_GFRE.get((s, t)))
        rows.append(dict(space="raw", source=s, target=t, gfre=g, lfre=g + 0.1))
    pd.DataFrame(rows).to_csv(path, index=False)


def _ft_args(tmp: Path, related):
    return [
        "--summary",
        tmp / "summary.csv",
        "--models",
        *FT_MODELS,
        "--controls",
        "u",
        "--checkpoints",
        json.dumps(FT_CKPT),
        "--families",
        json.dumps(FT_FAM),
        "--related",
        *related,
        "--out",
        tmp / "bias.csv",
        "--out-fig",
        tmp / "bias.png",
    ]


def test_finetune_bias_related_pairs_and_arm(tmp_path):
    _ft_summary(tmp_path / "summary.csv")
    rng = np.random.default_rng(3)
    n_atoms = 81
    first = rng.normal(size=(n_atoms, 6))
    last = first + 1e-4 * rng.normal(size=first.shape)
    emb = np.stack([first, first + 0.5 * rng.normal(size=first.shape), last]).astype(np.float32)
    emb[:, 40] = np.nan  # an atom the model could not embed: left out
    arm_dir = tmp_path / "eval" / "lowlr" / "seed0"
    arm_dir.mkdir(parents=True)
    np.savez(arm_dir / "embeddings.npz", embeddings=emb, epochs=np.array([0, 5, 10]), arm=np.array("lowlr"))
    pd.DataFrame(
        {
            "atom_index": range(n_atoms),
            "material_id": [f"probe-{i // 3}" for i in range(n_atoms)],
            "role": [["anchor", "au_probe", "cu_heldout"][i % 3] for i in range(n_atoms)],
        }
    ).to_csv(tmp_path / "probe_atoms.csv", index=False)
    _run(
        "finetune_bias.py",
        *_ft_args(tmp_path, ["a,a_ft", "b,c"]),
        "--finetune-eval",
        arm_dir / "embeddings.npz",
        "--finetune-atoms",
        tmp_path / "probe_atoms.csv",
        "--n-test",
        1000,
    )
    table = pd.read_csv(tmp_path / "bias.csv")
    assert len(table) == 3
    rel = table[table["kind"] == "related models of the run"].set_index(["model_a", "model_b"])
    close = rel.loc[("a", "a_ft")]
    assert close["gfre_ab"] == pytest.approx(0.05) and close["gfre_ba"] == pytest.approx(0.07)
    assert close["verdict"] == "closer than every unrelated pair"
    assert close["n_unrelated_pairs"] == 8
    assert close["unrelated_min_gfre"] == pytest.approx(min(UNRELATED_GFRE.values()))
    assert close["unrelated_median_gfre"] == pytest.approx(np.median(list(UNRELATED_GFRE.values())))
    assert close["share_of_unrelated_below"] == 0.0
    far = rel.loc[("b", "c")]
    assert far["verdict"] == "not closer than unrelated pairs"
    assert far["share_of_unrelated_below"] == 1.0

    arm = table[table["kind"].str.startswith("fine-tuning arm")]
    assert len(arm) == 1
    arm = arm.iloc[0]
    assert arm["kind"] == "fine-tuning arm lowlr (seed0)"
    assert arm["model_a"] == "pretrained (epoch 0)" and arm["model_b"] == "lowlr (epoch 10)"
    assert arm["n_atoms"] == n_atoms - 1
    assert arm["gfre_ab"] < 0.01 and arm["gfre_ba"] < 0.01  # the last checkpoint is the first + 1e-4 noise
    assert arm["compared_space"] == "raw"
    assert arm["verdict"] == "closer than every unrelated pair"
    assert (tmp_path / "bias.png").stat().st_size > 0


def test_finetune_bias_related_pair_outside_the_run(tmp_path):
    _ft_summary(tmp_path / "summary.csv")
    res = _run("finetune_bias.py", *_ft_args(tmp_path, ["a,a_ft", "b,mace-zz"]), ok=False)
    err = res.stderr + res.stdout
    assert "reconstruction.related_pairs" in err
    assert "mace-zz" in err
    assert not (tmp_path / "bias.csv").exists()


# ---------------------------------------------------------------- papers_side_by_side

PAPER_MODELS = [f"m{i}" for i in range(5)]
PAIRS = list(itertools.combinations(PAPER_MODELS, 2))
#: a rank 0..9 per pair (a fixed permutation): the alignment scores grow with it
PAIR_RANK = dict(zip(PAIRS, [3, 7, 0, 9, 5, 1, 8, 2, 6, 4], strict=True))


def test_papers_side_by_side_rank_correlations_and_disagreements(tmp_path):
    rows = []
    for (a, b), r in PAIR_RANK.items():
        first, second = (a, b) if r % 2 else (b, a)  # both orders of the pair in pairwise.csv
        for space, anchors in (("raw", ""), ("platonic", "direct")):
            for metric in ("mknn", "procrustes_score", "ot_score", "composite"):
                value = 0.1 * r + (0.5 if metric == "composite" and space == "raw" else 0.0)
                rows.append(
                    dict(
                        model_a=first,
                        model_b=second,
                        space=space,
                        anchors=anchors,
                        metric=metric,
                        value=value,
                    )
                )
        # a metric that is not one of the alignment scores is not read
        rows.append(dict(model_a=a, model_b=b, space="raw", anchors="", metric="cka", value=-r))
    pd.DataFrame(rows).to_csv(tmp_path / "pairwise.csv", index=False)
    summary = []
    for (a, b), r in PAIR_RANK.items():
        gfre = 0.1 + 0.05 * r  # more aligned = harder to rebuild: the views disagree
        lfre = 0.9 - 0.05 * r  # more aligned = easier to rebuild: the views agree
        for (s, t), sign in (((a, b), 1), ((b, a), -1)):  # ab and ba differ, their mean is the value
            summary.append(
                dict(space="raw", source=s, target=t, gfre=gfre + sign * 0.01, lfre=lfre + sign * 0.02)
            )
    pd.DataFrame(summary).to_csv(tmp_path / "summary.csv", index=False)
    _run(
        "papers_side_by_side.py",
        "--pairwise",
        tmp_path / "pairwise.csv",
        "--summary",
        tmp_path / "summary.csv",
        "--models",
        *PAPER_MODELS,
        "--checkpoints",
        json.dumps({m: m for m in PAPER_MODELS}),
        "--anchor-sets",
        "direct",
        "--top",
        4,
        "--out",
        tmp_path / "side.csv",
        "--out-correlation",
        tmp_path / "corr.csv",
        "--out-disagreements",
        tmp_path / "dis.csv",
    )
    side = pd.read_csv(tmp_path / "side.csv")
    assert len(side) == 10
    assert (side["kind"] == "trained").all()
    by_pair = side.set_index(["model_a", "model_b"])
    for pair, r in PAIR_RANK.items():
        assert by_pair.loc[pair, "composite_direct"] == pytest.approx(0.1 * r)
        assert by_pair.loc[pair, "gfre_raw_mean"] == pytest.approx(0.1 + 0.05 * r)
    corr = pd.read_csv(tmp_path / "corr.csv").set_index(["pairs", "alignment", "reconstruction"])
    for pairs in ("all pairs", "trained pairs"):
        for metric in ("mknn", "procrustes_score", "ot_score", "composite"):
            for space in ("raw", "direct"):
                disagree = corr.loc[(pairs, f"{metric}_{space}", "gfre_raw_mean")]
                agree = corr.loc[(pairs, f"{metric}_{space}", "lfre_raw_mean")]
                assert disagree["n_pairs"] == 10 and agree["n_pairs"] == 10
                assert disagree["spearman"] == pytest.approx(-1.0)
                assert agree["spearman"] == pytest.approx(1.0)

    # composite rank 10 - r, GFRE rank r + 1: |rank difference| = |9 - 2 r|, largest for r = 0, 9, then 1, 8
    dis = pd.read_csv(tmp_path / "dis.csv")
    assert len(dis) == 4
    rank_of = {frozenset(p): r for p, r in PAIR_RANK.items()}
    ranks = [rank_of[frozenset(p)] for p in zip(dis["model_a"], dis["model_b"], strict=True)]
    assert set(ranks[:2]) == {0, 9} and set(ranks[2:]) == {1, 8}
    assert list(dis["rank_difference"].abs()) == [9, 9, 7, 7]
    for r, diff, reading in zip(ranks, dis["rank_difference"], dis["reading"], strict=True):
        assert diff == 9 - 2 * r
        assert reading.startswith("features rebuild" if diff > 0 else "aligned in the Platonic space")


# ---------------------------------------------------------------- layer_dependence

LAYERS = {"x": ["x", "l1"], "x@l2": ["x", "l2"], "y": ["y", "l1"], "z": ["z", "l1"]}
MKNN = {("x", "y"): 0.2, ("x", "z"): 0.4, ("x@l2", "y"): 0.5, ("x@l2", "z"): 0.9, ("y", "z"): 0.3}


def _layer_inputs(tmp: Path, models):
    rows = []
    for (a, b), v in MKNN.items():
        for metric, scale in (("mknn", 1.0), ("procrustes_score", 0.5), ("ot_score", 0.25)):
            rows.append(
                dict(model_a=b, model_b=a, space="platonic", anchors="direct", metric=metric, value=v * scale)
            )
            # the same metric in another space or anchor set must not be read
            rows.append(dict(model_a=a, model_b=b, space="raw", anchors="", metric=metric, value=99.0))
            rows.append(
                dict(model_a=a, model_b=b, space="platonic", anchors="random", metric=metric, value=99.0)
            )
    pd.DataFrame(rows).to_csv(tmp / "pairwise.csv", index=False)
    summary = []
    for s, t in itertools.permutations(models, 2):
        value = 0.1 * (1 + models.index(s)) + 0.01 * (1 + models.index(t))
        summary.append(dict(space="raw", source=s, target=t, gfre=value, lfre=value + 0.2))
        summary.append(dict(space="direct", source=s, target=t, gfre=5.0, lfre=5.0))
    pd.DataFrame(summary).to_csv(tmp / "summary.csv", index=False)


def _layer_run(tmp: Path, models, layers):
    _layer_inputs(tmp, models)
    _run(
        "layer_dependence.py",
        "--pairwise",
        tmp / "pairwise.csv",
        "--summary",
        tmp / "summary.csv",
        "--models",
        *models,
        "--layers",
        json.dumps(layers),
        "--anchors",
        "direct",
        "--out",
        tmp / "layers.csv",
        "--out-summary",
        tmp / "layers_summary.csv",
    )


def test_layer_dependence_two_layers(tmp_path):
    models = ["x", "x@l2", "y", "z"]
    _layer_run(tmp_path, models, LAYERS)
    summary = pd.read_csv(tmp_path / "layers_summary.csv")
    assert set(summary["checkpoint"]) == {"x"}
    assert set(zip(summary["layer_1"], summary["layer_2"], strict=True)) == {("l1", "l2")}
    measures = set(zip(summary["paper"], summary["measure"], strict=True))
    expected = {("Li & Walsh", f"{m} (Platonic direct)") for m in ("mknn", "procrustes_score", "ot_score")}
    expected |= {
        ("Chorna et al.", f"{m} raw, {d}")
        for m in ("gfre", "lfre")
        for d in ("checkpoint -> other", "other -> checkpoint")
    }
    assert measures == expected
    assert len(summary) == 7
    assert (summary["n_others"] == 2).all()
    s = summary.set_index("measure")
    # mknn: layer 1 (0.2, 0.4), layer 2 (0.5, 0.9)
    assert s.loc["mknn (Platonic direct)", "mean_1"] == pytest.approx(0.3)
    assert s.loc["mknn (Platonic direct)", "mean_2"] == pytest.approx(0.7)
    assert s.loc["mknn (Platonic direct)", "mean_abs_change"] == pytest.approx(0.4)
    assert s.loc["ot_score (Platonic direct)", "mean_2"] == pytest.approx(0.7 * 0.25)
    # raw GFRE x -> {y, z}: 0.1 + (0.03, 0.04); x@l2 -> {y, z}: 0.2 + (0.03, 0.04)
    assert s.loc["gfre raw, checkpoint -> other", "mean_1"] == pytest.approx(0.135)
    assert s.loc["gfre raw, checkpoint -> other", "mean_2"] == pytest.approx(0.235)
    # {y, z} -> x: (0.3, 0.4) + 0.01; {y, z} -> x@l2: (0.3, 0.4) + 0.02
    assert s.loc["lfre raw, other -> checkpoint", "mean_1"] == pytest.approx(0.36 + 0.2)
    assert s.loc["lfre raw, other -> checkpoint", "mean_abs_change"] == pytest.approx(0.01)
    table = pd.read_csv(tmp_path / "layers.csv")
    assert set(table["other"]) == {"y", "z"}
    assert len(table) == 7 * 2


@pytest.fixture(scope="module")
def single_layer_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("single_layer")
    models = ["x", "y", "z"]
    _layer_run(tmp, models, {m: LAYERS[m] for m in models})
    return tmp


def test_layer_dependence_without_multi_layer_checkpoint(single_layer_run):
    text = (single_layer_run / "layers_summary.csv").read_text()
    assert len(text.strip().splitlines()) == 1  # the header only: no comparison (the script exited 0)
    table = pd.read_csv(single_layer_run / "layers.csv")
    assert table.empty
    assert "measure" in table.columns


def test_layer_dependence_empty_summary_is_readable(single_layer_run):
    summary = pd.read_csv(single_layer_run / "layers_summary.csv")
    assert summary.empty and "n_others" in summary.columns
