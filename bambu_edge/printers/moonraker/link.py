"""One JSON-RPC 2.0 WebSocket session to one Moonraker (Klipper's API server): live state in,
commands out (protocol/BAMBU.md section 12).

After connecting: ``server.info`` (Klippy's state); once Klippy is ready, ``printer.objects.list``
and ``printer.objects.subscribe`` for the objects the view needs, then ``notify_status_update``
deltas are folded in as they come. ``notify_klippy_shutdown`` / ``_disconnected`` show Klippy's
state and message in plain words (the link itself stays ``connected``: Moonraker answers);
``notify_klippy_ready`` subscribes again. A lost connection is retried forever with the Bambu
link's backoff; a refused API key (401/403) is ``auth_failed``, retried slowly.

A library piece like the Bambu link: it takes its ``MoonrakerSettings`` and a ``LinkListener``.
``on_history`` (optional) hears about Moonraker's own history changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from bambu_edge.printers.backoff import Backoff, slow_backoff
from bambu_edge.printers.base import (
    CommandError,
    CommandOutcome,
    LinkListener,
    LinkState,
    PrinterUpdate,
    ReconnectingLink,
    printer_logger,
)
from bambu_edge.printers.moonraker import commands, records, rpc
from bambu_edge.printers.moonraker.files import MoonrakerFiles
from bambu_edge.printers.moonraker.settings import MoonrakerSettings
from bambu_edge.printers.moonraker.status import (
    CHAMBER_OBJECTS,
    FileInfo,
    KlippyStatus,
    Materials,
    MoonrakerState,
    StatusUpdate,
)
from bambu_edge.printers.values import integer, num, text

# The objects the view reads, and the fields of each (None: all of them).
WANTED: dict[str, list[str] | None] = {
    "print_stats": None,
    "virtual_sdcard": ["progress", "is_active", "file_path"],
    "display_status": None,
    "heater_bed": ["temperature", "target"],
    "fan": ["speed"],
    "toolhead": ["extruder", "homed_axes"],
    "gcode_move": ["speed_factor"],
    "webhooks": None,
}
TEMP_FIELDS = ["temperature", "target"]
MAX_FRAME = 4 * 1024 * 1024
AUTH_STATUSES = frozenset({401, 403})


def subscription(available: list[Any]) -> dict[str, list[str] | None]:
    """The objects to subscribe to, of those the printer has (``printer.objects.list``)."""
    names = {n for n in available if type(n) is str}
    objects: dict[str, list[str] | None] = {k: v for k, v in WANTED.items() if k in names}
    for name in sorted(names):
        if name == "extruder" or (name.startswith("extruder") and name[8:].isdigit()):
            objects[name] = TEMP_FIELDS
        elif name in CHAMBER_OBJECTS:
            objects[name] = TEMP_FIELDS
    return objects


class MoonrakerLink(ReconnectingLink):
    def __init__(
        self,
        settings: MoonrakerSettings,
        listener: LinkListener,
        *,
        backoff: Backoff | None = None,
        auth_backoff: Backoff | None = None,
        command_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        heartbeat: float = 20.0,
        stop_timeout: float = 3.0,
        on_history: Callable[[str, str, dict[str, Any]], None] | None = None,
    ):
        self.settings = settings
        self.listener = listener
        self.state = MoonrakerState(
            settings.id,
            settings.name,
            Materials(settings.nozzle_diameter, settings.filament_type, settings.filament_color),
        )
        self.log = printer_logger(__name__, settings.id)
        self.backoff = backoff or Backoff()
        self.auth_backoff = auth_backoff or slow_backoff()
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.heartbeat = heartbeat
        self.stop_timeout = stop_timeout
        self.on_history = on_history
        self.webcams: list[records.Webcam] = []
        self.connect_attempts = 0
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._seq = itertools.count(1)
        self._meta_for: str | None = None
        self._files: MoonrakerFiles | None = None

    @property
    def base_url(self) -> str:
        host = self.settings.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.settings.port}"

    def _headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.settings.api_key} if self.settings.api_key else {}

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._http

    @property
    def files(self) -> MoonrakerFiles:
        if self._files is None:
            self._files = MoonrakerFiles(self.base_url, self._session, self._headers)
        return self._files

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._set_link(LinkState.CONNECTING)
        self._task = asyncio.create_task(self._run(), name=f"moonraker-link-{self.settings.id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        tasks = [t for t in (task, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.stop_timeout)
            if pending:
                self.log.warning("link task did not stop in time")
        self._fail_pending("the link was stopped")
        if self._http is not None:
            await self._http.close()
            self._http = None
        self._set_link(LinkState.OFFLINE, "stopped")

    @property
    def link_state(self) -> str:
        return self.state.view()["link"]["state"]

    def _set_link(self, state: LinkState, error: str | None = None) -> None:
        before = self.link_state
        klippy = self.state.klippy
        self._publish(self.state.set_link(state, error, klippy_state=klippy.state))
        if before != state:
            (self.log.warning if state == LinkState.AUTH_FAILED else self.log.info)(
                "link %s%s", state.value, f": {error}" if error else ""
            )

    def _publish(self, changes: dict[str, Any], full: bool = False) -> None:
        if changes or full:
            update = PrinterUpdate(
                changes,
                self.state.view(),
                report=full or "updated_at" in changes,
                full=full,
                identity=self.state.identity,
            )
            self.listener.on_update(self.settings.id, update)

    def _apply(self, msg: object) -> None:
        # The subscription's answer is every object as Klippy sees it (like a Bambu full report):
        # the print tracker reconciles on it after a (re)connect.
        full = isinstance(msg, StatusUpdate) and msg.full
        self._publish(self.state.apply_message(msg), full=full)

    def reconnect_now(self) -> None:
        if self.link_state in (LinkState.CONNECTED, LinkState.AUTH_FAILED):
            return
        self.backoff.reset()
        self._wake.set()

    def set_materials(self, materials: Materials) -> None:
        """The nozzle and filament the user set for this printer (the queue matches them)."""
        self._apply(materials)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.warning("a Moonraker request failed: %s", task.exception())

    # --- connection loop ---------------------------------------------------------------------------

    async def _attempt(self) -> float:
        self.connect_attempts += 1
        url = f"{self.base_url}/websocket"
        try:
            async with self._session().ws_connect(
                url,
                headers=self._headers(),
                heartbeat=self.heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                max_msg_size=MAX_FRAME,
                autoping=True,
            ) as ws:
                await self._connection(ws)
        except aiohttp.WSServerHandshakeError as e:
            if e.status in AUTH_STATUSES:
                return self._auth_failed()
            return self._offline(f"Moonraker answered HTTP {e.status}")
        except rpc.RpcError as e:
            # Moonraker opens the socket to anyone, then answers every request with
            # {"code": -32602, "message": "Unauthorized"} (0.11.0).
            if e.code in AUTH_STATUSES or "unauthorized" in e.message.lower():
                return self._auth_failed()
            return self._offline(f"Moonraker refused server.info: {e.message}")
        except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError) as e:
            return self._offline(describe_error(e))
        finally:
            self._ws = None
            self._fail_pending("the connection to Moonraker was lost")
        return self._offline("Moonraker closed the connection")

    def _auth_failed(self) -> float:
        self.backoff.reset()
        why = "Moonraker refused the API key" if self.settings.api_key else "Moonraker needs an API key"
        self._set_link(LinkState.AUTH_FAILED, why)
        return self.auth_backoff.next()

    def _offline(self, why: str) -> float:
        self._set_link(LinkState.OFFLINE, why)
        return self.backoff.next()

    async def _connection(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self.auth_backoff.reset()
        self._wake.clear()
        reader = asyncio.create_task(self._read(ws))
        try:
            async with asyncio.timeout(self.connect_timeout):
                info = await self.call("server.info")
            self.backoff.ok()
            self._set_link(LinkState.CONNECTED)
            self._spawn(self._klippy_from_info(info))
            self._spawn(self._refresh_webcams())
            await reader
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            msg = rpc.decode(frame.data)
            if isinstance(msg, rpc.Reply):
                fut = self._pending.pop(msg.id, None)
                if fut is not None and not fut.done():
                    if msg.error is not None:
                        fut.set_exception(msg.error)
                    else:
                        fut.set_result(msg.result)
            elif isinstance(msg, rpc.Notification):
                self.backoff.ok()
                try:
                    self._notified(msg)
                except Exception:  # one notification we cannot handle must not drop the session
                    self.log.warning("ignored a notification that could not be handled", exc_info=True)

    async def call(
        self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """One JSON-RPC request; its result, or RpcError with Moonraker's message."""
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionError("not connected to Moonraker")
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            await ws.send_str(rpc.request(method, params, req_id).decode())
            async with asyncio.timeout(timeout or self.command_timeout):
                return await fut
        finally:
            self._pending.pop(req_id, None)

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError(why))

    # --- Klippy and its objects --------------------------------------------------------------------

    async def _klippy_from_info(self, info: Any) -> None:
        state = text(info.get("klippy_state"), 32) if type(info) is dict else None
        await self._klippy(state or "disconnected")

    async def _klippy(self, state: str) -> None:
        """Klippy is in ``state``: show it with its message; subscribe once it is ready."""
        message = None
        if state != "disconnected":
            with contextlib.suppress(rpc.RpcError, ConnectionError, TimeoutError):
                info = await self.call("printer.info")
                if type(info) is dict:
                    state = text(info.get("state"), 32) or state
                    message = text(info.get("state_message"), 2000)
        if state == "ready":
            message = None
        self._apply(KlippyStatus(state, message))
        self._publish(self.state.set_link(LinkState.CONNECTED, None, klippy_state=state))
        if state == "ready":
            await self._subscribe()

    async def _subscribe(self) -> None:
        listed = await self.call("printer.objects.list")
        available = listed.get("objects") if type(listed) is dict else None
        objects = subscription(available if type(available) is list else [])
        result = await self.call("printer.objects.subscribe", {"objects": objects})
        status = result.get("status") if type(result) is dict else None
        if type(status) is dict:
            self._apply(StatusUpdate(status, full=True))
            self._check_file()

    def _notified(self, msg: rpc.Notification) -> None:
        method = msg.method
        if method == "notify_status_update":
            if msg.params and type(msg.params[0]) is dict:
                self._apply(StatusUpdate(msg.params[0]))
                self._check_file()
        elif method == "notify_klippy_ready":
            self._spawn(self._klippy("ready"))
        elif method == "notify_klippy_shutdown":
            self._spawn(self._klippy("shutdown"))
        elif method == "notify_klippy_disconnected":
            self._apply(KlippyStatus("disconnected"))
            self._publish(self.state.set_link(LinkState.CONNECTED, None, klippy_state="disconnected"))
        elif method == "notify_history_changed":
            if msg.params and type(msg.params[0]) is dict and self.on_history is not None:
                action = text(msg.params[0].get("action"), 32) or ""
                job = msg.params[0].get("job")
                self.on_history(self.settings.id, action, job if type(job) is dict else {})
        elif method == "notify_webcams_changed":
            self._spawn(self._refresh_webcams())

    def _check_file(self) -> None:
        """Fetch the estimate of a file that started printing (remaining time, layers)."""
        filename = self.state.view()["print"]["file"]
        if filename and filename != self._meta_for:
            self._meta_for = filename
            self._spawn(self._file_info(filename))

    async def _file_info(self, filename: str) -> None:
        try:
            meta = await self.call("server.files.metadata", {"filename": filename})
        except rpc.RpcError:
            meta = {}
        meta = meta if type(meta) is dict else {}
        self._apply(
            FileInfo(
                filename,
                num(meta.get("estimated_time"), 0.0, 1e8),
                integer(meta.get("layer_count"), 0, 100_000),
            )
        )

    async def _refresh_webcams(self) -> None:
        try:
            result = await self.call("server.webcams.list")
        except rpc.RpcError:
            return  # a Moonraker without the webcam component
        self.webcams = records.webcams(result, self.settings.host)

    async def history(self, limit: int = 100, start: int = 0) -> Any:
        """One page of Moonraker's own history (``server.history.list``), oldest first."""
        return await self.call("server.history.list", {"limit": limit, "start": start, "order": "asc"})

    # --- commands ----------------------------------------------------------------------------------

    async def send_command(self, action: str, params: Mapping[str, Any]) -> str:
        call = commands.build(action, params, self.settings)
        if self._ws is None or self.link_state != LinkState.CONNECTED:
            raise CommandError("offline", f"{self.settings.name} is not connected ({self.link_state})")
        seq = f"{os.getpid() % 1000:03d}{next(self._seq)}"
        self._spawn(self._command(seq, action, call))
        self.log.info("sent %s (sequence_id %s)", action, seq)
        return seq

    async def _command(self, seq: str, action: str, call: commands.Call) -> None:
        try:
            await self.call(call.method, call.params, self.command_timeout)
        except rpc.RpcError as e:
            self.log.warning("Moonraker refused %s: %s", action, e.message)
            self._outcome(seq, action, "failed", f"Moonraker refused the command: {e.message}")
        except TimeoutError:
            self._outcome(
                seq, action, "timeout", f"Moonraker did not answer within {self.command_timeout:g} s."
            )
        except ConnectionError:
            self._outcome(seq, action, "timeout", "The connection to Moonraker was lost before it answered.")
        else:
            self._outcome(seq, action, "success", None)

    def _outcome(self, seq: str, action: str, result: str, message: str | None) -> None:
        self.listener.on_command(self.settings.id, CommandOutcome(seq, action, result, message))


def describe_error(e: BaseException) -> str:
    text_ = str(e) or type(e).__name__
    low = text_.lower()
    if isinstance(e, ConnectionRefusedError) or "connect call failed" in low or "connection refused" in low:
        return "connection refused (is Moonraker running on this host and port?)"
    if isinstance(e, TimeoutError) or "timed out" in low or "timeout" in low:
        return "no answer from Moonraker (timed out)"
    return text_[:200]
