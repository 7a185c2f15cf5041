"""Health (with every component's state) and the OpenAPI document: the web component's own routes."""

from __future__ import annotations

from aiohttp import web

from bambu_edge import __version__
from bambu_edge.web.api_auth import json_response, service
from bambu_edge.web.openapi import build_spec, documented

COMPONENT_HEALTH = {
    "type": "object",
    "properties": {
        "state": {"type": "string", "enum": ["running", "failed", "stopped"]},
        "optional": {"type": "boolean"},
        "error": {"type": ["string", "null"]},
    },
    "additionalProperties": True,
}


@documented(
    response={
        "type": "object",
        "properties": {
            "status": {"type": "string"},
            "version": {"type": "string"},
            "components": {"type": "object", "additionalProperties": COMPONENT_HEALTH},
        },
    },
    public=True,
)
async def health(request: web.Request) -> web.Response:
    """Liveness: the daemon answers; each component's state.

    `status` is "ok" whenever the daemon serves; an optional component that failed to start is
    listed under `components` with `state` "failed" and its `error`, while the rest runs on."""
    return json_response({"status": "ok", "version": __version__, "components": service(request).health()})


async def openapi(request: web.Request) -> web.Response:
    """This document."""
    return json_response(build_spec(request.app))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/health", health),
        web.get("/api/openapi.json", openapi),
    ]
