"""Realistic Bambu ``.gcode.3mf`` files, and hostile archives, for tests and benches.

The layout and fields follow what Bambu Studio writes (``src/libslic3r/Format/bbs_3mf.cpp``:
``_add_slice_info_config_file_to_archive``, ``_add_model_config_file_to_archive``, GCODE/THUMBNAIL/
PATTERN_CONFIG_FILE_FORMAT in ``bbs_3mf.hpp``; plate JSON from ``PlateBBoxData`` in
``GCode/ThumbnailData.hpp``; G-code header as in real BambuStudio 02.x output)::

    make_3mf(tmp_path / "cube.gcode.3mf", printer_model_id="C12", nozzle=0.4,
             plates=[PlateSpec(prediction_s=3720, layers=100, filaments=[("PLA", "#FFFFFF", 12.3)])])

Project filaments are the distinct (type, colour) pairs over all plates, in order of first use, so
the filament ``id`` of a plate (1-based, what ``ams_mapping`` is indexed by minus one) is stable.
``target_size`` pads the archive with realistic content (a big terrain mesh in 3D/3dmodel.model and
many G-code moves) until the file is at least that big.

Hostile archives: ``HOSTILE`` maps a name to ``(maker, expected ArchiveError code)``; every maker
takes the output path and writes one file there.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

CORE_NS = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
GCODE_REL = "http://schemas.bambulab.com/package/2021/gcode"
DENSITY = {"PLA": 1.26, "PETG": 1.25, "ABS": 1.04, "ASA": 1.05, "TPU": 1.22, "PA": 1.07, "PC": 1.2}
FILAMENT_PRESET = {"PLA": "GFA00", "PETG": "GFG99", "ABS": "GFB99", "ASA": "GFB98", "TPU": "GFU99"}
PRODUCT_NAMES = {
    "C11": "Bambu Lab P1P",
    "C12": "Bambu Lab P1S",
    "BL-P001": "Bambu Lab X1 Carbon",
    "BL-P002": "Bambu Lab X1",
    "C13": "Bambu Lab X1E",
    "N1": "Bambu Lab A1 mini",
    "N2S": "Bambu Lab A1",
    "O1D": "Bambu Lab H2D",
}
FILAMENT_AREA_MM2 = math.pi * (1.75 / 2) ** 2
SLICER_VERSION = "02.01.01.52"  # BambuStudio 2.1, as in the captures


@dataclass
class PlateSpec:
    """One sliced plate. ``filaments``: (type, "#RRGGBB", grams used)."""

    prediction_s: int = 3600
    layers: int = 100
    filaments: Sequence[tuple[str, str, float]] = (("PLA", "#FFFFFF", 12.3),)
    objects: Sequence[str] = ("cube",)
    bed_type: str = "textured_plate"
    thumbnail: bool = True
    gcode: bool = True  # False: a project plate that was not sliced
    outside: bool = False
    warnings: Sequence[str] = ()
    layer_height: float = 0.2


@dataclass
class Made:
    """What make_3mf wrote, for assertions."""

    path: Path
    thumbnails: dict[int, bytes] = field(default_factory=dict)
    package_thumbnail: bytes | None = None


# --- small valid PNGs ---------------------------------------------------------------------------


def make_png(width: int = 128, height: int = 128, color: str = "#00AE42", seed: int = 0) -> bytes:
    """A real, decodable RGBA PNG: a shaded disc in ``color`` on a transparent background."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    rows = bytearray()
    cx, cy, radius = width / 2 + seed % 5, height / 2, min(width, height) * 0.42
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            d = math.hypot(x - cx, y - cy)
            if d <= radius:
                shade = 0.6 + 0.4 * (1 - d / radius)
                rows += bytes(
                    (min(255, int(r * shade)), min(255, int(g * shade)), min(255, int(b * shade)), 255)
                )
            else:
                rows += b"\0\0\0\0"

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


