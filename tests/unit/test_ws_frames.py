"""WebSocket frames: job services' events reach the browser as they were published."""

from bambu_edge.bus import Event
from bambu_edge.web.ws import frame


def test_service_events_pass_through_with_their_printer():
    ev = Event("history", "x1c", {"action": "ended", "record": {"id": 7, "outcome": "success"}})
    assert frame(ev) == {
        "type": "history",
        "id": "x1c",
        "action": "ended",
        "record": {"id": 7, "outcome": "success"},
    }
    assert frame(Event("queue", None, {"paused": True})) == {"type": "queue", "paused": True}


def test_internal_events_stay_internal():
    assert frame(Event("power", "x1c", {"on": True})) is None
