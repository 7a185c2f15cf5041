"""What a 3MF file (Bambu Studio / Orca Slicer project or ``.gcode.3mf``) says about itself.

Read without extracting anything, through ``safezip`` (every limit applies), XML through defusedxml
(no DTDs, no entity expansion, no external entities). The parts and fields are the ones Bambu Studio
writes (``src/libslic3r/Format/bbs_3mf.cpp`` and ``bbs_3mf.hpp``; ha-bambulab's
``pybambu/models.py`` reads the same ones from a printer's 3MF):

- ``Metadata/slice_info.config`` (``_add_slice_info_config_file_to_archive``): XML
  ``<config><header><header_item key="X-BBL-Client-Version" value="02.01.01.52"/></header>`` and one
  ``<plate>`` per sliced plate with ``<metadata key=... value=...>`` for ``index`` (1-based),
  ``printer_model_id`` (e.g. "C12"), ``nozzle_diameters``, ``prediction`` (seconds), ``weight``
  (grams), ``outside``; then ``<object identify_id name skipped>``, ``<filament id tray_info_idx type
  color used_m used_g .../>`` (id 1-based) and ``<warning msg level error_code/>``.
- ``Metadata/plate_<n>.gcode`` (GCODE_FILE_FORMAT) and its header (see ``files.gcode``): the layer
  count, which slice_info does not carry. Only its head is decompressed.
- ``Metadata/plate_<n>.png`` (THUMBNAIL_FILE_FORMAT): the plate picture; the package thumbnail is the
  target of the ``.../relationships/metadata/thumbnail`` relationship in ``_rels/.rels``.
- ``Metadata/plate_<n>.json`` (PATTERN_CONFIG_FILE_FORMAT, ``PlateBBoxData`` in
  ``GCode/ThumbnailData.hpp``): ``bed_type`` ("textured_plate", ...), ``filament_ids`` (0-based),
  ``nozzle_diameter``.
- ``Metadata/model_settings.config`` (``_add_model_config_file_to_archive``): ``<plate>`` with
  metadata ``plater_id``, ``gcode_file``, ``thumbnail_file``: the plates of a project not yet sliced.
- ``Metadata/project_settings.config``: the project's JSON settings (big, read bounded):
  ``printer_model`` ("Bambu Lab P1S"), ``nozzle_diameter`` (list), ``filament_type``,
  ``filament_colour``, ``filament_ids`` (lists, one per project filament).
- ``3D/3dmodel.model``: only the ``<metadata name="Title">`` / ``"Application"`` elements before
  ``<resources>`` are read, streaming; the mesh itself (possibly hundreds of MB) is not. Where lib3mf
  is installed (PyPI has it for x86-64 only) and the model is small enough, it adds the geometry
  (objects, vertices, triangles) and its validation warnings, bounded in size and time.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from bambu_edge.files.gcode import GcodeHeader, parse_gcode_text
from bambu_edge.files.meta import FilamentUse, ModelInfo, PlateMeta, PrintFileMeta
from bambu_edge.files.png import png_size
from bambu_edge.files.safezip import DEFAULT_LIMITS, ArchiveError, Limits, SafeZip
from bambu_edge.files.values import (
    MAX_GRAMS,
    MAX_METERS,
    MAX_PRINT_S,
    NOZZLE_RANGE,
    clean_text,
    normalize_color,
    parse_float,
    parse_int,
    split_values,
)
from bambu_edge.printers.bambu.models import model_from_product_name, model_from_ssdp

log = logging.getLogger(__name__)

MODEL_REL = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"
THUMBNAIL_REL = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail"
GCODE_REL = "http://schemas.bambulab.com/package/2021/gcode"
RELS = "_rels/.rels"
DEFAULT_MODEL = "3D/3dmodel.model"
SLICE_INFO = "Metadata/slice_info.config"
MODEL_SETTINGS = "Metadata/model_settings.config"
PROJECT_SETTINGS = "Metadata/project_settings.config"
PLATE_GCODE = "Metadata/plate_{}.gcode"
PLATE_PNG = "Metadata/plate_{}.png"
PLATE_JSON = "Metadata/plate_{}.json"
FALLBACK_THUMBNAILS = ("Metadata/thumbnail.png", "Auxiliaries/.thumbnails/thumbnail_3mf.png")

MAX_PLATES = 200
MAX_FILAMENTS = 64
MAX_OBJECTS = 500
MAX_WARNINGS = 20
GCODE_HEADER_BYTES = 16 * 1024  # Bambu's HEADER_BLOCK is the first ~1 kB of a plate's G-code

_PLATE_PART = re.compile(r"^Metadata/plate_(\d{1,4})\.(?:gcode|png|json)$", re.I)


# --- XML and JSON, defused -------------------------------------------------------------------------


def parse_xml(data: bytes, what: str) -> ET.Element:
    """An XML part as an element tree; no DTD, no entities, no external references."""
    try:
        return DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise ArchiveError(
            f"The {what} inside the file uses XML features that are refused (a DTD or entities).",
            "bad_xml",
        ) from None
    except (ET.ParseError, ValueError, RecursionError):
        raise ArchiveError(f"The {what} inside the file is not valid XML.", "bad_xml") from None


def parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise ArchiveError(f"The {what} inside the file is not valid JSON.", "bad_xml") from None


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _metadata(element: ET.Element) -> dict[str, str]:
    """``<metadata key=".." value=".."/>`` children as a dict (first one wins)."""
    out: dict[str, str] = {}
    for child in element:
        if _local(child.tag) == "metadata":
            key, value = child.get("key"), child.get("value")
            if isinstance(key, str) and isinstance(value, str):
                out.setdefault(key, value)
    return out


# --- slice_info.config -----------------------------------------------------------------------------


@dataclass(slots=True)
class SlicePlate:
    index: int
    printer_model_id: str | None = None
    nozzle_diameter: float | None = None
    prediction_s: int | None = None
    weight_g: float | None = None
    outside: bool | None = None
    filaments: tuple[FilamentUse, ...] = ()
    objects: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class SliceInfo:
    client_version: str | None = None
    plates: dict[int, SlicePlate] = field(default_factory=dict)


def _bool(text: str | None) -> bool | None:
    return {"true": True, "false": False, "1": True, "0": False}.get((text or "").strip().lower())


def _slicer_warning(msg: str | None) -> str | None:
    text = clean_text(msg, 160)
    return text.replace("_", " ") if text else None


def parse_slice_info(data: bytes) -> SliceInfo:
    """``Metadata/slice_info.config``. Raises only ArchiveError (bad_xml); unknown or broken values
    become None."""
    root = parse_xml(data, "slice info (Metadata/slice_info.config)")
    info = SliceInfo()
    for element in root:
        tag = _local(element.tag)
        if tag == "header":
            for item in element:
                if _local(item.tag) == "header_item" and item.get("key") == "X-BBL-Client-Version":
                    info.client_version = clean_text(item.get("value"), 32)
        elif tag == "plate" and len(info.plates) < MAX_PLATES:
            plate = _slice_plate(element)
            if plate is not None:
                info.plates.setdefault(plate.index, plate)
    return info


def _slice_plate(element: ET.Element) -> SlicePlate | None:
    meta = _metadata(element)
    index = parse_int(meta.get("index"), 1, MAX_PLATES)
    if index is None:
        return None
    nozzles = split_values(meta.get("nozzle_diameters", ""), ",; ")
    filaments: dict[int, FilamentUse] = {}
    objects: list[str] = []
    warnings: list[str] = []
    for child in element:
        tag = _local(child.tag)
        if tag == "filament" and len(filaments) < MAX_FILAMENTS:
            fid = parse_int(child.get("id"), 1, 1024)
            if fid is not None and fid not in filaments:
                filaments[fid] = FilamentUse(
                    id=fid,
                    type=clean_text(child.get("type"), 32),
                    color=normalize_color(child.get("color")),
                    used_g=parse_float(child.get("used_g"), 0.0, MAX_GRAMS),
                    used_m=parse_float(child.get("used_m"), 0.0, MAX_METERS),
                    tray_info_idx=clean_text(child.get("tray_info_idx"), 32),
                )
        elif tag == "object" and len(objects) < MAX_OBJECTS:
            name = clean_text(child.get("name"), 128)
            if name and _bool(child.get("skipped")) is not True:
                objects.append(name)
        elif tag == "warning" and len(warnings) < MAX_WARNINGS:
            if text := _slicer_warning(child.get("msg")):
                warnings.append(text)
    return SlicePlate(
        index=index,
        printer_model_id=clean_text(meta.get("printer_model_id"), 32),
        nozzle_diameter=parse_float(nozzles[0], *NOZZLE_RANGE) if nozzles else None,
        prediction_s=parse_int(meta.get("prediction"), 0, MAX_PRINT_S),
        weight_g=parse_float(meta.get("weight"), 0.0, MAX_GRAMS),
        outside=_bool(meta.get("outside")),
        filaments=tuple(sorted(filaments.values(), key=lambda f: f.id)),
        objects=tuple(objects),
        warnings=tuple(warnings),
    )


# --- model_settings.config, plate_<n>.json, project_settings.config, _rels/.rels -------------------


@dataclass(frozen=True, slots=True)
class ModelPlate:
    index: int
    gcode_file: str | None = None
    thumbnail_file: str | None = None


def parse_model_settings(data: bytes) -> dict[int, ModelPlate]:
    root = parse_xml(data, "model settings (Metadata/model_settings.config)")
    plates: dict[int, ModelPlate] = {}
    for element in root:
        if _local(element.tag) != "plate" or len(plates) >= MAX_PLATES:
            continue
        meta = _metadata(element)
        index = parse_int(meta.get("plater_id"), 1, MAX_PLATES)
        if index is not None:
            plates.setdefault(
                index,
                ModelPlate(
                    index,
                    clean_text(meta.get("gcode_file"), 256),
                    clean_text(meta.get("thumbnail_file"), 256),
                ),
            )
    return plates


@dataclass(frozen=True, slots=True)
class PlateJson:
    bed_type: str | None = None
    filament_ids: tuple[int, ...] = ()  # 0-based, as written
    nozzle_diameter: float | None = None


def parse_plate_json(data: bytes) -> PlateJson:
    doc = parse_json(data, "plate description (Metadata/plate_N.json)")
    if not isinstance(doc, dict):
        return PlateJson()
    bed = doc.get("bed_type")
    ids = doc.get("filament_ids")
    filament_ids: tuple[int, ...] = ()
    if isinstance(ids, list):
        parsed = [parse_int(i, 0, MAX_FILAMENTS - 1) for i in ids[:MAX_FILAMENTS]]
        filament_ids = tuple(i for i in parsed if i is not None)
    return PlateJson(
        bed_type=clean_text(bed, 32) if isinstance(bed, str) else None,
        filament_ids=filament_ids,
        nozzle_diameter=parse_float(doc.get("nozzle_diameter"), *NOZZLE_RANGE),
    )


@dataclass(frozen=True, slots=True)
class ProjectSettings:
    printer_model: str | None = None  # "Bambu Lab P1S"
    nozzle_diameter: float | None = None
    filament_types: tuple[str | None, ...] = ()
    filament_colors: tuple[str | None, ...] = ()
    filament_ids: tuple[str | None, ...] = ()

    def filament(self, fid: int) -> FilamentUse:
        i = fid - 1

        def at(values: tuple[str | None, ...]) -> str | None:
            return values[i] if 0 <= i < len(values) else None

        return FilamentUse(
            id=fid,
            type=at(self.filament_types),
            color=at(self.filament_colors),
            tray_info_idx=at(self.filament_ids),
        )


def _str_list(value: object, clean: Any) -> tuple[str | None, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(clean(v) if isinstance(v, str) else None for v in value[:MAX_FILAMENTS])


def parse_project_settings(data: bytes) -> ProjectSettings:
    doc = parse_json(data, "project settings (Metadata/project_settings.config)")
    if not isinstance(doc, dict):
        return ProjectSettings()
    nozzles = _str_list(doc.get("nozzle_diameter"), lambda v: v)
    return ProjectSettings(
        printer_model=clean_text(doc.get("printer_model"), 64),
        nozzle_diameter=parse_float(nozzles[0], *NOZZLE_RANGE) if nozzles else None,
        filament_types=_str_list(doc.get("filament_type"), lambda v: clean_text(v, 32)),
        filament_colors=_str_list(doc.get("filament_colour"), normalize_color),
        filament_ids=_str_list(doc.get("filament_ids"), lambda v: clean_text(v, 32)),
    )


def parse_rels(data: bytes) -> list[tuple[str, str]]:
    """(type, target) of each relationship in an OPC ``.rels`` part."""
    root = parse_xml(data, "package relationships (_rels/.rels)")
    out = []
    for element in root:
        if _local(element.tag) == "Relationship":
            kind, target = element.get("Type"), element.get("Target")
            if isinstance(kind, str) and isinstance(target, str) and len(target) < 1024:
                out.append((kind, target.lstrip("/")))
    return out


# --- the 3D model's head -----------------------------------------------------------------------------


class _ChunkStream:
    """A read()-able view of an iterator of chunks (for the streaming XML parser)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""
        self.ended = False

    def read(self, n: int = -1) -> bytes:
        while not self._buffer and not self.ended:
            self._buffer = next(self._chunks, b"")
            if not self._buffer:
                self.ended = True
        if n < 0:
            n = len(self._buffer)
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


