"""The Bambu link against real mosquitto (TLS + password) playing the printer's MQTT side.

A plain aiomqtt client acts as the printer's internals here, so every byte on the wire is ours to see.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiomqtt
import orjson
import pytest

from bambu_edge.bus import EventBus
from bambu_edge.config import PrinterConfig, TlsConfig
from bambu_edge.printers.backoff import Backoff
from bambu_edge.printers.bambu.fixtures import load_fixture
from bambu_edge.printers.bambu.link import BambuLink
from bambu_edge.store.db import Database
from bambu_edge.store.pins import CertPins
from tests.conftest import ACCESS_CODE, SERIAL

REPORT = f"device/{SERIAL}/report"
REQUEST = f"device/{SERIAL}/request"


class FakePrinterSide:
    """The printer's side of the broker: sees requests, publishes reports."""

    def __init__(self, client: aiomqtt.Client):
        self.client = client
        self.requests: list[dict] = []
        self.auto_reply: str | None = None  # "success" / "failed": answer commands like a printer
        self.answer_pushall: dict | None = None

    async def run(self) -> None:
        await self.client.subscribe(REQUEST)
        async for m in self.client.messages:
            req = orjson.loads(m.payload)
            self.requests.append(req)
            ((kind, body),) = req.items()
            if kind == "pushing" and body.get("command") == "pushall" and self.answer_pushall:
                await self.report(self.answer_pushall)
            elif kind in ("print", "system") and self.auto_reply:
                extra = {"reason": "mqtt message verify failed"} if self.auto_reply == "failed" else {}
                await self.report({kind: {**body, "result": self.auto_reply, **extra}})

    async def report(self, msg: dict | bytes) -> None:
        await self.client.publish(REPORT, msg if isinstance(msg, bytes) else orjson.dumps(msg))

    def commands(self, kind: str = "print") -> list[dict]:
        return [r[kind] for r in self.requests if kind in r]


async def until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def pins(tmp_path) -> AsyncIterator[CertPins]:
    db = await Database.open(tmp_path / "db.sqlite")
    await db.migrate()
    yield CertPins(db)
    await db.close()


@pytest.fixture
async def printer_side(broker) -> AsyncIterator[FakePrinterSide]:
    ctx = ssl.create_default_context(cafile=str(broker.ca_path))
    ctx.check_hostname = False
    async with aiomqtt.Client(
        broker.host, broker.port, username="bblp", password=ACCESS_CODE, tls_context=ctx
    ) as c:
        side = FakePrinterSide(c)
        task = asyncio.create_task(side.run())
        await asyncio.sleep(0.1)
        yield side
        task.cancel()


def make_link(broker, bus, pins, access_code=ACCESS_CODE, **kw) -> BambuLink:
    cfg = PrinterConfig(
        id="p1",
        name="P1",
        type="bambu",
        host=broker.host,
        serial=SERIAL,
        access_code=access_code,
        mqtt_port=broker.port,
        tls=TlsConfig(),
    )
    kw.setdefault("backoff", Backoff(initial=0.2, cap=1.0))
    kw.setdefault("command_timeout", 2.0)
    return BambuLink(cfg, bus, pins, **kw)


@pytest.fixture
async def link(broker, pins, printer_side) -> AsyncIterator[BambuLink]:
    bus = EventBus()
    printer_side.answer_pushall = load_fixture("x1c_pushall_finish_multi_ams.json")
    lk = make_link(broker, bus, pins)
    await lk.start()
    await until(lambda: lk.link_state == "connected", what="connected")
    await until(lambda: lk.state.view()["print"]["state"] == "FINISH", what="pushall applied")
    yield lk
    await lk.stop()


async def test_connect_requests_version_and_full_report_and_state_matches_fixture(link, printer_side):
    kinds = [next(iter(r)) + "." + next(iter(r.values()))["command"] for r in printer_side.requests]
    assert "info.get_version" in kinds and "pushing.pushall" in kinds
    pushall = printer_side.commands("pushing")[0]
    assert pushall == {
        "sequence_id": pushall["sequence_id"],
        "command": "pushall",
        "version": 1,
        "push_target": 1,
    }
    fx = load_fixture("x1c_pushall_finish_multi_ams.json")["print"]
    v = link.state.view()
    assert v["temps"]["nozzle"]["current"] == fx["nozzle_temper"]
    assert v["temps"]["bed"]["current"] == fx["bed_temper"]
    assert v["print"]["job"] == fx["subtask_name"]
    assert v["print"]["progress"] == fx["mc_percent"]
    assert v["ams"][0]["trays"][0]["color"] == "#" + fx["ams"]["ams"][0]["tray"][0]["tray_color"]
    assert v["link"]["fingerprint"]  # pinned on first use


