"""JSON-RPC 2.0 as Moonraker speaks it over its WebSocket (protocol/BAMBU.md section 12). Pure.

A reply is ``{"jsonrpc": "2.0", "result": ..., "id": N}`` or ``{"jsonrpc": "2.0", "error":
{"code": C, "message": "..."}, "id": N}``; a notification has ``method`` and usually ``params``
and no ``id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


class RpcError(Exception):
    """Moonraker answered a request with an error; ``message`` is Moonraker's own words."""

    def __init__(self, code: int | None, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    result: Any = None
    error: RpcError | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    method: str
    params: list[Any]


def request(method: str, params: dict[str, Any] | None, req_id: int) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": req_id}
    if params:
        msg["params"] = params
    return orjson.dumps(msg)


def decode(data: str | bytes) -> Reply | Notification | None:
    """One WebSocket text frame; None for anything that is neither a reply nor a notification."""
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if type(msg) is not dict:
        return None
    method = msg.get("method")
    if type(method) is str and "id" not in msg:
        params = msg.get("params")
        if params is None:
            params = []
        elif type(params) is not list:
            params = [params]
        return Notification(method, params)
    req_id = msg.get("id")
    if type(req_id) is not int:
        return None
    if "error" in msg:
        err = msg["error"]
        if type(err) is dict:
            code = err.get("code")
            message = err.get("message")
            return Reply(
                req_id,
                error=RpcError(
                    code if type(code) is int else None,
                    message[:500] if type(message) is str and message else "unknown error",
                ),
            )
        return Reply(req_id, error=RpcError(None, str(err)[:500]))
    return Reply(req_id, result=msg.get("result"))
