"""Hostile requests over every route `GET /api/openapi.json` lists, against the real daemon: no path,
query string or body gives a 500 (DESIGN §5 "never crash on input"), logged in as the admin or not,
and the daemon is healthy afterwards (the `spine` fixture also fails on any traceback in its log).

A fixed corpus (the cases a new user tried, kept as regressions) plus bodies and query strings drawn
by hypothesis. The API allows 200 requests a minute per client address, so the requests come from
several loopback addresses (127.0.0.2, .3, ...), each used for at most CLIENT_BUDGET of them.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from tests.integration.running_daemon import PASSWORD
from tests.integration.waiting import dashboard_tls

CLIENT_BUDGET = 150
PARAM = re.compile(r"\{(\w+)\}")
WRITES = ("POST", "PUT", "DELETE")
BIG = "99999999999999999999"  # > 2**64: what SQLite cannot hold (the two 500s a new user found)

# Path parameters: each replaces one {param} of a route in turn.
PATH_VALUES = [
    BIG,  # a 500 once on every /{id} route (OverflowError in SQLite), like the next one
    str(2**63),
    str(2**63 - 1),
    str(-(2**63) - 1),
    "-1",
    "0",
    "00000000000000000000000000000001",
    "9" * 5000,
    "abc",
    "1.5",
    "1e3",
    "0x10",
    "1_000",
    "\u0661\u0662",  # Arabic-Indic digits: int() takes them, a URL id should not
    " 1",
    "..",
    "%2e%2e",
    "../../etc/passwd",
    "\x00",
    "\u2603 snow",
    "x" * 2000,
    "'; DROP TABLE users; --",
]
# Query strings: every documented name a route reads gets each hostile value; these names, which
# routes might read without saying so, get a few.
QUERY_NAMES = ["plate", "path", "name", "limit", "offset", "id", "from", "to", "q"]
QUERY_VALUES = [
    BIG,
    str(2**63),
    "-" + BIG,
    "-1",
    "0",
    "",
    "nan",
    "inf",
    "1e309",
    "1.5",
    "\u0661",
    "0001-01-01",  # a 500 once, as from= or to= of the history: before 1970 in local time
    "0001-01-01T00:00:00",
    "9999-12-31",  # a 500 once, as to=: the day after it is past datetime's range
    "9999-12-31T23:59:59",
    "2025-02-30",
    "..",
    "../../etc/passwd",
    "/" + "a/" * 300,
    "\x00",
    "\u2603",
    "x" * 5000,
    "a,b," * 100,
]
# Request bodies as sent (bytes), with their content type.
RAW_BODIES: list[tuple[bytes, str]] = [
    (b"", "application/json"),
    (b"not json", "application/json"),
    (b"null", "application/json"),
    (b"[]", "application/json"),
    (b"1e999", "application/json"),
    (b'"text"', "application/json"),
    (b"\xff\xfe\x00", "application/json"),
    (b'{"a":', "application/json"),
    (b"[" * 5000 + b"]" * 5000, "application/json"),
    (b'{"a": NaN}', "application/json"),
    (b"x" * (70 * 1024), "application/json"),
    # Both were 500s of the queue upload (aiohttp's ValueError for a form without boundary or end).
    (b"--x\r\n\r\nbroken", "multipart/form-data"),
    (b"--x\r\nContent-Disposition: form-data\r\n\r\nbroken", "multipart/form-data; boundary=x"),
    (b"--x--\r\n", "multipart/form-data; boundary=x"),
    (b"a=1&b=2", "application/x-www-form-urlencoded"),
]
# JSON values for every field a route's body schema names.
HOSTILE_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,  # a 500 once as file_id (POST /api/queue) and before (POST /api/queue/{id}/move)
    -(2**63) - 1,
    int(BIG),
    -int(BIG),
    10**400,
    1.5,
    1e308,
    "",
    " ",
    BIG,
    "\u2603",
    "\x00",
    "x" * 10_000,
    [],
    [int(BIG)],
    [None, "a", -1, 1.5],
    {},
    {"a": {"b": {"c": [int(BIG)]}}},
]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as in the OpenAPI document, with {params}
    public: bool
    fields: tuple[str, ...]  # the body schema's properties
    query: tuple[str, ...]  # the documented query parameters


@dataclass
class Fuzzer:
    base: str
    token: str
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    async def client(self) -> aiohttp.ClientSession:
        n = self.sent // CLIENT_BUDGET
        while len(self.sessions) <= n:
            local = (f"127.0.0.{len(self.sessions) + 2}", 0)
            connector = aiohttp.TCPConnector(ssl=dashboard_tls(), local_addr=local)
            self.sessions.append(aiohttp.ClientSession(connector=connector))
        self.sent += 1
        return self.sessions[n]

    async def send(
        self,
        op: Operation,
        values: dict[str, str],
        *,
        query: str = "",
        body: bytes | None = None,
        content_type: str = "application/json",
        auth: bool = True,
    ) -> int:
        path = PARAM.sub(lambda m: urllib.parse.quote(values[m.group(1)], safe=""), op.path)
        url = URL(self.base + path + (f"?{query}" if query else ""), encoded=True)
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        if body is not None:
            headers["Content-Type"] = content_type
        http = await self.client()
        async with http.request(op.method, url, headers=headers, data=body, allow_redirects=False) as r:
            await r.read()
            status = r.status
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 500 and status not in (502, 503):
            shown = body[:120] if body is not None else None
            self.failures.append(f"{status}: {op.method} {path[:120]} ?{query[:120]} body={shown!r}")
        if status == 429 and op.path not in ("/api/auth/login", "/api/printers/test"):
            self.failures.append(f"rate limited (coverage lost): {op.method} {path[:120]}")
        return status

    async def close(self) -> None:
        for s in self.sessions:
            await s.close()


def operations(spec: dict[str, Any]) -> list[Operation]:
    ops = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
            props = tuple((body.get("schema") or {}).get("properties", {}))
            query = tuple(p["name"] for p in op.get("parameters", []) if p["in"] == "query")
            ops.append(Operation(method.upper(), path, op.get("security") == [], props, query))
    return ops


def base_values(op: Operation) -> dict[str, str]:
    """Path parameters that name something that exists (or could), so the query and body are read."""
    return {name: "x1c" if op.path.startswith("/api/printers/") else "1" for name in PARAM.findall(op.path)}


def corpus(op: Operation) -> list[dict[str, Any]]:
    """The fixed hostile requests for one route: each path parameter, query name and body field in
    turn, everything else as base_values."""
    base = base_values(op)
    cases: list[dict[str, Any]] = [{"values": base}]
    for name in base:
        cases += [{"values": {**base, name: v}} for v in PATH_VALUES]
    for name in op.query:
        cases += [{"values": base, "query": urllib.parse.urlencode({name: v})} for v in QUERY_VALUES]
    for name in set(QUERY_NAMES) - set(op.query):
        cases += [{"values": base, "query": urllib.parse.urlencode({name: v})} for v in (BIG, "\x00")]
    cases.append({"values": base, "query": "a=%ZZ&=&&plate&path=%00"})
    if op.method in WRITES:
        cases += [{"values": base, "body": b, "content_type": ct} for b, ct in RAW_BODIES]
        for name in op.fields:
            cases += [{"values": base, "body": json.dumps({name: v}).encode()} for v in HOSTILE_VALUES]
        cases.append({"values": base, "body": json.dumps(dict.fromkeys(op.fields, int(BIG))).encode()})
    return cases


# --- hypothesis: bodies and query strings of any shape ---------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63, -(2**63) - 1, int(BIG), 10**30])
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def requests(draw: st.DrawFn, ops: list[Operation]) -> tuple[Operation, str, bytes | None]:
    op = draw(st.sampled_from(ops))
    names = st.sampled_from([*op.query, *QUERY_NAMES]) | st.text(max_size=8)
    query = draw(st.dictionaries(names, st.sampled_from(QUERY_VALUES) | st.text(max_size=40), max_size=3))
    body = None
    if op.method in WRITES:
        keys = st.sampled_from(op.fields) | st.text(max_size=8) if op.fields else st.text(max_size=8)
        body = json.dumps(draw(st.dictionaries(keys, json_values, max_size=5) | json_values)).encode()
    return op, urllib.parse.urlencode(query), body


# --- the tests --------------------------------------------------------------------------------------------------


@pytest.fixture
async def fuzzer(spine: dict) -> AsyncIterator[tuple[Fuzzer, list[Operation]]]:
    http = spine["http"]
    async with http.get(spine["base"] + "/api/openapi.json", headers=spine["auth"]) as r:
        spec = await r.json()
    # An API token, not the session: the fuzzed logout would end a session.
    async with http.post(spine["base"] + "/api/tokens", headers=spine["auth"], json={"name": "fuzz"}) as r:
        assert r.status == 201
        token = (await r.json())["token"]
    # Something for "1" to find on the numeric routes: a queue file and two jobs (1 and 2, for
    # ``before``). The queue is paused: they stay put.
    auth = {"Authorization": f"Bearer {token}"}
    async with http.post(spine["base"] + "/api/queue/pause", headers=auth) as r:
        assert r.status == 200
    upload = spine["base"] + "/api/queue/files?name=fuzz.gcode"
    async with http.post(upload, headers=auth, data=b"; HEADER_BLOCK_START\n; HEADER_BLOCK_END\nG28\n") as r:
        assert r.status == 201, await r.text()
        file_id = (await r.json())["id"]
    for _ in range(2):
        async with http.post(spine["base"] + "/api/queue", headers=auth, json={"file_id": file_id}) as r:
            assert r.status == 201, await r.text()
    fz = Fuzzer(spine["base"], token)
    try:
        # Deletions last: what they remove is what the other routes are given to find.
        yield fz, sorted(operations(spec), key=lambda op: op.method == "DELETE")
    finally:
        await fz.close()
    # Still serving, the admin's token still good and the admin still able to log in, the printer
    # still connected, the queue still holding what it was given.
    async with http.get(spine["base"] + "/api/health") as r:
        assert r.status == 200 and (await r.json())["status"] == "ok"
    async with http.get(spine["base"] + "/api/printers/x1c", headers=auth) as r:
        assert r.status == 200
        assert (await r.json())["link"]["state"] == "connected"
    login = {"username": "admin", "password": PASSWORD}
    async with http.post(spine["base"] + "/api/auth/login", json=login) as r:
        assert r.status == 200
    async with http.get(spine["base"] + "/api/queue/files", headers=auth) as r:
        assert [f["id"] for f in (await r.json())["files"]] == [file_id]


async def test_no_hostile_request_gives_a_500(fuzzer: tuple[Fuzzer, list[Operation]]) -> None:
    fz, ops = fuzzer
    assert len(ops) >= 40 and any(op.path == "/api/queue/files/{id}" for op in ops)
    for op in ops:
        for case in corpus(op):
            await fz.send(op, **case)
    # Logged out: only the public routes read anything, the rest must say 401 whatever comes.
    for op in ops:
        for case in corpus(op)[:: 1 if op.public else 10]:
            status = await fz.send(op, **case, auth=False)
            if not op.public and status != 401:
                fz.failures.append(f"{status} without login: {op.method} {op.path}")

    loop = asyncio.get_running_loop()

    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests(ops))
    def drawn(request: tuple[Operation, str, bytes | None]) -> None:
        op, query, body = request
        send = fz.send(op, base_values(op), query=query, body=body)
        asyncio.run_coroutine_threadsafe(send, loop).result(60)

    await asyncio.to_thread(drawn)
    assert fz.failures == [], "\n".join(sorted(set(fz.failures))[:60])
    assert fz.sent > 3000, fz.statuses
