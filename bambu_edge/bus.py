"""Typed in-process pub/sub. Publishers never block: each subscriber has a bounded queue, and a
subscriber that falls behind loses its oldest events (and is told so), never stalling the others."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
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


class Subscription:
    def __init__(self, bus: EventBus, kinds: frozenset[str] | None, maxsize: int):
        self._bus = bus
        self.kinds = kinds
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0  # events lost because this subscriber was slow

    def _offer(self, event: Event) -> None:
        if self.kinds is not None and event.kind not in self.kinds:
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


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, *kinds: str, maxsize: int = 256) -> Subscription:
        sub = Subscription(self, frozenset(kinds) if kinds else None, maxsize)
        self._subs.add(sub)
        return sub

    def publish(self, event: Event) -> None:
        for sub in tuple(self._subs):
            sub._offer(event)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)
