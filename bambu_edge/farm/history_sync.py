"""History across the farm: this unit's records out (QoS 1, from a watermark kept in the
database), other units' records in (an idempotent upsert by uid).

Out: every change of a local record (``updated_at``) after the watermark is published, oldest
first; the watermark moves on once the broker has acknowledged them (PUBACK), so after a restart,
a lost connection or a stopped broker exactly what was not acknowledged is sent again. A few
seconds before the watermark are looked at again each time (clocks and commits may interleave);
what was sent already in that window is skipped by (uid, updated_at).

In: a record another unit sent is upserted (``HistoryRepository.save_remote``): the first copy
inserts it, a newer copy updates it, a copy seen before or an older one changes nothing. The
broker's persistent session keeps what arrives while this unit is away; the message is
acknowledged only once the row is committed (paho's manual ack), so a crash in between gets it
delivered again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bambu_edge.farm import wire
from bambu_edge.jobs.history import HistoryRepository
from bambu_edge.jobs.records import PrintRecord
from bambu_edge.store.db import Database

log = logging.getLogger(__name__)

MARK_KEY = "history_published_until"
OVERLAP_S = 5.0
BATCH = 200

Publish = Callable[[bytes], Awaitable[None]]


class HistoryOut:
    def __init__(self, db: Database, repo: HistoryRepository):
        self.db = db
        self.repo = repo
        self.mark: float | None = None  # loaded at the first pass
        self._recent: dict[str, float] = {}  # uid -> updated_at sent within the overlap window
        self.sent = 0

    async def _load_mark(self) -> float:
        row = await self.db.fetchone("SELECT value FROM farm_sync WHERE key = ?", (MARK_KEY,))
        return float(row[0]) if row is not None else 0.0

    async def _save_mark(self, mark: float) -> None:
        await self.db.execute(
            "INSERT INTO farm_sync (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (MARK_KEY, mark),
        )

    async def flush(self, publish: Publish) -> int:
        """Publish every local change after the watermark; how many were sent. Raises what
        ``publish`` raises (the connection is gone): the watermark stays where the broker's last
        acknowledgement put it."""
        if self.mark is None:
            self.mark = await self._load_mark()
        count = 0
        while True:
            batch = await self.repo.local_changed_since(self.mark - OVERLAP_S, BATCH)
            fresh = [(r, t) for r, t in batch if self._recent.get(r.uid) != t]
            for rec, t in fresh:
                await publish(wire.dumps(wire.record_to_wire(rec, t)))
                self._recent[rec.uid] = t
                count += 1
            newest = max((t for _, t in batch), default=self.mark)
            moved = newest > self.mark
            if moved:
                self.mark = newest
                await self._save_mark(newest)
            self._recent = {u: t for u, t in self._recent.items() if t > self.mark - OVERLAP_S}
            if len(batch) < BATCH or not moved:
                self.sent += count
                return count


class HistoryIn:
    def __init__(self, repo: HistoryRepository):
        self.repo = repo
        self.stored = 0

    async def receive(self, node: str, payload: bytes) -> PrintRecord | None:
        """The record as stored now (with its row id and ``node``), or None if nothing changed.
        WireError for a message that is not a record; sqlite3.IntegrityError for one the table
        refuses."""
        rec, updated_at = wire.record_from_wire(wire.loads(payload))
        row_id = await self.repo.save_remote(rec, node, updated_at)
        if row_id is None:
            return None
        self.stored += 1
        rec.id, rec.node = row_id, node
        return rec