async def test_delta_merges_and_keeps_the_rest(link, printer_side):
    bus_sub = link.bus.subscribe("printer")
    before = link.state.view()
    await printer_side.report(
        {"print": {"bed_temper": 61.5, "command": "push_status", "msg": 1, "sequence_id": "9"}}
    )
    await until(lambda: link.state.view()["temps"]["bed"]["current"] == 61.5, what="delta")
    after = link.state.view()
    assert after["temps"]["nozzle"] == before["temps"]["nozzle"]
    assert after["ams"] == before["ams"]
    ev = await asyncio.wait_for(bus_sub.get(), 2)
    assert ev.data["changes"]["temps"] == {"bed": {"current": 61.5}}


@pytest.mark.parametrize(
    ("action", "params", "expected"),
    [
        ("pause", {}, {"print": {"command": "pause", "param": ""}}),
        ("resume", {}, {"print": {"command": "resume", "param": ""}}),
        ("stop", {}, {"print": {"command": "stop", "param": ""}}),
        ("speed", {"level": 3}, {"print": {"command": "print_speed", "param": "3"}}),
        ("gcode", {"line": "M104 S200"}, {"print": {"command": "gcode_line", "param": "M104 S200\n"}}),
        (
            "light",
            {"on": True},
            {
                "system": {
                    "command": "ledctrl",
                    "led_node": "chamber_light",
                    "led_mode": "on",
                    "led_on_time": 500,
                    "led_off_time": 500,
                    "loop_times": 0,
                    "interval_time": 0,
                }
            },
        ),
    ],
)
async def test_command_reaches_the_printer_as_exact_json_and_ack_matches(
    link, printer_side, action, params, expected
):
    printer_side.auto_reply = "success"
    sub = link.bus.subscribe("command")
    seq = await link.send_command(action, params)
    ((kind, body),) = expected.items()
    await until(lambda: any(r.get(kind, {}).get("sequence_id") == seq for r in printer_side.requests))
    sent = next(r for r in printer_side.requests if r.get(kind, {}).get("sequence_id") == seq)
    assert sent == {kind: {"sequence_id": seq, **body}}
    ev = await asyncio.wait_for(sub.get(), 3)
    assert ev.data == {"sequence_id": seq, "action": action, "result": "success", "message": None}


async def test_refused_command_says_developer_mode(link, printer_side):
    printer_side.auto_reply = "failed"
    sub = link.bus.subscribe("command")
    seq = await link.send_command("pause", {})
    ev = await asyncio.wait_for(sub.get(), 3)
    assert ev.data["sequence_id"] == seq and ev.data["result"] == "failed"
    assert "Developer Mode" in ev.data["message"] and "mqtt message verify failed" in ev.data["message"]
    assert link.link_state == "connected"  # a refusal is not a broken link


async def test_unanswered_command_times_out_with_a_hint(link, printer_side):
    sub = link.bus.subscribe("command")
    seq = await link.send_command("stop", {})
    await printer_side.report({"print": {"nozzle_temper": 30.0, "command": "push_status", "msg": 1}})
    ev = await asyncio.wait_for(sub.get(), 5)
    assert (ev.data["sequence_id"], ev.data["result"]) == (seq, "timeout")
    assert "did not answer" in ev.data["message"] and "Developer Mode" in ev.data["message"]


async def test_bad_commands_are_rejected_before_sending(link, printer_side):
    from bambu_edge.printers.base import CommandError

    n = len(printer_side.requests)
    for action, params in [
        ("dance", {}),
        ("speed", {"level": 7}),
        ("speed", {"level": "2"}),
        ("light", {"on": "yes"}),
        ("gcode", {"line": ""}),
        ("gcode", {"line": "G28\x00"}),
        ("gcode", {"line": "G1 X1\n" * 1000}),
    ]:
        with pytest.raises(CommandError) as e:
            await link.send_command(action, params)
        assert e.value.code == "bad_request"
    await asyncio.sleep(0.2)
    assert len(printer_side.requests) == n


