"""`GET /api/openapi.json`, generated from the router so it cannot drift from the code.

Each handler's docstring gives the summary (first line) and description (the rest). Handlers may
carry request/response schemas, query parameters and a response media type with ``@documented``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bambu_edge import __version__

PUBLIC = "public"  # marker in the spec for routes that need no login
_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def documented(
    *,
    body: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    public: bool = False,
    query: list[dict[str, Any]] | None = None,
    media_type: str = "application/json",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``query``: OpenAPI parameter objects without ``in`` (``{"name", "schema", "description"}``);
    ``media_type``: of the 200 response (e.g. ``text/csv``, ``image/png``)."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__openapi__ = {  # type: ignore[attr-defined]
            "body": body,
            "response": response,
            "public": public,
            "query": query or [],
            "media_type": media_type,
        }
        return fn

    return mark


def _handler_doc(handler: Any) -> tuple[str, str]:
    doc = inspect.getdoc(handler) or ""
    first, _, rest = doc.partition("\n")
    return first.strip(), rest.strip()


def build_spec(app: web.Application, title: str = "bambu-edge") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or (info.get("prefix", "") + "/{filename}")
        if not path.startswith(("/api", "/metrics")):
            continue
        path = _PARAM.sub(r"{\1}", path)
        summary, description = _handler_doc(route.handler)
        extra = getattr(route.handler, "__openapi__", {})
        op: dict[str, Any] = {
            "summary": summary or f"{route.method} {path}",
            "responses": {"200": {"description": "OK"}},
        }
        if description:
            op["description"] = description
        params = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in _PARAM.findall(path)
        ]
        params += [{"in": "query", "required": False, **q} for q in extra.get("query", [])]
        if params:
            op["parameters"] = params
        if extra.get("body"):
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": extra["body"]}}}
        if extra.get("response"):
            op["responses"]["200"] = {
                "description": "OK",
                "content": {extra.get("media_type", "application/json"): {"schema": extra["response"]}},
            }
        if extra.get("public"):
            op["security"] = []
        else:
            op["responses"]["401"] = {"description": "Not logged in"}
        paths.setdefault(path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "bambu_edge_session"},
            }
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": dict(sorted(paths.items())),
    }
