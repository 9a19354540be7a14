"""A user with their own structures: sources as inputs, other formats, the example config."""

import csv
import subprocess

import pandas as pd
import yaml
from conftest import ROOT
from test_workflow import run_config, snakemake, write_config

ATOMS = "results/{run}/structures/atoms.csv"


def _rows(sample_csv, n):
    with open(sample_csv, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, [r for _, r in zip(range(n), reader, strict=False)]


def _write(path, fields, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def _config(tmp_path, run, source, **changes):
    return write_config(
        tmp_path / f"{run}.yaml",
        run_name=run,
        **{
            "structures.source": str(source),
            "structures.expected_structures": None,
            "structures.expected_atoms": None,
            **changes,
        },
    )


def test_editing_the_source_reruns_and_errors_name_the_users_file(tmp_path, sample_csv):
    fields, rows = _rows(sample_csv, 6)
    src = tmp_path / "mine.csv"
    _write(src, fields, rows)
    cfg = _config(tmp_path, "edit", src)
    target = ATOMS.format(run="edit")
    res = run_config(cfg, tmp_path, target)
    assert res.returncode == 0, res.stderr[-3000:]
    res = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), target)
    assert "Nothing to be done" in res.stdout + res.stderr
    # a corrupt CIF written into the user's file: the next run parses again and names that file
    bad = [dict(r) for r in rows]
    bad[4]["cif"] = "data_broken\n_cell_length_a oops\n"
    _write(src, fields, bad)
    res = run_config(cfg, tmp_path, target)
    assert res.returncode != 0
    log = (tmp_path / "results/edit/logs/parse_structures.log").read_text()
    assert f"{src}: data row 5 (material_id {rows[4]['material_id']})" in log
    assert "results/edit" not in log.split("ERROR:", 1)[1]
    # fixed again (one structure fewer): rerun, and the table follows the file
    _write(src, fields, rows[:5])
    res = run_config(cfg, tmp_path, target)
    assert res.returncode == 0, res.stderr[-3000:]
    assert pd.read_csv(tmp_path / target)["material_id"].nunique() == 5


def test_extxyz_and_a_folder_of_cifs_give_the_same_atoms_as_the_csv(tmp_path, sample_csv):
    from ase.io import write

    from platonic_mlip.structures import read_split_csv

    fields, rows = _rows(sample_csv, 7)
    _write(tmp_path / "ref.csv", fields, rows)
    atoms, ids, _ = read_split_csv(tmp_path / "ref.csv")
    for a, mid in zip(atoms, ids, strict=True):
        a.info = {"material_id": mid}
    write(tmp_path / "mine.extxyz", atoms, format="extxyz")
    folder = tmp_path / "cifs"
    folder.mkdir()
    for i, r in enumerate(rows):  # name order = row order
        (folder / f"{i:02d}_{r['material_id']}.cif").write_text(r["cif"])
    tables = {}
    for run, src in (("csv", tmp_path / "ref.csv"), ("xyz", tmp_path / "mine.extxyz"), ("dir", folder)):
        res = run_config(_config(tmp_path, run, src), tmp_path, ATOMS.format(run=run))
        assert res.returncode == 0, res.stderr[-3000:]
        tables[run] = pd.read_csv(tmp_path / ATOMS.format(run=run))
    cols = ["atom_index", "structure_index", "atom_in_structure", "Z", "element"]
    pd.testing.assert_frame_equal(tables["csv"][cols], tables["xyz"][cols])
    pd.testing.assert_frame_equal(tables["csv"][cols], tables["dir"][cols])
    assert list(tables["xyz"]["material_id"]) == list(tables["csv"]["material_id"])
    assert tables["dir"]["material_id"].iloc[0] == f"00_{rows[0]['material_id']}"


def test_a_missing_source_or_unknown_format_stops_before_any_job(tmp_path):
    res = run_config(_config(tmp_path, "gone", tmp_path / "nowhere.csv"), tmp_path)
    assert (
        res.returncode != 0 and "config key 'structures.source'" in res.stderr and "nowhere.csv" in res.stderr
    )
    (tmp_path / "data.json").write_text("{}")
    res = run_config(_config(tmp_path, "fmt", tmp_path / "data.json"), tmp_path)
    assert res.returncode != 0 and "structures.format" in res.stderr


def test_expected_structures_is_checked_even_with_a_limit(tmp_path):
    cfg = write_config(
        tmp_path / "lim.yaml",
        run_name="lim",
        **{"structures.limit": 5, "structures.expected_structures": 846},
    )
    res = run_config(cfg, tmp_path, ATOMS.format(run="lim"))
    assert res.returncode != 0
    assert "checked only without 'structures.limit'" in res.stderr  # expected_atoms: said, not silent
    log = (tmp_path / "results/lim/logs/parse_structures.log").read_text()
    assert "has 847 structures, but config key 'structures.expected_structures' says 846" in log


def test_the_example_config_runs_on_the_shipped_cif_folder(tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "example.yaml").read_text())
    assert cfg["structures"]["source"] == "resources/examples/cifs"
    res = snakemake("-n", "--configfile", str(ROOT / "config" / "example.yaml"), "--directory", str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    res = run_config(ROOT / "config" / "example.yaml", tmp_path, ATOMS.format(run="example"))
    assert res.returncode == 0, res.stderr[-3000:]
    table = pd.read_csv(tmp_path / ATOMS.format(run="example"))
    n_atoms = len(table)
    assert table["material_id"].nunique() == 24
    # the example's metric sample must stay below its atoms, or it would have no intervals
    assert cfg["metrics"]["n_sample"] < n_atoms and cfg["anchors"]["k"] <= n_atoms


def test_make_run_needs_a_config():
    res = subprocess.run(["make", "-n", "run", "CONFIG="], cwd=ROOT, capture_output=True, text=True)
    assert "usage: make run CONFIG=" in res.stdout + res.stderr
    res = subprocess.run(
        ["make", "-n", "run", "CONFIG=config/example.yaml"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0 and "--configfile config/example.yaml" in res.stdout