# --- parts -------------------------------------------------------------------------------------------


def _duration(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m}m {s}s" if h else f"{m}m {s}s"


def _meters(kind: str, grams: float) -> float:
    # g per metre = g/cm3 x (mm2 x 1000 mm) / (1000 mm3 per cm3) = density x area
    return grams / (DENSITY.get(kind, 1.24) * FILAMENT_AREA_MM2)


def content_types() -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">\n'
        ' <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>\n'
        ' <Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>\n'
        ' <Default Extension="png" ContentType="image/png"/>\n'
        ' <Default Extension="gcode" ContentType="text/x.gcode"/>\n'
        "</Types>\n"
    )


def root_rels() -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\n'
        ' <Relationship Target="/3D/3dmodel.model" Id="rel-1" Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>\n'
        ' <Relationship Target="/Metadata/plate_1.png" Id="rel-2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail"/>\n'
        ' <Relationship Target="/Metadata/plate_1.png" Id="rel-4" Type="http://schemas.bambulab.com/package/2021/cover-thumbnail-middle"/>\n'
        ' <Relationship Target="/Metadata/plate_1_small.png" Id="rel-5" Type="http://schemas.bambulab.com/package/2021/cover-thumbnail-small"/>\n'
        "</Relationships>\n"
    )


def model_head(title: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<model unit="millimeter" xml:lang="en-US" xmlns="{CORE_NS}" '
        'xmlns:BambuStudio="http://schemas.bambulab.com/package/2021" '
        'xmlns:p="http://schemas.microsoft.com/3dmanufacturing/production/2015/06" requiredextensions="p">\n'
        f' <metadata name="Application">BambuStudio-{SLICER_VERSION}</metadata>\n'
        ' <metadata name="BambuStudio:3mfVersion">1</metadata>\n'
        ' <metadata name="Copyright"></metadata>\n'
        ' <metadata name="CreationDate">2025-11-24</metadata>\n'
        ' <metadata name="Designer"></metadata>\n'
        f' <metadata name="Title">{_xml(title)}</metadata>\n'
    )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def cube_mesh(size: float = 20.0) -> tuple[list[tuple[float, float, float]], list[tuple[int, int, int]]]:
    s = size
    v = [(0, 0, 0), (s, 0, 0), (s, s, 0), (0, s, 0), (0, 0, s), (s, 0, s), (s, s, s), (0, s, s)]
    t = [
        (0, 2, 1),
        (0, 3, 2),
        (4, 5, 6),
        (4, 6, 7),
        (0, 1, 5),
        (0, 5, 4),
        (1, 2, 6),
        (1, 6, 5),
        (2, 3, 7),
        (2, 7, 6),
        (3, 0, 4),
        (3, 4, 7),
    ]
    return [tuple(float(c) for c in p) for p in v], t  # type: ignore[misc]


