"""The web API over real HTTPS on loopback: a real Store in tmp_path, a small manager double."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bambu_edge.bus import Event, EventBus
from bambu_edge.config import Config, WebConfig
from bambu_edge.printers.base import CommandOutcome, PrinterUpdate
from bambu_edge.store.db import Store
from bambu_edge.tasks import TaskSet
from bambu_edge.web import api_auth
from bambu_edge.web.server import PUBLIC
from bambu_edge.web.ws import _Client
from tests.integration.fakes import ADMIN, PASSWORD, FakeLink, FakeManager
from tests.integration.web_stack import WebStack


class Env:
    def __init__(self, stack: WebStack, http: aiohttp.ClientSession, bus: EventBus, manager: FakeManager):
        self.svc, self.hub, self.http, self.bus, self.manager = stack.svc, stack.hub, http, bus, manager
        self.base = f"https://127.0.0.1:{stack.svc.https_port}"

    def url(self, path: str) -> str:
        return self.base + path

    async def login(self, username: str = ADMIN, password: str = PASSWORD) -> tuple[str, str]:
        """(token, cookie value) from a successful login."""
        async with self.http.post(
            self.url("/api/auth/login"), json={"username": username, "password": password}
        ) as r:
            assert r.status == 200, await r.text()
            token = (await r.json())["token"]
            cookie = r.cookies[api_auth.SESSION_COOKIE]
            return token, cookie.value


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    config = Config(data_dir=tmp_path, web=WebConfig(bind="127.0.0.1", https_port=0, http_port=0))
    store = Store(config)
    await store.start()
    await store.users.create(ADMIN, PASSWORD, "admin")
    bus = EventBus()
    manager = FakeManager(FakeLink("p1"), FakeLink("p2", online=False))
    stack = WebStack(config, store, manager, bus)
    await stack.start()
    ctx = ssl.create_default_context(cafile=str(tmp_path / "tls" / "server.crt"))
    # The client's cookie jar would ignore cookies for an IP address; tests send them explicitly.
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx), cookie_jar=aiohttp.DummyCookieJar())
    try:
        yield Env(stack, http, bus, manager)
    finally:
        await http.close()
        await stack.stop()
        await store.stop()


def _concrete(path: str) -> str:
    return path.replace("{id}", "p1")


async def test_every_private_route_needs_auth(env: Env) -> None:
    checked = 0
    for route in env.svc.app.router.routes():
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter") or ""
        if route.method == "HEAD" or not path.startswith("/api") or (route.method, path) in PUBLIC:
            continue
        async with env.http.request(route.method, env.url(_concrete(path))) as r:
            assert r.status == 401, (route.method, path, r.status)
            body = await r.json()
            assert body["error"] == "unauthorized" and body["message"]
        checked += 1
    assert checked >= 15
    # A bogus token is no better than none.
    async with env.http.get(env.url("/api/printers"), headers={"Authorization": "Bearer be_nope"}) as r:
        assert r.status == 401
    async with env.http.get(env.url("/api/health")) as r:
        assert r.status == 200
        assert (await r.json())["status"] == "ok"
    async with env.http.get(env.url("/api/setup")) as r:
        assert await r.json() == {"needs_admin": False}
    async with env.http.post(
        env.url("/api/setup/admin"), json={"username": "eve", "password": "x" * 12}
    ) as r:
        assert r.status == 409


async def test_login_bearer_and_cookie(env: Env) -> None:
    async with env.http.post(env.url("/api/auth/login"), json={"username": ADMIN, "password": PASSWORD}) as r:
        assert r.status == 200
        token = (await r.json())["token"]
        set_cookie = r.headers["Set-Cookie"]
    for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=604800"):
        assert attr.lower() in set_cookie.lower(), set_cookie
    async with env.http.get(env.url("/api/printers"), headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
        assert [p["id"] for p in await r.json()] == ["p1", "p2"]
    cookie = {"Cookie": f"{api_auth.SESSION_COOKIE}={token}"}
    async with env.http.get(env.url("/api/session"), headers=cookie) as r:
        s = await r.json()
        assert s["user"]["name"] == ADMIN and s["user"]["role"] == "admin" and s["csrf"] and s["expires_at"]
    async with env.http.get(env.url("/api/printers/p1"), headers=cookie) as r:
        assert r.status == 200 and (await r.json())["id"] == "p1"
    async with env.http.get(env.url("/api/printers/nope"), headers=cookie) as r:
        assert r.status == 404 and (await r.json())["error"] == "not_found"
    # Logout ends the session.
    async with env.http.post(env.url("/api/auth/logout"), headers={**cookie, "X-CSRF-Token": s["csrf"]}) as r:
        assert r.status == 204
    async with env.http.get(env.url("/api/session"), headers=cookie) as r:
        assert r.status == 401


async def test_bad_login_then_growing_429(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(api_auth.time, "monotonic", lambda: now[0])
    bad = {"username": ADMIN, "password": "wrong password"}
    for _ in range(3):
        async with env.http.post(env.url("/api/auth/login"), json=bad) as r:
            assert r.status == 401
            assert (await r.json())["error"] == "unauthorized"
    async with env.http.post(env.url("/api/auth/login"), json=bad) as r:
        assert r.status == 429
        assert r.headers["Retry-After"] == "1"
    now[0] += 1.5
    async with env.http.post(env.url("/api/auth/login"), json=bad) as r:
        assert r.status == 401
    async with env.http.post(env.url("/api/auth/login"), json={"username": ADMIN, "password": PASSWORD}) as r:
        assert r.status == 429
        assert r.headers["Retry-After"] == "2"
    now[0] += 2.5
    await env.login()  # a success clears the delay
    async with env.http.post(env.url("/api/auth/login"), json=bad) as r:
        assert r.status == 401
    # Malformed bodies are 400, never 500.
    for raw in (b"{", b"[]", b'{"username": 1, "password": "x"}', b"x" * 70000):
        async with env.http.post(env.url("/api/auth/login"), data=raw) as r:
            assert r.status == 400, raw[:20]
            assert (await r.json())["error"] == "bad_request"


async def test_csrf_for_cookie_writes(env: Env) -> None:
    _, cookie = await env.login()
    headers = {"Cookie": f"{api_auth.SESSION_COOKIE}={cookie}"}
    async with env.http.post(env.url("/api/tokens"), json={"name": "ci"}, headers=headers) as r:
        assert r.status == 403
        assert (await r.json())["error"] == "csrf"
    async with env.http.post(
        env.url("/api/tokens"), json={"name": "ci"}, headers={**headers, "X-CSRF-Token": "0" * 64}
    ) as r:
        assert r.status == 403
    async with env.http.get(env.url("/api/session"), headers=headers) as r:
        csrf = (await r.json())["csrf"]
    async with env.http.post(
        env.url("/api/tokens"), json={"name": "ci"}, headers={**headers, "X-CSRF-Token": csrf}
    ) as r:
        assert r.status == 201
        created = await r.json()
    # The new API token works as Bearer, with no CSRF header needed.
    bearer = {"Authorization": f"Bearer {created['token']}"}
    async with env.http.post(
        env.url("/api/printers/p1/commands"), json={"action": "pause"}, headers=bearer
    ) as r:
        assert r.status == 202
    async with env.http.get(env.url("/api/tokens"), headers=bearer) as r:
        assert [t["name"] for t in await r.json()] == ["ci"]
    async with env.http.delete(env.url(f"/api/tokens/{created['id']}"), headers=bearer) as r:
        assert r.status == 204
    async with env.http.get(env.url("/api/printers"), headers=bearer) as r:
        assert r.status == 401


async def test_http_redirects_to_https(env: Env) -> None:
    url = f"http://127.0.0.1:{env.svc.http_port}/api/printers/p1?x=1"
    async with env.http.get(url, allow_redirects=False) as r:
        assert r.status == 308
        assert r.headers["Location"] == f"https://127.0.0.1:{env.svc.https_port}/api/printers/p1?x=1"


async def test_security_headers(env: Env) -> None:
    for path in ("/api/health", "/api/printers", "/"):
        async with env.http.get(env.url(path)) as r:
            h = r.headers
            assert "frame-ancestors 'none'" in h["Content-Security-Policy"], path
            assert "default-src 'self'" in h["Content-Security-Policy"]
            assert h["Strict-Transport-Security"].startswith("max-age=")
            assert h["X-Frame-Options"] == "DENY"
            assert h["Referrer-Policy"] == "no-referrer"
            assert h["X-Content-Type-Options"] == "nosniff"


async def test_commands(env: Env) -> None:
    token, _ = await env.login()
    auth = {"Authorization": f"Bearer {token}"}
    link = env.manager.get("p1")

    async def post(printer: str, body: Any, raw: bytes | None = None) -> tuple[int, dict]:
        url = env.url(f"/api/printers/{printer}/commands")
        kw = {"data": raw} if raw is not None else {"json": body}
        async with env.http.post(url, headers=auth, **kw) as r:
            return r.status, await r.json()

    assert await post("p1", {"action": "pause"}) == (202, {"sequence_id": "1001"})
    assert (await post("p1", {"action": "speed", "level": 3}))[0] == 202
    assert (await post("p1", {"action": "light", "on": False}))[0] == 202
    assert (await post("p1", {"action": "gcode", "line": "G28"}))[0] == 202
    assert link.calls == [
        ("pause", {}),
        ("speed", {"level": 3}),
        ("light", {"on": False}),
        ("gcode", {"line": "G28"}),
    ]
    for body in (
        {"action": "dance"},
        {},
        {"action": ["pause"]},
        {"action": "speed", "level": 5},
        {"action": "speed", "level": True},
        {"action": "speed", "level": "2"},
        {"action": "light", "on": 1},
        {"action": "gcode", "line": ""},
        {"action": "gcode", "line": "G28\nM104 S300"},
        [1, 2],
        "pause",
    ):
        status, err = await post("p1", body)
        assert status == 400, body
        assert err["error"] == "bad_request" and err["message"]
    assert (await post("p1", None, raw=b"\xff\xfe"))[0] == 400
    assert len(link.calls) == 4
    status, err = await post("p2", {"action": "pause"})
    assert status == 409 and err["error"] == "offline"
    assert (await post("nope", {"action": "pause"}))[0] == 404
    async with env.http.post(env.url("/api/printers/p1/certificate/accept"), headers=auth) as r:
        assert r.status == 200
    assert link.accepted == 1
    # Trusting another certificate is an admin's decision.
    await env.svc.store.users.create("viewer", PASSWORD, "user")
    viewer, _ = await env.login("viewer")
    async with env.http.post(
        env.url("/api/printers/p1/certificate/accept"), headers={"Authorization": f"Bearer {viewer}"}
    ) as r:
        assert r.status == 403
    assert link.accepted == 1
    env.svc.temps.sample(env.manager.views(), 123.0)
    async with env.http.get(env.url("/api/printers/p1/temps"), headers=auth) as r:
        t = await r.json()
    assert t["fields"] == ["t", "nozzle", "nozzle_target", "bed", "bed_target", "chamber"]
    assert t["points"][-1] == [123.0, 200.0, 210.0, 50.0, 55.0, None]


async def test_websocket_snapshot_then_changes(env: Env) -> None:
    token, _ = await env.login()
    async with env.http.ws_connect(env.url("/api/ws"), headers={"Authorization": f"Bearer {token}"}) as ws:
        snap = await ws.receive_json(timeout=5)
        assert snap["type"] == "snapshot"
        assert [p["id"] for p in snap["printers"]] == ["p1", "p2"]
        env.bus.publish(Event("printer", "p1", PrinterUpdate({"print": {"progress": 50}}, {}, report=True)))
        env.bus.publish(Event("command", "p1", CommandOutcome("7", "pause", "success", None)))
        assert await ws.receive_json(timeout=5) == {
            "type": "printer",
            "id": "p1",
            "changes": {"print": {"progress": 50}},
        }
        cmd = await ws.receive_json(timeout=5)
        assert cmd == {
            "type": "command",
            "id": "p1",
            "sequence_id": "7",
            "action": "pause",
            "result": "success",
            "message": None,
        }
        # Stopping the service closes the socket with 1001 (going away).
        await env.hub.stop()
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert msg.data == 1001  # the server said "going away"


async def test_slow_ws_client_is_dropped_with_1013() -> None:
    """A browser that stops reading: its unsent bytes grow in the transport until the limit, then
    it is closed with 1013 and nothing more is written to it, whatever is published."""
    closed: list[int] = []

    class StuckTransport(asyncio.WriteTransport):
        def __init__(self) -> None:
            super().__init__()
            self.buffered = 0

        def write(self, data: bytes) -> None:
            self.buffered += len(data)  # never drains

        def get_write_buffer_size(self) -> int:
            return self.buffered

        def is_closing(self) -> bool:
            return False

    class Ws:
        async def close(self, *, code: int, message: bytes = b"") -> None:
            closed.append(code)

    transport = StuckTransport()
    client = _Client(Ws(), transport, TaskSet("test"), max_bytes=1000)  # type: ignore[arg-type]
    frame = b"x" * 100
    for _ in range(30):
        client.send(frame)  # never blocks, whatever the client does
    await asyncio.sleep(0)
    assert client.dropped and closed == [1013]
    assert transport.buffered == 1000  # ten frames, then nothing


async def test_openapi_lists_every_route(env: Env) -> None:
    token, _ = await env.login()
    async with env.http.get(env.url("/api/openapi.json"), headers={"Authorization": f"Bearer {token}"}) as r:
        spec = await r.json()
    for route in env.svc.app.router.routes():
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter") or ""
        if route.method == "HEAD" or not path.startswith("/api"):
            continue
        assert route.method.lower() in spec["paths"][path], (route.method, path)
    assert spec["paths"]["/api/health"]["get"]["security"] == []


async def test_reloading_the_dashboard_does_not_use_up_the_api_limit(env: Env) -> None:
    # Six reloads of the page (~35 files each) in a minute: the files come, and so does the API.
    for _ in range(6 * 35):
        async with env.http.get(env.url("/js/main.js"), headers={"If-None-Match": '"x"'}) as r:
            assert r.status == 200
    async with env.http.get(env.url("/api/health")) as r:
        assert r.status == 200


async def test_rate_limit_after_200_requests(env: Env) -> None:
    statuses = []
    for _ in range(205):
        async with env.http.get(env.url("/api/health")) as r:
            statuses.append(r.status)
    assert statuses[:200] == [200] * 200  # the fixture itself makes no requests
    assert statuses[-1] == 429
    async with env.http.get(env.url("/api/health")) as r:
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.headers["X-Frame-Options"] == "DENY"


def test_generated_certificate_is_reused(tmp_path: Path) -> None:
    from bambu_edge.web.tls import cert_paths, server_context

    config = Config(data_dir=tmp_path)
    cert, key = cert_paths(config)
    first = cert.read_bytes()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert cert_paths(config)[0].read_bytes() == first  # a restart keeps the certificate
    assert server_context(config).minimum_version == ssl.TLSVersion.TLSv1_2
    cert.write_text("garbage")
    assert cert_paths(config)[0].read_bytes() != first  # an unusable one is replaced


def test_certificate_from_before_the_expiry_record_is_kept(tmp_path: Path) -> None:
    """An install from before server.json existed keeps the certificate its browsers accepted."""
    from bambu_edge.certs import make_server_cert
    from bambu_edge.web.tls import cert_paths

    d = tmp_path / "tls"
    old = make_server_cert("bambu-edge", ["bambu-edge", "localhost"])
    old.write(d / "server.crt", d / "server.key")
    cert, _ = cert_paths(Config(data_dir=tmp_path))
    assert cert.read_bytes() == old.cert_pem
    assert (d / "server.json").is_file()
    expiring = make_server_cert("bambu-edge", ["localhost"], days=10)  # inside the renewal month
    expiring.write(d / "server.crt", d / "server.key")
    assert cert_paths(Config(data_dir=tmp_path))[0].read_bytes() != expiring.cert_pem


def test_daemon_serves_https_without_loading_an_x509_library(tmp_path: Path) -> None:
    """The certificate is made in a child process: the daemon on a 512 MB Pi does not carry
    cryptography (about 10 MB) for a job done once. Checked in a fresh interpreter, as systemd runs it."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import asyncio, sys, ssl
        from pathlib import Path
        from bambu_edge.config import Config, WebConfig
        from bambu_edge.app import Daemon
        from bambu_edge.discovery.config import DiscoveryConfig

        async def main():
            d = Daemon(Config(data_dir=Path({str(tmp_path)!r}),
                              web=WebConfig(bind="127.0.0.1", https_port=0, http_port=None),
                              sections={{"discovery": DiscoveryConfig(ssdp=False, mdns=False)}}))
            await d.start()
            try:
                ctx = ssl.create_default_context(cafile={str(tmp_path / "tls" / "server.crt")!r})
                ctx.check_hostname = False
                r, w = await asyncio.open_connection("127.0.0.1", d.web.https_port, ssl=ctx)
                w.close()
            finally:
                await d.stop()
            print(sorted(m for m in sys.modules if m.split(".")[0] == "cryptography"))

        asyncio.run(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "tls" / "server.json").is_file()
