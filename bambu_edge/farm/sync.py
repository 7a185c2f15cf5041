"""The farm sync: this unit on the farm's MQTT broker (DESIGN §7, docs/farm.md), run by the farm
component (``component.py``) when ``farm:`` is configured.

One aiomqtt session (MQTT 3.1.1, ``clean_session`` false: the broker keeps this unit's
subscriptions and QoS 1 messages while it is away) with a retained last will saying "offline".
Out: the unit's status, each local printer's state (printer_sync.py: retained snapshot, then
batched changes at most every FLUSH_S) and its history records (history_sync.py). In: the other
units' status, printers and records, and command requests for this unit's printers. The session is
retried forever with backoff; while the broker is gone this unit serves its own printers as ever and
shows the others as unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import uuid
from typing import Any

import aiomqtt

from bambu_edge import __version__
from bambu_edge.bus import Event, Listener
from bambu_edge.component import ComponentError, Context
from bambu_edge.farm import mqtt_client, topics, wire
from bambu_edge.farm.config import FarmConfig
from bambu_edge.farm.events import (
    FARM_COMMAND,
    FARM_HISTORY,
    FARM_PRINTER,
    FARM_PRINTER_ADDED,
    FARM_PRINTER_REMOVED,
    FARM_UNITS,
    Frame,
)
from bambu_edge.farm.history_sync import HistoryIn, HistoryOut
from bambu_edge.farm.printer_sync import FLUSH_S, Outgoing
from bambu_edge.farm.remote import Change, RemoteFarm
from bambu_edge.farm.rights import refusal
from bambu_edge.jobs.history import HistoryRepository, record_json
from bambu_edge.jobs.history_service import HISTORY_EVENT
from bambu_edge.node import NodeConfig
from bambu_edge.printers.backoff import Backoff
from bambu_edge.printers.base import (
    COMMAND_EVENT,
    PRINTER_ADDED_EVENT,
    PRINTER_EVENT,
    PRINTER_REMOVED_EVENT,
    CommandError,
    CommandOutcome,
)
from bambu_edge.printers.components import PrintersComponent
from bambu_edge.printers.manager import PrinterManager
from bambu_edge.web.api_printers import command_params
from bambu_edge.web.errors import ApiError

log = logging.getLogger(__name__)

KEEPALIVE_S = 15  # a unit that vanishes without closing its socket is "gone" within ~1.5x this
CONNECT_TIMEOUT_S = 10.0
PUBLISH_TIMEOUT_S = 10.0
# A remote command's answer: the owner's link waits 10 s for the printer; then the way back.
COMMAND_TIMEOUT_S = 20.0
EARLY_KEPT = 32  # printer answers that may belong to a request still being sent


def _tls_context(cfg: FarmConfig) -> ssl.SSLContext | None:
    if not cfg.tls:
        return None
    try:
        return ssl.create_default_context(cafile=cfg.ca_file)
    except (OSError, ssl.SSLError) as e:
        raise ComponentError(
            f"farm.ca_file {cfg.ca_file}: cannot be read as a CA certificate ({e})"
        ) from None


class FarmSync:
    def __init__(self, ctx: Context, cfg: FarmConfig, node: NodeConfig) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.node = node
        self.remote = RemoteFarm(self.node.id, lambda pid: False)
        self.connected = False
        self.error: str | None = None
        self.connections = 0
        self._manager: PrinterManager | None = None
        self._client: aiomqtt.Client | None = None
        self._tls: ssl.SSLContext | None = None
        self._listeners: list[Listener] = []
        self._outgoing: dict[str, Outgoing] = {}
        self._dirty: dict[str, None] = {}
        self._last_sent: dict[str, float] = {}
        self._removed: set[str] = set()
        self._printers_wake = asyncio.Event()
        self._history_wake = asyncio.Event()
        self._history_out: HistoryOut | None = None
        self._history_in: HistoryIn | None = None
        self._replies: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(256)
        # caller side: correlation -> (printer id, action, its timer)
        self._pending: dict[str, tuple[str, str, asyncio.TimerHandle]] = {}
        # owner side: (printer id, the link's sequence id) -> (correlation, reply topic)
        self._awaiting: dict[tuple[str, str], tuple[str, str]] = {}
        self._early: dict[tuple[str, str], CommandOutcome] = {}
        self._requests_in_flight = 0
        self._run: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.cfg
        self._tls = await asyncio.to_thread(_tls_context, cfg)
        if not cfg.tls:
            log.warning(
                "farm: %s is plain MQTT (no TLS): printer states, history and commands cross the "
                "network readable by anyone on it; use mqtts:// unless this LAN is trusted",
                cfg.url,
            )
        manager = self.ctx.require("printers", PrintersComponent).manager
        self._manager = manager
        self.remote = RemoteFarm(self.node.id, lambda pid: manager.get(pid) is not None)
        repo = HistoryRepository(self.ctx.store.db, node=self.node.id)
        self._history_out = HistoryOut(self.ctx.store.db, repo)
        self._history_in = HistoryIn(repo)
        bus = self.ctx.bus
        self._listeners = [
            bus.listen(PRINTER_EVENT, PRINTER_ADDED_EVENT, callback=self._on_local_printer),
            bus.listen(PRINTER_REMOVED_EVENT, callback=self._on_local_removed),
            bus.listen(HISTORY_EVENT, callback=lambda _e: self._history_wake.set()),
            bus.listen(COMMAND_EVENT, callback=self._on_local_outcome),
        ]
        for view in manager.views():
            self._dirty[view["id"]] = None
        manager.remote = self
        self._run = self.ctx.tasks.spawn(self._session_loop(), name="farm-session")

    async def stop(self) -> None:
        if self._manager is not None and self._manager.remote is self:
            self._manager.remote = None
        for listener in self._listeners:
            listener.close()
        self._listeners = []
        client = self._client
        if client is not None and self.connected:
            # A clean goodbye: the will is only for a unit that vanishes.
            try:
                await client.publish(
                    topics.status(self.node.id), self._status("offline"), qos=1, retain=True, timeout=2.0
                )
            except (aiomqtt.MqttError, TimeoutError) as e:
                log.info("farm: could not say goodbye on the broker: %s", e)
        if self._run is not None:
            await self.ctx.tasks.cancel([self._run])
        for _, _, timer in self._pending.values():
            timer.cancel()
        self._pending.clear()

    def health(self) -> dict[str, Any]:
        return {
            "broker": self.cfg.url,
            "connected": self.connected,
            "broker_error": self.error,
            **self.remote.health(),
        }

    # --- the session ------------------------------------------------------------------------------

    def _status(self, state: str) -> bytes:
        return wire.dumps(
            {
                "node": self.node.id,
                "name": self.node.name,
                "state": state,
                "since": time.time(),
                "version": __version__,
            }
        )

    async def _session_loop(self) -> None:
        backoff = Backoff(initial=1.0, cap=30.0)
        while True:
            try:
                await self._session(backoff)
                self.error = "the broker closed the connection"
            except aiomqtt.MqttError as e:
                self.error = str(e) or type(e).__name__
            except OSError as e:
                self.error = str(e)
            if self.connected:
                log.warning("farm: lost the broker %s: %s", self.cfg.url, self.error)
            self._client = None
            self._set_connected(False)
            await asyncio.sleep(backoff.next())

    async def _session(self, backoff: Backoff) -> None:
        cfg = self.cfg
        client = mqtt_client.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=cfg.password,
            identifier=f"bambu-edge-{self.node.id}",
            clean_session=False,
            will=aiomqtt.Will(topics.status(self.node.id), self._status("offline"), qos=1, retain=True),
            tls_context=self._tls,
            keepalive=KEEPALIVE_S,
            timeout=CONNECT_TIMEOUT_S,
        )
        # A QoS 1 message is acknowledged once it is handled (a history record committed), not on
        # arrival: a crash in between gets it delivered again.
        client._client.manual_ack_set(True)
        async with client:
            self._client = client
            for topic, qos in topics.subscriptions(self.node.id):
                await client.subscribe(topic, qos, timeout=PUBLISH_TIMEOUT_S)
            await client.publish(
                topics.status(self.node.id),
                self._status("online"),
                qos=1,
                retain=True,
                timeout=PUBLISH_TIMEOUT_S,
            )
            self.connections += 1
            log.info("farm: connected to %s as node %s", cfg.url, self.node.id)
            self.error = None
            backoff.reset()
            self._set_connected(True)
            for out in self._outgoing.values():
                out.reset()
            if self._manager is not None:
                for view in self._manager.views():
                    self._dirty[view["id"]] = None
            self._printers_wake.set()
            self._history_wake.set()
            workers = [
                self.ctx.tasks.spawn(self._printers_loop(client), name="farm-printers"),
                self.ctx.tasks.spawn(self._history_loop(client), name="farm-history"),
                self.ctx.tasks.spawn(self._replies_loop(client), name="farm-replies"),
            ]
            try:
                async for message in client.messages:
                    await self._on_message(client, message)
                    for w in workers:
                        if w.done() and not w.cancelled() and w.exception() is not None:
                            raise aiomqtt.MqttError(f"farm: {w.get_name()} failed: {w.exception()}")
            finally:
                await self.ctx.tasks.cancel(workers)

    def _set_connected(self, up: bool) -> None:
        if up == self.connected:
            return
        self.connected = up
        self._publish_changes(self.remote.broker(up))
        self._publish_units()

    # --- out: this unit's printers ----------------------------------------------------------------

    def _on_local_printer(self, event: Event) -> None:
        pid = event.printer_id
        if pid is not None and self.connected:
            self._dirty[pid] = None
            self._printers_wake.set()

    def _on_local_removed(self, event: Event) -> None:
        if event.printer_id is not None:
            self._dirty.pop(event.printer_id, None)
            self._outgoing.pop(event.printer_id, None)
            self._removed.add(event.printer_id)
            self._printers_wake.set()

    async def _printers_loop(self, client: aiomqtt.Client) -> None:
        """Publish what changed, each printer at most every FLUSH_S (a change after a quiet spell
        goes at once; a burst of reports becomes one message)."""
        manager = self._manager
        assert manager is not None
        while True:
            await self._printers_wake.wait()
            self._printers_wake.clear()
            for pid in list(self._removed):
                # Empty retained payloads clear the printer from the broker: it left the farm.
                await client.publish(topics.snapshot(self.node.id, pid), b"", qos=1, retain=True)
                await client.publish(topics.changes(self.node.id, pid), b"", qos=0, retain=True)
                self._removed.discard(pid)
            now = time.monotonic()
            wait = None
            for pid in list(self._dirty):
                due = self._last_sent.get(pid, -FLUSH_S) + FLUSH_S
                if due > now:
                    wait = min(wait or FLUSH_S, due - now)
                    continue
                del self._dirty[pid]
                view = manager.view(pid)
                if view is None:
                    continue
                out = self._outgoing.setdefault(pid, Outgoing())
                msg = out.next(view, now)
                if msg is None:
                    continue
                kind, body = msg
                self._last_sent[pid] = now
                if kind == "snapshot":
                    await client.publish(
                        topics.snapshot(self.node.id, pid), wire.dumps(body), qos=1, retain=True
                    )
                else:
                    await client.publish(
                        topics.changes(self.node.id, pid), wire.dumps(body), qos=0, retain=True
                    )
            if wait is not None:
                await asyncio.sleep(wait)
                self._printers_wake.set()

    # --- out: this unit's history -----------------------------------------------------------------

    async def _history_loop(self, client: aiomqtt.Client) -> None:
        assert self._history_out is not None
        topic = topics.history(self.node.id)

        async def publish(payload: bytes) -> None:
            await client.publish(topic, payload, qos=1, timeout=PUBLISH_TIMEOUT_S)

        while True:
            await self._history_wake.wait()
            self._history_wake.clear()
            sent = await self._history_out.flush(publish)
            if sent:
                log.debug("farm: %d history change(s) sent", sent)

    # --- in ---------------------------------------------------------------------------------------

    async def _on_message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        try:
            await self._handle(message)
        except wire.WireError as e:
            log.warning("farm: ignored a message on %s: %s", message.topic.value, e)
        except Exception:
            log.exception("farm: a message on %s could not be handled", message.topic.value)
        if message.qos > 0:
            client._client.ack(message.mid, message.qos)

    async def _handle(self, message: aiomqtt.Message) -> None:
        t = topics.parse(message.topic.value)
        if t is None:
            return
        payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
        if t.node == self.node.id and t.kind != "commands" and t.kind != "replies":
            return  # our own messages, back from the broker
        if t.kind == "status":
            if payload:
                self._publish_changes(self.remote.status(t.node, wire.loads(payload), time.time()))
                self._publish_units()
        elif t.kind == "snapshot" and t.printer_id is not None:
            if not payload:
                changes = self.remote.removed(t.node, t.printer_id)
            else:
                body = wire.loads(payload)
                base, view = body.get("base"), body.get("view")
                if not isinstance(base, str) or not isinstance(view, dict):
                    raise wire.WireError("a snapshot needs 'base' and 'view'")
                changes = self.remote.snapshot(t.node, t.printer_id, base, {**view, "id": t.printer_id})
            self._publish_changes(changes)
        elif t.kind == "changes" and t.printer_id is not None and payload:
            body = wire.loads(payload)
            base, diff = body.get("base"), body.get("changes")
            if not isinstance(base, str) or not isinstance(diff, dict):
                raise wire.WireError("changes need 'base' and 'changes'")
            diff.pop("id", None)
            self._publish_changes(self.remote.changes(t.node, t.printer_id, base, diff))
        elif t.kind == "history":
            assert self._history_in is not None
            rec = await self._history_in.receive(t.node, payload)
            if rec is not None:
                action = "started" if rec.open else "ended"
                body = {"action": action, "record": record_json(rec)}
                self.ctx.bus.publish(Event(FARM_HISTORY, rec.printer_id, Frame("history", body)))
        elif t.kind == "commands":
            await self._on_request(wire.loads(payload))
        elif t.kind == "replies":
            self._on_reply(wire.loads(payload))

    def _publish_changes(self, changes: list[Change]) -> None:
        bus = self.ctx.bus
        for c in changes:
            if c.kind == "added":
                bus.publish(
                    Event(FARM_PRINTER_ADDED, c.printer_id, Frame("printer_added", {"printer": c.data}))
                )
            elif c.kind == "changed":
                bus.publish(Event(FARM_PRINTER, c.printer_id, Frame("printer", {"changes": c.data})))
            else:
                bus.publish(Event(FARM_PRINTER_REMOVED, c.printer_id, Frame("printer_removed", {})))

    def _publish_units(self) -> None:
        self.ctx.bus.publish(Event(FARM_UNITS, None, self.farm_json()))

    def farm_json(self) -> dict[str, Any]:
        """``GET /api/farm`` and the ``farm`` WebSocket frame."""
        return {
            "node": self.node.id,
            "name": self.node.name,
            "enabled": True,
            "broker": {
                "url": self.cfg.url,
                "connected": self.connected,
                "error": self.error,
            },
            "units": [u.to_json() for _, u in sorted(self.remote.units.items())],
            "clashes": self.remote.health()["clashes"],
        }

    # --- commands: the calling unit ---------------------------------------------------------------

    def views(self) -> list[dict[str, Any]]:
        return self.remote.views()

    def view(self, printer_id: str) -> dict[str, Any] | None:
        return self.remote.view(printer_id)

    async def send_command(self, printer_id: str, action: str, params: dict[str, Any], user: Any) -> str:
        owner = self.remote.owner(printer_id)
        client = self._client
        if owner is None:
            raise CommandError("bad_request", "No such printer in the farm.")
        if client is None or not self.connected:
            raise CommandError(
                "offline", "This unit cannot reach the farm broker, so it cannot reach that printer."
            )
        if not self.remote.online(owner):
            unit = self.remote.units.get(owner)
            raise CommandError("offline", f"Its unit {unit.name if unit else owner} is offline.")
        correlation = uuid.uuid4().hex
        body = wire.command_request(
            correlation,
            self.node.id,
            printer_id,
            action,
            params,
            getattr(user, "name", "?"),
            getattr(user, "role", "?"),
        )
        loop = asyncio.get_running_loop()
        timer = loop.call_later(COMMAND_TIMEOUT_S, self._expire, correlation, owner)
        self._pending[correlation] = (printer_id, action, timer)
        try:
            await client.publish(topics.commands(owner), wire.dumps(body), qos=1, timeout=PUBLISH_TIMEOUT_S)
        except (aiomqtt.MqttError, TimeoutError):
            timer.cancel()
            self._pending.pop(correlation, None)
            raise CommandError("offline", "The farm broker did not take the command; try again.") from None
        return correlation

    def _expire(self, correlation: str, owner: str) -> None:
        pending = self._pending.pop(correlation, None)
        if pending is not None:
            unit = self.remote.units.get(owner)
            self._outcome(
                correlation,
                pending[0],
                pending[1],
                "timeout",
                f"No answer from unit {unit.name if unit else owner} within {COMMAND_TIMEOUT_S:g} s.",
            )

    def _on_reply(self, body: dict[str, Any]) -> None:
        correlation = wire.correlation_of(body)
        result = body.get("result")
        if result == "sent":
            return  # the printer has it; its answer follows
        pending = self._pending.pop(correlation, None)
        if pending is None:
            return  # answered already, or expired
        pending[2].cancel()
        message = body.get("message") if isinstance(body.get("message"), str) else None
        final = result if result in ("success", "failed", "timeout") else "failed"
        self._outcome(correlation, pending[0], pending[1], final, message and message[:500])

    def _outcome(
        self, correlation: str, printer_id: str, action: str, result: str, message: str | None
    ) -> None:
        outcome = CommandOutcome(sequence_id=correlation, action=action, result=result, message=message)
        self.ctx.bus.publish(Event(FARM_COMMAND, printer_id, Frame("command", outcome.to_json())))

    # --- commands: the owning unit ----------------------------------------------------------------

    def _reply(self, topic: str, correlation: str, result: str, message: str | None) -> None:
        try:
            self._replies.put_nowait(
                (topic, wire.dumps(wire.command_reply(correlation, self.node.id, result, message)))
            )
        except asyncio.QueueFull:
            log.warning("farm: too many command replies waiting; one is dropped (its caller times out)")

    async def _replies_loop(self, client: aiomqtt.Client) -> None:
        while True:
            topic, payload = await self._replies.get()
            await client.publish(topic, payload, qos=1, timeout=PUBLISH_TIMEOUT_S)

    async def _on_request(self, body: dict[str, Any]) -> None:
        correlation = wire.correlation_of(body)
        sender = wire.node_of(body)
        reply_to = topics.replies(sender)  # never a topic the request names: replies go to the caller
        user = body.get("user") if isinstance(body.get("user"), dict) else {}
        who = f"{str(user.get('name'))[:64]!r} at unit {sender}"
        printer_id = body.get("printer")
        link = (
            self._manager.get(printer_id)
            if self._manager is not None and isinstance(printer_id, str)
            else None
        )
        if link is None:
            self._reply(reply_to, correlation, "refused", "That printer is not on this unit.")
            return
        why = refusal(user.get("role"), body.get("action"))
        if why is not None:
            log.warning(
                "farm: refused %s for printer %s from %s: %s", body.get("action"), printer_id, who, why
            )
            self._reply(reply_to, correlation, "refused", f"Refused by unit {self.node.name}: {why}.")
            return
        params = body.get("params") if isinstance(body.get("params"), dict) else {}
        self._requests_in_flight += 1
        try:
            action, checked = command_params({**params, "action": body.get("action")})
            seq = await link.send_command(action, checked)
        except ApiError as e:
            self._reply(reply_to, correlation, "refused", e.message)
            return
        except CommandError as e:
            self._reply(reply_to, correlation, "failed", e.message)
            return
        finally:
            self._requests_in_flight -= 1
        log.info("farm: %s sent to printer %s for %s", action, printer_id, who)
        self._reply(reply_to, correlation, "sent", None)
        early = self._early.pop((printer_id, seq), None)
        if early is not None:  # the printer answered before send_command returned
            self._reply(reply_to, correlation, early.result, early.message)
        else:
            self._awaiting[(printer_id, seq)] = (correlation, reply_to)

    def _on_local_outcome(self, event: Event) -> None:
        outcome = event.data
        if event.printer_id is None or not isinstance(outcome, CommandOutcome):
            return
        key = (event.printer_id, outcome.sequence_id)
        waiting = self._awaiting.pop(key, None)
        if waiting is not None:
            self._reply(waiting[1], waiting[0], outcome.result, outcome.message)
        elif self._requests_in_flight:
            # Maybe the answer to a request whose send_command has not returned yet: kept a moment.
            self._early[key] = outcome
            while len(self._early) > EARLY_KEPT:
                del self._early[next(iter(self._early))]
