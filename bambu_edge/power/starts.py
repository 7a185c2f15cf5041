"""The plug's energy counter at the start of each running print, kept in the database (migration
0006) so that a daemon restarted mid-print still measures the whole print, not only what it saw."""

from __future__ import annotations

import time
from collections.abc import Callable

from bambu_edge.store.db import Database


class EnergyStarts:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    async def save(self, record_uid: str, start_wh: float) -> None:
        """The counter when the record opened; the first reading of a record is the one kept."""
        await self.db.execute(
            "INSERT INTO power_energy_start (record_uid, start_wh, read_at) VALUES (?, ?, ?)"
            " ON CONFLICT (record_uid) DO NOTHING",
            (record_uid, start_wh, self.clock()),
        )

    async def take(self, record_uid: str) -> float | None:
        """The saved reading of an ended record, forgotten as it is read (None if none was saved)."""
        async with self.db.transaction() as conn:
            async with conn.execute(
                "DELETE FROM power_energy_start WHERE record_uid = ? RETURNING start_wh", (record_uid,)
            ) as cur:
                row = await cur.fetchone()
        return None if row is None else float(row[0])

    async def prune(self) -> int:
        """Forget the readings of records that ended while power control was not listening."""
        return await self.db.execute(
            "DELETE FROM power_energy_start WHERE record_uid NOT IN"
            " (SELECT uid FROM print_history WHERE outcome = 'running')"
        )
