"""The phonon stage in the workflow's DAG (analysis environment; dry runs only, a few seconds each)."""

from __future__ import annotations

import yaml
from conftest import ROOT
from test_workflow import rule_counts, snakemake, write_config

PAPER = ROOT / "config" / "config.yaml"
TRAINED_PAPER = 7  # config/config.yaml: every model but the untrained dummy-mace-mp-0-small


def _dag(tmp_path, *config):
    res = snakemake("-n", "--quiet", "rules", *config, "--directory", str(tmp_path))
    return res, rule_counts(res.stdout + res.stderr)


def test_paper_config_runs_phonons_for_every_trained_model(tmp_path):
    res, counts = _dag(tmp_path, "--configfile", str(PAPER))
    assert res.returncode == 0, res.stderr[-3000:]
    assert counts["phonons"] == TRAINED_PAPER
    assert counts["phonons_finetuned"] == 6  # mace: naive and multihead arms, seeds 0-2
    assert counts["phonon_structures"] == counts["phonon_bands"] == 1
    assert counts["table_phonon_distortion_correlation"] == 1


def test_demo_phonons_and_turning_them_off(tmp_path):
    res, counts = _dag(tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    ft = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())["finetune"]
    # 7net-0 and chgnet-0.3.0; every fine-tuning arm and seed of the demo
    assert counts["phonons"] == 2 and counts["phonons_finetuned"] == len(ft["arms"]) * len(ft["seeds"]) > 1
    cfg = write_config(tmp_path / "nofinetuned.yaml", **{"phonons.finetuned": False, "phonons.models": None})
    res, counts = _dag(tmp_path, "--configfile", str(cfg))
    assert res.returncode == 0, res.stderr[-3000:]
    # the demo's trained checkpoints, each once (chgnet-0.3.0@readout_input is chgnet-0.3.0's)
    assert counts["phonons"] == 6 and "phonons_finetuned" not in counts
    cfg = write_config(tmp_path / "off.yaml", **{"phonons.enabled": False})
    res, counts = _dag(tmp_path, "--configfile", str(cfg))
    assert res.returncode == 0, res.stderr[-3000:]
    assert not [r for r in counts if "phonon" in r], counts


def test_unknown_or_untrained_phonon_model_is_refused(tmp_path):
    cfg = write_config(tmp_path / "bad.yaml", **{"phonons.models": ["7net-0", "no-such-model"]})
    res, _ = _dag(tmp_path, "--configfile", str(cfg))
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "config key 'phonons.models'" in out and "no-such-model" in out
    cfg = write_config(tmp_path / "control.yaml", **{"phonons.models": ["dummy-7net-small"]})
    res, _ = _dag(tmp_path, "--configfile", str(cfg))
    assert res.returncode != 0 and "untrained control" in res.stdout + res.stderr