def slice_info(
    plates: Sequence[tuple[int, PlateSpec]],
    filament_ids: dict[tuple[str, str], int],
    printer_model_id: str,
    nozzle: float,
) -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<config>",
        "  <header>",
        '    <header_item key="X-BBL-Client-Type" value="slicer"/>',
        f'    <header_item key="X-BBL-Client-Version" value="{SLICER_VERSION}"/>',
        "  </header>",
    ]
    for index, spec in plates:
        if not spec.gcode:
            continue
        weight = sum(g for _, _, g in spec.filaments)
        out += [
            "  <plate>",
            f'    <metadata key="index" value="{index}"/>',
            '    <metadata key="extruder_type" value="0"/>',
            '    <metadata key="nozzle_volume_type" value="0"/>',
            f'    <metadata key="printer_model_id" value="{printer_model_id}"/>',
            f'    <metadata key="nozzle_diameters" value="{nozzle}"/>',
            '    <metadata key="timelapse_type" value="0"/>',
            f'    <metadata key="prediction" value="{spec.prediction_s}"/>',
            f'    <metadata key="weight" value="{weight:.2f}"/>',
            '    <metadata key="pause_count" value="0"/>',
            f'    <metadata key="first_layer_time" value="{min(spec.prediction_s, 180)}"/>',
            f'    <metadata key="outside" value="{"true" if spec.outside else "false"}"/>',
            '    <metadata key="support_used" value="false"/>',
            '    <metadata key="label_object_enabled" value="true"/>',
            '    <metadata key="filament_maps" value="1"/>',
        ]
        for n, name in enumerate(spec.objects):
            out.append(f'    <object identify_id="{100 + n}" name="{_xml(name)}" skipped="false" />')
        for kind, color, grams in spec.filaments:
            fid = filament_ids[(kind, color.upper())]
            out.append(
                f'    <filament id="{fid}" tray_info_idx="{FILAMENT_PRESET.get(kind, "GFL99")}" type="{kind}" '
                f'color="{color.upper()}" used_m="{_meters(kind, grams):.2f}" used_g="{grams:.2f}" group_id="0" '
                f'nozzle_diameter="{nozzle:.2f}" volume_type="Standard" used_for_object="true" '
                'used_for_support="false" total_load_time="0" total_unload_time="0"/>'
            )
        for msg in spec.warnings:
            out.append(f'    <warning msg="{_xml(msg)}" level="1" error_code ="1000C001"  />')
        out.append("  </plate>")
    out.append("</config>")
    return "\n".join(out) + "\n"


def model_settings(plates: Sequence[tuple[int, PlateSpec]]) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<config>"]
    out += [
        '  <object id="2">',
        '    <metadata key="name" value="cube"/>',
        '    <metadata key="extruder" value="1"/>',
        "  </object>",
    ]
    for index, spec in plates:
        out += [
            "  <plate>",
            f'    <metadata key="plater_id" value="{index}"/>',
            '    <metadata key="plater_name" value=""/>',
            '    <metadata key="locked" value="false"/>',
        ]
        if spec.gcode:
            out.append(f'    <metadata key="gcode_file" value="Metadata/plate_{index}.gcode"/>')
        if spec.thumbnail:
            out.append(f'    <metadata key="thumbnail_file" value="Metadata/plate_{index}.png"/>')
        out.append("  </plate>")
    out.append("</config>")
    return "\n".join(out) + "\n"


def model_settings_rels(plates: Sequence[tuple[int, PlateSpec]]) -> str:
    rels = "".join(
        f' <Relationship Target="/Metadata/plate_{i}.gcode" Id="rel-{i}" Type="{GCODE_REL}"/>\n'
        for i, spec in plates
        if spec.gcode
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\n'
        f"{rels}</Relationships>\n"
    )


def plate_json(spec: PlateSpec, ids: list[int], colors: list[str], nozzle: float) -> str:
    return json.dumps(
        {
            "bbox_all": [117.5, 117.5, 137.5, 137.5],
            "bbox_objects": [
                {
                    "area": 400.0,
                    "bbox": [117.5, 117.5, 137.5, 137.5],
                    "id": 100 + n,
                    "layer_height": spec.layer_height,
                    "name": name,
                }
                for n, name in enumerate(spec.objects)
            ],
            "bed_type": spec.bed_type,
            "filament_colors": colors,
            "filament_ids": [i - 1 for i in ids],
            "first_extruder": 0,
            "first_layer_time": 120.0,
            "is_seq_print": False,
            "nozzle_diameter": nozzle,
            "version": 2,
        },
        separators=(",", ":"),
    )


