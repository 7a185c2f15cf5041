"""Typed in-process pub/sub. Publishers never block: each subscriber has a bounded queue, and a
subscriber that falls behind loses its oldest events (and is told so), never stalling the others.

A subscription may give a ``where`` filter, asked in the publisher's turn, so events it does not
care about never wake it. A ``Listener`` runs in the publisher's turn instead of a task of its own:
for cheap, non-blocking bookkeeping only (the WebSocket hub, the history tracker), it saves a task
switch per event on the hot path of every printer report."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """``kind`` names the event ("printer", "command", "history", ...); ``printer_id`` is set for
    printer-scoped events. ``data`` is the publisher's typed record (a frozen dataclass with a
    ``to_json()``), or a JSON-ready dict: JSON is made only where it leaves the process."""

    kind: str
    printer_id: str | None = None
    data: Any = field(default_factory=dict)


Where = Callable[[Event], bool]


def _wanted(where: Where, event: Event) -> bool:
    try:
        return where(event)
    except Exception:  # a filter that cannot tell lets the event through
        log.exception("event filter failed on a %s event", event.kind)
        return True


class Subscription:
    """``where``, if given, is asked in the publisher's turn: an event it refuses never wakes the
    subscriber (a task switch and a queue slot saved per event it does not care about)."""

    def __init__(self, bus: EventBus, kinds: frozenset[str] | None, maxsize: int, where: Where | None = None):
        self._bus = bus
        self.kinds = kinds
        self.where = where
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0  # events lost because this subscriber was slow

    def _offer(self, event: Event) -> None:
        if self.kinds is not None and event.kind not in self.kinds:
            return
        if self.where is not None and not _wanted(self.where, event):
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> Event:
        return await self.queue.get()

    def get_nowait(self) -> Event | None:
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        self._bus._subs.discard(self)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Listener:
    """A subscriber called in the publisher's turn, for work that is cheap and never blocks (the
    WebSocket hub hands each event to its clients' own bounded queues): no task switch per event.
    An exception is logged and the publisher goes on."""

    def __init__(self, bus: EventBus, kinds: frozenset[str] | None, callback: Callable[[Event], None]):
        self._bus = bus
        self.kinds = kinds
        self.callback = callback

    def _offer(self, event: Event) -> None:
        if self.kinds is not None and event.kind not in self.kinds:
            return
        try:
            self.callback(event)
        except Exception:
            log.exception("a listener failed on a %s event", event.kind)

    def close(self) -> None:
        self._bus._subs.discard(self)


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription | Listener] = set()

    def subscribe(self, *kinds: str, maxsize: int = 256, where: Where | None = None) -> Subscription:
        sub = Subscription(self, frozenset(kinds) if kinds else None, maxsize, where)
        self._subs.add(sub)
        return sub

    def listen(self, *kinds: str, callback: Callable[[Event], None]) -> Listener:
        listener = Listener(self, frozenset(kinds) if kinds else None, callback)
        self._subs.add(listener)
        return listener

    def publish(self, event: Event) -> None:
        for sub in tuple(self._subs):
            sub._offer(event)
