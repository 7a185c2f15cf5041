"""The Bambu link against real mosquitto (TLS + password) playing the printer's MQTT side.

A plain aiomqtt client acts as the printer's internals here (subscribed to the request topic,
publishing captured reports), so every byte on the wire is ours to see.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import signal
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiomqtt
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bambu_edge.bus import EventBus
from bambu_edge.certs import fingerprint_pem, make_ca
from bambu_edge.config import Config, PrinterConfig, TlsConfig
from bambu_edge.demo.broker import LocalBroker
from bambu_edge.printers.backoff import Backoff
from bambu_edge.printers.bambu import link as link_module
from bambu_edge.printers.bambu.fixtures import load_fixture
from bambu_edge.printers.bambu.link import BambuLink
from bambu_edge.printers.bambu.report import BambuState
from bambu_edge.printers.base import CommandError, CommandOutcome
from bambu_edge.printers.manager import PrinterManager
from bambu_edge.printers.moonraker.link import MoonrakerLink
from tests.conftest import ACCESS_CODE, SERIAL
from tests.integration.links import make_link
from tests.integration.waiting import eventually

REPORT = f"device/{SERIAL}/report"
REQUEST = f"device/{SERIAL}/request"
LINK_LOGGER = "bambu_edge.printers.bambu.link"
FULL_X1C = "x1c_pushall_finish_multi_ams.json"
FULL_A1 = "a1_pushall_idle.json"


class FakePrinterSide:
    """The printer's side of the broker: records requests, publishes reports, answers like a printer."""

    def __init__(self, client: aiomqtt.Client):
        self.client = client
        self.requests: list[dict] = []
        self.auto_reply: str | None = None  # "success" / "failed": answer commands like a printer
        self.answer_pushall: dict | None = None
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        await self.client.subscribe(REQUEST)
        self.subscribed.set()
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

    def named(self, kind: str, command: str) -> list[dict]:
        return [r[kind] for r in self.requests if r.get(kind, {}).get("command") == command]


until = functools.partial(eventually, timeout=10.0, every=0.02)


def printer_client(broker: LocalBroker) -> aiomqtt.Client:
    ctx = ssl.create_default_context(cafile=str(broker.ca_path))
    ctx.check_hostname = False
    return aiomqtt.Client(broker.host, broker.port, username="bblp", password=ACCESS_CODE, tls_context=ctx)


@pytest.fixture(autouse=True)
def access_code_never_logged(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)  # everything, aiomqtt/paho included
    caplog.set_level(logging.INFO, logger="aiosqlite")  # every SQL statement: noise here
    yield
    assert ACCESS_CODE not in caplog.text
    assert "87654321" not in caplog.text  # the wrong code of the auth test


@pytest.fixture
async def printer_side(broker: LocalBroker) -> AsyncIterator[FakePrinterSide]:
    async with printer_client(broker) as c:
        side = FakePrinterSide(c)
        task = asyncio.create_task(side.run())
        await asyncio.wait_for(side.subscribed.wait(), 10)
        yield side
        task.cancel()


@pytest.fixture
async def link(broker, pins, printer_side) -> AsyncIterator[BambuLink]:
    printer_side.answer_pushall = load_fixture(FULL_X1C)
    lk = make_link(broker, pins)
    await lk.start()
    await until(lambda: lk.link_state == "connected", what="connected")
    await until(lambda: lk.state.view()["print"]["state"] == "FINISH", what="pushall applied")
    yield lk
    await lk.stop()


def sections(view: dict) -> dict:
    """The parts of a view that come from the printer's reports."""
    return {k: view[k] for k in ("print", "temps", "ams", "external_spool", "hms", "lights", "nozzle")}


def expected_view(*messages: dict) -> dict:
    state = BambuState("p1", "P1", SERIAL)
    for m in messages:
        state.apply_message(m)
    return sections(state.view())


# --- connect, reports ------------------------------------------------------------------------------


