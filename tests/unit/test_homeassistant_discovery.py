"""Home Assistant discovery payloads from a printer view (bambu_edge/homeassistant/discovery.py)."""

from __future__ import annotations

from bambu_edge.homeassistant import discovery

VIEW = {
    "id": "x1c-left",
    "name": "X1C left",
    "model": "X1C",
    "serial": "00M00A000000001",
    "firmware": "01.08.00.00",
    "link": {"state": "connected"},
    "print": {"state": "RUNNING", "progress": 42, "remaining_s": 1860, "job": "cube"},
    "temps": {
        "nozzle": {"current": 219.5, "target": 220.0},
        "bed": {"current": 55.0, "target": 55.0},
        "chamber": {"current": 30.0, "target": None},
    },
    "ams": [
        {
            "unit": 0,
            "trays": [
                {"slot": 0, "type": "PLA", "color": "#FFFFFFFF", "remain": 85, "active": True},
                {"slot": 1, "type": None, "color": None, "remain": None, "active": False},
            ],
        }
    ],
    "hms": [{"code": "0300_0100_0001_0007", "severity": "error", "text": "heatbed"}],
    "lights": {"chamber": True},
}


def test_state_keeps_what_the_view_knows_and_invents_nothing():
    s = discovery.state(VIEW)
    assert (s["state"], s["progress"], s["remaining_s"], s["nozzle"], s["chamber"]) == (
        "RUNNING",
        42,
        1860,
        219.5,
        30.0,
    )
    assert s["light"] == "ON" and s["hms"] == 1
    assert s["ams"]["0_1"]["type"] == "empty" and s["ams"]["0_0"]["remain"] == 85
    bare = discovery.state({"id": "p", "link": {"state": "offline"}})
    assert bare["state"] is None and bare["nozzle"] is None and bare["light"] is None and bare["ams"] == {}


def test_every_entity_has_a_unique_id_on_the_printers_device():
    configs = discovery.configs("homeassistant", "garage", VIEW)
    ids = [c["unique_id"] for c in configs.values()]
    assert len(ids) == len(set(ids)) == 9 + 2 + 3 + 1  # sensors, two trays, buttons, the light
    assert {c["device"]["identifiers"][0] for c in configs.values()} == {"bambu_00M00A000000001"}
    assert all(t.startswith("homeassistant/") and t.endswith("/config") for t in configs)


def test_commands_are_parsed_from_this_units_topics_only():
    assert discovery.command("bambu-edge/garage/x1c-left/command", b"pause", "garage") == (
        "x1c-left",
        "pause",
        {},
    )
    assert discovery.command("bambu-edge/garage/x1c-left/light/set", b"OFF", "garage") == (
        "x1c-left",
        "light",
        {"on": False},
    )
    assert discovery.command("bambu-edge/other/x1c-left/command", b"pause", "garage") is None
    assert discovery.command("bambu-edge/garage/x1c-left/command", b"gcode G28", "garage") is None
    assert discovery.command("bambu-edge/garage/x1c-left/light/set", b"\xff", "garage") is None
