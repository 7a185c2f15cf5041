"""`GET /api/ws`: a snapshot, then live events.

One bus subscription for all clients; each event is serialised once and the same text is offered to
every client's small bounded queue. A client whose queue is full is closed with 1013 (try again
later: it reconnects and gets a fresh snapshot), so a slow client never stalls the others.
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

log = logging.getLogger(__name__)

# The kinds forwarded are those the components declare (``Component.event_kinds``); each frame is
# {"type": kind, "id": printer_id (if any), **data}, and the component that publishes a kind owns
# its data's shape (documented in docs/api.md).
CLIENT_QUEUE = 64
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
    def __init__(self, ws: web.WebSocketResponse, tasks: TaskSet | None = None):
        self.ws = ws
        self.tasks = tasks or TaskSet("ws client")
        self.queue: asyncio.Queue[str] = asyncio.Queue(CLIENT_QUEUE)
        self.writer: asyncio.Task[None] | None = None
        self.dropped = False

    def offer(self, text: str) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.dropped = True
            if self.writer is not None:
                self.writer.cancel()
            self.tasks.spawn(self._close(WSCloseCode.TRY_AGAIN_LATER, b"too slow"), name="ws-close")

    async def _close(self, code: int, message: bytes) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message)

    async def write(self) -> None:
        while True:
            await self.ws.send_str(await self.queue.get())


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
        for c in clients:
            if c.writer is not None:
                c.writer.cancel()
        await asyncio.gather(
            *(c._close(WSCloseCode.GOING_AWAY, b"server shutdown") for c in clients), return_exceptions=True
        )

    def _fan_out(self, event: Event) -> None:
        """In the publisher's turn: serialised once, offered to every client's bounded queue."""
        if not self.clients:
            return
        f = frame(event, self.kinds)
        if f is None:
            return
        text = orjson.dumps(f).decode()
        for c in tuple(self.clients):
            c.offer(text)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """WebSocket: {"type":"snapshot","printers":[...]} first, then printer/command events."""
        origin = request.headers.get("Origin")
        if origin is not None and origin not in (f"https://{request.host}", f"http://{request.host}"):
            return web.json_response(
                {"error": "forbidden", "message": "cross-origin WebSocket refused"}, status=403
            )
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=4096)
        await ws.prepare(request)
        client = _Client(ws, self.tasks)
        self.clients.add(client)  # before the snapshot: nothing published meanwhile is lost
        try:
            await ws.send_str(
                orjson.dumps({"type": "snapshot", "printers": self.manager.farm_views()}).decode()
            )
            client.writer = self.tasks.spawn(client.write(), name="ws-writer")
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        except ConnectionError:
            pass
        finally:
            self.clients.discard(client)
            if client.writer is not None:
                await self.tasks.cancel([client.writer])
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
