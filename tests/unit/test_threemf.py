"""Bambu 3MF metadata: what the slicer wrote comes back, from whichever part carries it; lib3mf is
optional; thumbnails are real PNGs or nothing."""

from __future__ import annotations

import logging
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from bambu_edge.files import threemf
from bambu_edge.files.png import png_size
from bambu_edge.files.safezip import DEFAULT_LIMITS
from bambu_edge.files.threemf import parse_slice_info, read_3mf, read_thumbnail
from tests.factories.threemf import PlateSpec, make_3mf, make_png

HAS_LIB3MF = threemf.lib3mf_wrapper() is not None


def rewrite(path: Path, drop: tuple[str, ...] = (), replace_parts: dict[str, bytes] | None = None) -> None:
    """Copy an archive without some parts (or with replaced ones)."""
    replace_parts = replace_parts or {}
    with zipfile.ZipFile(path) as src:
        parts = [(i.filename, src.read(i)) for i in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in parts:
            if name in drop:
                continue
            dst.writestr(name, replace_parts.pop(name, data))
        for name, data in replace_parts.items():
            dst.writestr(name, data)


def test_a_sliced_multi_plate_file_reads_back_as_written(tmp_path: Path) -> None:
    made = make_3mf(
        tmp_path / "toys.gcode.3mf",
        printer_model_id="C12",
        nozzle=0.4,
        title="Toy box",
        plates=[
            PlateSpec(
                prediction_s=3720,
                layers=100,
                filaments=[("PLA", "#FFFFFF", 12.3), ("PETG", "#000000", 3.2)],
                objects=["lid", "box"],
                bed_type="textured_plate",
            ),
            PlateSpec(
                prediction_s=600, layers=12, filaments=[("PETG", "#000000", 1.5)], bed_type="cool_plate"
            ),
        ],
    )
    meta = read_3mf(made.path)
    assert meta.kind == "3mf" and meta.sliced
    assert (meta.title, meta.printer_model, meta.printer_model_id) == ("Toy box", "P1S", "C12")
    assert meta.printer_name == "Bambu Lab P1S" and meta.nozzle_diameter == 0.4
    assert meta.slicer == "BambuStudio 02.01.01.52"
    one, two = meta.plates
    assert (one.index, one.prediction_s, one.layers, one.bed_type) == (1, 3720, 100, "textured_plate")
    assert one.gcode_path == "Metadata/plate_1.gcode" and one.thumbnail_path == "Metadata/plate_1.png"
    assert one.objects == ("lid", "box") and one.weight_g == pytest.approx(15.5)
    assert [(f.id, f.type, f.color, f.used_g, f.tray_info_idx) for f in one.filaments] == [
        (1, "PLA", "#FFFFFFFF", 12.3, "GFA00"),
        (2, "PETG", "#000000FF", 3.2, "GFG99"),
    ]
    assert one.filaments[0].used_m == pytest.approx(4.06, rel=1e-2)  # 12.1 g of PLA is about 4 m
    # The second plate's only filament is project filament 2: its id says which AMS slot to map.
    assert [(f.id, f.type) for f in two.filaments] == [(2, "PETG")]
    assert (two.prediction_s, two.layers, two.bed_type) == (600, 12, "cool_plate")
    assert meta.plate(2) is two and meta.plate(3) is None
    assert meta.warnings == ()
    as_json = meta.to_json()
    assert as_json["sliced"] is True and as_json["plates"][0]["filaments"][0]["type"] == "PLA"


@pytest.mark.parametrize(
    ("code", "model"), [("C12", "P1S"), ("BL-P001", "X1C"), ("C11", "P1P"), ("N2S", "A1"), ("N1", "A1 mini")]
)
def test_printer_model_codes_map_to_our_model_names(tmp_path: Path, code: str, model: str) -> None:
    made = make_3mf(tmp_path / f"{code}.gcode.3mf", printer_model_id=code)
    assert read_3mf(made.path, geometry=False).printer_model == model


def test_without_slice_info_the_other_parts_fill_in(tmp_path: Path) -> None:
    made = make_3mf(
        tmp_path / "a.gcode.3mf",
        printer_model_id="BL-P001",
        plates=[
            PlateSpec(
                prediction_s=5025, layers=42, filaments=[("PLA", "#161616", 22.46), ("PETG", "#F2F2F2", 1.0)]
            )
        ],
    )
    rewrite(made.path, drop=("Metadata/slice_info.config",))
    meta = read_3mf(made.path, geometry=False)
    plate = meta.plate(1)
    assert plate is not None
    # Model from project_settings' printer_model, time and layers from the G-code header, filaments
    # from plate_1.json (ids) + project settings (type, colour, preset) + header (grams).
    assert meta.printer_model == "X1C" and meta.printer_model_id is None
    assert (plate.prediction_s, plate.layers) == (5025, 42)
    assert [(f.id, f.type, f.color, f.tray_info_idx, f.used_g) for f in plate.filaments] == [
        (1, "PLA", "#161616FF", "GFA00", 22.46),
        (2, "PETG", "#F2F2F2FF", "GFG99", 1.0),
    ]


def test_only_the_gcode_header_left(tmp_path: Path) -> None:
    made = make_3mf(
        tmp_path / "a.gcode.3mf", printer_model_id="N2S", plates=[PlateSpec(prediction_s=999, layers=7)]
    )
    rewrite(
        made.path,
        drop=("Metadata/slice_info.config", "Metadata/project_settings.config", "Metadata/plate_1.json"),
    )
    meta = read_3mf(made.path, geometry=False)
    plate = meta.plate(1)
    assert plate is not None
    assert meta.printer_model == "A1" and meta.printer_name == "Bambu Lab A1" and meta.nozzle_diameter == 0.4
    assert (plate.prediction_s, plate.layers) == (999, 7)
    assert [(f.id, f.type, f.color, f.used_g) for f in plate.filaments] == [(1, "PLA", "#FFFFFFFF", 12.3)]


def test_a_project_that_is_not_sliced_says_so(tmp_path: Path) -> None:
    made = make_3mf(tmp_path / "project.3mf", plates=[PlateSpec(gcode=False), PlateSpec(gcode=False)])
    meta = read_3mf(made.path, geometry=False)
    assert not meta.sliced
    assert [p.index for p in meta.plates] == [1, 2] and all(p.gcode_path is None for p in meta.plates)
    assert "not" in meta.warnings[0] and "slice" in meta.warnings[0]


def test_slicer_warnings_reach_the_user(tmp_path: Path) -> None:
    made = make_3mf(
        tmp_path / "w.gcode.3mf",
        plates=[PlateSpec(outside=True, warnings=["bed_temperature_too_high_than_filament"])],
    )
    warnings = read_3mf(made.path, geometry=False).warnings
    assert any("outside the printable area" in w for w in warnings)
    assert "Plate 1: the slicer warned: bed temperature too high than filament." in warnings


def test_slice_info_from_real_bambu_studio_output() -> None:
    # As Bambu Studio 01.10 writes it (note the space in 'error_code =').
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
<config>
  <header>
    <header_item key="X-BBL-Client-Type" value="slicer"/>
    <header_item key="X-BBL-Client-Version" value="01.10.01.50"/>
  </header>
  <plate>
    <metadata key="index" value="1"/>
    <metadata key="printer_model_id" value="C12"/>
    <metadata key="nozzle_diameters" value="0.4"/>
    <metadata key="timelapse_type" value="0"/>
    <metadata key="prediction" value="9541"/>
    <metadata key="weight" value="38.24"/>
    <metadata key="outside" value="false"/>
    <object identify_id="150" name="part1" skipped="false" />
    <object identify_id="151" name="part2" skipped="true" />
    <filament id="1" tray_info_idx="GFL99" type="PLA" color="#0000FF" used_m="2.44" used_g="7.26" />
    <filament id="3" tray_info_idx="GFA00" type="PLA" color="#8E9089" used_m="1.51" used_g="4.58" />
    <warning msg="bed_temperature_too_high_than_filament" level="1" error_code ="1000C001"  />
  </plate>
</config>
"""
    info = parse_slice_info(data)
    assert info.client_version == "01.10.01.50"
    plate = info.plates[1]
    assert (plate.printer_model_id, plate.nozzle_diameter, plate.prediction_s, plate.weight_g) == (
        "C12",
        0.4,
        9541,
        38.24,
    )
    assert plate.objects == ("part1",) and plate.outside is False
    assert [(f.id, f.color, f.used_m) for f in plate.filaments] == [
        (1, "#0000FFFF", 2.44),
        (3, "#8E9089FF", 1.51),
    ]
    assert plate.warnings == ("bed temperature too high than filament",)


def test_broken_values_become_none_not_guesses(tmp_path: Path) -> None:
    data = b"""<config><plate>
    <metadata key="index" value="1"/><metadata key="prediction" value="soon"/>
    <metadata key="weight" value="-3"/><metadata key="nozzle_diameters" value="nan"/>
    <filament id="x" type="PLA"/><filament id="2" color="blue" used_g="1e999"/>
    </plate><plate><metadata key="index" value="0"/></plate></config>"""
    info = parse_slice_info(data)
    plate = info.plates[1]
    assert (plate.prediction_s, plate.weight_g, plate.nozzle_diameter) == (None, None, None)
    assert [(f.id, f.color, f.used_g) for f in plate.filaments] == [(2, None, None)]
    assert list(info.plates) == [1]


def test_thumbnails_per_plate_and_fallbacks(tmp_path: Path) -> None:
    made = make_3mf(
        tmp_path / "t.gcode.3mf",
        plates=[
            PlateSpec(filaments=[("PLA", "#FF0000", 1.0)]),
            PlateSpec(filaments=[("PLA", "#0000FF", 1.0)]),
        ],
    )
    one, two = read_thumbnail(made.path, 1), read_thumbnail(made.path, 2)
    assert one == made.thumbnails[1] and two == made.thumbnails[2] and one != two
    assert png_size(one or b"") == (128, 128)
    # No picture for a plate: the package thumbnail (the .rels target) stands in.
    rewrite(made.path, drop=("Metadata/plate_2.png",))
    assert read_thumbnail(made.path, 2) == made.thumbnails[1]  # _rels/.rels points at plate_1.png
    # A "PNG" that is not one is never returned.
    rewrite(made.path, replace_parts={"Metadata/plate_1.png": b"<script>alert(1)</script>"})
    assert read_thumbnail(made.path, 1) == made.package_thumbnail
    rewrite(made.path, drop=("Metadata/plate_1.png", "Auxiliaries/.thumbnails/thumbnail_3mf.png"))
    assert read_thumbnail(made.path, 1) is None
    for plate in (0, -1, 10_000, True, "1"):
        assert read_thumbnail(made.path, plate) is None  # type: ignore[arg-type]


def test_an_oversized_thumbnail_is_skipped(tmp_path: Path) -> None:
    made = make_3mf(tmp_path / "t.gcode.3mf")
    limits = replace(DEFAULT_LIMITS, max_image_bytes=1000)
    assert read_thumbnail(made.path, 1, limits) is None
    big = make_png(512, 512)
    rewrite(made.path, replace_parts={"Metadata/plate_1.png": big})
    assert read_thumbnail(made.path, 1) == big


def test_model_head_is_streamed_and_stops_early(tmp_path: Path) -> None:
    made = make_3mf(tmp_path / "big.gcode.3mf", target_size=3_000_000, title="Terrain")
    limits = replace(DEFAULT_LIMITS, max_model_head_bytes=4096)
    meta = read_3mf(made.path, limits, geometry=False)
    assert meta.title == "Terrain" and meta.plate(1) is not None


def test_a_model_with_a_dtd_is_refused(tmp_path: Path) -> None:
    made = make_3mf(tmp_path / "a.gcode.3mf")
    model = b'<?xml version="1.0"?>\n<!DOCTYPE model [<!ENTITY t "x">]>\n<model xmlns="x"><metadata name="Title">&t;</metadata></model>'
    rewrite(made.path, replace_parts={"3D/3dmodel.model": model})
    with pytest.raises(threemf.ArchiveError) as err:
        read_3mf(made.path)
    assert err.value.code == "bad_xml"


def test_broken_json_and_xml_parts_are_bad_xml(tmp_path: Path) -> None:
    for part, data in (
        ("Metadata/project_settings.config", b"{not json"),
        ("Metadata/plate_1.json", b"[" * 100_000),
        ("Metadata/slice_info.config", b"<config><plate>"),
        ("_rels/.rels", b"<Relationships"),
        ("3D/3dmodel.model", b"<model><metadata name='Title'>x</meta></model>"),
    ):
        made = make_3mf(tmp_path / "a.gcode.3mf")
        rewrite(made.path, replace_parts={part: data})
        with pytest.raises(threemf.ArchiveError) as err:
            read_3mf(made.path, geometry=False)
        assert err.value.code == "bad_xml", part


@pytest.mark.skipif(not HAS_LIB3MF, reason="lib3mf is installed on x86-64 only")
def test_lib3mf_adds_geometry_where_installed(tmp_path: Path) -> None:
    made = make_3mf(tmp_path / "cube.gcode.3mf")
    meta = read_3mf(made.path)
    assert meta.model is not None
    assert (meta.model.objects, meta.model.vertices, meta.model.triangles) == (1, 8, 12)
    assert read_3mf(made.path, geometry=False).model is None
    # Bounded: over the size limit, or out of time, the metadata still comes back.
    small = replace(DEFAULT_LIMITS, max_geometry_bytes=100)
    assert read_3mf(made.path, small).model is None
    rushed = replace(DEFAULT_LIMITS, geometry_timeout_s=0.0)
    meta = read_3mf(made.path, rushed)
    assert meta.model is None and meta.plate(1) is not None


def test_without_lib3mf_the_metadata_path_is_the_same_and_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    made = make_3mf(tmp_path / "cube.gcode.3mf", plates=[PlateSpec(layers=33)])
    with_lib = read_3mf(made.path)
    monkeypatch.setitem(sys.modules, "lib3mf", None)  # "import lib3mf" now fails, as on arm64
    monkeypatch.setattr(threemf, "_lib3mf_state", {})
    caplog.set_level(logging.INFO, logger="bambu_edge.files.threemf")
    first = read_3mf(made.path)
    second = read_3mf(made.path)
    assert first.model is None and second.model is None
    assert replace(first, model=None) == replace(with_lib, model=None)
    notes = [r for r in caplog.records if "lib3mf is not available" in r.getMessage()]
    assert len(notes) == 1 and "x86-64" in notes[0].getMessage()
