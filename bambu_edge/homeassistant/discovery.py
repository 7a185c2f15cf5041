"""Home Assistant MQTT discovery payloads and printer state, pure: a printer view in, topics and
JSON-ready dicts out (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery).

Each printer is one device (identified by its serial, so it stays the same device if its id or the
unit changes); each entity's ``unique_id`` is the serial and the entity's key. Entities read one
retained JSON state topic per printer through ``value_template``s; they are available while the
unit is online and the printer's link is connected (``availability_mode: all``). Buttons and the
light write to command topics bambu-edge subscribes to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bambu_edge import __version__

ROOT = "bambu-edge"
ONLINE, OFFLINE = "online", "offline"
BUTTONS = ("pause", "resume", "stop")
TEMPERATURES = (
    ("nozzle_temperature", "Nozzle temperature", "nozzle"),
    ("nozzle_target_temperature", "Nozzle target", "nozzle_target"),
    ("bed_temperature", "Bed temperature", "bed"),
    ("bed_target_temperature", "Bed target", "bed_target"),
    ("chamber_temperature", "Chamber temperature", "chamber"),
)


def node_status_topic(node: str) -> str:
    return f"{ROOT}/{node}/status"


def base_topic(node: str, printer_id: str) -> str:
    return f"{ROOT}/{node}/{printer_id}"


def _num(v: Any) -> float | int | None:
    return v if isinstance(v, int | float) and not isinstance(v, bool) else None


def tray_key(unit: Any, slot: Any) -> str:
    return f"{unit}_{slot}"


def state(view: Mapping[str, Any]) -> dict[str, Any]:
    """The printer's state topic payload."""
    pr = view.get("print") or {}
    temps = view.get("temps") or {}

    def temp(sensor: str, kind: str) -> Any:
        return _num((temps.get(sensor) or {}).get(kind))

    light = (view.get("lights") or {}).get("chamber")
    trays: dict[str, Any] = {}
    for unit in view.get("ams") or []:
        for tray in unit.get("trays") or []:
            trays[tray_key(unit.get("unit"), tray.get("slot"))] = {
                "type": tray.get("type") or "empty",
                "color": tray.get("color"),
                "remain": _num(tray.get("remain")),
                "active": bool(tray.get("active")),
            }
    hms = view.get("hms") or []
    return {
        "link": (view.get("link") or {}).get("state"),
        "state": pr.get("state"),
        "progress": _num(pr.get("progress")),
        "remaining_s": _num(pr.get("remaining_s")),
        "job": pr.get("job"),
        "nozzle": temp("nozzle", "current"),
        "nozzle_target": temp("nozzle", "target"),
        "bed": temp("bed", "current"),
        "bed_target": temp("bed", "target"),
        "chamber": temp("chamber", "current"),
        "hms": len(hms),
        "hms_messages": [{k: m.get(k) for k in ("code", "severity", "text")} for m in hms],
        "light": None if light is None else ("ON" if light else "OFF"),
        "ams": trays,
    }


def availability(link_state: Any) -> str:
    return ONLINE if link_state == "connected" else OFFLINE


def configs(prefix: str, node: str, view: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every discovery config topic of this printer and its payload."""
    pid, serial = view["id"], view.get("serial") or view["id"]
    base = base_topic(node, pid)
    object_base = f"bambu_edge_{serial}".lower()
    device = {
        "identifiers": [f"bambu_{serial}"],
        "name": view.get("name") or pid,
        "manufacturer": "Bambu Lab",
        "model": view.get("model") or "Bambu Lab printer",
        "serial_number": serial,
    }
    if view.get("firmware"):
        device["sw_version"] = str(view["firmware"])
    common = {
        "device": device,
        "origin": {"name": "bambu-edge", "sw_version": __version__},
        "availability": [{"topic": node_status_topic(node)}, {"topic": f"{base}/availability"}],
        "availability_mode": "all",
    }
    state_topic = f"{base}/state"
    out: dict[str, dict[str, Any]] = {}

    def add(component: str, key: str, name: str, **fields: Any) -> None:
        out[f"{prefix}/{component}/{object_base}/{key}/config"] = {
            "name": name,
            "unique_id": f"{object_base}_{key}",
            **common,
            **fields,
        }

    add(
        "sensor",
        "print_state",
        "Print state",
        state_topic=state_topic,
        value_template="{{ value_json.state }}",
        icon="mdi:printer-3d",
    )
    add(
        "sensor",
        "progress",
        "Progress",
        state_topic=state_topic,
        value_template="{{ value_json.progress }}",
        unit_of_measurement="%",
        state_class="measurement",
        icon="mdi:progress-clock",
    )
    add(
        "sensor",
        "remaining",
        "Remaining time",
        state_topic=state_topic,
        value_template="{{ value_json.remaining_s }}",
        unit_of_measurement="s",
        device_class="duration",
    )
    for key, name, field in TEMPERATURES:
        add(
            "sensor",
            key,
            name,
            state_topic=state_topic,
            value_template=f"{{{{ value_json.{field} }}}}",
            unit_of_measurement="°C",
            device_class="temperature",
            state_class="measurement",
        )
    add(
        "sensor",
        "hms",
        "HMS messages",
        state_topic=state_topic,
        value_template="{{ value_json.hms }}",
        json_attributes_topic=state_topic,
        json_attributes_template="{{ {'messages': value_json.hms_messages} | tojson }}",
        icon="mdi:alert",
    )
    for unit in view.get("ams") or []:
        for tray in unit.get("trays") or []:
            t = tray_key(unit.get("unit"), tray.get("slot"))
            add(
                "sensor",
                f"ams_{t}",
                f"AMS {unit.get('unit')} tray {tray.get('slot')}",
                state_topic=state_topic,
                value_template=f"{{{{ value_json.ams['{t}'].type if '{t}' in value_json.ams else 'empty' }}}}",
                json_attributes_topic=state_topic,
                json_attributes_template=f"{{{{ value_json.ams['{t}'] | default({{}}) | tojson }}}}",
                icon="mdi:printer-3d-nozzle",
            )
    for action in BUTTONS:
        add("button", action, action.capitalize(), command_topic=f"{base}/command", payload_press=action)
    add(
        "light",
        "chamber_light",
        "Chamber light",
        command_topic=f"{base}/light/set",
        state_topic=state_topic,
        state_value_template="{{ value_json.light }}",
        payload_on="ON",
        payload_off="OFF",
    )
    return out


def command(topic: str, payload: bytes, node: str) -> tuple[str, str, dict[str, Any]] | None:
    """(printer_id, action, params) for a command topic's message; None for anything else."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != ROOT or parts[1] != node:
        return None
    pid, text = parts[2], payload.decode("utf-8", "replace").strip()
    if parts[3:] == ["command"] and text in BUTTONS:
        return pid, text, {}
    if parts[3:] == ["light", "set"] and text in ("ON", "OFF"):
        return pid, "light", {"on": text == "ON"}
    return None