async def test_connect_requests_version_then_full_report_and_state_matches_the_fixture(link, printer_side):
    order = [(k, b["command"]) for r in printer_side.requests for k, b in r.items()]
    assert order[:2] == [("info", "get_version"), ("pushing", "pushall")]
    (version,) = printer_side.named("info", "get_version")
    assert version == {"sequence_id": version["sequence_id"], "command": "get_version"}
    (pushall,) = printer_side.named("pushing", "pushall")
    assert pushall == {
        "sequence_id": pushall["sequence_id"],
        "command": "pushall",
        "version": 1,
        "push_target": 1,
    }
    assert int(pushall["sequence_id"]) > int(version["sequence_id"])

    fx = load_fixture(FULL_X1C)
    assert sections(link.state.view()) == expected_view(fx)
    v, p = link.state.view(), fx["print"]
    assert v["temps"]["nozzle"] == {"current": p["nozzle_temper"], "target": p["nozzle_target_temper"]}
    assert v["temps"]["bed"] == {"current": p["bed_temper"], "target": p["bed_target_temper"]}
    assert (v["print"]["state"], v["print"]["job"]) == (p["gcode_state"], p["subtask_name"])
    assert (v["print"]["progress"], v["print"]["layer"]) == (p["mc_percent"], p["layer_num"])
    assert v["ams"][0]["trays"][0]["color"] == "#" + p["ams"]["ams"][0]["tray"][0]["tray_color"]
    assert v["link"]["state"] == "connected" and v["link"]["error"] is None
    assert v["link"]["fingerprint"] == (await link.pins.get("p1")).fingerprint  # pinned on first use


async def test_delta_merges_and_publishes_only_the_change(link, printer_side):
    sub = link.listener.bus.subscribe("printer")
    before = link.state.view()
    delta = load_fixture("p1s_delta_bed_temper_wifi_1.json")
    await printer_side.report(delta)
    await until(lambda: link.state.view()["temps"]["bed"]["current"] == delta["print"]["bed_temper"])
    after = link.state.view()
    assert after["temps"]["nozzle"] == before["temps"]["nozzle"]
    assert after["ams"] == before["ams"] and after["print"] == before["print"]
    ev = await asyncio.wait_for(sub.get(), 2)
    assert ev.kind == "printer" and ev.printer_id == "p1"
    assert ev.data.changes["temps"] == {"bed": {"current": delta["print"]["bed_temper"]}}
    # A message that changes nothing in the view (a G-code log line) publishes nothing.
    await printer_side.report(load_fixture("x1_mc_print_push_info_gcodeline.json"))
    # Reports are handled in order: the next event is the one for a report sent after it.
    await printer_side.report({"print": {"command": "push_status", "msg": 1, "wifi_signal": "-17dBm"}})
    ev = await asyncio.wait_for(sub.get(), 2)
    assert ev.data.changes.get("wifi_signal") == "-17dBm"  # not an event for the log line


async def test_broker_dies_then_returns_on_the_same_port_with_fresh_state(broker, link, printer_side):
    assert link.state.view()["ams"]  # the X1C's four AMS units
    broker.kill()  # like a printer losing power
    await until(lambda: link.link_state == "offline", what="offline")
    assert link.state.view()["link"]["error"]
    with pytest.raises(CommandError) as e:
        await link.send_command("pause", {})
    assert e.value.code == "offline"

    broker.start()  # same port: the printer is back, now idle and a different report
    async with printer_client(broker) as c:
        side = FakePrinterSide(c)
        fresh = load_fixture(FULL_A1)
        side.answer_pushall = fresh
        task = asyncio.create_task(side.run())
        try:
            await until(lambda: link.link_state == "connected", timeout=15, what="reconnected")
            await until(lambda: side.named("pushing", "pushall"), what="a new pushall")
            await until(lambda: link.state.view()["print"]["state"] == "IDLE", what="fresh state")
            # The full report replaced the old one: nothing of the X1C's job or AMS is left.
            assert sections(link.state.view()) == expected_view(fresh)
        finally:
            task.cancel()


