"""The Snakemake workflow: lint, the full paper DAG, config errors, and an end-to-end run on a slice."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, require_env, venv_python

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]


def snakemake(*args, cwd=ROOT, timeout=900):
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def run_config(cfg, workdir, *targets, cores=1):
    """Run the workflow with config file ``cfg`` in ``workdir`` (results go to ``workdir/results``)."""
    return snakemake("--cores", str(cores), "--configfile", str(cfg), "--directory", str(workdir), *targets)


def write_config(path: Path, **changes):
    cfg = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    cfg["envs"] = {"venv_dir": str(venv_python("analysis").parents[2])}  # honour $PLATONIC_VENVS
    for dotted, value in changes.items():
        node = cfg
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    if "models" in changes and "anchors.reference_models" not in changes:
        refs = cfg["anchors"].get("reference_models") or []
        cfg["anchors"]["reference_models"] = [r for r in refs if r in cfg["models"]]
    # the demo's fine-tuning, phonon and reconstruction stages take minutes and are tested on their own
    # (test_finetune_shift, test_phonon_tables, test_reconstruction, the family tests, the demo): off
    # unless a change names them
    for stage in ("finetune", "phonons", "reconstruction"):
        if stage in cfg and not any(k == stage or k.startswith(f"{stage}.") for k in changes):
            cfg[stage]["enabled"] = False
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_lint_is_clean():
    res = snakemake("--lint")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Congratulations" in res.stdout + res.stderr


def rule_counts(out: str) -> dict[str, int]:
    """{rule: jobs} from the job table of ``snakemake -n --quiet rules``."""
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def config_models(name: str) -> tuple[int, int]:
    """(models, checkpoints) of ``config/<name>``: one embedding job per checkpoint and shard."""
    models = yaml.safe_load((ROOT / "config" / name).read_text())["models"]
    return len(models), len({m.split("@")[0] for m in models})


def test_paper_config_builds_the_whole_dag(tmp_path):
    res = snakemake(
        "-n",
        "--quiet",
        "rules",
        "--configfile",
        str(ROOT / "config" / "config.yaml"),
        "--directory",
        str(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    counts = rule_counts(res.stdout + res.stderr)
    n_models, n_ckpt = config_models("config.yaml")
    # the 8 paper checkpoints, two MACE ones also at their last layer (the second paper's), and the
    # controls of docs/controls.md
    assert n_ckpt >= 8 and n_models == n_ckpt + 2
    # 27,136 structures in shards of 2,000 -> 14 shards per model
    assert counts["embed"] == n_ckpt * 14  # one job per checkpoint and shard, every family
    assert counts["gather_embeddings"] == n_models
    assert counts["project"] == 2 * n_models  # 2 anchor sets
    assert counts["train_control"] == 2  # the denoising control and its distilled twin
    assert counts["anchor_sweep"] == 9  # K = 3 ... 400
    for rule in (
        "claims",
        "reference_sensitivity",
        "anchor_overlap",  # the full split: our DIRECT vs the published anchors
        "fig2b_anchors_pca",
        "fig3a_anchor_sweep",
        "fig3b_platonic_pca_random",
        "fig3c_platonic_pca_direct",
        "element_embeddings",
        "fig4e_element_pca",
        "fig4f_element_similarity",
        "download_structures",
        "parse_structures",
        "select_anchors",
        "pairwise_metrics",
        "fig1_pca",
        "fig4a_mknn",
        "fig4b_procrustes",
        "fig4c_ot",
        "fig4d_composite",
        *DIAGNOSTIC_RULES,
    ):
        assert rule in counts, rule
    assert counts["embed_probes"] == n_ckpt  # the probe structures: one job per checkpoint, unsharded
    assert counts["project_probes"] == 2 * n_models
    # Fig. 5a-e: MACE-MP-0 small fine-tuned naively and multi-head, 3 seeds each
    assert counts["finetune"] == counts["finetune_evaluate"] == 6
    for rule in (
        *FINETUNE_RULES,
        "finetune_reference",
        "finetune_data",
        "replay_structures",
        "finetune_probes",
    ):
        assert counts[rule] == 1, rule
    # Chorna et al.: one error job per space (raw, direct), one rule per artefact
    assert counts["feature_reconstruction_space"] == 2
    for rule in RECONSTRUCTION_RULES:
        assert counts[rule] == 1, rule


#: one rule per artefact of the second paper (config key `reconstruction`)
RECONSTRUCTION_RULES = (
    "feature_reconstruction",
    "structure_cumulants",
    "cumulant_orders",
    "structure_reconstruction",
    "finetune_bias",
    "papers_side_by_side",
    "layer_dependence",
)


def test_demo_compares_both_papers_and_it_can_be_turned_off(tmp_path):
    res = snakemake("-n", "--quiet", "rules", "--directory", str(tmp_path))
    assert res.returncode == 0, res.stderr
    counts = rule_counts(res.stdout + res.stderr)
    assert counts["feature_reconstruction_space"] == 2  # raw and direct
    assert all(counts[r] == 1 for r in RECONSTRUCTION_RULES)
    cfg = write_config(tmp_path / "off.yaml")  # write_config turns the stage off
    res = snakemake("-n", "--quiet", "rules", "--configfile", str(cfg), "--directory", str(tmp_path))
    assert res.returncode == 0, res.stderr
    counts = rule_counts(res.stdout + res.stderr)
    for rule in (*RECONSTRUCTION_RULES, "feature_reconstruction_space"):
        assert rule not in counts, rule


#: one rule per diagnostic (config key `diagnostics`), each with a figure of the same name
DIAGNOSTIC_RULES = (
    "fig5f_equivariant_fraction",
    "fig5g_rotational_sensitivity",
    "atypical_structures",
    "embedding_arithmetic",
    "zero_shot_stitching",
)


#: one rule per paper artefact of the fine-tuning experiment (config key `finetune`)
FINETUNE_RULES = ("fig5abc_finetune_embeddings", "fig5de_dimer_curves", "finetune_accuracy")


def test_demo_finetunes_every_arm_and_it_can_be_turned_off(tmp_path):
    res = snakemake("-n", "--quiet", "rules", "--directory", str(tmp_path))
    assert res.returncode == 0, res.stderr
    counts = rule_counts(res.stdout + res.stderr)
    ft = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())["finetune"]
    assert counts["finetune"] == counts["finetune_evaluate"] == len(ft["arms"]) * len(ft["seeds"]) > 1
    assert all(counts[r] == 1 for r in FINETUNE_RULES)
    cfg = write_config(tmp_path / "off.yaml", **{"finetune.enabled": False})
    res = snakemake("-n", "--quiet", "rules", "--configfile", str(cfg), "--directory", str(tmp_path))
    assert res.returncode == 0, res.stderr
    counts = rule_counts(res.stdout + res.stderr)
    assert counts["embed"] == config_models("demo.yaml")[1]
    for rule in (*FINETUNE_RULES, "finetune", "finetune_evaluate", "finetune_data", "finetune_reference"):
        assert rule not in counts, rule


def test_diagnostics_can_be_turned_off(tmp_path):
    cfg = write_config(tmp_path / "off.yaml", **{"diagnostics.enabled": False})
    res = snakemake("-n", "--quiet", "rules", "--configfile", str(cfg), "--directory", str(tmp_path))
    assert res.returncode == 0, res.stderr
    counts = rule_counts(res.stdout + res.stderr)
    assert counts["embed"] == config_models("demo.yaml")[1] and counts["pairwise_metrics"] == 1
    # one all-pairs job per space: raw and each anchor set
    sets = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())["anchors"]["sets"]
    assert counts["pairwise_space"] == 1 + len(sets)
    for rule in (*DIAGNOSTIC_RULES, "probe_structures", "embed_probes", "structure_properties"):
        assert rule not in counts, rule


@pytest.mark.parametrize(
    "changes, expect",
    [
        ({"anchor": {"k": 5}}, ["'anchor'", "did you mean 'anchors'"]),
        ({"metrics.knn_kk": 5}, ["'metrics.knn_kk'", "knn_k"]),
        ({"anchors.k": "ten"}, ["k", "ten"]),
        ({"models": ["7net-0", "mace-mp-0-smal"]}, ["mace-mp-0-smal", "Known models", "mace-mp-0-small"]),
        ({"anchors.reference_model": "7net-l3i6"}, ["anchors.reference_model", "7net-l3i5"]),
        ({"model_options": {"7net-0": {"modall": "x"}}}, ["modall"]),
        ({"anchors.reference_models": ["7net-l3i6"]}, ["anchors.reference_models", "7net-l3i5"]),
        ({"anchors.sets": ["direct", "published"]}, ["anchors.sets", "282,847", "structures.expected_atoms"]),
        ({"anchors.sweep.k": [1]}, ["sweep", "1"]),
        (
            {"finetune.pretrained": "7net-omat"},
            ["finetune.pretrained", "'7net-omat' is not a model of this run"],
        ),
        ({"finetune.pretrained": "chgnet-0.3.0"}, ["finetune.pretrained", "chgnet model", "sevenn, mace"]),
        ({"finetune.pretrained": "dummy-7net-small"}, ["finetune.pretrained", "untrained control"]),
        ({"finetune.arms": ["naive", "ft3"]}, ["finetune", "ft3"]),
        (
            {"finetune.pretrained": "dummy-mace-mp-0-small", "finetune.arms": ["naive", "replay"]},
            ["finetune.arms", "mace runs the arms naive, multihead", "not replay"],
        ),
        (
            {"reconstruction.enabled": True, "reconstruction.spaces": ["raw", "dirct"]},
            ["reconstruction.spaces", "'dirct'", "direct"],
        ),
        (
            {"reconstruction.enabled": True, "reconstruction.related_pairs": [["7net-0", "chgnet-0.4.0"]]},
            ["reconstruction.related_pairs", "'chgnet-0.4.0'"],
        ),
        (
            {"reconstruction.enabled": True, "reconstruction.structures.order_models": ["7net-9"]},
            ["reconstruction.structures.order_models", "'7net-9'"],
        ),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, changes, expect):
    cfg = write_config(tmp_path / "bad.yaml", **changes)
    res = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path))
    out = res.stdout + res.stderr
    assert res.returncode != 0
    for text in expect:
        assert text in out, (text, out[-2000:])


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """The whole workflow on 30 structures with two offline models of two families."""
    require_env("sevenn")
    require_env("mace")
    work = tmp_path_factory.mktemp("e2e")
    cfg = write_config(
        work / "slice.yaml",
        run_name="slice",
        **{
            "structures.limit": 30,
            "models": ["7net-0", "dummy-mace-mp-0-small"],
            "anchors.k": 12,
            "anchors.reference_model": "7net-0",
            "anchors.reference_models": ["dummy-mace-mp-0-small"],
            "anchors.sweep.k": [3, 12, 5000],  # 5,000 > atoms of the slice: skipped
            "anchors.sweep.random_seeds": [0, 1],
            "metrics.n_sample": 150,
            "figures.dpi": 60,
        },
    )
    res = run_config(cfg, work, cores=2)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return work / "results" / "slice"


def test_e2e_atoms_and_embeddings_are_aligned(e2e):
    atoms = pd.read_csv(e2e / "structures" / "atoms.csv")
    summary = json.loads((e2e / "structures" / "summary.json").read_text())
    assert summary["n_structures"] == 30 == atoms.structure_index.nunique()
    assert summary["n_atoms"] == len(atoms)
    for model, dim in (("7net-0", 128), ("dummy-mace-mp-0-small", 128)):
        emb = np.load(e2e / "embeddings" / f"{model}.npy")
        meta = json.loads((e2e / "embeddings" / f"{model}.json").read_text())
        assert emb.shape == (len(atoms), dim) and emb.dtype == np.float32
        assert np.isfinite(emb).all()
        assert meta["model"] == model and meta["dim"] == dim and meta["n_atoms"] == len(atoms)
        for key in (
            "weights_source",
            "weights_sha256",
            "layer",
            "versions",
            "device",
            "atoms_per_s",
            "wall_time_s",
        ):
            assert key in meta, key
    # 7net-0 is a real checkpoint: its weights file is recorded by sha256
    assert len(json.loads((e2e / "embeddings" / "7net-0.json").read_text())["weights_sha256"]) == 64


def test_e2e_anchors_and_projection(e2e):
    atoms = pd.read_csv(e2e / "structures" / "atoms.csv")
    for aset in ("direct", "random"):
        anchors = pd.read_csv(e2e / "anchors" / f"{aset}.csv")
        assert len(anchors) == 12 and anchors.atom_index.is_unique
        # (material_id, atom index) stored alongside, consistent with the atom table
        merged = anchors.merge(atoms, on="atom_index", suffixes=("", "_t"))
        assert (merged.material_id == merged.material_id_t).all()
        assert (merged.atom_in_structure == merged.atom_in_structure_t).all()
        for model in ("7net-0", "dummy-mace-mp-0-small"):
            z = np.load(e2e / "platonic" / aset / f"{model}.npy")
            assert z.shape == (len(atoms), 12)
            assert np.abs(z).max() <= 1.0
            np.testing.assert_allclose(z[anchors.atom_index, np.arange(12)], 1.0, atol=1e-6)


def test_e2e_pairwise_table(e2e):
    t = pd.read_csv(e2e / "metrics" / "pairwise.csv", keep_default_na=False)
    assert {"model_a", "model_b", "space", "metric", "value"} <= set(t.columns)
    assert set(t.space) == {"raw", "platonic"}
    assert set(t[t.space == "platonic"].anchors) == {"direct", "random"}
    cross = t[(t.model_a != t.model_b)]
    assert set(zip(cross.model_a, cross.model_b, strict=True)) == {("7net-0", "dummy-mace-mp-0-small")}
    assert "ot_cost" in set(t[t.space == "platonic"].metric)
    assert "ot_cost" not in set(t[t.space == "raw"].metric)
    self_mknn = t[(t.model_a == t.model_b) & (t.metric == "mknn")]
    assert (self_mknn.value.astype(float) == 1.0).all()
    sample = pd.read_csv(e2e / "metrics" / "sample.csv")
    assert len(sample) == 150 and sample.atom_index.is_unique


FIGURES = (
    "fig1_pca",
    "fig2b_anchors_pca",
    "fig3a_anchor_sweep",
    "fig3b_platonic_pca_random",
    "fig3c_platonic_pca_direct",
    "fig4a_mknn",
    "fig4b_procrustes",
    "fig4c_ot",
    "fig4d_composite",
    "fig4e_element_pca",
    "fig4f_element_similarity",
    *DIAGNOSTIC_RULES,
)


def test_e2e_anchor_sweep_at_k_equals_the_main_pipeline(e2e):
    """The sweep's K = anchors.k row (DIRECT, and random with anchors.random_seed) reproduces the
    pairwise table computed from the stored Platonic matrices."""
    pairwise = pd.read_csv(e2e / "metrics" / "pairwise.csv", keep_default_na=False)
    sweep = pd.read_csv(e2e / "metrics" / "anchor_sweep" / "k12.csv")
    assert set(sweep.method) == {"direct", "random"} and set(sweep[sweep.method == "random"].seed) == {0, 1}
    key = ["model_a", "model_b", "metric"]
    # every metric of the sweep; the main table adds mknn_beyond_element (metrics.beyond_element)
    assert set(pairwise.metric) - set(sweep.metric) == {"mknn_beyond_element"}
    for method, seed in (("direct", -1), ("random", 0)):
        main = pairwise[(pairwise.space == "platonic") & (pairwise.anchors == method)]
        main = main[main.metric != "mknn_beyond_element"]
        ours = sweep[(sweep.method == method) & (sweep.seed == seed)]
        merged = main[key + ["value"]].merge(ours[key + ["value"]], on=key, suffixes=("_main", "_sweep"))
        assert len(merged) == len(main) > 10
        np.testing.assert_allclose(merged.value_sweep, merged.value_main.astype(float), rtol=1e-5, atol=1e-6)
    other = sweep[(sweep.method == "random") & (sweep.seed == 1) & (sweep.metric == "ot_cost")]
    same = sweep[(sweep.method == "random") & (sweep.seed == 0) & (sweep.metric == "ot_cost")]
    assert not np.allclose(other.value, same.value)  # another seed, other anchors
    assert pd.read_csv(e2e / "metrics" / "anchor_sweep" / "k5000.csv").empty
    summary = pd.read_csv(e2e / "metrics" / "anchor_sweep.csv")
    assert set(summary.k) == {3, 12} and set(summary.method) == {"direct", "random"}
    # one trained model only: the means fall back to the one pair with the control
    assert set(summary.n_pairs) == {1} and set(summary.n_seeds) == {1, 2}


def test_e2e_reference_sensitivity_and_elements(e2e):
    summary = pd.read_csv(e2e / "metrics" / "reference_sensitivity_summary.csv")
    assert set(summary.reference_model) == {"dummy-mace-mp-0-small"}
    assert set(summary.primary_reference) == {"7net-0"}
    assert {"mknn", "ot_cost", "procrustes_score"} <= set(summary.metric)
    assert (summary.mean_abs_delta >= 0).all() and (summary.mean_abs_delta > 0).any()
    atoms = pd.read_csv(e2e / "structures" / "atoms.csv")
    with np.load(e2e / "elements" / "element_embeddings.npz") as z:
        assert list(z["models"]) == ["7net-0", "dummy-mace-mp-0-small"]
        np.testing.assert_array_equal(z["numbers"], np.unique(atoms.Z))
        assert z["vectors_0"].shape == (atoms.Z.nunique(), 12) and int(z["counts"].sum()) == len(atoms)
    corr = pd.read_csv(e2e / "elements" / "similarity_correlation.csv")
    assert len(corr) == 3 and np.allclose(corr[corr.model_a == corr.model_b].correlation, 1.0)


def test_e2e_figures(e2e):
    for name in FIGURES:
        for ext in ("png", "pdf"):
            f = e2e / "figures" / f"{name}.{ext}"
            assert f.exists() and f.stat().st_size > 1000, f


def test_e2e_finetune_and_phonons(e2e):
    """The fine-tuning and phonon stages wired end to end on the slice: 7net-0 fine-tuned naively and
    multi-head for one epoch on a handful of EMT Cu structures; phonons of fcc Cu for 7net-0 and both arms."""
    work = e2e.parents[1]
    cfg = yaml.safe_load((work / "slice.yaml").read_text())
    cfg["finetune"].update(
        enabled=True,
        arms=["naive", "multihead"],
        fractions=[0.6, 0.2, 0.2],
        generate={"n_strained": 2, "n_rattled": 0, "n_surfaces": 0, "n_clusters": 1, "au_rattled": 0,
                  "au_clusters": 0, "dimer_distances": [2.2, 2.6]},
        replay={"structures": 2, "max_atoms": 8},
        train={"epochs": 1, "checkpoint_every": 1, "batch_size": 4},
        dimers={"distances": [1.9, 2.3, 2.8, 3.5, 6.0]},
        threads=1,
    )  # fmt: skip
    cfg["phonons"].update(
        enabled=True, structures=["Cu"], run_structures=0, models=["7net-0"], finetuned=True, min_length=4.0,
        mesh=2, npoints=11, steps=30, gpu=0,
    )  # fmt: skip
    (work / "ft.yaml").write_text(yaml.safe_dump(cfg))
    res = run_config(work / "ft.yaml", work, cores=2)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    ft = e2e / "finetune"
    acc = pd.read_csv(ft / "finetune_accuracy.csv")
    assert set(zip(acc.arm, acc.epoch, acc["head"], strict=True)) == {
        ("naive", 0, "single"), ("naive", 1, "single"), ("multihead", 0, "single"),
        ("multihead", 1, "target"), ("multihead", 1, "pretrained"),
    }  # fmt: skip
    assert (acc.loc[acc.epoch == 0, "au_probe_energy_rmse_vs_pretrained_meV_atom"] == 0).all()
    assert (acc.loc[acc.epoch == 1, "au_probe_energy_rmse_vs_pretrained_meV_atom"] > 0).all()
    assert acc["au_norm_ratio_raw"].notna().all() and acc["AuAu_well_depth_eV"].notna().all()
    wells = pd.read_csv(ft / "fig5de_dimer_curves.csv")
    emt = wells[wells.arm == "reference"].set_index("pair")
    assert not emt.repulsive.any() and emt.loc["Au-Au", "well_depth"] == pytest.approx(5.14, abs=0.1)
    shift = pd.read_csv(ft / "fig5abc_finetune_embeddings.csv")
    assert {"au_probe", "cu_test", "run"} <= set(shift.role) and set(shift.space) == {"raw", "fixed", "own"}
    for name in ("fig5abc_finetune_embeddings", "fig5de_dimer_curves", "phonon_bands"):
        assert (e2e / "figures" / f"{name}.png").stat().st_size > 1000, name
    imag = pd.read_csv(e2e / "phonons" / "phonon_imaginary.csv")
    assert set(imag.model) == {"7net-0", "7net-0 naive s0", "7net-0 multihead s0"} and "Cu" in imag
    assert imag.set_index("model").loc["7net-0", "Cu"] == 0  # fcc Cu is stable under the pretrained model
    summary = json.loads((ft / "arms" / "multihead" / "seed0" / "summary.json").read_text())
    assert [c["epoch"] for c in summary["checkpoints"]] == [1]


def test_e2e_diagnostics(e2e):
    """Every diagnostic ran on every model and space; the known physics holds on the slice."""
    diag = e2e / "diagnostics"
    models, spaces = {"7net-0", "dummy-mace-mp-0-small"}, {"raw", "direct", "random"}
    # both architectures are rotation-invariant by construction: numerical noise only
    rot = pd.read_csv(diag / "fig5g_rotational_sensitivity_summary.csv")
    assert set(rot.model) == models and set(rot.space) == spaces
    assert set(rot.parent_set) == {"BaCeO3", "mp20"}
    assert rot.invariant.all() and (rot.max_max_rel_dev < 1e-4).all()
    probes = pd.read_csv(e2e / "probes" / "probes.csv")
    assert {"rotation", "perturbation"} <= set(probes.kind)
    # invariant features: symmetry-equivalent atoms coincide wherever spglib finds them
    sym = pd.read_csv(diag / "fig5f_equivariant_fraction.csv")
    assert set(sym.model) == models and set(sym.space) == spaces
    some = sym[sym.n_equivalent_pairs > 0]
    assert len(some) and (some.equivariant_fraction > 0.5).all()
    auc = pd.read_csv(diag / "atypical_structures.csv")
    assert set(auc.model) == models and auc.auc.between(0, 1).all()
    arith = pd.read_csv(diag / "embedding_arithmetic.csv")
    assert set(arith.model) == models and set(arith.space) == spaces
    stitch = pd.read_csv(diag / "zero_shot_stitching.csv")
    done = stitch.dropna(subset=["source_model"])
    assert {(a, b) for a, b in zip(done.source_model, done.target_model, strict=True)} == {
        (a, b) for a in models for b in models
    }
    # a model's own readout is the diagonal: transfer onto itself is its own score
    own = done[done.source_model == done.target_model]
    assert np.allclose(own.score_transfer, own.score_own, equal_nan=True)


def test_e2e_reconstruction(e2e):
    """The second paper's stage end to end on the slice: errors of every ordered pair in raw and Platonic
    space, cumulant descriptors, both papers side by side; the known answers hold."""
    work = e2e.parents[1]
    cfg = yaml.safe_load((work / "slice.yaml").read_text())
    cfg["reconstruction"].update(
        enabled=True, spaces=["raw", "direct"], n_test=60, repeats=2, lfre_test=30, lfre_repeats=1, related_pairs=[],
        finetuned=False,
        structures={"n_test": 6, "lfre_k_max": 8, "order_models": None, "lfre": True, "lfre_test": 4},
    )  # fmt: skip
    (work / "rec.yaml").write_text(yaml.safe_dump(cfg))
    res = run_config(work / "rec.yaml", work, cores=2)
    try:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
        _check_reconstruction(e2e)
    finally:  # the slice's own run again (its findings page has no reconstruction section), for later tests
        back = run_config(work / "slice.yaml", work, cores=2)
        assert back.returncode == 0, back.stdout[-3000:] + back.stderr[-5000:]


def _check_reconstruction(e2e):
    rec = e2e / "reconstruction"
    models = ["7net-0", "dummy-mace-mp-0-small"]
    summary = pd.read_csv(rec / "atoms_summary.csv")
    assert set(summary.space) == {"raw", "direct"} and len(summary) == 2 * 4
    assert set(zip(summary.source, summary.target, strict=True)) == {(a, b) for a in models for b in models}
    diag = summary[summary.source == summary.target]
    assert (diag.gfre < 1e-6).all()  # a space rebuilds itself exactly
    off = summary[summary.source != summary.target]
    assert off.gfre.between(0.01, 1.5).all() and off.lfre.notna().all() and (summary.n_draws == 2).all()
    g = off.set_index(["space", "source", "target"])
    for (space, a, b), row in g.iterrows():
        assert row.gfre_asymmetry == pytest.approx(row.gfre - g.loc[(space, b, a), "gfre"])
    atoms = pd.read_csv(rec / "atoms" / "raw.csv")
    assert set(atoms.draw) == {0, 1, 2} and (atoms.n_test == 60).all()
    # LFRE on 30 of the test atoms, on the protocol's set and the first redrawn one (lfre_repeats 1)
    assert (atoms.n_test_lfre == np.where(atoms.draw <= 1, 30, 0)).all()
    assert atoms.lfre.notna().eq(atoms.draw <= 1).all()
    assert (atoms.k[atoms.draw <= 1] == 128).all()  # min(widths) of two 128-wide models
    blocks = np.load(rec / "cumulants" / "7net-0.npy")
    kept = pd.read_csv(rec / "cumulants" / "structures.csv")
    assert blocks.shape == (len(kept), 8, 128)
    assert len(kept) + len(pd.read_csv(rec / "single_atom_structures.csv")) == 30
    orders = pd.read_csv(rec / "cumulant_orders.csv")
    assert len(orders) == 2 * 8 * 8 and orders.gfre.notna().all() and orders.lfre.notna().all()
    assert (orders.n_test == 6).all() and (orders.n_test_lfre == 4).all()  # structures.lfre_test
    # (exact answers of the orders are tested on small widths in test_reconstruction_scripts: here the
    # descriptors are wider than the slice's structures, so not even a descriptor rebuilds itself exactly)
    across = pd.read_csv(rec / "structure_reconstruction.csv")
    assert len(across) == 4 and (across.order == 8).all() and (across.n_test_lfre == 4).all()
    side = pd.read_csv(rec / "papers_side_by_side.csv")
    assert len(side) == 1 and {"mknn_direct", "gfre_raw_ab", "gfre_direct_ba"} <= set(side.columns)
    assert pd.read_csv(rec / "layer_dependence_summary.csv").empty  # no checkpoint at two layers
    for name in ("feature_reconstruction", "cumulant_orders", "structure_reconstruction", "finetune_bias"):
        assert (e2e / "figures" / f"{name}.png").stat().st_size > 1000, name


def test_e2e_rerun_is_a_no_op(e2e):
    work = e2e.parents[1]
    res = snakemake("-n", "--configfile", str(work / "slice.yaml"), "--directory", str(work))
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr


def test_bad_cif_stops_the_run_naming_the_material(tmp_path, sample_csv):
    lines = sample_csv.read_text().splitlines(keepends=True)
    import csv
    import io

    rows = list(csv.reader(io.StringIO("".join(lines))))
    header, body = rows[0], rows[1:6]
    cif_col = header.index("cif")
    body[2][cif_col] = "not a cif"
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *body])
    bad = tmp_path / "bad.csv"
    bad.write_text(buf.getvalue())
    cfg = write_config(
        tmp_path / "bad.yaml",
        run_name="bad",
        **{
            "structures.source": str(bad),
            "structures.expected_structures": None,
            "structures.expected_atoms": None,
        },
    )
    res = run_config(cfg, tmp_path, "results/bad/structures/atoms.csv")
    assert res.returncode != 0
    log = (tmp_path / "results" / "bad" / "logs" / "parse_structures.log").read_text()
    assert body[2][header.index("material_id")] in log and "data row 3" in log
    assert not (tmp_path / "results" / "bad" / "structures" / "structures.npz").exists()


def test_count_mismatch_names_the_config_key(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", run_name="c", **{"structures.expected_atoms": 9046})
    res = run_config(cfg, tmp_path, "results/c/structures/atoms.csv")
    assert res.returncode != 0
    log = (tmp_path / "results" / "c" / "logs" / "parse_structures.log").read_text()
    assert "structures.expected_atoms" in log and "9047" in log


def test_scripts_run_on_their_own(tmp_path):
    """PyPSA style: every script has a CLI usable outside Snakemake."""
    env = {**os.environ, "PYTHONPATH": ""}
    for script in sorted((ROOT / "workflow" / "scripts").glob("[a-z]*.py")):
        res = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, env=env, timeout=120
        )
        assert res.returncode == 0 and "usage" in res.stdout, (script.name, res.stderr)


def test_e2e_report(e2e):
    work = e2e.parents[1]
    report = work / "report.html"
    res = snakemake(
        "--report", str(report), "--configfile", str(work / "slice.yaml"), "--directory", str(work)
    )
    assert res.returncode == 0, res.stderr[-3000:]
    html = report.read_text(errors="replace")
    for text in ("Fig. 1", "Fig. 4a", "Fig. 4b", "Fig. 4c", "Fig. 4d", "pairwise.csv"):
        assert text in html, text
    # a landing page, the findings first, figures listed once (PNG) by question, tables as pages
    for text in (
        "The idea.",
        "Findings of this run",
        "findings.html",
        '"Maps"',
        '"Alignment"',
        '"Chemistry"',
    ):
        assert text in html, text
    assert "fig1_pca.pdf" not in html.split("fig1_pca.png", 1)[0][-2000:]
    assert '"fig1_pca.pdf": {"name"' not in html and "anchor_sweep.html" in html
    # no path of the machine: not the checkout, not the working directory
    assert str(ROOT) not in html and str(work) not in html


def test_e2e_benchmarks_record_every_job(e2e):
    tsv = e2e / "benchmarks" / "embed" / "7net-0" / "0000.tsv"
    header, values = tsv.read_text().splitlines()[:2]
    assert "max_rss" in header and float(values.split("\t")[0]) > 0


def test_interrupted_embedding_leaves_nothing_complete_and_resumes(tmp_path):
    import signal
    import time

    require_env("mace")
    cfg = write_config(
        tmp_path / "kill.yaml",
        run_name="kill",
        **{
            "structures.limit": 60,
            "models": ["dummy-mace-mp-0-small", "7net-0"],
            "anchors.reference_model": "7net-0",
        },
    )
    target = "results/kill/embeddings/dummy-mace-mp-0-small.json"
    args = [*SNAKEMAKE, "--cores", "1", "--configfile", str(cfg), "--directory", str(tmp_path), target]
    proc = subprocess.Popen(
        args, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = tmp_path / "results" / "kill" / "logs" / "embed" / "dummy-mace-mp-0-small" / "0000.log"
    deadline = time.time() + 240
    while not log.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert log.exists(), "the embedding job never started"
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole job tree, as a node failure would
    proc.wait(timeout=30)
    emb = tmp_path / "results" / "kill" / "embeddings"
    for path in (emb / "dummy-mace-mp-0-small", emb / "shards" / "dummy-mace-mp-0-small" / "0000"):
        assert not path.with_suffix(".json").exists() and not path.with_suffix(".npy").exists()
    # a hard kill leaves Snakemake's directory lock: the user unlocks (as Snakemake says), then reruns,
    # which completes what is missing and reuses the finished structure stage
    unlock = snakemake("--unlock", "--configfile", str(cfg), "--directory", str(tmp_path))
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    before = (tmp_path / "results" / "kill" / "structures" / "structures.npz").stat().st_mtime
    res = snakemake(
        "--cores", "1", "--rerun-incomplete", "--configfile", str(cfg), "--directory", str(tmp_path), target
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert (emb / "dummy-mace-mp-0-small.json").exists()
    assert (tmp_path / "results" / "kill" / "structures" / "structures.npz").stat().st_mtime == before


def test_missing_family_environment_stops_before_any_job(tmp_path):
    res = snakemake(
        "--cores", "1", "--directory", str(tmp_path), "--config", f"envs={{venv_dir: {tmp_path / 'none'}}}"
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "not found under" in out and "make envs" in out and "envs.venv_dir" in out
    assert not (tmp_path / "results").exists()


def test_sharded_embeddings_equal_an_unsharded_run(tmp_path):
    """Shards snap to global batch boundaries, so a sharded run computes exactly the forward batches of
    an unsharded one (checked exactly) and the gathered matrix equals the unsharded one. The features
    are compared to 1e-6: identical batches give identical bits on this machine, but a CI machine once
    differed by 4e-7 between two processes (float32 BLAS kernels), while a batch split differently
    moves 7net-l3i5's features by about 1e-5."""
    require_env("sevenn")
    require_env("mace")
    models = ["7net-l3i5", "dummy-mace-mp-0-small"]
    out = {}
    for name, shard in (("whole", None), ("sharded", 7)):
        cfg = write_config(
            tmp_path / f"{name}.yaml",
            run_name=name,
            **{
                "structures.limit": 30,
                "models": models,
                "anchors.reference_model": models[0],
                "embed.batch_atoms": 60,
                "embed.shard_structures": shard,
            },
        )
        targets = [f"results/{name}/embeddings/{m}.json" for m in models]
        res = run_config(cfg, tmp_path, *targets, cores=2)
        assert res.returncode == 0, res.stderr[-4000:]
        out[name] = tmp_path / "results" / name / "embeddings"
    for m in models:
        whole, sharded = np.load(out["whole"] / f"{m}.npy"), np.load(out["sharded"] / f"{m}.npy")
        assert whole.shape == sharded.shape
        meta = json.loads((out["sharded"] / f"{m}.json").read_text())
        meta_whole = json.loads((out["whole"] / f"{m}.json").read_text())
        assert meta["batches"] == meta_whole["batches"] and len(meta["batches"]) > 5
        np.testing.assert_allclose(sharded, whole, rtol=0, atol=1e-6)
        assert meta["n_shards"] == 5  # ceil(30 / 7)
        ranges = [s["structure_range"] for s in meta["shards"]]
        assert ranges[0][0] == 0 and ranges[-1][1] == 30
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))