def read_model_head(z: SafeZip, name: str, max_bytes: int) -> dict[str, str]:
    """``<metadata name=...>`` values before ``<resources>`` in a 3MF model part. Streams; stops at
    the first resource or after ``max_bytes`` of XML, whichever comes first."""
    size = z.size(name) or 0
    stream = _ChunkStream(z.iter_chunks(name, max_bytes))
    found: dict[str, str] = {}
    started = False
    try:
        for event, element in DET.iterparse(
            stream, events=("start", "end"), forbid_dtd=True, forbid_entities=True, forbid_external=True
        ):
            tag = _local(element.tag)
            if event == "start":
                if not started:
                    started = True
                    if tag != "model":
                        raise ArchiveError("The 3D model part is not a 3MF model.", "not_3mf")
                elif tag in ("resources", "build"):
                    break
            elif tag == "metadata":
                key = element.get("name")
                if isinstance(key, str) and len(found) < 64:
                    found.setdefault(key, (element.text or "").strip())
                element.clear()
    except DefusedXmlException:
        raise ArchiveError(
            "The 3D model inside the file uses XML features that are refused (a DTD or entities).", "bad_xml"
        ) from None
    except ET.ParseError:
        if not (stream.ended and size > max_bytes):  # cut at our own limit: not the file's fault
            raise ArchiveError("The 3D model inside the file is not valid XML.", "bad_xml") from None
    return found


