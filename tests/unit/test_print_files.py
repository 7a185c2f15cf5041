"""The file of a print started elsewhere (jobs/print_files.py): where it is, and reading it from memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from bambu_edge.files.safezip import ArchiveError
from bambu_edge.files.thumbnails import ThumbnailCache
from bambu_edge.jobs.print_files import candidates, read_info
from tests.factories.threemf import PlateSpec, make_3mf, make_zip_bomb


def test_candidate_names_follow_what_printers_show():
    # X1 / newer: gcode_file is a path inside the 3MF on a RAM disk; the slicer names the file after the job.
    assert candidates("Cube", "/data/Metadata/plate_2.gcode") == ["Cube.3mf", "Cube.gcode.3mf"]
    # P1/A1: gcode_file is the 3MF itself.
    assert candidates("Cube + Cube", "Cube + Cube.3mf") == ["Cube + Cube.3mf", "Cube + Cube.gcode.3mf"]
    assert candidates("x.gcode.3mf", None) == ["x.gcode.3mf"]
    assert candidates(None, None) == [] and candidates("a/b", "") == []  # no path games
    assert candidates("é" * 200, None) == []  # longer than a file name can be


def test_read_info_from_memory_stores_the_thumbnail_and_nothing_else(tmp_path: Path):
    made = make_3mf(
        tmp_path / "src.3mf",
        plates=[
            PlateSpec(layers=10),
            PlateSpec(layers=55, filaments=[("PETG", "#ff6a13", 33.0), ("PLA", "#FFFFFF", 4.0)]),
        ],
    )
    cache = ThumbnailCache(tmp_path / "thumbs")
    data = Path(made.path).read_bytes()
    info = read_info(data, "/cache/src.3mf", 2, cache)
    assert info is not None and info.file == "/cache/src.3mf" and info.plate == 2 and info.total_layers == 55
    # In the project's filament order (PLA was first used on plate 1), no AMS slot yet.
    assert [(f.slot, f.type, f.color, f.grams) for f in info.filament] == [
        (None, "PLA", "#FFFFFFFF", 4.0),
        (None, "PETG", "#FF6A13FF", 33.0),
    ]
    assert info.thumbnail and cache.get(info.thumbnail).startswith(b"\x89PNG")  # type: ignore[union-attr]
    assert [p.name for p in (tmp_path / "thumbs").iterdir()] == [info.thumbnail + ".png"]
    # A plate the file does not have: only the file name is known.
    assert read_info(data, "/cache/src.3mf", 9, cache).filament == ()  # type: ignore[union-attr]


def test_a_hostile_archive_is_refused_as_the_files_module_refuses_it(tmp_path: Path):
    bomb = make_zip_bomb(tmp_path / "bomb.3mf")
    with pytest.raises(ArchiveError):
        read_info(Path(bomb).read_bytes(), "/cache/bomb.3mf", 1, None)
    with pytest.raises(ArchiveError):
        read_info(b"not a zip at all", "/cache/x.3mf", 1, None)