def _csv_with_polonium(sample_csv, path, n=6):
    """The first ``n`` sample rows plus a simple-cubic Po cell (Po is not in 7net-0's element table)."""
    import csv
    import io

    from ase import Atoms
    from ase.io import write

    with open(sample_csv, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [r for _, r in zip(range(n), reader, strict=False)]
        fields = reader.fieldnames
    buf = io.BytesIO()  # ASE writes CIF as bytes
    write(
        buf,
        Atoms("Po2", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[3.4, 3.4, 6.8], pbc=True),
        format="cif",
    )
    po = dict(rows[0])
    po.update({"material_id": "mp-po-test", "cif": buf.getvalue().decode(), "spacegroup.number": "123"})
    rows.insert(3, po)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_unsupported_elements_fail_or_skip(tmp_path, sample_csv, policy):
    require_env("sevenn")
    require_env("orb")
    src = _csv_with_polonium(sample_csv, tmp_path / "po.csv")
    cfg = write_config(
        tmp_path / "po.yaml",
        run_name="po",
        **{
            "structures.source": str(src),
            "structures.expected_structures": None,
            "structures.expected_atoms": None,
            "models": ["7net-0", "dummy-orb-v3"],
            "anchors.reference_model": "7net-0",
            "anchors.k": 5,
            "metrics.n_sample": 30,
            "embed.on_unsupported": policy,
            "figures.dpi": 50,
        },
    )
    res = run_config(cfg, tmp_path, cores=2)
    run = tmp_path / "results" / "po"
    if policy == "fail":
        assert res.returncode != 0
        log = (run / "logs" / "embed" / "7net-0" / "0000.log").read_text()
        assert "mp-po-test (Po)" in log and "embed.on_unsupported" in log
        assert not (run / "embeddings" / "shards" / "7net-0" / "0000.npy").exists()
        return
    assert res.returncode == 0, res.stderr[-4000:]
    atoms = pd.read_csv(run / "structures" / "atoms.csv")
    po_rows = atoms.index[atoms.material_id == "mp-po-test"].to_numpy()
    assert len(po_rows) == 2
    emb = np.load(run / "embeddings" / "7net-0.npy")
    assert emb.shape[0] == len(atoms)  # rows stay aligned
    assert np.isnan(emb[po_rows]).all() and np.isfinite(np.delete(emb, po_rows, axis=0)).all()
    meta = json.loads((run / "embeddings" / "7net-0.json").read_text())
    assert meta["skipped"][0]["material_id"] == "mp-po-test" and meta["skipped"][0]["elements"] == ["Po"]
    assert meta["n_atoms_skipped"] == 2
    orb = np.load(run / "embeddings" / "dummy-orb-v3.npy")
    assert np.isfinite(orb).all()  # Orb covers Po
    for aset in ("direct", "random"):
        anchors = pd.read_csv(run / "anchors" / f"{aset}.csv")
        assert not set(anchors.atom_index) & set(po_rows)
    sample = pd.read_csv(run / "metrics" / "sample.csv")
    assert not set(sample.atom_index) & set(po_rows)
    table = pd.read_csv(run / "metrics" / "pairwise.csv")
    assert np.isfinite(table.value).all()


@pytest.fixture(scope="module")
def random_mace_checkpoint(tmp_path_factory):
    """A MACE-MP-0-small architecture with seed-0 random weights, saved as a .model pickle."""
    py = require_env("mace")
    path = tmp_path_factory.mktemp("ckpt") / "random-small.model"
    code = (
        "import sys, torch; from platonic_mlip.embed.mace import build_random_model; "
        "torch.save(build_random_model('small', 0), sys.argv[1])"
    )
    res = subprocess.run([str(py), "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return path


def test_weights_are_fetched_once_verified_and_used_offline(tmp_path, http_server, random_mace_checkpoint):
    import hashlib
    import shutil

    served, url, handler, stop = http_server
    shutil.copy(random_mace_checkpoint, served / "small.model")
    digest = hashlib.sha256(random_mace_checkpoint.read_bytes()).hexdigest()
    cache = tmp_path / "weights"
    expected = cache / "mace-mp-0-small" / "small.model"

    def run(name, sha, target="json"):
        cfg = write_config(
            tmp_path / f"{name}.yaml",
            run_name=name,
            **{
                "structures.limit": 8,
                "models": ["mace-mp-0-small", "7net-0"],
                "anchors.reference_model": "7net-0",
                "model_options": {"mace-mp-0-small": {"source": f"{url}/small.model", "sha256": sha}},
                "weights.cache_dir": str(cache),
            },
        )
        out = f"results/{name}/embeddings/mace-mp-0-small.{target}"
        return run_config(cfg, tmp_path, out)

    # 1. a wrong checksum: the fetch job fails, nothing lands in the cache, no embedding job runs
    res = run("badsum", "0" * 64)
    assert res.returncode != 0
    log = tmp_path / "results" / "badsum" / "logs" / "fetch_weights" / "mace-mp-0-small" / "small.model.log"
    assert "sha256 mismatch" in log.read_text() and str(expected) in log.read_text()
    assert not expected.exists() and not list(cache.rglob("*.part"))
    assert not (tmp_path / "results" / "badsum" / "embeddings").exists()

    # 2. a flaky server: two 503s, then the download succeeds on the third attempt
    handler.failures_left, handler.requests = 2, 0
    res = run("good", digest)
    assert res.returncode == 0, res.stderr[-3000:]
    assert handler.requests == 3 and expected.exists()
    meta = json.loads((tmp_path / "results" / "good" / "embeddings" / "mace-mp-0-small.json").read_text())
    assert meta["weights_sha256"] == digest and meta["dim"] == 128

    # 3. offline (server gone): a new run reuses the cached file and never needs the network
    stop()
    res = run("offline", digest)
    assert res.returncode == 0, res.stderr[-3000:]
    a = np.load(tmp_path / "results" / "good" / "embeddings" / "mace-mp-0-small.npy")
    b = np.load(tmp_path / "results" / "offline" / "embeddings" / "mace-mp-0-small.npy")
    np.testing.assert_array_equal(a, b)

    # 4. offline without the file: the error names the model, the expected path and how to provide it
    expected.unlink()
    res = run("nofile", digest)
    assert res.returncode != 0
    text = (
        tmp_path / "results" / "nofile" / "logs" / "fetch_weights" / "mace-mp-0-small" / "small.model.log"
    ).read_text()
    assert (
        "mace-mp-0-small" in text and str(expected) in text and "model_options.mace-mp-0-small.source" in text
    )


def test_tampered_weights_file_is_not_loaded(tmp_path, random_mace_checkpoint):
    """A local weights file whose sha256 differs from the config is refused before unpickling."""
    import hashlib

    good = hashlib.sha256(random_mace_checkpoint.read_bytes()).hexdigest()
    tampered = tmp_path / "tampered.model"
    tampered.write_bytes(random_mace_checkpoint.read_bytes() + b"\0")
    cfg = write_config(
        tmp_path / "t.yaml",
        run_name="t",
        **{
            "structures.limit": 4,
            "models": ["mace-mp-0-small", "7net-0"],
            "anchors.reference_model": "7net-0",
            "model_options": {"mace-mp-0-small": {"source": str(tampered), "sha256": good}},
        },
    )
    res = run_config(cfg, tmp_path, "results/t/embeddings/mace-mp-0-small.json")
    assert res.returncode != 0
    log = (tmp_path / "results" / "t" / "logs" / "embed" / "mace-mp-0-small" / "0000.log").read_text()
    assert "refusing to load" in log and "model_options.mace-mp-0-small.sha256" in log


def test_unchecksummed_local_weights_are_refused_unless_trusted(tmp_path, random_mace_checkpoint):
    """A local pickle with no sha256 in the config is not loaded; the message prints its digest to pin."""
    import hashlib

    digest = hashlib.sha256(random_mace_checkpoint.read_bytes()).hexdigest()

    def run(name, options):
        cfg = write_config(
            tmp_path / f"{name}.yaml",
            run_name=name,
            **{
                "structures.limit": 4,
                "models": ["mace-mp-0-small", "7net-0"],
                "anchors.reference_model": "7net-0",
                "model_options": {"mace-mp-0-small": {"source": str(random_mace_checkpoint), **options}},
            },
        )
        return run_config(cfg, tmp_path, f"results/{name}/embeddings/mace-mp-0-small.json")

    res = run("unpinned", {})
    assert res.returncode != 0
    log = (tmp_path / "results" / "unpinned" / "logs" / "embed" / "mace-mp-0-small" / "0000.log").read_text()
    assert "refusing to load local weights file" in log and f"sha256: {digest}" in log, log[-2000:]
    assert "trust_weights_file" in log
    assert not list((tmp_path / "results" / "unpinned" / "embeddings").rglob("*.npy"))
    res = run("trusted", {"trust_weights_file": True})
    assert res.returncode == 0, res.stderr[-3000:]
    meta = json.loads((tmp_path / "results" / "trusted" / "embeddings" / "mace-mp-0-small.json").read_text())
    assert meta["weights"]["sha256"] == digest and meta["weights"]["kind"] == "local"


def test_a_wrong_sha256_stops_a_bundled_checkpoint(tmp_path):
    require_env("sevenn")
    cfg = write_config(
        tmp_path / "b.yaml",
        run_name="b",
        **{"structures.limit": 4, "model_options": {"7net-0": {"sha256": "0" * 64}}},
    )
    res = run_config(cfg, tmp_path, "results/b/embeddings/7net-0.json")
    assert res.returncode != 0
    log = (tmp_path / "results" / "b" / "logs" / "embed" / "7net-0" / "0000.log").read_text()
    assert "refusing to load" in log and "model_options.7net-0.sha256" in log, log[-2000:]


def test_a_package_key_as_source_is_fetched_by_the_family(tmp_path):
    """mace's own key `medium-mpa-0` as the source of a MACE model: the plan fetches it by that key."""
    cfg = write_config(
        tmp_path / "k.yaml",
        run_name="k",
        **{
            "models": ["mace-mp-0-small", "7net-0"],
            "anchors.reference_model": "7net-0",
            "model_options": {"mace-mp-0-small": {"source": "medium-mpa-0"}},
            "weights.cache_dir": str(tmp_path / "w"),
        },
    )
    res = snakemake("-n", "-p", "--configfile", str(cfg), "--directory", str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "rule fetch_weights" in res.stdout
    assert (
        "--key=medium-mpa-0" in res.stdout
        and str(tmp_path / "w" / "mace-mp-0-small" / "medium-mpa-0.model") in res.stdout
    )


def test_a_checkpoint_at_several_layers_is_embedded_in_one_job(tmp_path):
    """`name@layer`: one embedding job per checkpoint; each model keeps its layer's columns. With
    projection.center (ours) the centred spaces are measured beside the paper's."""
    require_env("mace")
    models = ["dummy-mace-mp-0-small", "dummy-mace-mp-0-small@last", "dummy-mace-mp-0-small@all", "7net-0"]
    cfg = write_config(
        tmp_path / "l.yaml",
        run_name="l",
        **{
            "structures.limit": 6,
            "models": models,
            "anchors.reference_model": "7net-0",
            "anchors.k": 10,
            "metrics.n_sample": 30,
            "metrics.uncertainty.repeats": 2,
            "projection.center": True,
        },
    )
    res = run_config(cfg, tmp_path, "results/l/metrics/pairwise.csv", cores=2)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "results" / "l"
    assert sorted(p.name for p in (run / "embeddings" / "shards").iterdir()) == [
        "7net-0",
        "dummy-mace-mp-0-small",
    ]
    shard = np.load(run / "embeddings" / "shards" / "dummy-mace-mp-0-small" / "0000.npy")
    meta = json.loads((run / "embeddings" / "shards" / "dummy-mace-mp-0-small" / "0000.json").read_text())
    assert meta["layers"] == ["first", "last", "all"] and shard.shape[1] == 128 + 128 + 256
    first, last, both = (np.load(run / "embeddings" / f"{m}.npy") for m in models[:3])
    assert first.shape[1] == last.shape[1] == 128 and both.shape[1] == 256
    assert np.array_equal(both, np.hstack([first, last])) and not np.allclose(first, last)
    assert json.loads((run / "embeddings" / "dummy-mace-mp-0-small@last.json").read_text())["layer"] == "last"
    table = pd.read_csv(run / "metrics" / "pairwise.csv")
    assert set(table["anchors"].dropna()) == {"direct", "random", "direct-centred", "random-centred"}
    assert set(table["model_a"]) | set(table["model_b"]) == set(models)
    centred = np.load(run / "platonic" / "direct-centred" / "7net-0.npy")
    plain = np.load(run / "platonic" / "direct" / "7net-0.npy")
    assert centred.shape == plain.shape and not np.allclose(centred, plain)


# code run in a family environment to save a checkpoint of a random-initialised architecture
RANDOM_CHECKPOINT = {
    "sevenn": (
        "7net-omat",
        "ckpt.pth",
        "import sys, torch\n"
        "from sevenn.util import load_checkpoint\n"
        "from platonic_mlip.embed.sevenn import load\n"
        "from platonic_mlip.models import resolve\n"
        "emb = load(resolve('dummy-7net-0'), torch.device('cpu'))\n"
        "model = next(v for v in vars(emb).values() if isinstance(v, torch.nn.Module))\n"
        "cp = load_checkpoint('7net-0')\n"
        "path = getattr(cp, 'checkpoint_path', None) or cp._checkpoint_path\n"
        "raw = torch.load(path, map_location='cpu', weights_only=False)\n"
        "raw['model_state_dict'] = model.state_dict()\n"
        "torch.save(raw, sys.argv[1])\n",
    ),
    "orb": (
        "orb-v3-direct-inf-omat",
        "ckpt.ckpt",
        "import sys, torch\n"
        "from platonic_mlip.embed.orb import build_random_model\n"
        "torch.save(build_random_model('orb_v3_direct_inf_omat', 0).state_dict(), sys.argv[1])\n",
    ),
}


@pytest.mark.parametrize("family", sorted(RANDOM_CHECKPOINT))
def test_fetched_checkpoint_of_each_family_is_embedded(tmp_path, http_server, family):
    import hashlib

    py = require_env(family)
    model, filename, code = RANDOM_CHECKPOINT[family]
    served, url, _, _ = http_server
    res = subprocess.run(
        [str(py), "-c", code, str(served / filename)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]
    digest = hashlib.sha256((served / filename).read_bytes()).hexdigest()
    cfg = write_config(
        tmp_path / "c.yaml",
        run_name="c",
        **{
            "structures.limit": 4,
            "models": [model, "7net-0"],
            "anchors.reference_model": "7net-0",
            "model_options": {model: {"source": f"{url}/{filename}", "sha256": digest}},
            "weights.cache_dir": str(tmp_path / "weights"),
        },
    )
    res = run_config(cfg, tmp_path, f"results/c/embeddings/{model}.json", cores=2)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "weights" / model / filename).exists()
    meta = json.loads((tmp_path / "results" / "c" / "embeddings" / f"{model}.json").read_text())
    assert meta["weights_sha256"] == digest
    emb = np.load(tmp_path / "results" / "c" / "embeddings" / f"{model}.npy")
    assert emb.shape[1] == MODEL_DIMS[family] and np.isfinite(emb).all()


MODEL_DIMS = {"sevenn": 128, "orb": 256, "mace": 128}
