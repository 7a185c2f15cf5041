"""What the dashboard sets for a Klipper printer that Klipper does not report: its nozzle and
loaded filament (the queue matches jobs to them), and its Moonraker webcams.

``GET/PUT /api/printers/{id}/materials`` ``{"nozzle_diameter", "filament_type", "filament_color"}``
(each may be null); ``GET /api/printers/{id}/webcams`` lists Moonraker's webcams.
"""

from __future__ import annotations

from aiohttp import web

from bambu_edge.printers.moonraker.link import MoonrakerLink
from bambu_edge.store.materials import StoredMaterials, check_materials, materials_json
from bambu_edge.web.api_auth import json_response, service
from bambu_edge.web.errors import ApiError, bad
from bambu_edge.web.openapi import documented
from bambu_edge.web.params import read_json

MATERIALS = {
    "type": "object",
    "properties": {
        "nozzle_diameter": {"type": ["number", "null"]},
        "filament_type": {"type": ["string", "null"]},
        "filament_color": {"type": ["string", "null"]},
    },
}


def _klipper(request: web.Request) -> MoonrakerLink:
    link = service(request).manager.get(request.match_info["id"])
    if link is None:
        raise ApiError(404, "not_found", "No such printer.")
    if not isinstance(link, MoonrakerLink):
        raise ApiError(409, "not_klipper", "Only Klipper printers take a nozzle and filament set here.")
    return link


@documented(response=MATERIALS)
async def get_materials(request: web.Request) -> web.Response:
    """The nozzle and filament set for a Klipper printer."""
    link = _klipper(request)
    return json_response(materials_json(link.state.materials))


@documented(body=MATERIALS, response=MATERIALS)
async def put_materials(request: web.Request) -> web.Response:
    """Set a Klipper printer's nozzle and loaded filament (what the queue matches jobs to)."""
    link = _klipper(request)
    try:
        materials = check_materials(await read_json(request))
    except ValueError as e:
        raise bad(str(e)) from None
    manager = service(request).manager
    store = manager.materials or StoredMaterials(service(request).store.db)
    await store.set(link.printer_id, materials)
    link.set_materials(materials)
    return json_response(materials_json(materials))


@documented()
async def get_webcams(request: web.Request) -> web.Response:
    """Moonraker's webcams (``server.webcams.list``): name, service, stream and snapshot URLs."""
    link = _klipper(request)
    return json_response(
        {
            "webcams": [
                {
                    "name": w.name,
                    "service": w.service,
                    "stream_url": w.stream_url,
                    "snapshot_url": w.snapshot_url,
                    "webrtc_only": w.webrtc_only,
                }
                for w in link.webcams
            ]
        }
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/printers/{id}/materials", get_materials),
        web.put("/api/printers/{id}/materials", put_materials),
        web.get("/api/printers/{id}/webcams", get_webcams),
    ]
