"""One MQTT-over-TLS session to one Bambu printer: live state in, commands out.

The daemon is the printer's only MQTT client (P1/A1 firmware copes badly with more), so this link
never gives up: it reconnects forever with backoff, slowly after a rejected access code, and holds
``tls_mismatch`` until the user accepts a changed certificate (BAMBU.md sections 2-4, 6, 11).

A library piece: it takes its printer's settings (``BambuSettings``), a ``TrustStore`` for pinned
certificates and a ``LinkListener`` that hears about view changes and command outcomes; it knows
nothing of the program around it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiomqtt
import orjson
import paho.mqtt.client as paho
from aiomqtt.exceptions import MqttConnectError

from bambu_edge.printers.backoff import Backoff, slow_backoff
from bambu_edge.printers.bambu import commands
from bambu_edge.printers.bambu.ftps import PrinterFiles, PrinterTLSError
from bambu_edge.printers.bambu.report import BambuState
from bambu_edge.printers.bambu.settings import BambuSettings
from bambu_edge.printers.bambu.tls import (
    PeerCertificate,
    TrustStore,
    ca_context,
    fetch_certificate,
    is_serial_mismatch,
    is_verify_failure,
    pinned_context,
    with_common_name,
)
from bambu_edge.printers.base import (
    WARN_INTERVAL_S,
    CommandError,
    CommandOutcome,
    LinkListener,
    LinkState,
    PrinterUpdate,
    ReconnectingLink,
    printer_logger,
)
from bambu_edge.printers.beat import sleep_to_beat

USERNAME = "bblp"
# CONNACK codes for a wrong access code: MQTT 3.1.1 bad credentials (4) / not authorised (5), and the
# MQTT 5 reason codes paho reports them as (134, 135).
AUTH_CODES = frozenset({4, 5, 134, 135})
DEVELOPER_MODE_HINT = (
    "Since 2025, printer firmware accepts control commands over the LAN only in Developer Mode "
    "(on the printer: Settings > LAN Only Mode > Developer Mode)."
)


class _StaleLink(Exception):
    pass


class _Mismatch(Exception):
    """The printer presents a certificate we do not trust."""

    def __init__(self, message: str, offered: PeerCertificate | None, pending: bool):
        super().__init__(message)
        self.offered = offered
        self.pending = pending  # keep it for the user to accept


class _Inbox(asyncio.Queue):  # type: ignore[type-arg]
    """aiomqtt's ``queue_type``: each message is handed to ``handler`` in paho's read callback, on
    the event loop, as it arrives. aiomqtt's message iterator would cost a task and an
    ``asyncio.wait`` per message (a quarter of the daemon's busy time with ten printers)."""

    def __init__(self, handler: Callable[[aiomqtt.Message], None], maxsize: int = 0):
        super().__init__(maxsize)
        self._handler = handler

    def put_nowait(self, item: aiomqtt.Message) -> None:
        self._handler(item)


# paho's housekeeping (a keepalive ping when one is due, a connection dropped when its ping went
# unanswered) needs no finer grain than this: a ping goes out at most this late, well inside the
# broker's 1.5 x keepalive (15 s here) before it gives up on us.
HOUSEKEEPING_S = 2.5


class _MqttClient(aiomqtt.Client):
    """aiomqtt's client with paho's housekeeping on the links' shared beat (printers/beat.py)
    instead of a task waking every second for each printer. aiomqtt 2.5 runs it in ``_misc_loop``
    (pinned in pyproject.toml; test_keepalive_pings_go_out_on_the_shared_beat fails if it changes)."""

    housekeeping_s = HOUSEKEEPING_S

    async def _misc_loop(self) -> None:
        while self._client.loop_misc() == paho.MQTT_ERR_SUCCESS:
            await sleep_to_beat(self.housekeeping_s)


class BambuLink(ReconnectingLink):
    def __init__(
        self,
        settings: BambuSettings,
        pins: TrustStore,
        listener: LinkListener,
        *,
        backoff: Backoff | None = None,
        auth_backoff: Backoff | None = None,
        tls_backoff: Backoff | None = None,
        command_timeout: float = 10.0,
        keepalive: int = 15,
        silence_s: float = 30.0,
        connect_timeout: float = 10.0,
        probe_timeout: float = 5.0,
        max_payload: int = 256 * 1024,
        stop_timeout: float = 3.0,
    ):
        self.settings = settings
        self.pins = pins
        self.listener = listener
        self.state: BambuState = BambuState(settings.id, settings.name, settings.serial, settings.model)
        self.log = printer_logger(__name__, settings.id)
        self.backoff = backoff or Backoff()
        self.auth_backoff = auth_backoff or slow_backoff()
        self.tls_backoff = tls_backoff or slow_backoff()
        self.command_timeout = command_timeout
        self.keepalive = keepalive
        self.silence_s = silence_s  # no report this long: nudge; twice this long: reconnect
        self.connect_timeout = connect_timeout
        self.probe_timeout = probe_timeout
        self.max_payload = max_payload
        self.stop_timeout = stop_timeout
        self.report_topic = f"device/{settings.serial}/report"
        self.request_topic = f"device/{settings.serial}/request"
        self._seq = commands.SequenceIds()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._pending: dict[commands.ReplyKey, tuple[str, asyncio.TimerHandle]] = {}
        self._fingerprint: str | None = None  # the trusted (pinned or configured) certificate
        self._offered: str | None = None  # the certificate offered instead, while tls_mismatch
        self._last_report = 0.0
        self._warned_at: float | None = None
        self._suppressed = 0
        self.connect_attempts = 0  # for tests and diagnostics
        self._files: PrinterFiles | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._set_link(LinkState.CONNECTING)
        self._task = asyncio.create_task(self._run(), name=f"bambu-link-{self.settings.id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # aiomqtt's exit waits for a polite DISCONNECT; a second cancel cuts that short, so the
            # daemon's 5 s stop budget holds even against a printer that stopped answering.
            _, pending = await asyncio.wait({task}, timeout=self.stop_timeout)
            if pending:
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
            if not task.done():
                self.log.warning("link task did not stop in time")
            elif not task.cancelled() and task.exception() is not None:
                self.log.error("link task had failed", exc_info=task.exception())
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
            bad = state in (LinkState.AUTH_FAILED, LinkState.TLS_MISMATCH)
            (self.log.warning if bad else self.log.info)(
                "link %s%s", state.value, f": {error}" if error else ""
            )

    def _publish_changes(self, changes: dict[str, Any], full: bool = False) -> None:
        if changes:
            state = self.state
            update = PrinterUpdate(
                changes, state.view(), report="updated_at" in changes, full=full, identity=state.identity
            )
            self.listener.on_update(self.settings.id, update)

    # --- connection loop ---------------------------------------------------------------------------

    async def _attempt(self) -> float:
        """One connection, until it ends; returns how long to wait before the next."""
        self.connect_attempts += 1
        try:
            ctx = await self._tls_context()
        except _Mismatch as e:
            return await self._mismatch(e)
        except (OSError, TimeoutError) as e:  # the certificate probe could not reach the printer
            return self._offline(e)
        try:
            async with _MqttClient(
                self.settings.host,
                self.settings.mqtt_port,
                username=USERNAME,
                password=self.settings.access_code,
                identifier=f"bambu-edge-{self.settings.id}-{os.urandom(3).hex()}",
                tls_context=ctx,
                keepalive=self.keepalive,
                timeout=self.connect_timeout,
                clean_session=True,
                queue_type=functools.partial(_Inbox, self._on_message),  # type: ignore[arg-type]
            ) as client:
                await self._session(client)
        except MqttConnectError as e:
            if getattr(e.rc, "value", e.rc) in AUTH_CODES:
                self.backoff.reset()
                self._set_link(LinkState.AUTH_FAILED, "the printer rejected the access code")
                return self.auth_backoff.next()
            return self._offline(e)
        except (aiomqtt.MqttError, OSError, TimeoutError, _StaleLink) as e:
            if is_serial_mismatch(e) or is_verify_failure(e):
                return await self._untrusted(e)
            return self._offline(e)
        finally:
            self._client = None
        return self.backoff.next()  # the printer ended a session cleanly: reconnect soon

    async def _session(self, client: aiomqtt.Client) -> None:
        self._client = client
        self._offered = None
        self.auth_backoff.reset()
        self.tls_backoff.reset()
        self._wake.clear()  # a wake-up asked for a connection: this is it (not a quick retry later)
        self._set_link(LinkState.CONNECTED)
        await client.subscribe(self.report_topic)
        self._last_report = time.monotonic()
        # As HAB does: the version (model, firmware), then a full report that replaces stale state.
        await self._send(commands.get_version(self._seq.next()))
        await self._send(commands.pushall(self._seq.next()))
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._watchdog())
                await self._receive(client)
        except ExceptionGroup as group:
            raise _first(group) from None

    def _offline(self, e: BaseException) -> float:
        self._set_link(LinkState.OFFLINE, describe_error(e))
        return self.backoff.next()

    # --- certificates ------------------------------------------------------------------------------

    async def _tls_context(self) -> ssl.SSLContext:
        st = self.settings
        if st.ca_file:
            return ca_context(st.ca_file, st.serial)
        pin = await self.pins.get(st.id)
        if pin is not None and pin.pem and (st.fingerprint is None or pin.fingerprint == st.fingerprint):
            self._fingerprint = pin.fingerprint
            return pinned_context(pin.pem)
        # Nothing pinned (or a pin the config no longer names): look at the certificate, then pin it.
        peer = await fetch_certificate(st.host, st.mqtt_port, self.probe_timeout, with_name=False)
        if st.fingerprint and peer.fingerprint != st.fingerprint:
            self._fingerprint = st.fingerprint
            raise _Mismatch(
                "the printer's certificate does not match tls.fingerprint in the config", peer, pending=False
            )
        await self.pins.pin(st.id, peer.pem, peer.fingerprint)
        self._fingerprint = peer.fingerprint
        self.log.info(
            "pinned the printer's certificate (SHA-256 %s)%s",
            peer.fingerprint,
            "" if st.fingerprint else " on first use",
        )
        return pinned_context(peer.pem)

    async def _untrusted(self, e: BaseException) -> float:
        """The handshake refused the printer's certificate: find out what it offers now."""
        try:
            # Without its name: that takes a second handshake, wanted only for a new certificate.
            peer = await fetch_certificate(
                self.settings.host, self.settings.mqtt_port, self.probe_timeout, with_name=False
            )
        except (OSError, TimeoutError):
            peer = None
        if is_serial_mismatch(e):
            return await self._mismatch(_Mismatch(describe_error(e), peer, pending=False))
        if self.settings.ca_file:
            return await self._mismatch(
                _Mismatch("the printer's certificate is not signed by tls.ca_file", peer, pending=False)
            )
        if peer is None or peer.fingerprint == self._fingerprint:
            return self._offline(e)  # not a new certificate: report the failure as it is
        message = "the printer presents a different certificate than the pinned one"
        peer = await with_common_name(self.settings.host, self.settings.mqtt_port, peer, self.probe_timeout)
        if peer.common_name and peer.common_name != self.settings.serial:
            message += f", issued to {peer.common_name} (another printer at this address?)"
        return await self._mismatch(_Mismatch(message, peer, pending=True))

    async def _mismatch(self, e: _Mismatch) -> float:
        self._offered = e.offered.fingerprint if e.offered else None
        if e.pending and e.offered is not None:
            await self.pins.set_pending(self.settings.id, e.offered.pem, e.offered.fingerprint)
        self.backoff.reset()
        self._set_link(LinkState.TLS_MISMATCH, str(e))
        return self.tls_backoff.next()

    async def accept_certificate(self) -> None:
        if self.settings.ca_file:
            raise CommandError(
                "bad_request", "this printer is verified against tls.ca_file in the config, not pinned"
            )
        if self.settings.fingerprint:
            raise CommandError(
                "bad_request",
                "the config names the certificate (tls.fingerprint); change it there to trust another",
            )
        if not await self.pins.accept_pending(self.settings.id):
            raise CommandError("bad_request", "there is no new certificate to accept")
        pin = await self.pins.get(self.settings.id)
        self._fingerprint = pin.fingerprint if pin else None
        self._offered = None
        self.log.info("the user accepted the printer's new certificate (SHA-256 %s)", self._fingerprint)
        self.tls_backoff.reset()
        self.backoff.reset()
        self._set_link(LinkState.CONNECTING)
        self._wake.set()  # reconnect now, not after the slow retry

    def reconnect_now(self) -> None:
        if self.link_state in (LinkState.CONNECTED, LinkState.AUTH_FAILED, LinkState.TLS_MISMATCH):
            return  # connected already, or a failure that power does not fix: the user must act
        self.backoff.reset()
        self.log.info("reconnecting now (the printer was switched on)")
        self._wake.set()  # cuts the current wait short, or the next one if an attempt is under way

    async def storage_context(self) -> ssl.SSLContext:
        """The MQTT link's trust, for the printer's other TLS ports (FTPS): the same CA and serial, or
        the same pinned certificate. A printer whose certificate is not pinned yet is not trusted."""
        st = self.settings
        if st.ca_file:
            return ca_context(st.ca_file, st.serial)
        pin = await self.pins.get(st.id)
        if pin is None or not pin.pem or (st.fingerprint is not None and pin.fingerprint != st.fingerprint):
            raise PrinterTLSError(
                "the printer's certificate is not known yet; it is trusted once the printer has "
                "connected over MQTT"
            )
        return pinned_context(pin.pem)

    @property
    def files(self) -> PrinterFiles:
        """The printer's storage over implicit FTPS (one instance per link: one session at a time)."""
        if self._files is None:
            self._files = PrinterFiles(
                self.settings.host, self.settings.ftps_port, self.settings.access_code, self.storage_context
            )
        return self._files

    # --- reports -----------------------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client) -> None:
        # Reports are handled by _on_message as paho reads them (see _Inbox): nothing is ever
        # queued, so this only waits for the session to end (aiomqtt raises MqttError then).
        async for _ in client.messages:
            pass
        raise _StaleLink("the printer closed the connection")

    def _on_message(self, message: aiomqtt.Message) -> None:
        self._last_report = time.monotonic()
        try:
            self._on_payload(message.payload)
        except Exception:  # one report we cannot handle must not drop the session
            self._warn("ignored a report that could not be handled", exc_info=True)

    async def _watchdog(self) -> None:
        nudged = False
        while True:
            await sleep_to_beat(min(5.0, self.silence_s / 5))
            silent = time.monotonic() - self._last_report
            if silent >= 2 * self.silence_s:
                raise _StaleLink(f"no report from the printer for {silent:.0f} s")
            if silent >= self.silence_s and not nudged:
                # Old firmware sometimes stops pushing; "pushing start" wakes it (BAMBU.md section 2).
                self.log.info("no report for %.0f s; asking the printer to push again", silent)
                await self._send(commands.push_start(self._seq.next()))
                nudged = True
            elif silent < self.silence_s:
                nudged = False

    def _on_payload(self, payload: Any) -> None:
        if not isinstance(payload, bytes | bytearray):
            return self._warn("ignored a report that is not bytes")
        if len(payload) > self.max_payload:
            # Checked before decoding: a real full report is 5-20 KB.
            return self._warn(f"ignored a {len(payload)}-byte report (limit {self.max_payload})")
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError as e:
            return self._warn(f"ignored a report that is not valid JSON ({e.msg})")
        if not isinstance(msg, dict):
            return self._warn("ignored a report that is not a JSON object")
        self.backoff.ok()
        self.listener.on_report(self.settings.id, payload, msg)
        key = commands.reply_key(msg)
        if key is not None and key in self._pending:
            self._resolve(key, msg)
        changes = self.state.apply_message(msg)
        self._publish_changes(changes, full=self.state.full_report)

    def _warn(self, text: str, exc_info: bool = False) -> None:
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < WARN_INTERVAL_S:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more like it in the last minute)" if self._suppressed else ""
        self.log.warning("%s%s", text, more, exc_info=exc_info)
        self._warned_at, self._suppressed = now, 0

    # --- commands ----------------------------------------------------------------------------------

    async def send_command(self, action: str, params: Mapping[str, Any]) -> str:
        cmd = commands.build(action, params, self._seq.next(), model=self.state.model)
        if self._client is None or self.link_state != LinkState.CONNECTED:
            raise CommandError("offline", f"{self.settings.name} is not connected ({self.link_state})")
        timer = asyncio.get_running_loop().call_later(self.command_timeout, self._timed_out, cmd.key)
        self._pending[cmd.key] = (action, timer)  # before publishing: the reply can be quick
        try:
            await self._send(cmd)
        except aiomqtt.MqttError as e:
            timer.cancel()
            self._pending.pop(cmd.key, None)
            raise CommandError(
                "offline", f"could not send to {self.settings.name}: {describe_error(e)}"
            ) from None
        self.log.info("sent %s (sequence_id %s)", action, cmd.sequence_id)
        return cmd.sequence_id

    async def send_raw(self, payload: bytes, qos: int = 0) -> None:
        """Publish a request as another client wrote it (the fan-out endpoint, which has checked it
        already); its reply comes back as a report like any other. CommandError('offline')."""
        client = self._client
        if client is None or self.link_state != LinkState.CONNECTED:
            raise CommandError("offline", f"{self.settings.name} is not connected ({self.link_state})")
        try:
            await client.publish(self.request_topic, payload, qos=qos)
        except aiomqtt.MqttError as e:
            raise CommandError(
                "offline", f"could not send to {self.settings.name}: {describe_error(e)}"
            ) from None

    async def _send(self, cmd: commands.Command) -> None:
        client = self._client
        if client is None:
            raise aiomqtt.MqttError("not connected")
        await client.publish(self.request_topic, orjson.dumps(cmd.payload), qos=cmd.qos)

    def _resolve(self, key: commands.ReplyKey, msg: dict[str, Any]) -> None:
        action, timer = self._pending.pop(key)
        timer.cancel()
        reply = commands.reply_result(msg)
        if reply.accepted:
            self._command_event(key[2], action, "success", None)
            return
        because = f" ({reply.reason})" if reply.reason else ""
        self.log.warning("the printer refused %s%s", action, because)
        self._command_event(
            key[2], action, "failed", f"The printer refused the command{because}. {DEVELOPER_MODE_HINT}"
        )

    def _timed_out(self, key: commands.ReplyKey) -> None:
        entry = self._pending.pop(key, None)
        if entry is None:
            return
        action = entry[0]
        message = f"The printer did not answer within {self.command_timeout:g} s."
        if self._client is None:
            message += " The connection to it was lost."
        elif time.monotonic() - self._last_report < self.command_timeout:
            message += (
                " It is still sending its status, so it may be ignoring LAN commands. " + DEVELOPER_MODE_HINT
            )
        self.log.warning("no answer to %s (sequence_id %s)", action, key[2])
        self._command_event(key[2], action, "timeout", message)

    def _command_event(self, seq: str, action: str, result: str, message: str | None) -> None:
        self.listener.on_command(self.settings.id, CommandOutcome(seq, action, result, message))


def _first(group: BaseExceptionGroup) -> BaseException:
    e: BaseException = group
    while isinstance(e, BaseExceptionGroup):
        e = e.exceptions[0]
    return e


def describe_error(e: BaseException) -> str:
    """An error in words a user can act on."""
    text = str(e) or type(e).__name__
    low = text.lower()
    if isinstance(e, ConnectionRefusedError) or "connection refused" in low:
        return "connection refused (is the printer on and on this network?)"
    if isinstance(e, TimeoutError) or "timed out" in low:
        return "no answer from the printer (timed out)"
    if "disconnected during message iteration" in low or "connection was lost" in low:
        return "the connection to the printer was lost"
    if "no route to host" in low or "network is unreachable" in low:
        return f"the printer cannot be reached ({text[:120]})"
    return text[:200]
