"""Printers added, edited and removed in the dashboard, and "test connection", over real HTTPS.

Real parts: the Store (SQLite in tmp_path), the PrinterManager with real Bambu links, mosquitto with
TLS and a password as the printers' MQTT side (its certificate's CN is tests.conftest.SERIAL, like
a printer's), the WebService on loopback.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from bambu_edge.bus import EventBus
from bambu_edge.config import Config, PrinterConfig, WebConfig
from bambu_edge.demo.broker import LocalBroker
from bambu_edge.printers.bambu.probe import probe_printer
from bambu_edge.printers.manager import PrinterManager
from bambu_edge.store.db import Store
from bambu_edge.web import api_auth
from bambu_edge.web.server import WebService
from tests.conftest import ACCESS_CODE, SERIAL
from tests.integration.waiting import eventually
from tests.integration.web_stack import WebStack

ADMIN, PASSWORD = "admin", "correct horse battery"
USER, USER_PASSWORD = "viewer", "another long password"
YAML_SERIAL = "00M00A000000001"
SECRET_CODE = "Zq7Xk29w"  # an access code that must never come back out


class Env:
    def __init__(self, tmp_path: Path, broker: LocalBroker):
        self.tmp_path = tmp_path
        self.broker = broker
        self.config = Config(
            data_dir=tmp_path / "data",
            web=WebConfig(bind="127.0.0.1", https_port=0, http_port=None),
            printers=(
                PrinterConfig(
                    id="x1c",
                    name="X1C from YAML",
                    type="bambu",
                    host=broker.host,
                    serial=YAML_SERIAL,
                    access_code=ACCESS_CODE,
                    mqtt_port=broker.port,
                ),
            ),
            source="/etc/bambu-edge/config.yaml",
        )
        self.bus = EventBus()
        self.store = Store(self.config)
        self.manager: PrinterManager | None = None
        self.stack: WebStack | None = None
        self.svc: WebService | None = None
        self.http: aiohttp.ClientSession | None = None
        self.auth: dict[str, str] = {}

    async def start(self) -> None:
        await self.store.start()
        if await self.store.users.count() == 0:
            await self.store.users.create(ADMIN, PASSWORD, "admin")
            await self.store.users.create(USER, USER_PASSWORD, "user")
        self.manager = PrinterManager(self.config, self.bus, self.store.pins, self.store.printers)
        await self.manager.start()
        self.stack = WebStack(self.config, self.store, self.manager, self.bus)
        self.svc = self.stack.svc
        await self.stack.start()
        ctx = ssl.create_default_context(cafile=str(self.config.data_dir / "tls" / "server.crt"))
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ctx), cookie_jar=aiohttp.DummyCookieJar()
        )
        self.auth = {"Authorization": f"Bearer {await self.token(ADMIN, PASSWORD)}"}

    async def stop(self) -> None:
        if self.http:
            await self.http.close()
        if self.stack:
            await self.stack.stop()
        if self.manager:
            await self.manager.stop()
        await self.store.stop()

    def url(self, path: str) -> str:
        assert self.svc is not None
        return f"https://127.0.0.1:{self.svc.https_port}{path}"

    async def token(self, username: str, password: str) -> str:
        assert self.http is not None
        async with self.http.post(
            self.url("/api/auth/login"), json={"username": username, "password": password}
        ) as r:
            assert r.status == 200
            return (await r.json())["token"]

    async def call(self, method: str, path: str, body: Any = None, headers: dict | None = None):
        """(status, parsed body, raw text)."""
        assert self.http is not None
        kw = {} if body is None else {"json": body}
        async with self.http.request(method, self.url(path), headers=headers or self.auth, **kw) as r:
            text = await r.text()
            return r.status, (orjson.loads(text) if text else None), text


@pytest.fixture
async def env(tmp_path: Path, broker: LocalBroker) -> AsyncIterator[Env]:
    e = Env(tmp_path, broker)
    await e.start()
    try:
        yield e
    finally:
        await e.stop()


def new_printer(**over: Any) -> dict[str, Any]:
    body = {"name": "P1P shelf", "host": "127.0.0.1", "serial": SERIAL, "access_code": SECRET_CODE}
    body.update(over)
    return body


# --- add / edit / remove -----------------------------------------------------------------------


async def test_add_edit_remove_a_printer(env: Env) -> None:
    async with env.http.ws_connect(env.url("/api/ws"), headers=env.auth) as ws:
        snap = await ws.receive_json(timeout=5)
        assert [p["id"] for p in snap["printers"]] == ["x1c"]
        assert snap["printers"][0]["read_only"] is True

        body = new_printer(host=env.broker.host, mqtt_port=env.broker.port, model="p1p")
        status, view, raw = await env.call("POST", "/api/printers", body)
        assert status == 201, raw
        assert view["id"] == "p1p-shelf" and view["name"] == "P1P shelf"
        assert view["read_only"] is False and view["model"] == "P1P"  # spelled canonically
        assert (view["host"], view["mqtt_port"], view["ftps_port"]) == (env.broker.host, env.broker.port, 990)
        assert SECRET_CODE not in raw and "access_code" not in view
        added = await ws.receive_json(timeout=5)
        while added["type"] != "printer_added":
            added = await ws.receive_json(timeout=5)
        assert added["printer"]["id"] == "p1p-shelf" and SECRET_CODE not in orjson.dumps(added).decode()

    # Kept in the database, and listed with the YAML printer.
    (row,) = await env.store.printers.list()
    assert (row.id, row.serial, row.access_code, row.mqtt_port) == (
        "p1p-shelf",
        SERIAL,
        SECRET_CODE,
        env.broker.port,
    )
    status, views, raw = await env.call("GET", "/api/printers")
    assert [(v["id"], v["read_only"]) for v in views] == [("x1c", True), ("p1p-shelf", False)]
    assert SECRET_CODE not in raw
    # The access code is wrong for the broker: the printer's link says so.
    await eventually(
        lambda: _link_state(env, "p1p-shelf", "auth_failed"), what="auth_failed for the wrong access code"
    )

    # Edit: the right access code and a new name; the link restarts and connects.
    old_link = env.manager.get("p1p-shelf")
    status, view, raw = await env.call(
        "PUT", "/api/printers/p1p-shelf", {"name": "P1P on the shelf", "access_code": ACCESS_CODE}
    )
    assert status == 200, raw
    assert view["id"] == "p1p-shelf" and view["name"] == "P1P on the shelf"
    assert f'"{ACCESS_CODE}"' not in raw and "access_code" not in view  # (it is inside the serial)
    assert env.manager.get("p1p-shelf") is not old_link
    await eventually(lambda: _link_state(env, "p1p-shelf", "connected"), what="connected after the edit")
    row = await env.store.printers.get("p1p-shelf")
    assert (row.name, row.access_code, row.model) == ("P1P on the shelf", ACCESS_CODE, "P1P")
    pin = await env.store.pins.get("p1p-shelf")
    assert pin is not None  # pinned on first use

    # Remove: gone from the API, the database and the pins; its link is stopped.
    async with env.http.ws_connect(env.url("/api/ws"), headers=env.auth) as ws:
        await ws.receive_json(timeout=5)
        status, _, _ = await env.call("DELETE", "/api/printers/p1p-shelf")
        assert status == 204
        frame = await ws.receive_json(timeout=5)
        while frame["type"] != "printer_removed":
            frame = await ws.receive_json(timeout=5)
        assert frame == {"type": "printer_removed", "id": "p1p-shelf"}
    assert old_link.link_state == "offline"
    assert await env.store.printers.list() == []
    assert await env.store.pins.get("p1p-shelf") is None
    assert (await env.call("GET", "/api/printers/p1p-shelf"))[0] == 404
    assert (await env.call("DELETE", "/api/printers/p1p-shelf"))[0] == 404


async def _link_state(env: Env, pid: str, state: str) -> bool:
    status, view, _ = await env.call("GET", f"/api/printers/{pid}")
    return status == 200 and view["link"]["state"] == state


async def test_ids_are_unique_and_a_serial_is_added_once(env: Env) -> None:
    s1, v1, _ = await env.call("POST", "/api/printers", new_printer(name="Shelf"))
    s2, v2, _ = await env.call("POST", "/api/printers", new_printer(name="Shelf", serial="01S00C000000002"))
    s3, v3, _ = await env.call("POST", "/api/printers", new_printer(name="X1C", serial="01S00C000000003"))
    assert (s1, s2, s3) == (201, 201, 201)
    assert (v1["id"], v2["id"], v3["id"]) == ("shelf", "shelf-2", "x1c-2")  # x1c is the YAML printer's
    status, err, _ = await env.call("POST", "/api/printers", new_printer(name="Again"))
    assert status == 409 and err["error"] == "conflict" and "Shelf" in err["message"]
    status, err, _ = await env.call("POST", "/api/printers", new_printer(name="Dup", serial=YAML_SERIAL))
    assert status == 409 and "X1C from YAML" in err["message"]
    assert [p.id for p in await env.store.printers.list()] == ["shelf", "shelf-2", "x1c-2"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (new_printer(serial="01S-00C"), "'serial' must be the printer's serial number"),
        (new_printer(access_code=12345678), "'access_code' must be a quoted string"),
        (new_printer(access_code="1234 5678"), "'access_code' must be at most 64 characters, without spaces"),
        (new_printer(access_code=""), "'access_code' must not be empty"),
        (new_printer(model="Ender 3"), "'model' must be one of"),
        (new_printer(host="http://printer.local/"), "'host'"),
        (new_printer(host=""), "'host'"),
        (new_printer(name=""), "'name' must be a name"),
        (new_printer(name="x" * 101), "'name' must be one line of at most 100 characters"),
        (new_printer(mqtt_port=0), "'mqtt_port' must be a whole number from 1 to 65535"),
        (new_printer(mqtt_port="8883"), "'mqtt_port'"),
        (new_printer(ftps_port=True), "'ftps_port'"),
        (new_printer(acces_code="x"), "unknown field 'acces_code'"),
        ({"name": "No host", "serial": SERIAL, "access_code": "x"}, "'host' is required"),
        ({"name": "No code", "host": "h", "serial": SERIAL}, "'access_code' is required"),
    ],
)
async def test_bad_fields_get_a_plain_400_and_nothing_is_kept(env: Env, body, words) -> None:
    status, err, raw = await env.call("POST", "/api/printers", body)
    assert status == 400, raw
    assert err["error"] == "bad_request" and words in err["message"], err["message"]
    assert SECRET_CODE not in raw
    assert await env.store.printers.list() == []
    assert [v["id"] for v in env.manager.views()] == ["x1c"]


async def test_printers_from_the_config_file_are_read_only(env: Env) -> None:
    status, view, _ = await env.call("GET", "/api/printers/x1c")
    assert status == 200 and view["read_only"] is True
    status, err, _ = await env.call("PUT", "/api/printers/x1c", {"name": "Renamed"})
    assert status == 403 and err["error"] == "read_only"
    assert "/etc/bambu-edge/config.yaml" in err["message"]
    status, err, _ = await env.call("DELETE", "/api/printers/x1c")
    assert status == 403 and err["error"] == "read_only"
    assert env.manager.get("x1c") is not None and env.manager.view("x1c")["name"] == "X1C from YAML"


async def test_edit_rules(env: Env) -> None:
    _, view, _ = await env.call("POST", "/api/printers", new_printer())
    pid = view["id"]
    status, err, _ = await env.call("PUT", f"/api/printers/{pid}", {"serial": "01S00C999999999"})
    assert status == 400 and "serial number cannot be changed" in err["message"]
    status, err, _ = await env.call("PUT", f"/api/printers/{pid}", {})
    assert status == 400 and "nothing to change" in err["message"]
    status, err, _ = await env.call("PUT", f"/api/printers/{pid}", {"host": "a b"})
    assert status == 400 and "'host'" in err["message"]
    # The same serial may be sent back unchanged (the form does), and a blank model means "detect".
    status, view, _ = await env.call(
        "PUT", f"/api/printers/{pid}", {"serial": SERIAL, "model": "", "name": "N"}
    )
    assert status == 200 and view["name"] == "N" and view["model"] == "P1P"  # from the serial prefix
    assert (await env.call("PUT", "/api/printers/nope", {"name": "x"}))[0] == 404


async def test_only_an_admin_changes_printers(env: Env) -> None:
    user = {"Authorization": f"Bearer {await env.token(USER, USER_PASSWORD)}"}
    _, view, _ = await env.call("POST", "/api/printers", new_printer())
    for method, path, body in (
        ("POST", "/api/printers", new_printer(serial="01S00C000000009")),
        ("PUT", f"/api/printers/{view['id']}", {"name": "mine"}),
        ("DELETE", f"/api/printers/{view['id']}", None),
        ("POST", "/api/printers/test", {"host": "127.0.0.1", "serial": SERIAL, "access_code": "x"}),
    ):
        status, err, _ = await env.call(method, path, body, headers=user)
        assert status == 403 and err["error"] == "forbidden", (method, path)
    status, views, _ = await env.call("GET", "/api/printers", headers=user)  # but may look
    assert status == 200 and [v["id"] for v in views] == ["x1c", view["id"]]
    assert [p.name for p in await env.store.printers.list()] == ["P1P shelf"]


async def test_cookie_writes_need_the_csrf_header(env: Env) -> None:
    token = await env.token(ADMIN, PASSWORD)
    cookie = {"Cookie": f"{api_auth.SESSION_COOKIE}={token}"}
    for method, path in (
        ("POST", "/api/printers"),
        ("POST", "/api/printers/test"),
        ("DELETE", "/api/printers/x"),
    ):
        status, err, _ = await env.call(method, path, new_printer(), headers=cookie)
        assert status == 403 and err["error"] == "csrf", (method, path)
    assert await env.store.printers.list() == []
    status, session, _ = await env.call("GET", "/api/session", headers=cookie)
    status, view, _ = await env.call(
        "POST", "/api/printers", new_printer(), headers={**cookie, "X-CSRF-Token": session["csrf"]}
    )
    assert status == 201 and view["id"] == "p1p-shelf"


async def test_dashboard_printers_survive_a_restart_and_the_config_file_wins(env: Env, caplog) -> None:
    await env.call("POST", "/api/printers", new_printer(host=env.broker.host, mqtt_port=env.broker.port))
    # A row with the YAML printer's id (say the config file gained it later).
    await env.store.printers.add(
        PrinterConfig(
            id="x1c", name="Shadowed", type="bambu", host="10.9.9.9", serial="01S00C000000077",
            access_code="x", read_only=False,
        )
    )  # fmt: skip
    await env.stop()
    caplog.set_level(logging.WARNING, logger="bambu_edge.printers.manager")
    again = Env(env.tmp_path, env.broker)
    await again.start()
    try:
        status, views, _ = await again.call("GET", "/api/printers")
        assert status == 200
        assert [(v["id"], v["name"], v["read_only"]) for v in views] == [
            ("x1c", "X1C from YAML", True),
            ("p1p-shelf", "P1P shelf", False),
        ]
        assert "config file's printer is used" in caplog.text and "x1c" in caplog.text
        assert SECRET_CODE not in caplog.text
    finally:
        await again.stop()
    env.http = env.svc = env.manager = None  # already stopped


# --- test connection ---------------------------------------------------------------------------


def probe_body(env: Env, **over: Any) -> dict[str, Any]:
    body = {
        "host": env.broker.host,
        "serial": SERIAL,
        "access_code": ACCESS_CODE,
        "mqtt_port": env.broker.port,
    }
    body.update(over)
    return body


async def test_connection_test_answers_in_plain_words(env: Env, closed_port: int) -> None:
    status, res, raw = await env.call("POST", "/api/printers/test", probe_body(env))
    assert status == 200, raw
    assert res["state"] == "connected" and "accepted the access code" in res["message"]
    assert res["fingerprint"] == env.broker.fingerprint

    status, res, raw = await env.call("POST", "/api/printers/test", probe_body(env, access_code=SECRET_CODE))
    assert res["state"] == "auth_failed" and "refused the access code" in res["message"]
    assert SECRET_CODE not in raw

    status, res, _ = await env.call("POST", "/api/printers/test", probe_body(env, serial="01P00A000000042"))
    assert res["state"] == "tls_mismatch"
    assert f"has serial {SERIAL}, not 01P00A000000042" in res["message"]
    assert res["fingerprint"] == env.broker.fingerprint

    status, res, _ = await env.call("POST", "/api/printers/test", probe_body(env, serial=SERIAL.lower()))
    assert res["state"] == "tls_mismatch" and "case-sensitive" in res["message"]

    status, res, _ = await env.call("POST", "/api/printers/test", probe_body(env, mqtt_port=closed_port))
    assert res["state"] == "unreachable" and "connection refused" in res["message"]
    assert res["fingerprint"] is None

    status, err, _ = await env.call("POST", "/api/printers/test", probe_body(env, serial="no!"))
    assert status == 400 and "'serial'" in err["message"]


async def test_something_that_is_not_a_printer_is_unreachable(tmp_path: Path) -> None:
    # A plain TCP service (no TLS) that accepts and says something, like a web server would.
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        res = await probe_printer("127.0.0.1", SERIAL, ACCESS_CODE, mqtt_port=port, timeout=3)
    finally:
        server.close()
        await server.wait_closed()
    assert res.state == "unreachable" and "not with TLS" in res.message

    # A device that accepts the connection and never answers: bounded by the timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        t0 = time.monotonic()
        res = await probe_printer(
            "127.0.0.1", SERIAL, ACCESS_CODE, mqtt_port=silent.getsockname()[1], timeout=1
        )
        assert time.monotonic() - t0 < 5
    finally:
        silent.close()
    assert res.state == "unreachable" and "Nothing answered" in res.message


async def test_connection_tests_are_rate_limited(env: Env, closed_port: int) -> None:
    statuses = []
    for _ in range(8):
        status, body, _ = await env.call("POST", "/api/printers/test", probe_body(env, mqtt_port=closed_port))
        statuses.append(status)
    assert statuses[:6] == [200] * 6
    assert statuses[-1] == 429
    assert body["error"] == "rate_limited" and "wait" in body["message"]