# --- lib3mf (optional) -------------------------------------------------------------------------------

_PROGRESS = ctypes.CFUNCTYPE(
    None, ctypes.POINTER(ctypes.c_bool), ctypes.c_double, ctypes.c_int, ctypes.c_void_p
)
_lib3mf_lock = threading.Lock()
_lib3mf_state: dict[str, Any] = {}


def lib3mf_wrapper() -> Any | None:
    """lib3mf's wrapper, or None where it is not installed (said once, plainly, in the log)."""
    with _lib3mf_lock:
        if "wrapper" not in _lib3mf_state:
            try:
                import lib3mf  # optional and native (x86-64 only): loaded on first use

                _lib3mf_state["wrapper"] = lib3mf.get_wrapper()
                _lib3mf_state["module"] = lib3mf
            except Exception as exc:  # ImportError, or the native library failing to load
                _lib3mf_state["wrapper"] = None
                log.info(
                    "lib3mf is not available here (%s; PyPI ships it for x86-64 only): 3MF files are read "
                    "from their Bambu metadata, without model geometry and validation",
                    type(exc).__name__,
                )
        return _lib3mf_state["wrapper"]


def read_geometry(path: Path, z: SafeZip, limits: Limits) -> tuple[ModelInfo | None, list[str]]:
    """Mesh counts and validation findings from lib3mf, plus warnings for the user (a model lib3mf
    cannot read). (None, []) where lib3mf is absent, the model parts are over
    ``limits.max_geometry_bytes``, or reading takes longer than ``limits.geometry_timeout_s``."""
    model_bytes = sum(
        z.size(n) or 0 for n in z.names if n.lower().startswith("3d/") and n.lower().endswith(".model")
    )
    if model_bytes > limits.max_geometry_bytes:  # checked first: a big model never loads the library
        log.debug(
            "%s: model is %d bytes; geometry not read (limit %d)",
            path.name,
            model_bytes,
            limits.max_geometry_bytes,
        )
        return None, []
    wrapper = lib3mf_wrapper()
    if wrapper is None:
        return None, []
    lib = _lib3mf_state["module"]
    deadline = time.monotonic() + limits.geometry_timeout_s
    timed_out = False

    def progress(abort: Any, _value: float, _what: int, _user: Any) -> None:
        nonlocal timed_out
        if time.monotonic() > deadline:
            timed_out = True
            abort[0] = True  # lib3mf stops reading and fails the read

    # lib3mf's own ProgressCallback type cannot convert its enum argument back into Python, so the
    # callback is declared with a plain int and cast to the library's type.
    raw_callback = _PROGRESS(progress)
    callback = ctypes.cast(raw_callback, lib.ProgressCallback)
    try:
        model = wrapper.CreateModel()
        reader = model.QueryReader("3mf")
        reader.SetStrictModeActive(False)
        reader.SetProgressCallback(callback, 0)
        reader.ReadFromFile(os.fspath(path))
        del raw_callback  # kept alive until here: lib3mf calls it during ReadFromFile
        findings = []
        for i in range(min(reader.GetWarningCount(), 10)):
            _code, text = reader.GetWarning(i)
            if (text := clean_text(text, 160)) and text not in findings:
                findings.append(text)
        objects = vertices = triangles = 0
        meshes = model.GetMeshObjects()
        while meshes.MoveNext():
            mesh = meshes.GetCurrentMeshObject()
            objects += 1
            vertices += mesh.GetVertexCount()
            triangles += mesh.GetTriangleCount()
        return ModelInfo(objects, vertices, triangles, tuple(findings)), []
    except Exception as exc:
        if timed_out:
            log.info(
                "%s: lib3mf took longer than %.0f s; geometry not read", path.name, limits.geometry_timeout_s
            )
            return None, []
        detail = clean_text(str(exc), 160) or type(exc).__name__
        return None, [f"The 3D model could not be read: {detail}"]


