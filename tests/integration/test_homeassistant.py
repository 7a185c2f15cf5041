"""Home Assistant discovery against real peers: the daemon (child process) publishes to a second
mosquitto (TLS + password) playing Home Assistant's broker; the discovery payloads are checked
against Home Assistant's documented MQTT discovery schema, their templates rendered with Jinja2 as
Home Assistant renders them, and a button press reaches the printer."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import jinja2
import orjson
import pytest

from bambu_edge.demo.broker import LocalBroker
from tests.integration.fanout_peers import FRONTED, start_farm
from tests.integration.running_daemon import Farm
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration

HA_USER, HA_PASSWORD = "homeassistant", "ha broker password"
PREFIX = "homeassistant"
# https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery: <prefix>/<component>/[<node_id>/]<object_id>/config
TOPIC_RE = re.compile(rf"{PREFIX}/(sensor|button|light)/(?:[a-zA-Z0-9_-]+/)?[a-zA-Z0-9_-]+/config")
COMMON = {
    "name",
    "unique_id",
    "device",
    "origin",
    "availability",
    "availability_mode",
    "icon",
    "json_attributes_topic",
    "json_attributes_template",
    "object_id",
    "default_entity_id",
}
# Keys each platform documents (full names) and those it requires.
DOCUMENTED = {
    "sensor": COMMON
    | {"state_topic", "value_template", "unit_of_measurement", "device_class", "state_class"},
    "button": COMMON | {"command_topic", "payload_press", "device_class"},
    "light": COMMON | {"command_topic", "state_topic", "state_value_template", "payload_on", "payload_off"},
}
REQUIRED = {"sensor": {"state_topic"}, "button": {"command_topic"}, "light": {"command_topic"}}
DEVICE_KEYS = {"identifiers", "name", "manufacturer", "model", "serial_number", "sw_version", "via_device"}


@pytest.fixture
def ha_broker(tmp_path) -> AsyncIterator[LocalBroker]:
    b = LocalBroker(tmp_path / "ha-broker", {HA_USER: HA_PASSWORD}, server_cn="ha-broker", port_retries=5)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
async def farm(tmp_path, broker, ha_broker) -> AsyncIterator[Farm]:
    extra = {
        "homeassistant": {
            "broker": f"mqtts://127.0.0.1:{ha_broker.port}",
            "username": HA_USER,
            "password": HA_PASSWORD,
            "ca_file": str(ha_broker.ca_path),
        }
    }
    farm = await start_farm(tmp_path, broker, extra)
    try:
        yield farm
    finally:
        await farm.close()
    farm.check_logs()


def ha_client(ha_broker: LocalBroker) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        ha_broker.port,
        username=HA_USER,
        password=HA_PASSWORD,
        tls_context=ssl.create_default_context(cafile=str(ha_broker.ca_path)),
    )


async def retained(ha_broker: LocalBroker, *filters: str, until: Any) -> dict[str, bytes]:
    """The retained messages under ``filters`` once ``until(messages)`` holds."""
    seen: dict[str, bytes] = {}
    async with ha_client(ha_broker) as c:
        for f in filters:
            await c.subscribe(f)
        async with asyncio.timeout(30):
            async for m in c.messages:
                seen[str(m.topic)] = bytes(m.payload)
                if until(seen):
                    return seen
    raise AssertionError(f"the session ended; got {sorted(seen)}")


def render(template: str, payload: bytes) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return env.from_string(template).render(value_json=orjson.loads(payload)).strip()


def announced(seen: dict[str, bytes]) -> bool:
    configs = [t for t in seen if t.endswith("/config")]
    states = [t for t in seen if t.endswith("/state")]
    return len(configs) >= 2 * 13 and len(states) == 2


async def test_printers_appear_in_home_assistant_as_documented(farm: Farm, ha_broker: LocalBroker) -> None:
    await eventually(lambda: farm.ok("GET", "/api/health"), what="health")
    seen = await retained(ha_broker, f"{PREFIX}/#", "bambu-edge/#", until=announced)
    configs = {t: orjson.loads(p) for t, p in seen.items() if t.startswith(PREFIX + "/") and p}
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids)), "unique_id must be unique"
    for topic, cfg in configs.items():
        m = TOPIC_RE.fullmatch(topic)
        assert m, topic
        platform = m.group(1)
        assert set(cfg) <= DOCUMENTED[platform], (topic, set(cfg) - DOCUMENTED[platform])
        assert REQUIRED[platform] <= set(cfg), topic
        assert cfg["device"]["identifiers"] and set(cfg["device"]) <= DEVICE_KEYS
        assert all(a["topic"] in seen for a in cfg["availability"]), "availability topics are published"
        assert cfg["availability_mode"] == "all"
    assert seen[cfg["availability"][0]["topic"]] == b"online"  # the unit's status

    # Every sensor's template renders on its state topic, and the numbers are the printer's.
    view = await farm.ok("GET", "/api/printers/left")
    left = {t: c for t, c in configs.items() if c["device"]["identifiers"] == [f"bambu_{FRONTED['left']}"]}
    by_key = {c["unique_id"].rsplit(f"{FRONTED['left'].lower()}_", 1)[1]: c for c in left.values()}
    assert {"print_state", "progress", "remaining", "nozzle_temperature", "bed_temperature", "hms"} <= set(
        by_key
    )
    assert {"pause", "resume", "stop", "chamber_light"} <= set(by_key)
    assert any(k.startswith("ams_") for k in by_key), "the X1C's AMS trays"
    state = await eventually(
        lambda: _state_matching(ha_broker, by_key["print_state"]["state_topic"], view), what="state"
    )
    assert render(by_key["print_state"]["value_template"], state) == view["print"]["state"]
    assert (
        float(render(by_key["bed_target_temperature"]["value_template"], state))
        == view["temps"]["bed"]["target"]
    )
    for c in left.values():
        if "value_template" in c:
            render(c["value_template"], state)  # StrictUndefined: a wrong key fails here
        if "json_attributes_template" in c:
            assert isinstance(orjson.loads(render(c["json_attributes_template"], state)), dict)

    # A button press and the light switch reach the printer through bambu-edge's one session.
    vp = farm.vps["left"]
    async with ha_client(ha_broker) as c:
        await c.publish(by_key["pause"]["command_topic"], by_key["pause"]["payload_press"])
        await c.publish(by_key["chamber_light"]["command_topic"], "ON")
    await eventually(
        lambda: any(m.get("print", {}).get("command") == "pause" for m in vp.received), what="pause"
    )
    await eventually(
        lambda: any(m.get("system", {}).get("led_mode") == "on" for m in vp.received), what="light on"
    )


async def _state_matching(ha_broker: LocalBroker, topic: str, view: dict) -> bytes | None:
    seen = await retained(ha_broker, topic, until=lambda s: topic in s)
    state = orjson.loads(seen[topic])
    return seen[topic] if state["bed_target"] == view["temps"]["bed"]["target"] else None


async def test_the_unit_says_it_is_offline_when_it_stops(farm: Farm, ha_broker: LocalBroker) -> None:
    seen = await retained(ha_broker, "bambu-edge/+/status", until=lambda s: b"online" in s.values())
    (topic,) = seen
    farm.stop_daemon()
    offline = await retained(ha_broker, topic, until=lambda s: s.get(topic) == b"offline")
    assert offline[topic] == b"offline"
