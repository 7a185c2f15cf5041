"""What a print file says about itself: the shared, I/O-free result of reading a 3MF or G-code file.

Produced by ``files.threemf`` and ``files.gcode``; used by the queue (compatibility, ``ams_mapping``),
the tracker (filament per print, thumbnail) and the API (``to_json``). Every field is optional:
a value the file does not carry is ``None``, never guessed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class FilamentUse:
    """One filament a plate uses, as the slicer recorded it."""

    id: int  # 1-based filament index in the project; ams_mapping is indexed by id - 1
    type: str | None = None  # "PLA", "PETG", ...
    color: str | None = None  # "#RRGGBBAA", upper case (the slicer's "#RRGGBB" gets alpha FF)
    used_g: float | None = None
    used_m: float | None = None
    tray_info_idx: str | None = None  # filament preset id, e.g. "GFA00"


@dataclass(frozen=True, slots=True)
class PlateMeta:
    index: int  # 1-based, as in Metadata/plate_<index>.gcode
    gcode_path: str | None = None  # path inside the archive, e.g. "Metadata/plate_1.gcode"
    thumbnail_path: str | None = None  # e.g. "Metadata/plate_1.png"
    prediction_s: int | None = None  # the slicer's time estimate at 100 % speed
    weight_g: float | None = None
    layers: int | None = None
    filaments: tuple[FilamentUse, ...] = ()
    objects: tuple[str, ...] = ()
    printer_model_id: str | None = None  # raw slicer code, e.g. "C12", "BL-P001"
    nozzle_diameter: float | None = None
    bed_type: str | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Geometry from lib3mf, where it is installed."""

    objects: int
    vertices: int
    triangles: int
    warnings: tuple[str, ...] = ()  # lib3mf's validation findings (often nitpicks about slicer extensions)


@dataclass(frozen=True, slots=True)
class PrintFileMeta:
    kind: Literal["3mf", "gcode"]
    title: str | None = None
    printer_model: str | None = None  # our model name (printers.bambu.models), e.g. "P1S"
    printer_model_id: str | None = None  # raw, as the slicer wrote it
    nozzle_diameter: float | None = None
    slicer: str | None = None  # e.g. "BambuStudio 02.01.01.52"
    plates: tuple[PlateMeta, ...] = ()
    model: ModelInfo | None = None
    warnings: tuple[str, ...] = field(default=())  # things a user should know (plain words)
    printer_name: str | None = None  # the slicer's printer preset model, e.g. "Bambu Lab P1S", "MK4S"

    @property
    def sliced(self) -> bool:
        """True if at least one plate carries G-code (a printer can only print sliced files)."""
        return self.kind == "gcode" or any(p.gcode_path for p in self.plates)

    def plate(self, index: int) -> PlateMeta | None:
        return next((p for p in self.plates if p.index == index), None)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["sliced"] = self.sliced
        return out
