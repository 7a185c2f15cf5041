"""`GET /api/ws`: a snapshot, then live events.

One bus listener for all clients, called in the publisher's turn: each event is serialised and framed
once, and the same bytes are written to every client's transport there and then. No queue and no
writer task per client: with five dashboards and ten printers the writer tasks' wake-ups cost more
than the JSON (bench/rss_10_printers.py). The transport's write buffer is the client's bounded
queue: a client that would take it past ``CLIENT_BUFFER`` is closed with 1013 (try again later: it
reconnects and gets a fresh snapshot), so a slow client never stalls the others nor grows memory.

No permessage-deflate on this socket: a frame compressed with each client's own context cannot be
shared, and the frames are small deltas on a LAN (bench/ws_bytes.py gives what it costs on the wire).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from bambu_edge.bus import Event, EventBus, Listener
from bambu_edge.tasks import TaskSet
from bambu_edge.web.api_auth import ApiError
from bambu_edge.web.ws_frames import text_frame

log = logging.getLogger(__name__)

# The kinds forwarded are those the components declare (``Component.event_kinds``); each frame is
# {"type": kind, "id": printer_id (if any), **data}, and the component that publishes a kind owns
# its data's shape (documented in docs/api.md).
CLIENT_BUFFER = 256 * 1024  # bytes not yet sent to one browser: some 500 frames, a minute of a farm
HEARTBEAT_S = 30.0


def frame(event: Event, kinds: frozenset[str] | set[str]) -> dict[str, Any] | None:
    """``{"type": kind, "id": printer_id (if any), **data}``: the one place a bus event becomes
    JSON. A typed payload gives its JSON shape through ``to_json()``."""
    if event.kind not in kinds:
        return None
    out: dict[str, Any] = {"type": event.kind}
    if event.printer_id is not None:
        out["id"] = event.printer_id
    d = event.data
    out.update(d.to_json() if hasattr(d, "to_json") else d)
    return out


class _Client:
    """One browser. ``send`` writes a whole framed message to its transport, or drops the client
    (1013) when its unsent bytes would pass ``max_bytes``."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport,
        tasks: TaskSet,
        max_bytes: int = CLIENT_BUFFER,
    ):
        assert isinstance(transport, asyncio.WriteTransport)
        self.ws = ws
        self.transport = transport
        self.tasks = tasks
        self.max_bytes = max_bytes
        self.dropped = False

    def send(self, data: bytes) -> None:
        if self.dropped:
            return
        if self.transport.is_closing():
            self.dropped = True  # gone: its handler ends and forgets it
            return
        if self.transport.get_write_buffer_size() + len(data) > self.max_bytes:
            self.dropped = True
            self.tasks.spawn(self.close(WSCloseCode.TRY_AGAIN_LATER, b"too slow"), name="ws-close")
            return
        self.transport.write(data)

    async def close(self, code: int, message: bytes) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message)


class WsHub:
    """Forwards the bus events of ``kinds`` to every WebSocket client."""

    def __init__(self, bus: EventBus, manager: Any, kinds: Iterable[str], tasks: TaskSet | None = None):
        self.bus = bus
        self.manager = manager
        self.kinds = frozenset(kinds)
        self.tasks = tasks or TaskSet("ws hub")
        self.clients: set[_Client] = set()
        self._listener: Listener | None = None

    async def start(self) -> None:
        self._listener = self.bus.listen(*self.kinds, callback=self._fan_out)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        clients, self.clients = list(self.clients), set()
        await asyncio.gather(
            *(c.close(WSCloseCode.GOING_AWAY, b"server shutdown") for c in clients), return_exceptions=True
        )

    def _fan_out(self, event: Event) -> None:
        """In the publisher's turn: serialised and framed once, written to every client."""
        if not self.clients:
            return
        f = frame(event, self.kinds)
        if f is None:
            return
        data = text_frame(orjson.dumps(f))
        for c in tuple(self.clients):
            c.send(data)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """WebSocket: {"type":"snapshot","printers":[...]} first, then printer/command events."""
        origin = request.headers.get("Origin")
        if origin is not None and origin not in (f"https://{request.host}", f"http://{request.host}"):
            return web.json_response(
                {"error": "forbidden", "message": "cross-origin WebSocket refused"}, status=403
            )
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=4096, compress=False)
        await ws.prepare(request)
        transport = request.transport
        if transport is None:  # the browser is already gone
            return ws
        # The snapshot and the registration in one step: every event published after the snapshot
        # was taken reaches this client, none before it. A farm's snapshot may be large: the
        # client's allowance is on top of it.
        snapshot = text_frame(orjson.dumps({"type": "snapshot", "printers": self.manager.farm_views()}))
        client = _Client(ws, transport, self.tasks, max_bytes=CLIENT_BUFFER + len(snapshot))
        client.send(snapshot)
        self.clients.add(client)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        except ConnectionError:
            pass
        finally:
            self.clients.discard(client)
        return ws


def routes(hub: Callable[[], WsHub | None]) -> list[web.RouteDef]:
    """``GET /api/ws``, served by the hub ``hub()`` returns (503 while there is none)."""

    async def ws_handler(request: web.Request) -> web.StreamResponse:
        """Live updates (WebSocket): a snapshot, then `printer` changes and `command` outcomes."""
        current = hub()
        if current is None:
            raise ApiError(503, "unavailable", "Live updates are not running; see the log.")
        return await current.handle(request)

    return [web.get("/api/ws", ws_handler)]
