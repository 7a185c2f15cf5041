"""What units send each other, as JSON, and the checks on what they receive (pure, no I/O).

Every payload is untrusted, even from a unit: a bad one is refused here with a reason (logged by
the caller) and never reaches the database or the browsers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from bambu_edge.config import PRINTER_ID_RE
from bambu_edge.jobs.history import record_facts
from bambu_edge.jobs.records import OUTCOMES, FilamentSlot, JobKey, PrintRecord, clean_text
from bambu_edge.printers import values

VERSION = 1
MAX_PAYLOAD = 256 * 1024  # a printer view is a few kB; a history record less
UID_RE = re.compile(r"^[0-9a-f]{32}$")
ERROR_CODE_RE = re.compile(r"^[0-9A-F]{4}_[0-9A-F]{4}$")
HMS_RE = re.compile(r"^[0-9A-F]{4}_[0-9A-F]{4}_[0-9A-F]{4}_[0-9A-F]{4}$")
CORRELATION_RE = re.compile(r"^[0-9a-f]{8,64}$")
MAX_HMS = 64
BIG_T = 1e11


class WireError(ValueError):
    """A payload that is not what the topic carries."""


def dumps(obj: Any) -> bytes:
    return orjson.dumps({"v": VERSION, **obj})


def loads(payload: bytes | bytearray | str) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD:
        raise WireError(f"payload of {len(payload)} bytes is too large")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        raise WireError(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise WireError("not a JSON object")
    if obj.get("v") != VERSION:
        raise WireError(f"version {obj.get('v')!r}, not {VERSION}")
    return obj


# --- history records ------------------------------------------------------------------------------


def record_to_wire(rec: PrintRecord, updated_at: float) -> dict[str, Any]:
    """A record as the farm carries it: what it says about the print, not this unit's files (the
    thumbnail and timelapse stay on the unit that has them) nor its queue."""
    return {
        "updated_at": updated_at,
        "record": {
            **record_facts(rec),
            "job_key": rec.key.to_json(),
            "last_seen_at": rec.last_seen_at,
            "remaining_s": rec.remaining_s,
        },
    }


def _time(d: Mapping[str, Any], key: str, required: bool = False) -> float | None:
    v = values.num(d.get(key), 0.0, BIG_T)
    if v is None and (required or d.get(key) is not None):
        raise WireError(f"'{key}' must be a time in Unix seconds")
    return v


def record_from_wire(obj: Mapping[str, Any]) -> tuple[PrintRecord, float]:
    """(record, updated_at) from a history message; WireError if it is not a valid record."""
    updated_at = _time(obj, "updated_at", required=True)
    d = obj.get("record")
    if not isinstance(d, dict):
        raise WireError("'record' must be an object")
    uid = d.get("uid")
    if not isinstance(uid, str) or not UID_RE.fullmatch(uid):
        raise WireError("'uid' must be 32 lower-case hex digits")
    printer_id = d.get("printer_id")
    if not isinstance(printer_id, str) or not PRINTER_ID_RE.fullmatch(printer_id):
        raise WireError("'printer_id' must be a printer id")
    outcome = d.get("outcome")
    if outcome not in OUTCOMES:
        raise WireError(f"'outcome' must be one of {', '.join(OUTCOMES)}")
    started_at = _time(d, "started_at", required=True)
    ended_at = _time(d, "ended_at")
    if outcome == "running":
        ended_at = None
    elif ended_at is not None and started_at is not None and ended_at < started_at:
        raise WireError("'ended_at' is before 'started_at'")
    error_code = d.get("error_code")
    if error_code is not None and not (isinstance(error_code, str) and ERROR_CODE_RE.fullmatch(error_code)):
        raise WireError("'error_code' must look like 0700_8006")
    hms = d.get("hms") or []
    if not isinstance(hms, list) or len(hms) > MAX_HMS:
        raise WireError(f"'hms' must be a list of at most {MAX_HMS} codes")
    filament = d.get("filament") or []
    if not isinstance(filament, list) or len(filament) > 32:
        raise WireError("'filament' must be a list of at most 32 slots")
    rec = PrintRecord(
        uid=uid,
        printer_id=printer_id,
        started_at=started_at or 0.0,
        printer_name=clean_text(d.get("printer_name"), 200),
        model=clean_text(d.get("model"), 64),
        file=clean_text(d.get("file")),
        job=clean_text(d.get("job")),
        plate=values.integer(d.get("plate"), 0, 1000),
        ended_at=ended_at,
        duration_s=None if outcome == "running" else values.num(d.get("duration_s"), 0.0, BIG_T),
        outcome=outcome,
        failure_reason=clean_text(d.get("failure_reason"), 4000),
        error_code=error_code,
        hms=tuple(c for c in hms if isinstance(c, str) and HMS_RE.fullmatch(c)),
        layers=values.integer(d.get("layers"), 0),
        total_layers=values.integer(d.get("total_layers"), 0),
        progress=values.integer(d.get("progress"), 0, 100),
        filament=tuple(s for s in (FilamentSlot.from_json(x) for x in filament) if s is not None),
        state=clean_text(d.get("state"), 64),
        key=JobKey.from_json(d.get("job_key") if isinstance(d.get("job_key"), dict) else {}),
        last_seen_at=_time(d, "last_seen_at"),
        remaining_s=values.integer(d.get("remaining_s"), 0),
        energy_kwh=values.num(d.get("energy_kwh"), 0.0, 1e9),
        energy_cost=values.num(d.get("energy_cost"), 0.0, 1e12),
    )
    return rec, updated_at or 0.0


# --- commands -------------------------------------------------------------------------------------


def command_request(
    correlation: str,
    sender: str,
    printer_id: str,
    action: str,
    params: Mapping[str, Any],
    user: str,
    role: str,
) -> dict[str, Any]:
    return {
        "correlation": correlation,
        "from": sender,
        "reply_to": f"bambu-edge/v1/{sender}/replies",
        "printer": printer_id,
        "action": action,
        "params": dict(params),
        "user": {"name": user, "role": role},
    }


def command_reply(correlation: str, sender: str, result: str, message: str | None) -> dict[str, Any]:
    """``result``: "sent" (the printer has it; the outcome follows) or a final one: success,
    failed, timeout (as a local printer's), refused (the owner would not send it), offline."""
    return {"correlation": correlation, "from": sender, "result": result, "message": message}


def correlation_of(obj: Mapping[str, Any]) -> str:
    c = obj.get("correlation")
    if not isinstance(c, str) or not CORRELATION_RE.fullmatch(c):
        raise WireError("'correlation' must be 8 to 64 lower-case hex digits")
    return c


def node_of(obj: Mapping[str, Any], key: str = "from") -> str:
    v = obj.get(key)
    if not isinstance(v, str) or not PRINTER_ID_RE.fullmatch(v):
        raise WireError(f"'{key}' must be a node id")
    return v