# --- commands -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "params", "expected"),
    [
        ("pause", {}, {"print": {"command": "pause", "param": ""}}),
        ("resume", {}, {"print": {"command": "resume", "param": ""}}),
        ("stop", {}, {"print": {"command": "stop", "param": ""}}),
        ("speed", {"level": 3}, {"print": {"command": "print_speed", "param": "3"}}),
        (
            "gcode",
            {"line": "G28\nM104 S200"},
            {"print": {"command": "gcode_line", "param": "G28\nM104 S200\n"}},
        ),
        (
            "light",
            {"on": False},
            {
                "system": {
                    "command": "ledctrl",
                    "led_node": "chamber_light",
                    "led_mode": "off",
                    "led_on_time": 500,
                    "led_off_time": 500,
                    "loop_times": 0,
                    "interval_time": 0,
                }
            },
        ),
    ],
)
async def test_command_reaches_the_printer_as_exact_json_and_its_ack_is_success(
    link, printer_side, action, params, expected
):
    printer_side.auto_reply = "success"
    sub = link.listener.bus.subscribe("command")
    seq = await link.send_command(action, params)
    ((kind, body),) = expected.items()
    await until(lambda: any(r.get(kind, {}).get("sequence_id") == seq for r in printer_side.requests))
    sent = next(r for r in printer_side.requests if r.get(kind, {}).get("sequence_id") == seq)
    assert sent == {kind: {"sequence_id": seq, **body}}
    ev = await asyncio.wait_for(sub.get(), 3)
    assert (ev.kind, ev.printer_id) == ("command", "p1")
    assert ev.data == CommandOutcome(seq, action, "success", None)


async def test_sequence_ids_are_unique_and_increasing(link, printer_side):
    printer_side.auto_reply = "success"
    ids = [await link.send_command("speed", {"level": 2}) for _ in range(5)]
    assert len(set(ids)) == 5 and [int(i) for i in ids] == sorted(int(i) for i in ids)


async def test_only_the_matching_reply_resolves_a_command(link, printer_side):
    sub = link.listener.bus.subscribe("command")
    seq = await link.send_command("pause", {})
    # Same command, other id; same id, other command; other type: none of them is the answer.
    await printer_side.report(
        {"print": {"command": "pause", "sequence_id": str(int(seq) + 99), "result": "success"}}
    )
    await printer_side.report({"print": {"command": "resume", "sequence_id": seq, "result": "success"}})
    await printer_side.report({"system": {"command": "pause", "sequence_id": seq, "result": "success"}})
    # Reports are handled in order: the first event after those is the real answer's, or a wrong
    # one had been taken for it.
    await printer_side.report({"print": {"command": "pause", "sequence_id": seq, "result": "SUCCESS"}})
    ev = await asyncio.wait_for(sub.get(), 2)
    assert (ev.data.sequence_id, ev.data.result) == (seq, "success")
    await asyncio.sleep(link.command_timeout + 0.2)  # past the command timeout: no late "timeout"
    assert sub.get_nowait() is None


async def test_refused_command_says_so_and_names_developer_mode(link, printer_side):
    printer_side.auto_reply = "failed"
    sub = link.listener.bus.subscribe("command")
    seq = await link.send_command("pause", {})
    ev = await asyncio.wait_for(sub.get(), 3)
    assert (ev.data.sequence_id, ev.data.action, ev.data.result) == (seq, "pause", "failed")
    message = ev.data.message
    assert "refused" in message and "Developer Mode" in message and "LAN Only" in message
    assert "mqtt message verify failed" in message  # the printer's own reason
    assert link.link_state == "connected"  # a refusal is not a broken link


async def test_unanswered_command_times_out_with_a_developer_mode_hint(link, printer_side):
    sub = link.listener.bus.subscribe("command")
    seq = await link.send_command("stop", {})
    await printer_side.report({"print": {"nozzle_temper": 30.0, "command": "push_status", "msg": 1}})
    ev = await asyncio.wait_for(sub.get(), 5)
    assert (ev.data.sequence_id, ev.data.action, ev.data.result) == (seq, "stop", "timeout")
    assert "did not answer" in ev.data.message and "Developer Mode" in ev.data.message


