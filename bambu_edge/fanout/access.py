"""Each printer's fan-out access code and grants, in the database (migration 0008).

Codes are made here: eight letters and digits, like a printer's, from ``secrets``; never the
printer's own, so a client of the endpoint never learns the code that opens the printer itself."""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bambu_edge.fanout.policy import GRANTS, check_grants

if TYPE_CHECKING:
    from bambu_edge.store.db import Database

CODE_ALPHABET = string.ascii_lowercase + string.digits
CODE_LENGTH = 8


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


@dataclass(frozen=True)
class Access:
    printer_id: str
    access_code: str
    grants: tuple[str, ...]
    rotated_at: float


def _grants(text: str) -> tuple[str, ...]:
    # A group a later version dropped is skipped: the rest still holds.
    return check_grants(g for g in text.split(",") if g in GRANTS)


class AccessCodes:
    def __init__(self, db: Database):
        self._db = db

    async def ensure(self, printer_ids: list[str], avoid: frozenset[str] = frozenset()) -> dict[str, Access]:
        """Every printer's access, made for those that have none. ``avoid``: codes that must not
        be used (the printers' own)."""
        rows = {a.printer_id: a for a in await self.all()}
        for pid in printer_ids:
            if pid not in rows:
                rows[pid] = await self._store(pid, self._fresh(rows, avoid), ())
        return {pid: rows[pid] for pid in printer_ids}

    async def all(self) -> list[Access]:
        rows = await self._db.fetchall(
            "SELECT printer_id, access_code, grants, rotated_at FROM fanout_access ORDER BY printer_id"
        )
        return [Access(r[0], r[1], _grants(r[2]), r[3]) for r in rows]

    async def get(self, printer_id: str) -> Access | None:
        r = await self._db.fetchone(
            "SELECT printer_id, access_code, grants, rotated_at FROM fanout_access WHERE printer_id = ?",
            (printer_id,),
        )
        return Access(r[0], r[1], _grants(r[2]), r[3]) if r else None

    async def rotate(self, printer_id: str, avoid: frozenset[str] = frozenset()) -> Access:
        rows = {a.printer_id: a for a in await self.all()}
        old = rows.get(printer_id)
        return await self._store(printer_id, self._fresh(rows, avoid), old.grants if old else ())

    async def set_grants(self, printer_id: str, grants: tuple[str, ...]) -> Access:
        grants = check_grants(grants)
        old = await self.get(printer_id)
        if old is None:
            raise LookupError(printer_id)
        await self._db.execute(
            "UPDATE fanout_access SET grants = ? WHERE printer_id = ?", (",".join(grants), printer_id)
        )
        return Access(printer_id, old.access_code, grants, old.rotated_at)

    async def forget(self, printer_id: str) -> None:
        await self._db.execute("DELETE FROM fanout_access WHERE printer_id = ?", (printer_id,))

    async def _store(self, printer_id: str, code: str, grants: tuple[str, ...]) -> Access:
        now = time.time()
        await self._db.execute(
            "INSERT INTO fanout_access (printer_id, access_code, grants, rotated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (printer_id) DO UPDATE SET access_code = excluded.access_code, "
            "rotated_at = excluded.rotated_at",
            (printer_id, code, ",".join(grants), now),
        )
        return Access(printer_id, code, grants, now)

    @staticmethod
    def _fresh(rows: dict[str, Access], avoid: frozenset[str]) -> str:
        # The code alone tells printers apart on the endpoint: it must be unique.
        taken = {a.access_code for a in rows.values()} | set(avoid)
        while (code := new_code()) in taken:
            pass
        return code
