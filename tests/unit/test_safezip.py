"""Untrusted ZIP archives: every hostile or broken one gives a clean ArchiveError with the right code,
nothing is ever written to disk, and no header is trusted."""

from __future__ import annotations

import os
import struct
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from bambu_edge.files.safezip import DEFAULT_LIMITS, ArchiveError, SafeZip, check_name
from bambu_edge.files.threemf import read_3mf, read_thumbnail
from tests.factories.threemf import HOSTILE, PlateSpec, make_3mf


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_archives_are_refused_with_the_right_code_and_nothing_written(
    tmp_path: Path, name: str
) -> None:
    maker, code = HOSTILE[name]
    archive = maker(tmp_path / f"{name}.3mf")
    before = tree(tmp_path)
    cwd_before = set(os.listdir("."))
    with pytest.raises(ArchiveError) as err:
        read_3mf(archive)
    assert err.value.code == code, str(err.value)
    # A plain sentence for the user, no traceback-speak.
    text = str(err.value)
    assert text[0].isupper() and text.endswith((".", "?")) and "Error" not in text
    if code in ("bad_xml", "not_3mf"):
        # The archive itself is sound; the thumbnail reader never parses the offending part.
        thumb = read_thumbnail(archive, 1)
        assert thumb is None or thumb.startswith(b"\x89PNG")
    else:
        with pytest.raises(ArchiveError) as again:
            read_thumbnail(archive, 1)
        assert again.value.code == code
    assert tree(tmp_path) == before  # nothing extracted, no temp files
    assert set(os.listdir(".")) == cwd_before
    assert not (tmp_path.parent / "owned").exists() and not Path("/etc/cron.d/owned").exists()


def test_acceptable_names() -> None:
    for name in (
        "3D/3dmodel.model",
        "Metadata/plate_1.png",
        "Metadata/",
        "Auxiliaries/.thumbnails/thumbnail_3mf.png",
        "[Content_Types].xml",
        "Metadata/plate..name.png",  # '..' inside a name is not a path component
    ):
        assert check_name(name) is None, name
    for name in ("", "/abs", "a/../b", "./a", "a//b", "a\\b", "C:x", "c:/x", "a\x00b", "a\nb", "x" * 2000):
        assert check_name(name) is not None, repr(name)


def _lying_zip(path: Path, declared: int) -> Path:
    """An entry whose headers claim ``declared`` bytes while its data inflates to 4 MB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Metadata/slice_info.config", b"<config>" + b" " * (4 * 1024 * 1024) + b"</config>")
    data = bytearray(path.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(sig)
        data[at + offset : at + offset + 4] = struct.pack("<I", declared)
    path.write_bytes(bytes(data))
    return path


def test_header_sizes_are_not_trusted(tmp_path: Path) -> None:
    archive = _lying_zip(tmp_path / "lying.zip", declared=100_000)
    with SafeZip(archive) as z:
        assert z.size("Metadata/slice_info.config") == 100_000
        with pytest.raises(ArchiveError) as err:
            z.read("Metadata/slice_info.config")  # 100 kB come out, never 4 MB; then the CRC fails
        assert err.value.code == "truncated"
        chunks = list(z.iter_chunks("Metadata/slice_info.config", 50))
        assert sum(map(len, chunks)) == 50  # stopped at our limit, not the data's end


def test_limits_apply(tmp_path: Path) -> None:
    made = make_3mf(tmp_path / "a.gcode.3mf", plates=[PlateSpec(layers=300)])
    size = made.path.stat().st_size
    with pytest.raises(ArchiveError) as err:
        read_3mf(made.path, replace(DEFAULT_LIMITS, max_archive_bytes=size - 1))
    assert err.value.code == "too_large"
    with pytest.raises(ArchiveError) as err:
        read_3mf(made.path, replace(DEFAULT_LIMITS, max_entries=5))
    assert err.value.code == "too_large"
    with pytest.raises(ArchiveError) as err:
        read_3mf(made.path, replace(DEFAULT_LIMITS, max_total_uncompressed=10_000))
    assert err.value.code == "zip_bomb"
    with pytest.raises(ArchiveError) as err:
        read_3mf(made.path, replace(DEFAULT_LIMITS, max_member_bytes=200))
    assert err.value.code == "too_large"
    with SafeZip(made.path) as z:
        assert len(z.read_head("Metadata/plate_1.gcode", 1000)) == 1000


def test_small_entries_may_compress_well(tmp_path: Path) -> None:
    path = tmp_path / "ok.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Metadata/blank.txt", b" " * 500_000)  # ~1000:1 but small: no bomb
    with SafeZip(path) as z:
        assert len(z.read("Metadata/blank.txt")) == 500_000


def test_encrypted_or_foreign_compression_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bz.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("3D/3dmodel.model", "<model/>")
    with pytest.raises(ArchiveError) as err:
        SafeZip(path)
    assert err.value.code == "not_3mf"
    path = tmp_path / "enc.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("3D/3dmodel.model", "<model/>")
    data = bytearray(path.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(sig)
        data[at + offset] |= 0x1  # the "encrypted" flag
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError) as err:
        SafeZip(path)
    assert err.value.code == "not_3mf"


def test_damaged_entry_data_is_reported_as_such(tmp_path: Path) -> None:
    made = make_3mf(tmp_path / "a.gcode.3mf")
    data = bytearray(made.path.read_bytes())
    with zipfile.ZipFile(made.path) as zf:
        info = zf.getinfo("Metadata/slice_info.config")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 10
    data[start : start + 40] = bytes(40)
    made.path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError) as err:
        read_3mf(made.path)
    assert err.value.code == "truncated"


def test_empty_missing_and_directory_inputs(tmp_path: Path) -> None:
    (tmp_path / "empty.3mf").write_bytes(b"")
    for target in (tmp_path / "empty.3mf", tmp_path / "missing.3mf", tmp_path):
        with pytest.raises(ArchiveError) as err:
            read_3mf(target)
        assert err.value.code == "not_a_zip"


def test_truncated_at_any_point_is_a_clean_error(tmp_path: Path) -> None:
    made = make_3mf(tmp_path / "a.gcode.3mf", plates=[PlateSpec(layers=50), PlateSpec(layers=20)])
    data = made.path.read_bytes()
    for keep in (10, 100, len(data) // 3, len(data) - 30, len(data) - 1):
        cut = tmp_path / f"cut{keep}.3mf"
        cut.write_bytes(data[:keep])
        with pytest.raises(ArchiveError) as err:
            read_3mf(cut)
        assert err.value.code == "truncated", (keep, err.value)