def project_settings(printer_name: str, nozzle: float, project: list[tuple[str, str]]) -> str:
    n = max(1, len(project))
    types = [k for k, _ in project] or ["PLA"]
    colors = [c for _, c in project] or ["#FFFFFF"]
    start = (
        ";===== machine: P1S ========================\\n;===== date: 20231107 =====================\\n"
        "M104 S75 ;set extruder temp to turn on the HB fan and prevent filament oozing from nozzle\\n"
    ) * 20
    return json.dumps(
        {
            "bed_exclude_area": ["0x0", "18x0", "18x28", "0x28"],
            "curr_bed_type": "Textured PEI Plate",
            "default_filament_profile": ["Bambu PLA Basic @BBL X1C"],
            "filament_colour": colors,
            "filament_density": [str(DENSITY.get(k, 1.24)) for k in types],
            "filament_diameter": ["1.75"] * n,
            "filament_ids": [FILAMENT_PRESET.get(k, "GFL99") for k in types],
            "filament_settings_id": [f"Bambu {k} Basic @BBL X1C" for k in types],
            "filament_type": types,
            "filament_vendor": ["Bambu Lab"] * n,
            "layer_height": "0.2",
            "machine_start_gcode": start,
            "nozzle_diameter": [str(nozzle)],
            "print_settings_id": "0.20mm Standard @BBL X1C",
            "printable_area": ["0x0", "256x0", "256x256", "0x256"],
            "printable_height": "250",
            "printer_model": printer_name,
            "printer_settings_id": f"{printer_name} {nozzle} nozzle",
            "printer_variant": str(nozzle),
            "version": SLICER_VERSION,
        },
        indent=4,
    )


def gcode_head(
    spec: PlateSpec,
    ids: list[int],
    project: list[tuple[str, str]],
    printer_name: str,
    nozzle: float,
) -> str:
    grams = [g for _, _, g in spec.filaments]
    lengths = [_meters(k, g) * 1000 for k, _, g in spec.filaments]
    density = [str(DENSITY.get(k, 1.24)) for k, _ in project]
    model_time = int(spec.prediction_s * 0.9)
    lines = [
        "; HEADER_BLOCK_START",
        f"; BambuStudio {SLICER_VERSION}",
        f"; model printing time: {_duration(model_time)}; total estimated time: {_duration(spec.prediction_s)}",
        f"; total layer number: {spec.layers}",
        f"; total filament length [mm] : {','.join(f'{v:.2f}' for v in lengths)}",
        f"; total filament volume [cm^3] : {','.join(f'{v * FILAMENT_AREA_MM2 / 1000:.2f}' for v in lengths)}",
        f"; total filament weight [g] : {','.join(f'{g:.2f}' for g in grams)}",
        f"; filament_density: {','.join(density)}",
        f"; filament_diameter: {','.join(['1.75'] * len(project))}",
        f"; max_z_height: {spec.layers * spec.layer_height:.2f}",
        f"; filament: {','.join(str(i) for i in ids)}",
        "; HEADER_BLOCK_END",
        "",
        "; CONFIG_BLOCK_START",
        "; bed_exclude_area = 0x0,18x0,18x28,0x28",
        "; curr_bed_type = Textured PEI Plate",
        f"; filament_colour = {';'.join(c for _, c in project)}",
        f"; filament_ids = {';'.join(FILAMENT_PRESET.get(k, 'GFL99') for k, _ in project)}",
        f"; filament_type = {';'.join(k for k, _ in project)}",
        f"; layer_height = {spec.layer_height}",
        f"; nozzle_diameter = {nozzle}",
        f"; printer_model = {printer_name}",
        f"; printer_settings_id = {printer_name} {nozzle} nozzle",
        "; CONFIG_BLOCK_END",
        "",
        "; EXECUTABLE_BLOCK_START",
        f"M73 P0 R{max(1, spec.prediction_s // 60)}",
        "M201 X20000 Y20000 Z500 E5000",
        "M106 S0",
        "G90",
        "M83 ; only support relative e",
    ]
    return "\n".join(lines) + "\n"


