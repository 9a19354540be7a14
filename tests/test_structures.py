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


# --- other input formats, geometry checks, encodings (issue: a user with their own data) ----------


def _cif(symbols, frac, a=5.0, sg="P 1"):
    sites = "\n".join(
        f"{s}{i} {s} {x} {y} {z} 1.0" for i, (s, (x, y, z)) in enumerate(zip(symbols, frac, strict=True))
    )
    return (
        f"data_test\n_symmetry_space_group_name_H-M '{sg}'\n_cell_length_a {a}\n_cell_length_b {a}\n"
        f"_cell_length_c {a}\n_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
        "_symmetry_Int_Tables_number 1\nloop_\n_symmetry_equiv_pos_as_xyz\n  'x, y, z'\nloop_\n"
        "_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
        f"_atom_site_fract_z\n_atom_site_occupancy\n{sites}\n"
    )


def _csv_of(path, cifs):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["material_id", "cif"])
        for i, c in enumerate(cifs):
            w.writerow([f"x-{i}", c])
    return path


def test_coincident_sites_are_refused_not_merged(tmp_path):
    """ASE merges two sites at one position silently (an atom lost); we name the structure."""
    good = _cif(["Na", "Cl"], [(0, 0, 0), (0.5, 0.5, 0.5)])
    same = _cif(["Na", "Cl", "Cl"], [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)])
    path = _csv_of(tmp_path / "c.csv", [good, same])
    with pytest.raises(StructureError) as err:
        read_split_csv(path)
    msg = str(err.value)
    assert "data row 2" in msg and "x-1" in msg and "structures.min_distance" in msg and "sites 1" in msg
    # the check can be turned off: ASE then merges the pair (what used to happen silently)
    atoms, _, _ = read_split_csv(path, min_distance=None)
    assert [len(a) for a in atoms] == [2, 2]


def test_nearly_coincident_atoms_are_refused(tmp_path):
    close = _cif(["Na", "Cl", "Cl"], [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0.51)])  # 0.05 A apart
    path = _csv_of(tmp_path / "n.csv", [close])
    with pytest.raises(StructureError, match=r"0\.050 A apart.*structures\.min_distance"):
        read_split_csv(path)
    # across the periodic boundary too
    wrap = _cif(["Na", "Cl"], [(0, 0, 0), (0.995, 0, 0)])
    with pytest.raises(StructureError, match=r"0\.025 A apart"):
        read_split_csv(_csv_of(tmp_path / "w.csv", [wrap]))
    assert len(read_split_csv(path, min_distance=0.01)[0][0]) == 3


def test_a_byte_order_mark_is_not_part_of_the_first_column(sample_csv, tmp_path):
    bom = tmp_path / "bom.csv"
    write_rows(bom, sample_csv, 5)
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    assert bom.read_text(encoding="utf-8").startswith("\ufeff")
    atoms, ids, _ = read_split_csv(bom, limit=3)
    assert len(atoms) == 3 and ids == read_split_csv(sample_csv, limit=3)[1]


def test_the_whole_file_is_counted_when_limited(sample_csv):
    from platonic_mlip.structures import read_structures

    got = read_structures(sample_csv, limit=5)
    assert len(got.atoms) == 5 and got.n_total == 847


def test_messages_name_the_users_file_not_a_copy(sample_csv, tmp_path):
    bad = tmp_path / "copy.csv"
    write_rows(bad, sample_csv, 3, lambda rows: rows[1].update(cif="nonsense"))
    with pytest.raises(StructureError) as err:
        read_split_csv(bad, name="/data/mine.csv")
    assert str(err.value).startswith("/data/mine.csv: data row 2") and str(bad) not in str(err.value)


def _same_structures(a_list, b_list):
    assert len(a_list) == len(b_list)
    for a, b in zip(a_list, b_list, strict=True):
        np.testing.assert_array_equal(a.numbers, b.numbers)
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-5)
        np.testing.assert_allclose(a.cell[:], b.cell[:], atol=1e-5)


def test_extxyz_with_and_without_ids(sample_csv, tmp_path):
    from ase.io import write

    from platonic_mlip.structures import read_structures

    ref, ids, sgs = read_split_csv(sample_csv, limit=12)
    frames = [a.copy() for a in ref]
    for f, mid, sg in zip(frames, ids, sgs, strict=True):
        f.info = {"material_id": mid, "spacegroup.number": sg}
    write(tmp_path / "s.extxyz", frames, format="extxyz")
    got = read_structures(tmp_path / "s.extxyz")
    _same_structures(got.atoms, ref)
    assert got.material_ids == ids and got.spacegroups == sgs and got.n_total == 12
    for f in frames:
        f.info = {}
    write(tmp_path / "anon.xyz", frames, format="extxyz")
    got = read_structures(tmp_path / "anon.xyz", limit=4)
    assert got.material_ids == [f"anon-{i}" for i in range(4)] and got.n_total == 12
    assert got.spacegroups == [-1] * 4
    # an id on some frames only is ambiguous
    frames[3].info = {"material_id": "mp-1"}
    write(tmp_path / "mixed.xyz", frames, format="extxyz")
    with pytest.raises(StructureError, match="frame 0 has no 'material_id'.*structures.id_key"):
        read_structures(tmp_path / "mixed.xyz")