async def test_bad_commands_are_rejected_before_anything_is_sent(link, printer_side):
    n = len(printer_side.requests)
    for action, params in [
        ("dance", {}),
        ("speed", {"level": 7}),
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


# --- untrusted input ----------------------------------------------------------------------------------


async def test_malformed_payloads_warn_once_and_keep_the_link(link, printer_side, caplog):
    caplog.clear()
    junk = [
        b"not json at all",
        b"",
        b"[1, 2, 3]",
        b'"just a string"',
        b'{"print": {"nozzle_temper": "hot", "mc_percent": [], "ams": 5, "command": "push_status"}}',
        b'{"print": "string instead of object"}',
        b'{"print": {"command": "push_status", "msg": 1, "brand_new_field": {"x": [1, {"y": null}]}}}',
        b"\xff" * (1024 * 1024),
        b"{" + b" " * (1024 * 1024) + b"}",
        b'{"print":' * 10000 + b"1" + b"}" * 10000,
        b"[" * 10000 + b"]" * 10000,
    ]
    for j in junk:
        await printer_side.report(j)
    await printer_side.report({"print": {"bed_temper": 42.0, "command": "push_status", "msg": 1}})
    await until(lambda: link.state.view()["temps"]["bed"]["current"] == 42.0, what="valid report after junk")
    assert link.link_state == "connected"
    assert link.state.view()["print"]["state"] == "FINISH"  # junk did not disturb the rest
    warnings = [r for r in caplog.records if r.name == LINK_LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # rate-limited
    assert "ignored" in warnings[0].getMessage() and warnings[0].printer_id == "p1"
    assert link._suppressed >= 3


# --- access code --------------------------------------------------------------------------------------


async def test_wrong_access_code_is_auth_failed_and_does_not_hammer(broker, pins):
    lk = make_link(broker, pins, access_code="87654321")
    await lk.start()
    try:
        await until(lambda: lk.link_state == "auth_failed", what="auth_failed")
        attempts = lk.connect_attempts
        assert "access code" in lk.state.view()["link"]["error"]
        await asyncio.sleep(3 * lk.backoff.cap)  # three of the longest retry delays of other errors
        assert lk.connect_attempts == attempts  # the next try is a minute or more away
        assert lk.link_state == "auth_failed"
    finally:
        await lk.stop()


# --- certificates ---------------------------------------------------------------------------------------


async def test_changed_certificate_is_tls_mismatch_until_accepted(broker, pins, printer_side):
    lk = make_link(broker, pins, tls_backoff=Backoff(initial=0.5, cap=0.5, jitter=0.0))
    states: list[str] = []
    sub = lk.listener.bus.subscribe("printer")
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected")
        old_fp = lk.state.view()["link"]["fingerprint"]
        assert old_fp == broker.fingerprint
        new_fp = broker.rotate_certificate()
        broker.restart()
        await until(lambda: lk.link_state == "tls_mismatch", timeout=15, what="tls_mismatch")
        link_view = lk.state.view()["link"]
        assert link_view["fingerprint"] == old_fp and link_view["offered_fingerprint"] == new_fp
        assert "different certificate" in link_view["error"]
        pin = await pins.get("p1")
        assert (pin.fingerprint, pin.pending_fingerprint) == (old_fp, new_fp)
        # Retries keep failing against the pin, and the state stays put (no flapping).
        attempts = lk.connect_attempts
        await until(lambda: lk.connect_attempts >= attempts + 2, what="slow retries")
        while (ev := sub.get_nowait()) is not None:
            if "link" in ev.data.changes:
                states.append(ev.data.changes["link"].get("state", ""))
        assert lk.link_state == "tls_mismatch"
        assert "connected" not in states[states.index("tls_mismatch") :]

        await lk.accept_certificate()
        await until(lambda: lk.link_state == "connected", timeout=10, what="connected after accept")
        link_view = lk.state.view()["link"]
        assert (link_view["fingerprint"], link_view["offered_fingerprint"]) == (new_fp, None)
        pin = await pins.get("p1")
        assert (pin.fingerprint, pin.pending_fingerprint) == (new_fp, None)
        with pytest.raises(CommandError):
            await lk.accept_certificate()  # nothing pending any more
    finally:
        await lk.stop()


async def test_a_certificate_issued_to_another_serial_says_which(broker, pins):
    lk = make_link(broker, pins, tls_backoff=Backoff(initial=0.5, cap=0.5, jitter=0.0))
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected")
        broker.rotate_certificate(cn="01P00A999999999")
        broker.restart()
        await until(lambda: lk.link_state == "tls_mismatch", timeout=15, what="tls_mismatch")
        error = lk.state.view()["link"]["error"]
        assert "issued to 01P00A999999999 (another printer at this address?)" in error
    finally:
        await lk.stop()


async def test_accept_reconnects_at_once_even_after_a_slow_wait_started(broker, pins):
    lk = make_link(broker, pins)  # default slow schedule for certificates: a minute or more
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected")
        broker.rotate_certificate()
        broker.restart()
        await until(lambda: lk.link_state == "tls_mismatch", timeout=15, what="tls_mismatch")
        t0 = time.monotonic()
        await lk.accept_certificate()
        await until(lambda: lk.link_state == "connected", timeout=10, what="connected after accept")
        assert time.monotonic() - t0 < 5
    finally:
        await lk.stop()


async def test_reconnect_now_cuts_a_long_backoff_short(broker, pins):
    # A printer switched off long enough that the link waits a minute between tries.
    lk = make_link(broker, pins, backoff=Backoff(initial=60.0, cap=60.0, jitter=0.0))
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected")
        broker.kill()
        await until(lambda: lk.link_state == "offline", what="offline")
        attempts = lk.connect_attempts
        broker.start()  # switched on again: the printer is back at once
        await asyncio.sleep(1.0)
        assert lk.link_state == "offline" and lk.connect_attempts == attempts  # waiting out the minute
        t0 = time.monotonic()
        lk.reconnect_now()
        await until(lambda: lk.link_state == "connected", timeout=10, what="connected after power-on")
        assert time.monotonic() - t0 < 3
        assert lk.backoff.attempt == 0  # the next loss starts the schedule over
        lk.reconnect_now()  # connected: nothing happens, no reconnect
        await asyncio.sleep(0.3)
        assert lk.link_state == "connected" and lk.connect_attempts == attempts + 1
    finally:
        await lk.stop()


async def test_configured_fingerprint_that_matches_is_pinned(broker, pins):
    lk = make_link(broker, pins, tls=TlsConfig(fingerprint=broker.fingerprint))
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected")
        assert (await pins.get("p1")).fingerprint == broker.fingerprint
        with pytest.raises(CommandError):
            await lk.accept_certificate()  # the config decides here
    finally:
        await lk.stop()


async def test_configured_fingerprint_that_does_not_match_is_refused(broker, pins):
    lk = make_link(broker, pins, tls=TlsConfig(fingerprint="00" * 32))
    await lk.start()
    try:
        await until(lambda: lk.link_state == "tls_mismatch", what="tls_mismatch")
        view = lk.state.view()["link"]
        assert view["offered_fingerprint"] == broker.fingerprint and view["fingerprint"] == "00" * 32
        assert "tls.fingerprint" in view["error"]
        assert await pins.get("p1") is None  # nothing trusted, nothing pinned
    finally:
        await lk.stop()


async def test_configured_ca_file_verifies_the_chain(broker, pins):
    lk = make_link(broker, pins, tls=TlsConfig(ca_file=str(broker.ca_path)))
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected via CA")
    finally:
        await lk.stop()


async def test_ca_file_that_did_not_sign_the_certificate_is_tls_mismatch(broker, pins, tmp_path):
    other = tmp_path / "other-ca.crt"
    other.write_bytes(make_ca("some other CA").cert_pem)
    lk = make_link(broker, pins, tls=TlsConfig(ca_file=str(other)))
    await lk.start()
    try:
        await until(lambda: lk.link_state == "tls_mismatch", what="tls_mismatch")
        assert "ca_file" in lk.state.view()["link"]["error"]
    finally:
        await lk.stop()


class TlsListener:
    """A TLS server with the broker's certificate that only records what a client sends."""

    def __init__(self, broker: LocalBroker):
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(broker.cert_path, broker.key_path)
        self.received = bytearray()
        self.port = 0  # bound by __aenter__
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                self.received += data
        except (OSError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> TlsListener:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ctx)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def test_ca_mode_checks_the_serial_before_the_access_code_is_sent(broker, pins):
    async with TlsListener(broker) as wrong_printer:
        lk = make_link(
            broker,
            pins,
            port=wrong_printer.port,
            serial="01S00C999999999",  # this printer's serial; the certificate says SERIAL
            tls=TlsConfig(ca_file=str(broker.ca_path)),
        )
        await lk.start()
        try:
            await until(lambda: lk.link_state == "tls_mismatch", what="tls_mismatch")
            assert SERIAL in lk.state.view()["link"]["error"]
            await asyncio.sleep(0.3)
            assert bytes(wrong_printer.received) == b""  # no CONNECT, so no access code
        finally:
            await lk.stop()

    async with TlsListener(broker) as right_printer:  # the same check lets the right serial through
        lk = make_link(broker, pins, port=right_printer.port, tls=TlsConfig(ca_file=str(broker.ca_path)))
        await lk.start()
        try:
            await until(lambda: right_printer.received, what="CONNECT")
            assert right_printer.received[0] == 0x10  # MQTT CONNECT
        finally:
            await lk.stop()


def write_expired_certificate(broker: LocalBroker) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERIAL)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=800))
        .not_valid_after(now - dt.timedelta(days=400))
        .sign(key, hashes.SHA256())
    )
    broker.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    broker.key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


