import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

from platonic_mlip.structures import (
    StructureError,
    atom_table,
    fetch,
    load_structures,
    read_split_csv,
    save_structures,
)


def write_rows(path: Path, src: Path, n: int, edit=None):
    with open(src, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [row for _, row in zip(range(n), reader, strict=False)]
        fields = reader.fieldnames
    if edit:
        edit(rows)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return rows


def test_sample_counts_match_the_paper_sample(sample_csv):
    atoms, ids, sgs = read_split_csv(sample_csv)
    assert len(atoms) == 847
    assert sum(len(a) for a in atoms) == 9047
    assert len(set(ids)) == 847
    assert sum(1 for s in sgs if s == 221) == 19
    table = atom_table(atoms, ids, sgs)
    assert table["element"].nunique() == 85


def test_atom_table_alignment(sample_csv):
    atoms, ids, sgs = read_split_csv(sample_csv, limit=30)
    t = atom_table(atoms, ids, sgs)
    assert list(t["atom_index"]) == list(range(len(t)))
    for s, a in enumerate(atoms):
        rows = t[t.structure_index == s]
        assert list(rows["Z"]) == list(a.numbers)
        assert list(rows["atom_in_structure"]) == list(range(len(a)))
        assert set(rows["material_id"]) == {ids[s]}


def test_structures_round_trip_exactly(sample_csv, tmp_path):
    atoms, ids, _ = read_split_csv(sample_csv, limit=25)
    save_structures(tmp_path / "s.npz", atoms, ids)
    back, back_ids = load_structures(tmp_path / "s.npz")
    assert back_ids == ids
    for a, b in zip(atoms, back, strict=True):
        np.testing.assert_array_equal(a.numbers, b.numbers)
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell[:], b.cell[:])
    part, part_ids = load_structures(tmp_path / "s.npz", start=10, stop=13)
    assert part_ids == ids[10:13] and len(part[0]) == len(atoms[10])


def test_bad_cif_names_file_row_and_material(sample_csv, tmp_path):
    bad = tmp_path / "bad.csv"

    def corrupt(rows):
        rows[3]["cif"] = "data_x\n_cell_length_a oops\nloop_\n_atom_site_label\n"

    rows = write_rows(bad, sample_csv, 6, corrupt)
    with pytest.raises(StructureError) as err:
        read_split_csv(bad)
    msg = str(err.value)
    assert str(bad) in msg and "data row 4" in msg and rows[3]["material_id"] in msg


def test_empty_and_headless_csv(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(StructureError, match="empty"):
        read_split_csv(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text(",material_id,cif\n")
    with pytest.raises(StructureError, match="no structures"):
        read_split_csv(header_only)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    with pytest.raises(StructureError, match="missing column"):
        read_split_csv(wrong)


def test_duplicate_material_id(sample_csv, tmp_path):
    dup = tmp_path / "dup.csv"

    def duplicate(rows):
        rows[2]["material_id"] = rows[0]["material_id"]

    write_rows(dup, sample_csv, 4, duplicate)
    with pytest.raises(StructureError, match="duplicate material_id"):
        read_split_csv(dup)


def test_download_with_checksum_and_retries(http_server, sample_csv, tmp_path):
    served, url, handler, _ = http_server
    data = sample_csv.read_bytes()
    (served / "train.csv").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    handler.failures_left = 2
    out = fetch(f"{url}/train.csv", tmp_path / "got.csv", sha256=digest, retries=3, backoff_s=0.01)
    assert out.read_bytes() == data and handler.failures_left == 0


def test_download_checksum_mismatch_leaves_nothing(http_server, sample_csv, tmp_path):
    served, url, _, _ = http_server
    (served / "train.csv").write_bytes(sample_csv.read_bytes())
    dest = tmp_path / "got.csv"
    with pytest.raises(StructureError, match="sha256 mismatch"):
        fetch(f"{url}/train.csv", dest, sha256="0" * 64, retries=1)
    assert not dest.exists() and not list(tmp_path.glob("got.csv*"))


def test_download_gives_up_after_retries(http_server, tmp_path):
    _, url, handler, _ = http_server
    handler.failures_left = 10
    with pytest.raises(StructureError, match="after 2 attempts"):
        fetch(f"{url}/train.csv", tmp_path / "x.csv", retries=2, backoff_s=0.01)
    assert not (tmp_path / "x.csv").exists()