def _move_pool(rng: random.Random, size: int = 20_000) -> list[str]:
    """Extrusion moves of a random walk. Padding reuses slices of this pool: deflate only looks back
    32 kB, so a pool much bigger than that compresses like fresh moves, and costs far less to make."""
    x, y, out = 128.0, 128.0, []
    for _ in range(size):
        x = min(250.0, max(5.0, x + rng.uniform(-4, 4)))
        y = min(250.0, max(5.0, y + rng.uniform(-4, 4)))
        out.append(f"G1 X{x:.3f} Y{y:.3f} E{rng.uniform(0.01, 0.9):.5f}\n")
    return out


def _layer_lines(pool: list[str], layer: int, total: int, height: float, moves: int) -> str:
    z = (layer + 1) * height
    out = [
        "; CHANGE_LAYER\n",
        f"; Z_HEIGHT: {z:.2f}\n",
        f"; LAYER_HEIGHT: {height}\n",
        f"; layer num/total_layer_count: {layer + 1}/{total}\n",
        f"M73 L{layer + 1}\n",
        f"M991 S0 P{layer} ;notify layer change\n",
        f"G1 Z{z:.2f} F1200\n",
        "; FEATURE: Outer wall\n",
    ]
    start = (layer * 7919) % len(pool)
    while moves > 0:
        part = pool[start : start + moves]
        out += part
        moves -= len(part)
        start = 0
    return "".join(out)


def gcode_tail() -> str:
    return "M140 S0 ; turn off bed\nM106 S0 ; turn off fan\nM104 S0 ; turn off hotend\nM400\n; EXECUTABLE_BLOCK_END\n"


# --- writing -----------------------------------------------------------------------------------------


class _Sink:
    """Where a padded part writes, and how far the archive has grown."""

    def __init__(self, stream: BinaryIO, raw: BinaryIO):
        self.stream, self.raw = stream, raw

    def write(self, text: str) -> bytes:
        data = text.encode()
        self.stream.write(data)
        return data

    @property
    def archive_bytes(self) -> int:
        return self.raw.tell()


def _write_model(
    zf: zipfile.ZipFile, raw: BinaryIO, head: str, budget_end: int | None, rng: random.Random
) -> None:
    with zf.open("3D/3dmodel.model", "w", force_zip64=True) as stream:
        sink = _Sink(stream, raw)  # type: ignore[arg-type]
        sink.write(head)
        sink.write(
            ' <resources>\n  <object id="2" p:UUID="00000001-61cb-4c03-9d28-80fed5dfa1dc" type="model">\n'
            "   <mesh>\n    <vertices>\n"
        )
        if budget_end is None:
            vertices, triangles = cube_mesh()
            for x, y, z in vertices:
                sink.write(f'     <vertex x="{x:g}" y="{y:g}" z="{z:g}"/>\n')
            sink.write("    </vertices>\n    <triangles>\n")
            for a, b, c in triangles:
                sink.write(f'     <triangle v1="{a}" v2="{b}" v3="{c}"/>\n')
        else:
            # A terrain: a height-map grid (jittered like a scanned surface, so it compresses like a
            # real mesh, ~3:1), written row by row until ~45 % of the part's budget.
            width, rows = 400, 0
            start = raw.tell()
            vertex_end = start + int((budget_end - start) * 0.45)
            base = [5 + 3 * math.sin(col / 17.0) for col in range(width)]
            jitter = rng.random
            while rows < 2 or sink.archive_bytes < vertex_end:
                y = rows * 0.25
                sink.write(
                    "".join(
                        f'     <vertex x="{col * 0.25 + jitter() * 0.01:.6f}" y="{y + jitter() * 0.01:.6f}" '
                        f'z="{base[col] + jitter() * 0.5:.6f}"/>\n'
                        for col in range(width)
                    )
                )
                rows += 1
            sink.write("    </vertices>\n    <triangles>\n")
            for r in range(rows - 1):
                sink.write(
                    "".join(
                        f'     <triangle v1="{a}" v2="{a + 1}" v3="{a + width}"/>\n'
                        f'     <triangle v1="{a + 1}" v2="{a + width + 1}" v3="{a + width}"/>\n'
                        for a in range(r * width, r * width + width - 1)
                    )
                )
        sink.write(
            "    </triangles>\n   </mesh>\n  </object>\n </resources>\n"
            ' <build p:UUID="2c7c17d8-22b5-4d84-8835-1976022ea369">\n'
            '  <item objectid="2" p:UUID="00000002-b1ec-4553-aec9-835e5b724bb4" '
            'transform="1 0 0 0 1 0 0 0 1 128 128 0" printable="1"/>\n'
            " </build>\n</model>\n"
        )