async def test_a_pinned_certificate_is_trusted_whatever_the_clock_says(broker, pins):
    # A Pi has no real-time clock and a LAN-only network may have no time server: a pinned
    # certificate (exact bytes) must keep working outside its validity dates.
    write_expired_certificate(broker)
    broker.restart()
    lk = make_link(broker, pins)
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected with an expired pinned cert")
        assert lk.state.view()["link"]["fingerprint"] == fingerprint_pem(broker.cert_path.read_bytes())
    finally:
        await lk.stop()


# --- silence, stop ------------------------------------------------------------------------------------


async def test_silent_printer_is_nudged_once_then_reconnected(broker, pins, printer_side):
    lk = make_link(broker, pins, silence_s=0.6)  # printer_side does not answer pushall: silence
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected")
        await until(lambda: printer_side.named("pushing", "start"), timeout=3, what="pushing start")
        (start,) = printer_side.named("pushing", "start")
        assert start == {"sequence_id": start["sequence_id"], "command": "start"}
        # Still silent at twice the limit: the link is stale, and a new session asks for a full report.
        await until(lambda: len(printer_side.named("pushing", "pushall")) >= 2, timeout=5, what="reconnect")
        assert lk.connect_attempts >= 2
        assert len(printer_side.named("pushing", "start")) <= len(printer_side.named("pushing", "pushall"))
    finally:
        await lk.stop()