# --- the whole file ----------------------------------------------------------------------------------


def _slicer_name(application: str | None) -> str | None:
    """ "BambuStudio-02.01.01.52" -> "BambuStudio 02.01.01.52"."""
    text = clean_text(application, 64)
    if not text:
        return None
    app, sep, version = text.partition("-")
    return f"{app} {version}" if sep and version[:1].isdigit() else text


def _plate_indices(
    z: SafeZip, slice_info: SliceInfo | None, model_plates: dict[int, ModelPlate]
) -> list[int]:
    found = set(model_plates)
    if slice_info:
        found.update(slice_info.plates)
    for name in z.names:
        if m := _PLATE_PART.match(name):
            index = int(m[1])
            if 1 <= index <= MAX_PLATES:
                found.add(index)
    return sorted(found)[:MAX_PLATES]


def _part_or_none(z: SafeZip, name: str | None) -> str | None:
    if not name:
        return None
    info = z.info(name)
    return info.orig_filename if info is not None else None


def _merge_filament(base: FilamentUse, fill: FilamentUse) -> FilamentUse:
    return FilamentUse(
        id=base.id,
        type=base.type or fill.type,
        color=base.color or fill.color,
        used_g=base.used_g if base.used_g is not None else fill.used_g,
        used_m=base.used_m if base.used_m is not None else fill.used_m,
        tray_info_idx=base.tray_info_idx or fill.tray_info_idx,
    )


