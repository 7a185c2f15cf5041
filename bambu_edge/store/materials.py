"""The nozzle and filament set in the dashboard for printers that report neither (Klipper), kept in
the ``printer_materials`` table (migration 0009). Values are validated by ``check_materials`` first."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from bambu_edge.printers.moonraker.status import Materials

if TYPE_CHECKING:
    from bambu_edge.store.db import Database

_COLOR = re.compile(r"#?([0-9A-Fa-f]{6})([0-9A-Fa-f]{2})?")


def check_materials(body: Any) -> Materials:
    """``{"nozzle_diameter", "filament_type", "filament_color"}`` from the API, each may be null;
    ValueError in plain words."""
    if not isinstance(body, dict):
        raise ValueError("send an object with nozzle_diameter, filament_type and filament_color")
    unknown = set(body) - {"nozzle_diameter", "filament_type", "filament_color"}
    if unknown:
        raise ValueError(f"unknown field {sorted(unknown)[0]!r}")
    nozzle = body.get("nozzle_diameter")
    if nozzle is not None:
        if isinstance(nozzle, bool) or not isinstance(nozzle, int | float) or not 0.1 <= nozzle <= 2.0:
            raise ValueError("nozzle_diameter must be a number of millimetres between 0.1 and 2.0")
        nozzle = float(nozzle)
    ftype = body.get("filament_type")
    if ftype is not None:
        if not isinstance(ftype, str) or not 1 <= len(ftype.strip()) <= 32:
            raise ValueError("filament_type must be a short name such as PLA or PETG")
        ftype = ftype.strip().upper()
    color = body.get("filament_color")
    if color is not None:
        m = _COLOR.fullmatch(color) if isinstance(color, str) else None
        if m is None:
            raise ValueError("filament_color must be a colour like #FF8800")
        color = "#" + (m.group(1) + (m.group(2) or "FF")).upper()
    return Materials(nozzle, ftype, color)


def materials_json(m: Materials) -> dict[str, Any]:
    return {
        "nozzle_diameter": m.nozzle_diameter,
        "filament_type": m.filament_type,
        "filament_color": m.filament_color,
    }


class StoredMaterials:
    def __init__(self, db: Database):
        self.db = db

    async def get(self, printer_id: str) -> Materials:
        row = await self.db.fetchone(
            "SELECT nozzle_diameter, filament_type, filament_color FROM printer_materials WHERE printer_id = ?",
            (printer_id,),
        )
        return Materials(*row) if row is not None else Materials()

    async def set(self, printer_id: str, m: Materials) -> None:
        await self.db.execute(
            "INSERT INTO printer_materials (printer_id, nozzle_diameter, filament_type, filament_color,"
            " changed_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (printer_id) DO UPDATE SET"
            " nozzle_diameter = excluded.nozzle_diameter, filament_type = excluded.filament_type,"
            " filament_color = excluded.filament_color, changed_at = excluded.changed_at",
            (printer_id, m.nozzle_diameter, m.filament_type, m.filament_color, time.time()),
        )