async def test_reports_keep_a_quiet_link_alive(broker, pins, printer_side):
    lk = make_link(broker, pins, silence_s=0.6)
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected")
        for _ in range(12):
            await printer_side.report(
                {"print": {"command": "push_status", "msg": 1, "wifi_signal": "-50dBm"}}
            )
            await asyncio.sleep(0.15)
        assert not printer_side.named("pushing", "start")
        assert lk.connect_attempts == 1
    finally:
        await lk.stop()


async def test_stop_is_prompt_while_connected_and_against_a_frozen_printer(broker, link):
    t0 = time.monotonic()
    await link.stop()
    assert time.monotonic() - t0 < 2
    assert link.link_state == "offline"

    lk = make_link(broker, link.pins)
    await lk.start()
    await until(lambda: lk.link_state == "connected", what="connected")
    broker._proc.send_signal(signal.SIGSTOP)  # the printer hangs: TCP up, nothing answers
    try:
        t0 = time.monotonic()
        await lk.stop()
        assert time.monotonic() - t0 < 5
    finally:
        broker._proc.send_signal(signal.SIGCONT)


async def test_stop_is_prompt_while_the_printer_does_not_answer_tls(pins, broker):
    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, never speak

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    lk = make_link(broker, pins, port=port, probe_timeout=30.0, connect_timeout=30.0)
    await lk.start()
    try:
        await asyncio.sleep(0.5)
        assert lk.link_state == "connecting"
        t0 = time.monotonic()
        await lk.stop()
        assert time.monotonic() - t0 < 2
    finally:
        server.close()


