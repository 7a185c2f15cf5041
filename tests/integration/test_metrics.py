"""``GET /metrics`` from the real daemon (in this process, one virtual printer), parsed with
prometheus_client's text parser. Loopback scrapes need no login; a scrape from another host (a
network namespace joined to the daemon's by a veth pair, made by the test) needs a token."""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bambu_edge.app import Daemon, config_sections
from bambu_edge.config import load_config
from bambu_edge.printers.virtual import VirtualPrinter
from bambu_edge.web.tls import server_context
from tests.conftest import ACCESS_CODE
from tests.integration.daemon_proc import printer_entry, write_config
from tests.integration.netns import VethPair, can_make_namespaces
from tests.integration.waiting import dashboard_tls, eventually
from tests.integration.web_stack import admin_auth

pytestmark = pytest.mark.integration

SERIAL = "00M00A000000021"
PASSWORD = "metrics admin password"


@pytest.fixture
async def daemon(tmp_path, broker) -> AsyncIterator[Daemon]:
    cfg_path = tmp_path / "config.yaml"
    write_config(cfg_path, tmp_path / "data", [printer_entry(broker, SERIAL, ACCESS_CODE, "x1c")])
    vp = VirtualPrinter(
        broker.host, broker.port, SERIAL, ACCESS_CODE, "X1C", str(broker.ca_path), report_hz=4.0
    )
    await vp.start()
    d = Daemon(load_config(cfg_path, sections=config_sections()))
    await d.start()
    try:
        await vp.set_fields(bed_target_temper=61)
        link = d.manager.get("x1c")  # type: ignore[union-attr]
        await eventually(lambda: link.state.view()["temps"]["bed"]["target"] == 61.0, what="the bed target")
        yield d
    finally:
        await d.stop()
        await vp.stop()


def samples(text: str) -> dict[str, list[Sample]]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def value(found: dict[str, list[Sample]], family: str, sample: str | None = None, **labels: str) -> float:
    hits = [
        s.value
        for s in found[family]
        if (sample is None or s.name == sample) and labels.items() <= s.labels.items()
    ]
    assert len(hits) == 1, (family, labels, found.get(family))
    return hits[0]


async def test_metrics_parse_and_say_what_the_api_says(daemon: Daemon) -> None:
    base = f"https://127.0.0.1:{daemon.web.https_port}"  # type: ignore[union-attr]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls())) as http:
        async with http.get(base + "/metrics") as r:  # loopback: no login
            assert r.status == 200 and r.content_type == "text/plain"
            first = samples(await r.text())
        auth = await admin_auth(http, base, daemon, PASSWORD)
        async with http.get(base + "/api/printers/x1c", headers=auth) as r:
            view = await r.json()
        await asyncio.sleep(2.5)  # two samples of the one-second window: reports/s is a rate
        async with http.get(base + "/metrics") as r:
            found = samples(await r.text())
    assert value(found, "bambu_edge_printer_up", printer="x1c") == 1
    assert value(found, "bambu_edge_printer_state", printer="x1c", state=view["print"]["state"]) == 1
    assert (
        value(found, "bambu_edge_printer_temperature_celsius", printer="x1c", sensor="bed", kind="target")
        == 61.0
    )
    assert (
        value(found, "bambu_edge_printer_reconnects", "bambu_edge_printer_reconnects_total", printer="x1c")
        == 0
    )
    reports = value(found, "bambu_edge_reports", "bambu_edge_reports_total")
    assert reports > value(first, "bambu_edge_reports", "bambu_edge_reports_total")  # a counter that counts
    assert 2.0 <= value(found, "bambu_edge_reports_per_second") <= 8.0  # the printer sends 4 a second
    assert 10e6 < value(found, "process_resident_memory_bytes") < 2e9
    assert 0 <= value(found, "bambu_edge_event_loop_lag_seconds") < 1.0
    assert value(found, "bambu_edge_ws_clients") == 0
    assert value(found, "bambu_edge_component_up", component="web") == 1
    assert value(found, "bambu_edge_history_records", outcome="success") == 0
    assert value(found, "bambu_edge_queue_paused") == 0


def _get(address: str, port: int, token: str | None) -> int:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection(address, port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.skipif(can_make_namespaces() is not None, reason=str(can_make_namespaces()))
async def test_from_another_host_metrics_need_a_token(daemon: Daemon) -> None:
    web = daemon.web
    assert web is not None
    base = f"https://127.0.0.1:{web.https_port}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls())) as http:
        token = (await admin_auth(http, base, daemon, PASSWORD))["Authorization"].split()[1]
    with VethPair(subnet=214) as pair:
        # The daemon also answers on host a's address (a socket made inside namespace a);
        # the scrape comes from host b.
        sock = pair.a.call(socket.create_server, (pair.a.address, 0))
        port = sock.getsockname()[1]
        site = aiohttp.web.SockSite(web._runners[0], sock, ssl_context=server_context(daemon.config))
        await site.start()
        try:
            assert await asyncio.to_thread(pair.b.call, _get, pair.a.address, port, None) == 401
            assert await asyncio.to_thread(pair.b.call, _get, pair.a.address, port, "not-a-token") == 401
            assert await asyncio.to_thread(pair.b.call, _get, pair.a.address, port, token) == 200
        finally:
            await site.stop()