def _gcode_header(z: SafeZip, gcode_path: str, limits: Limits, full: bool) -> GcodeHeader:
    size = z.size(gcode_path) or 0
    limit = limits.max_gcode_head_bytes if full else min(GCODE_HEADER_BYTES, limits.max_gcode_head_bytes)
    data = z.read_head(gcode_path, limit)
    text = data.decode("utf-8", errors="replace")
    if size > limit:
        text = text.rpartition("\n")[0]  # a cut last line must not be parsed
    return parse_gcode_text(text)


def _plate(
    z: SafeZip,
    index: int,
    limits: Limits,
    sliced: SlicePlate | None,
    modelled: ModelPlate | None,
    project: ProjectSettings | None,
) -> tuple[PlateMeta, GcodeHeader | None]:
    gcode_path = _part_or_none(z, PLATE_GCODE.format(index)) or _part_or_none(
        z, modelled.gcode_file if modelled else None
    )
    thumbnail_path = _part_or_none(z, PLATE_PNG.format(index)) or _part_or_none(
        z, modelled.thumbnail_file if modelled else None
    )
    plate_json = PlateJson()
    if json_path := _part_or_none(z, PLATE_JSON.format(index)):
        plate_json = parse_plate_json(z.read(json_path))

    filaments = list(sliced.filaments) if sliced else []
    if not filaments and plate_json.filament_ids:
        filaments = [FilamentUse(id=i + 1) for i in plate_json.filament_ids]
    header: GcodeHeader | None = None
    if gcode_path:
        needs_config = not filaments or (project is None and not (sliced and sliced.printer_model_id))
        header = _gcode_header(z, gcode_path, limits, full=needs_config)
        if not filaments:
            filaments = list(header.filaments)
    if project is not None:
        filaments = [_merge_filament(f, project.filament(f.id)) for f in filaments]
    if header is not None and header.filaments:
        by_id = {f.id: f for f in header.filaments}
        filaments = [_merge_filament(f, by_id[f.id]) if f.id in by_id else f for f in filaments]

    nozzle = (sliced.nozzle_diameter if sliced else None) or plate_json.nozzle_diameter
    plate = PlateMeta(
        index=index,
        gcode_path=gcode_path,
        thumbnail_path=thumbnail_path,
        prediction_s=(sliced.prediction_s if sliced and sliced.prediction_s is not None else None)
        or (header.prediction_s if header else None),
        weight_g=(sliced.weight_g if sliced else None) or (header.weight_g if header else None),
        layers=header.layers if header else None,
        filaments=tuple(filaments[:MAX_FILAMENTS]),
        objects=sliced.objects if sliced else (),
        printer_model_id=sliced.printer_model_id if sliced else None,
        nozzle_diameter=nozzle or (header.nozzle_diameter if header else None),
        bed_type=plate_json.bed_type,
    )
    return plate, header


