"""WebSocket frames: the kinds the daemon's components declare reach the browser as published."""

from bambu_edge.app import Daemon
from bambu_edge.bus import Event
from bambu_edge.config import Config
from bambu_edge.web.ws import frame

# Building the daemon does no I/O: its components' declarations can be read without starting it.
KINDS = frozenset(Daemon(Config()).event_kinds())


def test_service_events_pass_through_with_their_printer():
    ev = Event("history", "x1c", {"action": "ended", "record": {"id": 7, "outcome": "success"}})
    assert frame(ev, KINDS) == {
        "type": "history",
        "id": "x1c",
        "action": "ended",
        "record": {"id": 7, "outcome": "success"},
    }
    assert frame(Event("queue", None, {"paused": True}), KINDS) == {"type": "queue", "paused": True}


def test_internal_events_stay_internal():
    # "power" is a browser event since issue 11; the queue's wake request to power control is not.
    assert frame(Event("power_wake", "x1c", {"job_id": 3}), KINDS) is None


def test_the_components_declare_every_kind_the_dashboard_reads():
    assert {
        "printer",
        "command",
        "printer_added",
        "printer_removed",
        "history",
        "queue",
        "transfer",
        "power",
    } <= KINDS
