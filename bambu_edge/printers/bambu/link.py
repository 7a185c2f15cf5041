"""One MQTT-over-TLS session to one Bambu printer: live state in, commands out.

The daemon is the printer's only MQTT client (P1/A1 firmware copes badly with more), so this link
never gives up: it reconnects forever with backoff, slowly after a rejected access code, and holds
``tls_mismatch`` until the user accepts a changed certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Mapping
from typing import Any

import aiomqtt
import orjson
from aiomqtt.exceptions import MqttConnectError

from bambu_edge.bus import Event, EventBus
from bambu_edge.config import PrinterConfig
from bambu_edge.logs import printer_logger
from bambu_edge.printers.backoff import Backoff, auth_backoff
from bambu_edge.printers.bambu import commands
from bambu_edge.printers.bambu.tls import (
    TlsMismatch,
    ca_context,
    fetch_certificate,
    is_verify_failure,
    leaf_common_name,
    pinned_context,
)
from bambu_edge.printers.base import COMMAND_EVENT, PRINTER_EVENT, CommandError, LinkState, PrinterLink
from bambu_edge.printers.state import PrinterState
from bambu_edge.store.pins import CertPins

USERNAME = "bblp"
AUTH_CODES = {4, 5, 134, 135}  # MQTT 3.1.1 bad credentials / not authorized, and their v5 codes
DEVELOPER_MODE_HINT = (
    "Since 2025 firmware, printers accept control commands over the LAN only with Developer Mode on "
    "(printer screen: Settings > LAN Only Mode > Developer Mode)."
)
TLS_RETRY_S = 300.0  # a changed certificate will not change back by itself; look again now and then


class _StaleLink(Exception):
    pass


class BambuLink(PrinterLink):
    def __init__(
        self,
        cfg: PrinterConfig,
        bus: EventBus,
        pins: CertPins,
        *,
        backoff: Backoff | None = None,
        auth_retry: Backoff | None = None,
        command_timeout: float = 10.0,
        keepalive: int = 15,
        silence_s: float = 30.0,
        connect_timeout: float = 10.0,
        max_payload: int = 256 * 1024,
    ):
        self.cfg = cfg
        self.bus = bus
        self.pins = pins
        self.state = PrinterState(cfg.id, cfg.name, cfg.serial, cfg.model)
        self.log = printer_logger(__name__, cfg.id)
        self.backoff = backoff or Backoff()
        self.auth_retry = auth_retry or auth_backoff()
        self.command_timeout = command_timeout
        self.keepalive = keepalive
        self.silence_s = silence_s
        self.connect_timeout = connect_timeout
        self.max_payload = max_payload
        self.report_topic = f"device/{cfg.serial}/report"
        self.request_topic = f"device/{cfg.serial}/request"
        self._seq = commands.SequenceIds()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._pending: dict[tuple[str, str, str], tuple[str, asyncio.TimerHandle]] = {}
        self._fingerprint: str | None = None
        self._offered: str | None = None
        self._last_report = 0.0
        self._warned_at = 0.0
        self._suppressed = 0
        self.connect_attempts = 0  # for tests and diagnostics

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._set_link(LinkState.CONNECTING)
        self._task = asyncio.create_task(self._run(), name=f"bambu-link-{self.cfg.id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _, timer in self._pending.values():
            timer.cancel()
        self._pending.clear()
        self._set_link(LinkState.OFFLINE, "stopped")

    @property
    def link_state(self) -> str:
        return self.state.view()["link"]["state"]

    def _set_link(self, state: LinkState, error: str | None = None) -> None:
        before = self.link_state
        changes = self.state.set_link(
            state, error, fingerprint=self._fingerprint, offered_fingerprint=self._offered
        )
        self._publish_changes(changes)
        if before != state:
            log = (
                self.log.warning
                if state in (LinkState.AUTH_FAILED, LinkState.TLS_MISMATCH)
                else self.log.info
            )
            log("link %s%s", state.value, f": {error}" if error else "")

    def _publish_changes(self, changes: dict[str, Any]) -> None:
        if changes:
            self.bus.publish(Event(PRINTER_EVENT, self.cfg.id, {"changes": changes}))

    async def _sleep(self, delay: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    # --- connection loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            delay = await self._attempt()
            await self._sleep(delay)

    async def _attempt(self) -> float:
        """One connection, until it ends; returns how long to wait before the next."""
        self.connect_attempts += 1
        try:
            ctx = await self._tls_context()
            self._set_link(LinkState.CONNECTING)
            async with aiomqtt.Client(
                self.cfg.host,
                self.cfg.mqtt_port,
                username=USERNAME,
                password=self.cfg.access_code,
                identifier=f"bambu-edge-{self.cfg.id}-{os.urandom(3).hex()}",
                tls_context=ctx,
                keepalive=self.keepalive,
                timeout=self.connect_timeout,
                clean_session=True,
            ) as client:
                self._check_common_name(client)
                self._client = client
                self.auth_retry.reset()
                self._set_link(LinkState.CONNECTED)
                await client.subscribe(self.report_topic)
                self._last_report = time.monotonic()
                await self._send(commands.get_version(self._seq.next()))
                await self._send(commands.pushall(self._seq.next()))
                try:
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._watchdog(client))
                        await self._receive(client)
                except ExceptionGroup as group:
                    raise _first(group) from None
            return self.backoff.next()
        except TlsMismatch as e:
            await self._mismatch(e)
            return TLS_RETRY_S
        except MqttConnectError as e:
            rc = getattr(e.rc, "value", e.rc)
            if rc in AUTH_CODES:
                self._set_link(LinkState.AUTH_FAILED, "the printer rejected the access code")
                return self.auth_retry.next()
            return await self._lost(e)
        except (aiomqtt.MqttError, OSError, TimeoutError, _StaleLink) as e:
            return await self._lost(e)
        finally:
            self._client = None

    async def _lost(self, e: BaseException) -> float:
        if is_verify_failure(e) and self._fingerprint:
            try:
                pem, fp = await fetch_certificate(self.cfg.host, self.cfg.mqtt_port, self.connect_timeout)
            except (OSError, TimeoutError) as probe_error:
                self._set_link(LinkState.OFFLINE, f"TLS verification failed; {probe_error}")
                return self.backoff.next()
            if fp != self._fingerprint:
                await self._mismatch(
                    TlsMismatch(pem, fp, "the printer presents a different certificate than the pinned one")
                )
                return TLS_RETRY_S
        self._set_link(LinkState.OFFLINE, _describe(e))
        return self.backoff.next()

    async def _mismatch(self, e: TlsMismatch) -> None:
        self._offered = e.offered_fingerprint
        if self._fingerprint:
            await self.pins.set_pending(self.cfg.id, e.offered_pem, e.offered_fingerprint)
        self._set_link(LinkState.TLS_MISMATCH, str(e))

    async def _tls_context(self):
        tls = self.cfg.tls
        if tls.ca_file:
            return ca_context(tls.ca_file)
        pin = await self.pins.get(self.cfg.id)
        if pin is not None and pin.pem and (tls.fingerprint is None or pin.fingerprint == tls.fingerprint):
            self._fingerprint = pin.fingerprint
            return pinned_context(pin.pem)
        # Trust on first use (or check against the configured fingerprint), then pin.
        pem, fp = await fetch_certificate(self.cfg.host, self.cfg.mqtt_port, self.connect_timeout)
        if tls.fingerprint and fp != tls.fingerprint:
            raise TlsMismatch(
                pem, fp, "the printer's certificate does not match tls.fingerprint in the config"
            )
        await self.pins.pin(self.cfg.id, pem, fp)
        self._fingerprint, self._offered = fp, None
        self.log.info("pinned the printer's certificate (SHA-256 %s)", fp)
        return pinned_context(pem)

    def _check_common_name(self, client: aiomqtt.Client) -> None:
        if not self.cfg.tls.ca_file:
            return  # a pinned leaf is checked whole; the name adds nothing
        sock = client._client.socket()  # paho's TLS socket
        cn = leaf_common_name(sock) if sock is not None else None
        if cn is not None and cn != self.cfg.serial:
            raise TlsMismatch("", "", f"the certificate is for {cn}, not for serial {self.cfg.serial}")

    async def accept_certificate(self) -> None:
        if not await self.pins.accept_pending(self.cfg.id):
            raise CommandError("bad_request", "there is no new certificate to accept")
        pin = await self.pins.get(self.cfg.id)
        self._fingerprint = pin.fingerprint if pin else None
        self._offered = None
        self.log.info("user accepted the printer's new certificate")
        self.backoff.reset()
        self._wake.set()

    # --- messages ----------------------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self._last_report = time.monotonic()
            self._on_payload(message.payload)
        raise _StaleLink("the printer closed the connection")

    async def _watchdog(self, client: aiomqtt.Client) -> None:
        nudged = False
        while True:
            await asyncio.sleep(min(5.0, self.silence_s / 3))
            silent = time.monotonic() - self._last_report
            if silent > 2 * self.silence_s:
                raise _StaleLink(f"no report for {silent:.0f} s")
            if silent > self.silence_s and not nudged:
                await self._send(commands.push_start(self._seq.next()))
                nudged = True
            elif silent <= self.silence_s:
                nudged = False

    def _on_payload(self, payload: Any) -> None:
        if not isinstance(payload, bytes | bytearray):
            return self._warn("ignored a report that is not bytes")
        if len(payload) > self.max_payload:
            return self._warn(f"ignored a {len(payload)}-byte report (limit {self.max_payload})")
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError as e:
            return self._warn(f"ignored a report that is not JSON ({e.msg})")
        if not isinstance(msg, dict):
            return self._warn("ignored a report that is not a JSON object")
        key = commands.reply_key(msg)
        if key is not None and key in self._pending:
            self._resolve(key, msg)
        self._publish_changes(self.state.apply_message(msg))
        if self.backoff.attempt:
            self.backoff.reset()  # a working link earns a fast reconnect next time

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._warned_at < 60:
            self._suppressed += 1
            return
        more = f" (and {self._suppressed} more in the last minute)" if self._suppressed else ""
        self.log.warning("%s%s", text, more)
        self._warned_at, self._suppressed = now, 0

    # --- commands ----------------------------------------------------------------------------------

    async def send_command(self, action: str, params: Mapping[str, Any]) -> str:
        cmd = commands.build(action, params, self._seq.next())
        if self._client is None or self.link_state != LinkState.CONNECTED:
            raise CommandError("offline", f"{self.cfg.name} is not connected ({self.link_state})")
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.command_timeout, self._timed_out, cmd.key)
        self._pending[cmd.key] = (action, timer)  # before publishing: the reply can be quick
        try:
            await self._send(cmd)
        except aiomqtt.MqttError as e:
            timer.cancel()
            self._pending.pop(cmd.key, None)
            raise CommandError("offline", f"could not send to {self.cfg.name}: {e}") from None
        self.log.info("sent %s (sequence_id %s)", action, cmd.sequence_id)
        return cmd.sequence_id

    async def _send(self, cmd: commands.Command) -> None:
        if self._client is None:
            raise aiomqtt.MqttError("not connected")
        await self._client.publish(self.request_topic, orjson.dumps(cmd.payload), qos=cmd.qos)

    def _resolve(self, key: tuple[str, str, str], msg: dict[str, Any]) -> None:
        action, timer = self._pending.pop(key)
        timer.cancel()
        ok, reason = commands.reply_result(msg)
        if ok:
            self._command_event(key[2], action, "success", None)
        else:
            because = f" ({reason})" if reason else ""
            self.log.warning("printer refused %s%s", action, because)
            self._command_event(
                key[2], action, "failed", f"The printer refused the command{because}. {DEVELOPER_MODE_HINT}"
            )

    def _timed_out(self, key: tuple[str, str, str]) -> None:
        entry = self._pending.pop(key, None)
        if entry is None:
            return
        action = entry[0]
        message = f"The printer did not answer within {self.command_timeout:.0f} s."
        if time.monotonic() - self._last_report < self.command_timeout and self._client is not None:
            message += (
                " It is still sending its status, so it may be ignoring LAN commands. " + DEVELOPER_MODE_HINT
            )
        self.log.warning("no answer to %s", action)
        self._command_event(key[2], action, "timeout", message)

    def _command_event(self, seq: str, action: str, result: str, message: str | None) -> None:
        self.bus.publish(
            Event(
                COMMAND_EVENT,
                self.cfg.id,
                {"sequence_id": seq, "action": action, "result": result, "message": message},
            )
        )


def _first(group: BaseExceptionGroup) -> BaseException:
    e: BaseException = group
    while isinstance(e, BaseExceptionGroup):
        e = e.exceptions[0]
    return e


def _describe(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    if "Connection refused" in text or isinstance(e, ConnectionRefusedError):
        return "connection refused (is the printer on and on the network?)"
    if isinstance(e, TimeoutError) or "timed out" in text.lower():
        return "no answer from the printer (timed out)"
    return text[:200]