def read_3mf(
    path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS, *, geometry: bool = True
) -> PrintFileMeta:
    """Everything a 3MF file says about its print, read safely (see the module docstring).

    Raises ArchiveError (``.code``: too_large, zip_bomb, unsafe_name, not_a_zip, truncated, bad_xml,
    not_3mf). ``geometry=False`` skips lib3mf even where it is installed."""
    path = Path(path)
    with SafeZip(path, limits) as z:
        rels = parse_rels(z.read(RELS)) if z.has(RELS) else []
        model_part = next((t for k, t in rels if k == MODEL_REL and z.has(t)), None) or _part_or_none(
            z, DEFAULT_MODEL
        )
        if model_part is None:
            raise ArchiveError(
                "This ZIP archive has no 3D model part (3D/3dmodel.model), so it is not a 3MF file.",
                "not_3mf",
            )
        head = read_model_head(z, model_part, limits.max_model_head_bytes)
        slice_info = parse_slice_info(z.read(SLICE_INFO)) if z.has(SLICE_INFO) else None
        model_plates = parse_model_settings(z.read(MODEL_SETTINGS)) if z.has(MODEL_SETTINGS) else {}
        project = (
            parse_project_settings(z.read(PROJECT_SETTINGS, limits.max_settings_bytes))
            if z.has(PROJECT_SETTINGS)
            else None
        )
        plates: list[PlateMeta] = []
        headers: list[GcodeHeader] = []
        warnings: list[str] = []
        for index in _plate_indices(z, slice_info, model_plates):
            sliced = slice_info.plates.get(index) if slice_info else None
            plate, header = _plate(z, index, limits, sliced, model_plates.get(index), project)
            plates.append(plate)
            if header is not None:
                headers.append(header)
            if sliced:
                if sliced.outside:
                    warnings.append(
                        f"Plate {index}: the slicer says part of the print lies outside the printable area."
                    )
                warnings.extend(f"Plate {index}: the slicer warned: {w}." for w in sliced.warnings)
        model_info, geometry_warnings = read_geometry(path, z, limits) if geometry else (None, [])
        warnings.extend(geometry_warnings)

    model_id = next((p.printer_model_id for p in plates if p.printer_model_id), None)
    printer_name = (project.printer_model if project else None) or next(
        (h.printer_name for h in headers if h.printer_name), None
    )
    printer_model = model_from_ssdp(model_id) or model_from_product_name(printer_name)
    nozzle = next((p.nozzle_diameter for p in plates if p.nozzle_diameter), None) or (
        project.nozzle_diameter if project else None
    )
    meta = PrintFileMeta(
        kind="3mf",
        title=clean_text(head.get("Title"), 128),
        printer_model=printer_model,
        printer_model_id=model_id,
        nozzle_diameter=nozzle,
        slicer=_slicer_name(head.get("Application")) or next((h.slicer for h in headers if h.slicer), None),
        plates=tuple(plates),
        model=model_info,
        printer_name=printer_name,
    )
    if not meta.sliced:
        warnings.insert(
            0,
            "This 3MF is a project without G-code, so a printer cannot print it: slice it and export "
            "the plate as a sliced file (.gcode.3mf).",
        )
    return replace(meta, warnings=tuple(warnings[:MAX_WARNINGS]))


def read_thumbnail(path: str | os.PathLike[str], plate: int, limits: Limits = DEFAULT_LIMITS) -> bytes | None:
    """The plate's PNG picture (``Metadata/plate_<plate>.png``), else the package thumbnail; None if
    the file has neither. Only a part that really is a PNG (signature and header) is returned.
    Raises ArchiveError for an archive that cannot be read safely."""
    if not isinstance(plate, int) or isinstance(plate, bool) or not 1 <= plate <= MAX_PLATES:
        return None
    with SafeZip(path, limits) as z:
        candidates = [PLATE_PNG.format(plate)]
        if z.has(RELS):
            try:
                candidates += [t for k, t in parse_rels(z.read(RELS)) if k == THUMBNAIL_REL]
            except ArchiveError:
                pass  # a broken .rels part only costs the fallback
        candidates += FALLBACK_THUMBNAILS
        for name in dict.fromkeys(candidates):
            if not z.has(name):
                continue
            try:
                data = z.read(name, limits.max_image_bytes)
            except ArchiveError as exc:
                log.debug("%s: thumbnail %s skipped: %s", Path(path).name, name, exc)
                continue
            if png_size(data) is not None:
                return data
    return None
