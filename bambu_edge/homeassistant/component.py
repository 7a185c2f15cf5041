"""Home Assistant discovery as a component (``homeassistant:``; null: off).

One MQTT session to the configured broker, reconnected forever with backoff: on each connection
the unit's status (retained, with a last will saying offline), every printer's discovery configs,
availability and state (all retained, so Home Assistant has them after its own restart). Printer
updates only mark a printer dirty (a listener, in the publisher's turn); a task publishes dirty
printers' state at most every ``MIN_INTERVAL_S`` and only when it changed: a broker elsewhere on
the LAN sees a few small messages a second at most, whatever the report rate.

Commands from Home Assistant's buttons and light go through ``PrinterLink.send_command``, the path
and validation of ``POST /api/printers/{id}/commands``; the broker's authentication decides who
may publish them, as the dashboard's login does for the API (docs/homeassistant.md)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import aiomqtt
import orjson

from bambu_edge.bus import Event, Listener
from bambu_edge.component import Component, Context
from bambu_edge.homeassistant import discovery
from bambu_edge.homeassistant.config import HOMEASSISTANT_SECTION, HomeAssistantConfig
from bambu_edge.node import NodeComponent
from bambu_edge.printers.backoff import Backoff
from bambu_edge.printers.base import PRINTER_ADDED_EVENT, PRINTER_EVENT, PRINTER_REMOVED_EVENT, CommandError
from bambu_edge.printers.components import PrintersComponent
from bambu_edge.printers.manager import PrinterManager

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 2.0


class HomeAssistantComponent(Component):
    name = "homeassistant"
    optional = True
    requires = ("printers",)
    config_section = HOMEASSISTANT_SECTION

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.cfg: HomeAssistantConfig | None = ctx.section
        self.connected = False
        self.error: str | None = None
        self.commands = 0
        self._client: aiomqtt.Client | None = None
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._published: dict[str, bytes] = {}  # printer id -> last state payload sent
        self._configs: dict[str, set[str]] = {}  # printer id -> its config topics
        self._listener: Listener | None = None

    @property
    def manager(self) -> PrinterManager:
        return self.ctx.require("printers", PrintersComponent).manager

    @property
    def node(self) -> str:
        comp = self.ctx.running("node", NodeComponent)
        return comp.node.id if comp is not None else "bambu-edge"

    async def start(self) -> None:
        if self.cfg is None:
            return
        self._listener = self.ctx.bus.listen(
            PRINTER_EVENT, PRINTER_ADDED_EVENT, PRINTER_REMOVED_EVENT, callback=self._on_event
        )
        self.ctx.tasks.spawn(self._run(), name="homeassistant-session")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        client = self._client
        if client is not None:  # say so now: the will only fires when the session drops
            try:
                async with asyncio.timeout(1.0):
                    await client.publish(
                        discovery.node_status_topic(self.node), discovery.OFFLINE, qos=1, retain=True
                    )
            except (aiomqtt.MqttError, TimeoutError):
                pass

    def _on_event(self, event: Event) -> None:
        if event.printer_id is None:
            return
        if event.kind == PRINTER_EVENT:
            changes = getattr(event.data, "changes", {})
            if not changes or set(changes) <= {"updated_at"}:
                return
        if event.kind == PRINTER_REMOVED_EVENT:
            self.ctx.tasks.spawn(self._forget(event.printer_id), name="homeassistant-forget")
            return
        if event.kind == PRINTER_ADDED_EVENT:
            self._configs.pop(event.printer_id, None)  # settings may have changed: announce again
        self._dirty.add(event.printer_id)
        self._wake.set()

    # --- session -----------------------------------------------------------------------------------

    def _tls(self) -> ssl.SSLContext | None:
        cfg = self.cfg
        assert cfg is not None
        if not cfg.tls:
            return None
        return ssl.create_default_context(cafile=cfg.ca_file)

    async def _run(self) -> None:
        cfg = self.cfg
        assert cfg is not None
        backoff = Backoff(initial=1.0, cap=60.0)
        tls = await asyncio.to_thread(self._tls)
        if not cfg.tls:
            log.info(
                "Home Assistant: mqtt://%s:%d is not encrypted; fine on a trusted LAN", cfg.host, cfg.port
            )
        status = discovery.node_status_topic(self.node)
        while True:
            try:
                async with aiomqtt.Client(
                    cfg.host,
                    cfg.port,
                    username=cfg.username,
                    password=cfg.password,
                    tls_context=tls,
                    identifier=f"bambu-edge-{self.node}-ha",
                    will=aiomqtt.Will(status, discovery.OFFLINE, qos=1, retain=True),
                    keepalive=60,
                    timeout=10,
                ) as client:
                    self._client = client
                    await self._session(client, status)
            except aiomqtt.MqttError as e:
                if self.connected or self.error != str(e):
                    log.warning("Home Assistant: broker %s:%d: %s; retrying", cfg.host, cfg.port, e)
                self.error = str(e)
            finally:
                self._client = None
                self.connected = False
            await asyncio.sleep(backoff.next())

    async def _session(self, client: aiomqtt.Client, status: str) -> None:
        node = self.node
        await client.subscribe(f"{discovery.ROOT}/{node}/+/command")
        await client.subscribe(f"{discovery.ROOT}/{node}/+/light/set")
        self._configs.clear()
        self._published.clear()
        self._dirty.update(link.printer_id for link in self.manager.links())
        self._wake.set()
        await client.publish(status, discovery.ONLINE, qos=1, retain=True)
        self.connected, self.error = True, None
        log.info("Home Assistant: connected; announcing %d printer(s)", len(self._dirty))
        publisher = asyncio.create_task(self._publisher(client), name="homeassistant-publisher")
        try:
            async for message in client.messages:
                self._on_command(str(message.topic), message.payload)
        finally:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
        raise aiomqtt.MqttError("the broker ended the session")

    async def _publisher(self, client: aiomqtt.Client) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            for pid in dirty:
                view = self.manager.view(pid)
                if view is not None:
                    await self._publish_printer(client, pid, view)
            await asyncio.sleep(MIN_INTERVAL_S)

    async def _publish_printer(self, client: aiomqtt.Client, pid: str, view: dict[str, Any]) -> None:
        cfg = self.cfg
        assert cfg is not None
        base = discovery.base_topic(self.node, pid)
        topics = discovery.configs(cfg.prefix, self.node, view)
        known = self._configs.get(pid)
        if known is None or set(topics) != known:
            for topic in (known or set()) - set(topics):  # a tray that is gone
                await client.publish(topic, b"", qos=1, retain=True)
            for topic, payload in topics.items():
                if known is None or topic not in known:
                    await client.publish(topic, orjson.dumps(payload), qos=1, retain=True)
            self._configs[pid] = set(topics)
        body = orjson.dumps(discovery.state(view))
        if self._published.get(pid) != body:
            await client.publish(
                f"{base}/availability", discovery.availability(view["link"]["state"]), retain=True
            )
            await client.publish(f"{base}/state", body, retain=True)
            self._published[pid] = body

    async def _forget(self, pid: str) -> None:
        client, topics = self._client, self._configs.pop(pid, set())
        self._published.pop(pid, None)
        if client is None:
            return
        try:
            for topic in topics:  # an empty retained config removes the entity
                await client.publish(topic, b"", qos=1, retain=True)
            base = discovery.base_topic(self.node, pid)
            for leaf in ("state", "availability"):
                await client.publish(f"{base}/{leaf}", b"", retain=True)
        except aiomqtt.MqttError:
            pass

    # --- commands ----------------------------------------------------------------------------------

    def _on_command(self, topic: str, payload: Any) -> None:
        parsed = discovery.command(
            topic, bytes(payload) if isinstance(payload, bytes | bytearray) else b"", self.node
        )
        if parsed is None:
            return
        pid, action, params = parsed
        self.ctx.tasks.spawn(self._send(pid, action, params), name=f"homeassistant-{action}")

    async def _send(self, pid: str, action: str, params: dict[str, Any]) -> None:
        link = self.manager.get(pid)
        if link is None:
            log.warning("Home Assistant asked for %s on %s, which is not a printer here", action, pid)
            return
        try:
            seq = await link.send_command(action, params)
        except CommandError as e:
            log.warning("Home Assistant: %s on %s not sent: %s", action, pid, e.message)
            return
        self.commands += 1
        log.info("Home Assistant: %s sent to %s (sequence_id %s)", action, pid, seq)

    def health(self) -> dict[str, Any]:
        if self.cfg is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "connected": self.connected,
            "broker_error": self.error,
            "commands": self.commands,
        }
