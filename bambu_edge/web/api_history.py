"""Print history: search, filter, sort, page, CSV export, totals, one record, its thumbnail.

Query parameters (all optional, shared by the list, the CSV and the totals):
  printer=ID (repeat it, or comma-separate, for several), outcome= (alias status=) one or more of
  running|success|failed|cancelled|unknown, q= text in the job or file name (no case),
  from=/to= Unix seconds or ISO 8601 dates/times (naive ones in the unit's local time zone; records
  that started in [from, to), a date alone for `to` includes that whole day), sort= one of SORTS,
  limit= 0..500 (default 50), offset=.
Bad values are a 400 with a plain message; unknown parameters are ignored.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from bambu_edge.jobs.history import (
    DEFAULT_LIMIT,
    DEFAULT_SORT,
    MAX_LIMIT,
    SORTS,
    HistoryFilter,
    record_json,
)
from bambu_edge.jobs.records import OUTCOMES
from bambu_edge.web.api_auth import json_response, service
from bambu_edge.web.errors import ApiError, bad
from bambu_edge.web.openapi import documented
from bambu_edge.web.params import path_id, query_int

MAX_VALUES = 50  # printers or outcomes in one filter
MAX_ID = 200
MAX_Q = 200
MAX_OFFSET = 10**9
MAX_TIME = 1e11  # Unix seconds: the year 5138; anything later is a typo

FILAMENT = {
    "type": "object",
    "properties": {
        "slot": {"type": ["integer", "null"], "description": "global AMS tray index; 254 external spool"},
        "type": {"type": ["string", "null"]},
        "color": {"type": ["string", "null"], "description": "#RRGGBBAA"},
        "grams": {"type": ["number", "null"]},
        "meters": {"type": ["number", "null"]},
    },
}
RECORD = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "uid": {"type": "string"},
        "printer_id": {"type": "string"},
        "printer_name": {"type": ["string", "null"]},
        "model": {"type": ["string", "null"]},
        "file": {"type": ["string", "null"]},
        "job": {"type": ["string", "null"]},
        "plate": {"type": ["integer", "null"]},
        "started_at": {"type": "number"},
        "ended_at": {"type": ["number", "null"]},
        "duration_s": {"type": ["number", "null"]},
        "outcome": {"type": "string", "enum": list(OUTCOMES)},
        "failure_reason": {"type": ["string", "null"]},
        "error_code": {"type": ["string", "null"], "description": "print_error, e.g. 0700_8006"},
        "hms": {"type": "array", "items": {"type": "string"}},
        "layers": {"type": ["integer", "null"]},
        "total_layers": {"type": ["integer", "null"]},
        "progress": {"type": ["integer", "null"]},
        "filament": {"type": "array", "items": FILAMENT},
        "thumbnail": {"type": ["string", "null"], "description": "URL of the thumbnail"},
        "queue_job_id": {"type": ["integer", "null"]},
        "state": {"type": ["string", "null"], "description": "last gcode_state while it ran"},
        "timelapse": {"type": ["string", "null"], "description": "URL of the camera's timelapse (MP4)"},
        "energy_kwh": {"type": ["number", "null"], "description": "measured by the printer's smart plug"},
        "energy_cost": {"type": ["number", "null"], "description": "at energy.price_per_kwh"},
    },
}
FILTER_PARAMS: list[dict[str, Any]] = [
    {"name": "printer", "schema": {"type": "string"}, "description": "printer id; repeat or comma-separate"},
    {
        "name": "outcome",
        "schema": {"type": "string"},
        "description": "|".join(OUTCOMES) + "; several allowed",
    },
    {"name": "status", "schema": {"type": "string"}, "description": "alias of outcome"},
    {"name": "q", "schema": {"type": "string"}, "description": "text in the job or file name"},
    {
        "name": "from",
        "schema": {"type": "string"},
        "description": "Unix seconds or ISO date/time (inclusive)",
    },
    {"name": "to", "schema": {"type": "string"}, "description": "Unix seconds or ISO date/time (exclusive)"},
]
SORT_PARAM = {"name": "sort", "schema": {"type": "string", "enum": list(SORTS), "default": DEFAULT_SORT}}
PAGE_PARAMS: list[dict[str, Any]] = [
    SORT_PARAM,
    {
        "name": "limit",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    {"name": "offset", "schema": {"type": "integer", "minimum": 0, "default": 0}},
]


# --- query parsing ----------------------------------------------------------------------------------


def _values(query: MultiMapping[str], *names: str) -> list[str]:
    out: list[str] = []
    for name in names:
        for value in query.getall(name, []):
            out += [v.strip() for v in value.split(",") if v.strip()]
    if len(out) > MAX_VALUES:
        raise bad(f"at most {MAX_VALUES} values for '{names[0]}'")
    return out


def parse_time(value: str, name: str, *, end: bool = False) -> float:
    """Unix seconds, or an ISO 8601 date or date-time. A naive one is local time. A date alone is
    its midnight, or for an end (``to``) the next midnight, so that day is included."""
    text = value.strip()
    try:
        t = float(text)
    except ValueError:
        t = _iso_time(text, name, end)
    if not math.isfinite(t) or not 0 <= t < MAX_TIME:
        raise _out_of_range(name)
    return t


def _iso_time(text: str, name: str, end: bool) -> float:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time())
        else:
            moment = datetime.fromisoformat(text)
    except OverflowError:  # the day after 9999-12-31
        raise _out_of_range(name) from None
    except ValueError:
        raise bad(
            f"'{name}' must be Unix seconds or an ISO date such as 2025-01-31 or 2025-01-31T18:00"
        ) from None
    try:
        return moment.timestamp()  # naive -> local time
    except (OverflowError, ValueError):  # year 1 in local time falls before year 1 in UTC
        raise _out_of_range(name) from None


def _out_of_range(name: str) -> ApiError:
    return bad(f"'{name}' is out of range (1970 to the year 5138)")


def parse_filter(query: MultiMapping[str]) -> HistoryFilter:
    printers = _values(query, "printer")
    for p in printers:
        if len(p) > MAX_ID or not p.isprintable():
            raise bad("'printer' must be printer ids")
    outcomes = _values(query, "outcome", "status")
    for o in outcomes:
        if o not in OUTCOMES:
            raise bad(f"unknown outcome {o[:40]!r}; use one of {', '.join(OUTCOMES)}")
    q = (query.get("q") or "").strip() or None
    if q is not None and (len(q) > MAX_Q or not q.isprintable()):
        raise bad(f"'q' must be printable text of at most {MAX_Q} characters")
    since = parse_time(query["from"], "from") if query.get("from") else None
    until = parse_time(query["to"], "to", end=True) if query.get("to") else None
    if since is not None and until is not None and until < since:
        raise bad("'to' is before 'from'")
    return HistoryFilter(tuple(dict.fromkeys(printers)), tuple(dict.fromkeys(outcomes)), q, since, until)


def parse_sort(query: MultiMapping[str]) -> str:
    sort = query.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        raise bad(f"'sort' must be one of {', '.join(SORTS)}")
    return sort


def _history(request: web.Request) -> Any:
    history = service(request).history
    if history is None:
        raise ApiError(503, "unavailable", "Print history is not running.")
    return history


# --- handlers ---------------------------------------------------------------------------------------


@documented(
    query=FILTER_PARAMS + PAGE_PARAMS,
    response={
        "type": "object",
        "properties": {"items": {"type": "array", "items": RECORD}, "total": {"type": "integer"}},
    },
)
async def list_history(request: web.Request) -> web.Response:
    """Print history: one record per print, filtered, sorted and paged.

    `total` counts every record that matches, not only this page."""
    history = _history(request)
    q = request.rel_url.query
    f, sort = parse_filter(q), parse_sort(q)
    limit = query_int(q, "limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
    offset = query_int(q, "offset", 0, 0, MAX_OFFSET)
    items, total = await history.repo.page(f, sort, limit, offset)
    return json_response({"items": [record_json(r) for r in items], "total": total})


@documented(query=[*FILTER_PARAMS, SORT_PARAM], response={"type": "string"}, media_type="text/csv")
async def export_csv(request: web.Request) -> web.StreamResponse:
    """Print history as CSV: a header row, then every matching record (streamed).

    Times are ISO 8601 UTC. Text cells that a spreadsheet would run as a formula start with '."""
    history = _history(request)
    q = request.rel_url.query
    f, sort = parse_filter(q), parse_sort(q)
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="bambu-edge-history.csv"',
            "Cache-Control": "no-store",
        }
    )
    await resp.prepare(request)
    async for chunk in history.repo.csv_chunks(f, sort):
        await resp.write(chunk.encode())
    await resp.write_eof()
    return resp


