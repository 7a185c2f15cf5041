"""The history service's bus payload: a typed record, the same WebSocket frame as before."""

from __future__ import annotations

import orjson

from bambu_edge.bus import Event
from bambu_edge.jobs.history import record_json
from bambu_edge.jobs.history_service import HISTORY_EVENT, RecordChange
from bambu_edge.jobs.records import FilamentSlot, PrintRecord
from bambu_edge.web.ws import frame


def test_a_history_event_is_the_frame_the_dashboard_reads():
    rec = PrintRecord(
        uid="a" * 32,
        printer_id="x1c",
        started_at=1_764_000_000.0,
        job="cube",
        outcome="success",
        ended_at=1_764_000_100.0,
        duration_s=100.0,
        filament=(FilamentSlot(1, "PLA", "#FFFFFFFF", 3.5, 1.2),),
        thumbnail="k",
        id=7,
    )
    kinds = (HISTORY_EVENT,)
    got = frame(Event(HISTORY_EVENT, "x1c", RecordChange("ended", rec)), kinds)
    # Byte for byte what the dict payload ({"action", "record": record_json}) gave.
    was = frame(Event(HISTORY_EVENT, "x1c", {"action": "ended", "record": record_json(rec)}), kinds)
    assert orjson.dumps(got) == orjson.dumps(was)
    assert got is not None and got["record"]["thumbnail"] == "/api/history/7/thumbnail"
    assert list(got) == ["type", "id", "action", "record"]