async def test_unreachable_printer_is_offline_with_plain_words(pins, broker, closed_port):
    lk = make_link(broker, pins, port=closed_port)
    await lk.start()
    try:
        await until(lambda: lk.link_state == "offline", what="offline")
        assert "refused" in lk.state.view()["link"]["error"]
        await until(lambda: lk.connect_attempts >= 3, what="keeps retrying")
    finally:
        await lk.stop()


# --- manager ------------------------------------------------------------------------------------------


async def test_manager_runs_one_link_per_bambu_printer(broker, pins, printer_side, caplog):
    printer_side.answer_pushall = load_fixture(FULL_A1)
    bambu = PrinterConfig(
        id="p1",
        name="P1",
        type="bambu",
        host=broker.host,
        serial=SERIAL,
        access_code=ACCESS_CODE,
        mqtt_port=broker.port,
    )
    klipper = PrinterConfig(id="voron", name="Voron", type="moonraker", host="127.0.0.1")
    bus = EventBus()
    manager = PrinterManager(Config(printers=(bambu, klipper)), bus, pins)
    await manager.start()
    try:
        # Klipper printers have their own link (issue 14): nothing listens here, so it is offline.
        assert [link.printer_id for link in manager.links()] == ["p1", "voron"]
        assert isinstance(manager.get("voron"), MoonrakerLink) and manager.get("nope") is None
        link = manager.get("p1")
        await until(lambda: link.state.view()["print"]["state"] == "IDLE", what="state via the manager")
        assert [v["id"] for v in manager.views()] == ["p1", "voron"]
        assert not [r for r in caplog.records if "not supported yet" in r.getMessage()]
        with pytest.raises(ValueError):
            await manager.add_printer(klipper)

        with pytest.raises(ValueError):
            await manager.add_printer(bambu)
        second = await manager.add_printer(replace(bambu, id="p2", name="P2"))
        assert second is not None and manager.get("p2") is second
        await until(lambda: second.state.view()["link"]["state"] == "connected", what="p2 connected")
        assert await manager.remove_printer("p2") is True
        assert second.state.view()["link"]["state"] == "offline"
        assert await manager.remove_printer("p2") is False
    finally:
        t0 = time.monotonic()
        await manager.stop()
        assert time.monotonic() - t0 < 5
    assert manager.links() == [] and link.link_state == "offline"


async def test_a_report_that_trips_a_bug_does_not_drop_the_session(link, printer_side, monkeypatch):
    apply = link.state.apply_message
    calls = 0

    def first_one_fails(msg, now=None):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug")
        return apply(msg, now)

    monkeypatch.setattr(link.state, "apply_message", first_one_fails)
    await printer_side.report({"print": {"bed_temper": 50.0, "command": "push_status", "msg": 1}})
    await printer_side.report({"print": {"bed_temper": 51.0, "command": "push_status", "msg": 1}})
    await until(lambda: link.state.view()["temps"]["bed"]["current"] == 51.0, what="next report applied")
    assert link.link_state == "connected" and link.connect_attempts == 1


async def test_keepalive_pings_go_out_on_the_shared_beat(broker, pins, printer_side, monkeypatch, caplog):
    """A printer that sends nothing (no report, no pushall answer): paho's keepalive pings, run on
    the links' shared beat instead of aiomqtt's per-client second, go out and are answered, on the
    one session."""
    monkeypatch.setattr(link_module._MqttClient, "housekeeping_s", 0.25)
    assert "_misc_loop" in vars(aiomqtt.Client)  # what _MqttClient overrides: aiomqtt still has it
    caplog.set_level(logging.DEBUG, logger="mqtt")  # aiomqtt hands paho this logger
    lk = make_link(broker, pins, keepalive=1, silence_s=60.0)
    await lk.start()
    try:
        await until(lambda: lk.link_state == "connected", what="connected")

        def answered() -> int:
            return sum(1 for r in caplog.records if "PINGRESP" in r.getMessage())

        await until(lambda: answered() >= 3, timeout=5, what="three pings answered")
        assert lk.link_state == "connected"
        assert lk.connect_attempts == 1
    finally:
        await lk.stop()