@documented(
    query=FILTER_PARAMS,
    response={
        "type": "object",
        "properties": {
            "count": {"type": "integer"},
            "by_outcome": {"type": "object", "properties": {o: {"type": "integer"} for o in OUTCOMES}},
            "success_rate": {
                "type": ["number", "null"],
                "description": "success / (success + failed + cancelled); null if none",
            },
            "print_hours": {"type": "number", "description": "of ended prints"},
            "energy_kwh": {"type": ["number", "null"], "description": "sum over measured prints"},
            "energy_cost": {"type": ["number", "null"], "description": "sum over measured prints"},
            "filament": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "type": {"type": ["string", "null"]},
                        "color": {"type": ["string", "null"]},
                        "grams": {"type": ["number", "null"]},
                        "meters": {"type": ["number", "null"]},
                    },
                },
            },
        },
    },
)
async def totals(request: web.Request) -> web.Response:
    """Totals of the matching records: count by outcome, success rate, print hours, filament.

    Filament is summed by type and colour over prints that ended."""
    history = _history(request)
    return json_response(await history.repo.totals(parse_filter(request.rel_url.query)))


async def _record(request: web.Request) -> Any:
    history = _history(request)
    rec = await history.repo.get(path_id(request))
    if rec is None:
        raise ApiError(404, "not_found", "No such print record.")
    return history, rec


@documented(response=RECORD)
async def get_record(request: web.Request) -> web.Response:
    """One print record."""
    _, rec = await _record(request)
    return json_response(record_json(rec))


@documented(response={"type": "string", "format": "binary"}, media_type="image/png")
async def get_thumbnail(request: web.Request) -> web.Response:
    """The thumbnail of a print (PNG); 404 if it has none."""
    history, rec = await _record(request)
    data = await history.thumbnail(rec)
    if not data:
        raise ApiError(404, "not_found", "This print has no thumbnail.")
    return web.Response(
        body=data, content_type="image/png", headers={"Cache-Control": "private, max-age=86400"}
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/history", list_history),
        web.get("/api/history.csv", export_csv),
        web.get("/api/history/totals", totals),
        web.get(r"/api/history/{id:\d+}", get_record),
        web.get(r"/api/history/{id:\d+}/thumbnail", get_thumbnail),
    ]