def _write_gcode(
    zf: zipfile.ZipFile,
    raw: BinaryIO,
    index: int,
    head: str,
    spec: PlateSpec,
    budget_end: int | None,
    rng: random.Random,
) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with zf.open(f"Metadata/plate_{index}.gcode", "w", force_zip64=True) as stream:
        sink = _Sink(stream, raw)  # type: ignore[arg-type]
        md5.update(sink.write(head))
        layers = max(1, spec.layers)
        pool = _move_pool(rng, 20_000 if budget_end else 200)
        if budget_end is None:
            for layer in range(layers):
                md5.update(sink.write(_layer_lines(pool, layer, layers, spec.layer_height, 4)))
        else:
            # ~11 compressed bytes per move: spread the budget over the layers, top up in the last one.
            moves = max(4, int((budget_end - raw.tell()) / 11 / layers))
            for layer in range(layers):
                md5.update(sink.write(_layer_lines(pool, layer, layers, spec.layer_height, moves)))
            while sink.archive_bytes < budget_end:
                md5.update(sink.write(_layer_lines(pool, layers - 1, layers, spec.layer_height, 2000)))
        md5.update(sink.write(gcode_tail()))
    return md5.hexdigest().upper()


def make_3mf(
    path: str | Path,
    *,
    printer_model_id: str = "C12",
    printer_name: str | None = None,
    nozzle: float = 0.4,
    plates: Sequence[PlateSpec] | None = None,
    title: str = "cube",
    target_size: int | None = None,
    package_thumbnail: bool = True,
    seed: int = 1,
) -> Made:
    """Write a Bambu-style .gcode.3mf to ``path``; see the module docstring."""
    path = Path(path)
    specs = list(plates) if plates is not None else [PlateSpec()]
    numbered = list(enumerate(specs, start=1))
    printer_name = printer_name or PRODUCT_NAMES.get(printer_model_id, "Bambu Lab P1S")
    project: list[tuple[str, str]] = []
    for spec in specs:
        for kind, color, _ in spec.filaments:
            if (kind, color.upper()) not in project:
                project.append((kind, color.upper()))
    ids_of = {pair: i + 1 for i, pair in enumerate(project)}
    rng = random.Random(seed)
    made = Made(path)

    pad_plate = next((i for i, s in numbered if s.gcode), None) if target_size else None
    with open(path, "wb") as raw:
        with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            zf.writestr("[Content_Types].xml", content_types())
            zf.writestr("_rels/.rels", root_rels())
            model_budget = None
            if target_size:
                model_budget = raw.tell() + int(target_size * (0.5 if pad_plate else 0.97))
            _write_model(zf, raw, model_head(title), model_budget, rng)
            zf.writestr(
                "3D/_rels/3dmodel.model.rels",
                '<?xml version="1.0" encoding="UTF-8"?>\n<Relationships '
                'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\n</Relationships>\n',
            )
            zf.writestr("Metadata/model_settings.config", model_settings(numbered))
            zf.writestr("Metadata/_rels/model_settings.config.rels", model_settings_rels(numbered))
            zf.writestr("Metadata/project_settings.config", project_settings(printer_name, nozzle, project))
            zf.writestr("Metadata/slice_info.config", slice_info(numbered, ids_of, printer_model_id, nozzle))
            for index, spec in numbered:
                ids = [ids_of[(k, c.upper())] for k, c, _ in spec.filaments]
                colors = [c.upper() for _, c, _ in spec.filaments]
                if spec.thumbnail:
                    png = make_png(128, 128, colors[0] if colors else "#00AE42", seed=index)
                    made.thumbnails[index] = png
                    zf.writestr(f"Metadata/plate_{index}.png", png)
                    zf.writestr(f"Metadata/plate_no_light_{index}.png", png)
                    zf.writestr(
                        f"Metadata/plate_{index}_small.png",
                        make_png(32, 32, colors[0] if colors else "#00AE42"),
                    )
                zf.writestr(f"Metadata/plate_{index}.json", plate_json(spec, ids, colors, nozzle))
                if spec.gcode:
                    head = gcode_head(spec, ids, project, printer_name, nozzle)
                    budget = target_size if index == pad_plate else None
                    md5 = _write_gcode(zf, raw, index, head, spec, budget, rng)
                    zf.writestr(f"Metadata/plate_{index}.gcode.md5", md5)
            if package_thumbnail:
                cover = make_png(64, 64, "#00AE42")
                made.package_thumbnail = cover
                zf.writestr("Auxiliaries/.thumbnails/thumbnail_3mf.png", cover)
    return made


