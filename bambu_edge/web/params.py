"""What a request carries, read in one place: path parameters, query strings, JSON bodies.

Every integer is range-checked here, once. SQLite holds signed 64-bit integers: a number outside
them would raise OverflowError deep in the store (a 500), so it is a 400 with a plain message before
it gets there. Integers written in a URL take ASCII digits only (``int()`` would also take
``" 1"``, ``"1_000"`` or Arabic-Indic digits).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from bambu_edge.web.errors import ApiError, bad

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_BODY = 64 * 1024
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64_DIGITS = len(str(INT64_MAX))


def _range(name: str, low: int, high: int) -> ApiError:
    return bad(f"'{name}' must be a whole number from {low} to {high}")


def int_text(text: str, name: str, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """An integer written in a URL (path or query), from ``low`` to ``high``; ApiError 400 otherwise."""
    if not _INTEGER.fullmatch(text):
        raise bad(f"'{name}' must be a whole number")
    # Thousands of digits are refused before int() spends time on them.
    if len(text.lstrip("+-").lstrip("0")) > _INT64_DIGITS:
        raise _range(name, low, high)
    n = int(text)
    if not low <= n <= high:
        raise _range(name, low, high)
    return n


def path_id(request: web.Request, name: str = "id") -> int:
    """A row id from the URL path (1 to INT64_MAX). Not a number at all: 404, there is no such
    thing; a number no row can have: 400."""
    text = request.match_info[name]
    if not _INTEGER.fullmatch(text):
        raise ApiError(404, "not_found", f"no such {name}")
    return int_text(text, name, 1, INT64_MAX)


def query_int(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    """``?name=`` as an integer from ``low`` to ``high``; ``default`` when absent or empty."""
    text = query.get(name)
    if text is None or text == "":
        return default
    return int_text(text, name, low, high)


def json_int(v: Any, name: str, low: int, high: int) -> int:
    """A JSON value that must be an integer from ``low`` to ``high``. null, true/false, 1.0 and "1"
    are refused like any other non-integer."""
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise _range(name, low, high)
    return v


def body_int(body: dict[str, Any], key: str, default: int | None, low: int, high: int) -> int:
    """``body[key]`` as json_int; ``default`` when the key is absent (None: it is required)."""
    if key not in body and default is not None:
        return default
    return json_int(body.get(key), key, low, high)


def body_id(body: dict[str, Any], key: str, what: str = "", *, nullable: bool = False) -> int | None:
    """``body[key]`` as a row id (1 to INT64_MAX); with ``nullable``, null or absent is None.
    ``what`` says in the refusal what the id names, e.g. "the id of an uploaded file"."""
    v = body.get(key)
    if nullable and v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= INT64_MAX:
        also = " or null" if nullable else ""
        raise bad(f"'{key}' must be {what or 'an id'} (a whole number from 1 to {INT64_MAX}){also}")
    return v


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, at most MAX_BODY bytes; ApiError 400 otherwise."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise bad(f"the request body is too large (at most {MAX_BODY} bytes)")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise bad(f"the request body is too large (at most {MAX_BODY} bytes)") from None
    if len(raw) > MAX_BODY:
        raise bad(f"the request body is too large (at most {MAX_BODY} bytes)")
    if not raw:
        raise bad("a JSON object is required in the request body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    return body


def get_str(body: dict[str, Any], key: str, *, max_len: int = 1024, required: bool = True) -> str | None:
    v = body.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v:
        raise bad(f"'{key}' must be a non-empty string")
    if len(v) > max_len:
        raise bad(f"'{key}' must be at most {max_len} characters")
    return v
