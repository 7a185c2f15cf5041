"""bambu-edge's own client on the fan-out mosquitto: relays every printer's reports and answers or
forwards what the endpoint's clients ask (policy.py decides).

The hot path is the report relay: the link hands each message to ``relay`` in its turn (a report
tap, printers/manager.py) and paho queues the same bytes for mosquitto, which copies them to every
subscribed client. One publish per report, whatever the number of clients."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import orjson

from bambu_edge.fanout import policy
from bambu_edge.printers.backoff import Backoff
from bambu_edge.printers.base import CommandError
from bambu_edge.printers.manager import PrinterManager
from bambu_edge.tasks import TaskSet

log = logging.getLogger(__name__)

REQUEST_FILTER = "device/+/request"
MAX_REQUEST = 64 * 1024  # a project_file request is well under 2 KB
WARN_INTERVAL_S = 60.0


class _Handler(asyncio.Queue):  # type: ignore[type-arg]
    """aiomqtt's ``queue_type``: each message handled as paho reads it, no task per message (as
    the printer link does)."""

    def __init__(self, handler: Callable[[aiomqtt.Message], None], maxsize: int = 0):
        super().__init__(maxsize)
        self._handler = handler

    def put_nowait(self, item: aiomqtt.Message) -> None:
        self._handler(item)


@dataclass
class Counters:
    reports: int = 0  # relayed to the endpoint
    answered: int = 0  # pushall / get_version answered from state
    forwarded: int = 0
    refused: int = 0
    limited: int = 0  # requests dropped by the rate limit


@dataclass
class Fronted:
    """One printer on the endpoint."""

    printer_id: str
    serial: str
    allowed: frozenset[tuple[str, str]]
    bucket: policy.TokenBucket
    version: Mapping[str, Any] | None = None  # the printer's last get_version reply (its info object)
    report_topic: str = field(init=False)

    def __post_init__(self) -> None:
        self.report_topic = f"device/{self.serial}/report"


class Bridge:
    def __init__(
        self,
        socket_path: str,
        credentials: tuple[str, str],
        manager: PrinterManager,
        tasks: TaskSet,
        *,
        rate: float = 2.0,
        burst: int = 10,
    ):
        self.socket_path = socket_path
        self.credentials = credentials
        self.manager = manager
        self.tasks = tasks
        self.rate, self.burst = rate, burst
        self.counters = Counters()
        self.connected = asyncio.Event()
        self._by_id: dict[str, Fronted] = {}
        self._by_serial: dict[str, Fronted] = {}
        self._paho: Any = None  # the connected client's paho client: a synchronous, queued publish
        self._client: aiomqtt.Client | None = None
        self._warned_at = 0.0

    # --- which printers ----------------------------------------------------------------------------

    def front(self, printer_id: str, serial: str, grants: tuple[str, ...]) -> None:
        old = self._by_id.get(printer_id)
        f = Fronted(
            printer_id, serial, policy.allowed_commands(grants), policy.TokenBucket(self.rate, self.burst)
        )
        if old is not None:
            f.version, f.bucket = old.version, old.bucket
            self._by_serial.pop(old.serial, None)
        self._by_id[printer_id] = f
        self._by_serial[serial] = f

    def printer_ids(self) -> list[str]:
        return list(self._by_id)

    def fronted(self, printer_id: str) -> Fronted | None:
        return self._by_id.get(printer_id)

    def unfront(self, printer_id: str) -> None:
        f = self._by_id.pop(printer_id, None)
        if f is not None:
            self._by_serial.pop(f.serial, None)

    # --- session -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect (again and again, with backoff) until cancelled."""
        backoff = Backoff(initial=0.05, cap=5.0)
        while True:
            try:
                await self._session()
                backoff.reset()
            except (aiomqtt.MqttError, OSError) as e:
                if self.connected.is_set() or backoff.attempt > 20:
                    self._warn(f"fan-out: lost the local mosquitto ({e}); reconnecting")
            finally:
                self.connected.clear()
                self._paho = self._client = None
            await asyncio.sleep(backoff.next())

    async def _session(self) -> None:
        user, secret = self.credentials
        async with aiomqtt.Client(
            self.socket_path,
            transport="unix",
            username=user,
            password=secret,
            identifier=f"bambu-edge-fanout-{time.monotonic_ns() % 1_000_000}",
            keepalive=60,
            queue_type=functools.partial(_Handler, self._on_request),  # type: ignore[arg-type]
        ) as client:
            await client.subscribe(REQUEST_FILTER)
            self._client = client
            self._paho = client._client  # aiomqtt's publish awaits; the relay must not
            self.connected.set()
            async for _ in client.messages:  # handled in _on_request; this waits for the end
                pass

    # --- reports out -------------------------------------------------------------------------------

    def relay(self, printer_id: str, payload: bytes, msg: dict[str, Any]) -> None:
        """A report tap: the printer's message, unchanged, to the endpoint's clients."""
        f = self._by_id.get(printer_id)
        if f is None:
            return
        info = msg.get("info")
        if (
            type(info) is dict
            and info.get("command") == "get_version"
            and isinstance(info.get("module"), list)
        ):
            f.version = info
        paho = self._paho
        if paho is not None:
            paho.publish(f.report_topic, payload, 0)
            self.counters.reports += 1

    def _publish(self, f: Fronted, msg: Mapping[str, Any]) -> None:
        paho = self._paho
        if paho is not None:
            paho.publish(f.report_topic, orjson.dumps(msg), 0)

    # --- requests in -------------------------------------------------------------------------------

    def _on_request(self, message: aiomqtt.Message) -> None:
        try:
            self._request(str(message.topic), message.payload)
        except Exception:
            log.exception("fan-out: could not handle a request")

    def _request(self, topic: str, payload: Any) -> None:
        parts = topic.split("/")
        f = self._by_serial.get(parts[1]) if len(parts) == 3 else None
        if f is None or not isinstance(payload, bytes | bytearray) or len(payload) > MAX_REQUEST:
            return
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return self._warn(f"fan-out: a client of {f.printer_id} sent a request that is not JSON")
        verdicts = policy.judge(msg, f.allowed)
        if not verdicts:
            return
        if not f.bucket.take():
            self.counters.limited += 1
            self._warn(f"fan-out: clients of {f.printer_id} send more than {self.rate:g} requests/s; dropped")
            return
        forward: dict[str, Any] = {}
        qos = 0
        for part in verdicts:
            if part.kind == "pushall":
                self._answer_pushall(f, part)
            elif part.kind == "version" and f.version is not None:
                self._publish(f, policy.version_reply(f.version, part.sequence_id))
                self.counters.answered += 1
            elif part.kind in ("forward", "version"):
                forward[part.section] = part.body
                qos = max(qos, 1 if (part.section, part.command) in policy.QOS1 else 0)
            else:
                self._publish(f, policy.refusal(part))
                self.counters.refused += 1
                log.info(
                    "fan-out: refused %s.%s from a client of %s", part.section, part.command, f.printer_id
                )
        if forward:
            # The client's own bytes when all of it goes on; else just the parts that may.
            body = bytes(payload) if len(forward) == len(msg) else orjson.dumps(forward)
            self.tasks.spawn(self._forward(f, body, qos, forward), name=f"fanout-forward-{f.printer_id}")

    def _answer_pushall(self, f: Fronted, part: policy.Part) -> None:
        link = self.manager.get(f.printer_id)
        raw = getattr(getattr(link, "state", None), "raw", None)
        if not raw:  # nothing known yet: the next report from the printer will do
            return
        self._publish(f, policy.full_report(raw, part.sequence_id))
        self.counters.answered += 1

    async def _forward(self, f: Fronted, body: bytes, qos: int, parts: dict[str, Any]) -> None:
        link = self.manager.get(f.printer_id)
        send = getattr(link, "send_raw", None)
        try:
            if send is None:
                raise CommandError("offline", "this printer takes no requests from the endpoint")
            await send(body, qos)
            self.counters.forwarded += 1
        except CommandError as e:
            for section, part in parts.items():
                seq = policy.sequence_id_of(part)
                refused = policy.Part("refuse", section, str(part.get("command")), seq, part, e.message)
                self._publish(f, policy.refusal(refused))

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_INTERVAL_S:
            self._warned_at = now
            log.warning("%s", text)