# --- hostile and broken archives ---------------------------------------------------------------------


def _skeleton(zf: zipfile.ZipFile, *, slice_info_text: str | None = None) -> None:
    """The parts of a minimal but valid .gcode.3mf (one plate)."""
    spec = PlateSpec(prediction_s=600, layers=10)
    zf.writestr("[Content_Types].xml", content_types())
    zf.writestr("_rels/.rels", root_rels())
    zf.writestr("3D/3dmodel.model", model_head("hostile") + " <resources/>\n <build/>\n</model>\n")
    zf.writestr(
        "Metadata/slice_info.config",
        slice_info_text or slice_info([(1, spec)], {("PLA", "#FFFFFF"): 1}, "C12", 0.4),
    )
    zf.writestr("Metadata/plate_1.png", make_png(16, 16))


def make_zip_bomb(path: str | Path, expanded: int = 256 * 1024 * 1024) -> Path:
    """A 3MF whose plate G-code expands ~1000:1 (``expanded`` bytes of zeros in well under 1 MB)."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        _skeleton(zf)
        with zf.open("Metadata/plate_1.gcode", "w", force_zip64=True) as stream:
            block = b"\0" * (1024 * 1024)
            for _ in range(expanded // len(block)):
                stream.write(block)
    return path


def make_overlapping_zip(path: str | Path) -> Path:
    """Two central-directory entries that point at the same compressed data (the "better zip bomb"
    trick: many entries reusing one stream)."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        _skeleton(zf)
        zf.writestr("Metadata/plate_1.gcode", "; HEADER_BLOCK_START\n" + "G1 X1 Y1\n" * 50_000)
    data = bytearray(path.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack("<II", data[eocd + 12 : eocd + 20])
    central = data[cd_offset : cd_offset + cd_size]
    # The last central entry is the G-code; add a copy under another name with the same offset.
    last = central.rfind(b"PK\x01\x02")
    entry = bytearray(central[last:])
    name_len = struct.unpack("<H", entry[28:30])[0]
    old = bytes(entry[46 : 46 + name_len])
    new = old.replace(b"plate_1", b"plate_2")
    entry[46 : 46 + name_len] = new
    central += entry
    count = struct.unpack("<H", data[eocd + 10 : eocd + 12])[0] + 1
    tail = bytearray(data[eocd:])
    tail[8:10] = struct.pack("<H", count)
    tail[10:12] = struct.pack("<H", count)
    tail[12:16] = struct.pack("<I", len(central))
    path.write_bytes(bytes(data[:cd_offset]) + bytes(central) + bytes(tail))
    return path


def make_named_entry_zip(path: str | Path, name: str | bytes) -> Path:
    """A 3MF with one extra entry called ``name`` (bytes for names zipfile would not write as is,
    e.g. with a NUL: the stored name bytes are patched in after writing)."""
    path = Path(path)
    raw_name = name if isinstance(name, bytes) else name.encode()
    placeholder = "Z" * len(raw_name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        _skeleton(zf)
        info = zipfile.ZipInfo(placeholder, date_time=(2025, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, "owned\n")
    data = path.read_bytes().replace(placeholder.encode(), raw_name)
    path.write_bytes(data)
    return path


def make_duplicate_entry_zip(
    path: str | Path, name: str = "Metadata/slice_info.config", other: str | None = None
) -> Path:
    """Two entries with one name (``other`` for a variant, e.g. differing only in case)."""
    import warnings

    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        _skeleton(zf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate: that is the point
            zf.writestr(other or name, "<config/>\n")
    return path


BILLION_LAUGHS = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE config [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<config>
  <plate>
    <metadata key="index" value="1"/>
    <metadata key="printer_model_id" value="&lol9;"/>
  </plate>
</config>
"""


def external_entity(target: str = "file:///etc/passwd") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE config [<!ENTITY leak SYSTEM "{target}">]>
<config>
  <plate>
    <metadata key="index" value="1"/>
    <metadata key="printer_model_id" value="&leak;"/>
  </plate>
</config>
"""


def make_billion_laughs(path: str | Path) -> Path:
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        _skeleton(zf, slice_info_text=BILLION_LAUGHS)
    return path


def make_external_entity(path: str | Path, target: str = "file:///etc/passwd") -> Path:
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        _skeleton(zf, slice_info_text=external_entity(target))
    return path


def make_truncated(path: str | Path, keep: float = 0.5) -> Path:
    """A real .gcode.3mf cut off part-way (an interrupted upload): no central directory."""
    path = Path(path)
    make_3mf(path, plates=[PlateSpec(layers=200)])
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def make_not_a_zip(path: str | Path) -> Path:
    """A file with a .3mf name that is a PNG picture (people do upload those)."""
    path = Path(path)
    path.write_bytes(make_png(64, 64))
    return path


def make_no_model(path: str | Path) -> Path:
    """A valid ZIP that is not a 3MF (no 3D model part)."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("readme.txt", "just a zip\n")
    return path


HOSTILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "zip_bomb": (make_zip_bomb, "zip_bomb"),
    "overlapping_entries": (make_overlapping_zip, "zip_bomb"),
    "dotdot_name": (lambda p: make_named_entry_zip(p, "../../etc/cron.d/owned"), "unsafe_name"),
    "nested_dotdot_name": (lambda p: make_named_entry_zip(p, "Metadata/../../owned"), "unsafe_name"),
    "absolute_name": (lambda p: make_named_entry_zip(p, "/etc/cron.d/owned"), "unsafe_name"),
    "backslash_name": (lambda p: make_named_entry_zip(p, "..\\..\\owned.txt"), "unsafe_name"),
    "drive_letter_name": (lambda p: make_named_entry_zip(p, "C:/Windows/owned.txt"), "unsafe_name"),
    "nul_in_name": (lambda p: make_named_entry_zip(p, b"Metadata/plate_1.png\x00.txt"), "unsafe_name"),
    "control_char_name": (lambda p: make_named_entry_zip(p, "Metadata/\x1b[31mred.txt"), "unsafe_name"),
    "duplicate_name": (make_duplicate_entry_zip, "unsafe_name"),
    "duplicate_name_other_case": (
        lambda p: make_duplicate_entry_zip(p, other="METADATA/Slice_Info.config"),
        "unsafe_name",
    ),
    "billion_laughs": (make_billion_laughs, "bad_xml"),
    "external_entity": (make_external_entity, "bad_xml"),
    "truncated": (make_truncated, "truncated"),
    "not_a_zip": (make_not_a_zip, "not_a_zip"),
    "zip_without_model": (make_no_model, "not_3mf"),
}