async def test_malformed_payloads_warn_and_keep_the_link(link, printer_side, caplog):
    caplog.set_level(logging.WARNING)
    link._warned_at = 0.0
    deep = b'{"print":' * 10000 + b"1" + b"}" * 10000
    junk = [
        b"not json at all",
        b"[1, 2, 3]",
        b'{"print": {"nozzle_temper": "hot", "mc_percent": [], "ams": 5, "command": "push_status"}}',
        b"\xff" * (1024 * 1024),
        deep,
        b'{"print": {"command": "push_status", "msg": 1, "brand_new_field": {"x": 1}}}',
        b'{"print": "string instead of object"}',
    ]
    for j in junk:
        await printer_side.report(j)
    await printer_side.report({"print": {"bed_temper": 42.0, "command": "push_status", "msg": 1}})
    await until(lambda: link.state.view()["temps"]["bed"]["current"] == 42.0, what="valid report after junk")
    assert link.link_state == "connected"
    assert any("ignored" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert ACCESS_CODE not in caplog.text


async def test_offline_when_broker_dies_then_fresh_state_on_return(broker, pins, tmp_path):
    bus = EventBus()
    ctx = ssl.create_default_context(cafile=str(broker.ca_path))
    ctx.check_hostname = False
    lk = make_link(broker, bus, pins)
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected")
        broker.kill()
        await until(lambda: lk.link_state == "offline", what="offline")
        assert lk.state.view()["link"]["error"]
        n_attempts = lk.connect_attempts
        broker.start()  # same port, like a printer coming back
        async with aiomqtt.Client(
            broker.host, broker.port, username="bblp", password=ACCESS_CODE, tls_context=ctx
        ) as printer:
            side = FakePrinterSide(printer)
            fresh = load_fixture("p1p_pushall_idle_contents.json")
            side.answer_pushall = fresh
            task = asyncio.create_task(side.run())
            await until(lambda: lk.link_state == "connected", timeout=15, what="reconnected")
            assert lk.connect_attempts > n_attempts
            await until(lambda: side.commands("pushing"), what="pushall after reconnect")
            await until(
                lambda: lk.state.view()["print"]["state"] == fresh["print"]["gcode_state"], what="fresh"
            )
            task.cancel()
    finally:
        await lk.stop()


async def test_wrong_access_code_is_auth_failed_and_does_not_hammer(broker, pins, caplog):
    bus = EventBus()
    lk = make_link(broker, bus, pins, access_code="87654321")
    await lk.start()
    try:
        await until(lambda: lk.link_state == "auth_failed", what="auth_failed")
        attempts = lk.connect_attempts
        await asyncio.sleep(3)
        assert lk.connect_attempts == attempts  # next try is a minute or more away
        assert "access code" in lk.state.view()["link"]["error"]
    finally:
        await lk.stop()
    assert "87654321" not in caplog.text


async def test_changed_certificate_is_tls_mismatch_until_accepted(broker, pins, printer_side):
    bus = EventBus()
    lk = make_link(broker, bus, pins)
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected")
        old_fp = lk.state.view()["link"]["fingerprint"]
        new_fp = broker.rotate_certificate()
        broker.restart()
        await until(lambda: lk.link_state == "tls_mismatch", timeout=15, what="tls_mismatch")
        link_view = lk.state.view()["link"]
        assert link_view["fingerprint"] == old_fp and link_view["offered_fingerprint"] == new_fp
        pin = await pins.get("p1")
        assert pin.fingerprint == old_fp and pin.pending_fingerprint == new_fp
        await lk.accept_certificate()
        await until(lambda: lk.link_state == "connected", timeout=10, what="connected after accept")
        assert lk.state.view()["link"]["fingerprint"] == new_fp
    finally:
        await lk.stop()


async def test_configured_fingerprint_that_does_not_match_is_refused(broker, pins):
    bus = EventBus()
    lk = make_link(broker, bus, pins)
    lk.cfg = replace(lk.cfg, tls=TlsConfig(fingerprint="00" * 32))
    await lk.start()
    try:
        await until(lambda: lk.link_state == "tls_mismatch", what="tls_mismatch")
        assert lk.state.view()["link"]["offered_fingerprint"] == broker.fingerprint
    finally:
        await lk.stop()


async def test_configured_ca_file_verifies_the_chain(broker, pins):
    bus = EventBus()
    lk = make_link(broker, bus, pins)
    lk.cfg = replace(lk.cfg, tls=TlsConfig(ca_file=str(broker.ca_path)))
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected via CA")
    finally:
        await lk.stop()