def test_extxyz_checks_geometry_and_duplicates(sample_csv, tmp_path):
    from ase.io import write

    from platonic_mlip.structures import read_structures

    ref, ids, _ = read_split_csv(sample_csv, limit=3)
    frames = [a.copy() for a in ref]
    for f, mid in zip(frames, ids, strict=True):
        f.info = {"material_id": mid}
    frames[2].info = {"material_id": ids[0]}
    write(tmp_path / "dup.xyz", frames, format="extxyz")
    with pytest.raises(StructureError, match="frame 2 .*duplicate material_id .first at frame 0"):
        read_structures(tmp_path / "dup.xyz")
    frames[2].info = {"material_id": "close"}
    frames[2].positions[1] = frames[2].positions[0] + [0.05, 0, 0]
    write(tmp_path / "close.xyz", frames, format="extxyz")
    with pytest.raises(StructureError, match="frame 2 .material_id close.: atoms 0 .* 0.050 A apart"):
        read_structures(tmp_path / "close.xyz")


def test_a_folder_of_cif_files(sample_csv, tmp_path):
    from platonic_mlip.structures import read_structures

    folder = tmp_path / "cifs"
    folder.mkdir()
    with open(sample_csv, newline="") as fh:
        rows = [r for _, r in zip(range(9), csv.DictReader(fh), strict=False)]
    for r in rows:
        (folder / f"{r['material_id']}.cif").write_text(r["cif"])
    (folder / "notes.txt").write_text("not a structure")
    got = read_structures(folder)
    order = sorted(range(9), key=lambda i: rows[i]["material_id"])
    assert got.material_ids == [rows[i]["material_id"] for i in order]
    ref, _, _ = read_split_csv(sample_csv, limit=9)
    _same_structures(got.atoms, [ref[i] for i in order])
    (folder / "zz-bad.cif").write_text("data_x\n_cell_length_a oops\n")
    with pytest.raises(StructureError, match="zz-bad.cif: .material_id zz-bad.: CIF does not parse"):
        read_structures(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StructureError, match="no .cif files"):
        read_structures(empty)


def test_one_cif_file_of_several_blocks_and_unknown_formats(tmp_path):
    from platonic_mlip.structures import read_structures, source_format

    a = _cif(["Na", "Cl"], [(0, 0, 0), (0.5, 0.5, 0.5)]).replace("data_test", "data_first")
    b = _cif(["K", "Br"], [(0, 0, 0), (0.5, 0.5, 0.5)], a=6.0).replace("data_test", "data_second")
    (tmp_path / "two.cif").write_text(a + "\n" + b)
    got = read_structures(tmp_path / "two.cif")
    assert got.material_ids == ["first", "second"] and [str(x.symbols) for x in got.atoms] == ["NaCl", "KBr"]
    with pytest.raises(StructureError, match="structures.format"):
        source_format(tmp_path / "data.json")
    assert source_format(tmp_path / "data.json", "extxyz") == "extxyz"
    assert source_format("https://host/x/train.csv?raw=1") == "mp20-csv"


def test_failed_writes_leave_no_temporary_files(sample_csv, tmp_path, monkeypatch):
    import errno

    atoms, ids, _ = read_split_csv(sample_csv, limit=2)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full)
    with pytest.raises(OSError, match=f"no space left on device writing {tmp_path / 's.npz'}"):
        save_structures(tmp_path / "s.npz", atoms, ids)
    assert list(tmp_path.iterdir()) == []


def test_a_download_that_fails_leaves_no_part_file(http_server, tmp_path):
    _, url, handler, _ = http_server
    handler.failures_left = 5
    with pytest.raises(StructureError, match="could not download"):
        fetch(f"{url}/train.csv", tmp_path / "got.csv", retries=2, backoff_s=0.01)
    assert list(tmp_path.glob("*part*")) == [] and not (tmp_path / "got.csv").exists()


def test_a_downloaded_source_records_its_digest_and_headers(http_server, sample_csv, tmp_path):
    import json
    import subprocess
    import sys

    from conftest import ROOT

    served, url, _, _ = http_server
    (served / "train.csv").write_bytes(sample_csv.read_bytes())
    out, prov = tmp_path / "download" / "train.csv", tmp_path / "download" / "train.csv.json"
    script = ROOT / "workflow" / "scripts" / "download_structures.py"
    args = [
        sys.executable,
        str(script),
        "--url",
        f"{url}/train.csv",
        "--out",
        str(out),
        "--provenance",
        str(prov),
    ]
    res = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    meta = json.loads(prov.read_text())
    assert (
        meta["url"] == f"{url}/train.csv" and meta["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    )
    assert meta["sha256_pinned"] is False and "structures.sha256" in res.stdout
    assert meta["headers"]["Content-Length"] == str(out.stat().st_size)
