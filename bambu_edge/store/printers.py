"""Printers added from the dashboard, kept in the ``printers`` table (migrations 0001, 0010).

Printers declared in the YAML config are not stored here; they are read-only in the dashboard. Rows
come back as ``PrinterConfig`` with ``read_only=False``, so the manager treats both alike. The access
code is stored as given (the link needs it); the database file is owner-only (db.py).
"""

from __future__ import annotations

import re
import sqlite3
import time
import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bambu_edge.config import PrinterConfig

if TYPE_CHECKING:
    from bambu_edge.store.db import Database

# The stored PrinterConfig fields; each column has the field's name, so rows and configs map by name.
_COLUMNS = (
    "id",
    "name",
    "type",
    "host",
    "serial",
    "access_code",
    "mqtt_port",
    "ftps_port",
    "model",
    "camera",
    "port",  # moonraker (0010)
    "api_key",  # moonraker (0010)
)
_SLUG_MAX = 48  # room for a "-NN" suffix within the 63 characters an id may have
# Letters NFKD does not take apart (ø is not o + stroke to Unicode); the UI speaks Norwegian.
_LETTERS = str.maketrans({"ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "ß": "ss", "đ": "d", "ł": "l", "œ": "oe"})


class PrinterExistsError(ValueError):
    """A printer with this id is stored already."""


def new_printer_id(name: str, taken: Iterable[str]) -> str:
    """A unique id slug from a printer's name: "X1C left" -> "x1c-left", then "x1c-left-2", ...

    Letters lose their accents ("Skrivar på" -> "skrivar-pa", "Sør" -> "sor"); a name with no
    usable letter becomes "printer"."""
    ascii_name = unicodedata.normalize("NFKD", name.translate(_LETTERS)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:_SLUG_MAX].strip("-") or "printer"
    used = set(taken)
    candidate, n = slug, 1
    while candidate in used:
        n += 1
        candidate = f"{slug}-{n}"
    return candidate


def _config(row: sqlite3.Row) -> PrinterConfig:
    return PrinterConfig(**{c: row[c] for c in _COLUMNS}, read_only=False)


class StoredPrinters:
    def __init__(self, db: Database):
        self._db = db

    async def list(self) -> list[PrinterConfig]:
        rows = await self._db.fetchall(f"SELECT {', '.join(_COLUMNS)} FROM printers ORDER BY created_at, id")
        return [_config(r) for r in rows]

    async def get(self, printer_id: str) -> PrinterConfig | None:
        row = await self._db.fetchone(
            f"SELECT {', '.join(_COLUMNS)} FROM printers WHERE id = ?", (printer_id,)
        )
        return _config(row) if row else None

    async def ids(self) -> set[str]:
        return {r[0] for r in await self._db.fetchall("SELECT id FROM printers")}

    async def add(self, cfg: PrinterConfig) -> PrinterConfig:
        """Store a new printer. PrinterExistsError if the id is taken."""
        now = time.time()
        try:
            await self._db.insert(
                f"INSERT INTO printers ({', '.join(_COLUMNS)}, created_at, updated_at)"
                f" VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})",
                (*self._values(cfg), now, now),
            )
        except sqlite3.IntegrityError as e:
            if "UNIQUE" in str(e) or "PRIMARY KEY" in str(e):
                raise PrinterExistsError(f"printer id {cfg.id!r} is already in use") from None
            raise
        return cfg

    async def update(self, cfg: PrinterConfig) -> bool:
        """Replace a stored printer's settings (its id stays). False if there is no such printer."""
        sets = ", ".join(f"{c} = ?" for c in _COLUMNS[1:])
        changed = await self._db.execute(
            f"UPDATE printers SET {sets}, updated_at = ? WHERE id = ?",
            (*self._values(cfg)[1:], time.time(), cfg.id),
        )
        return changed > 0

    async def delete(self, printer_id: str) -> bool:
        return await self._db.execute("DELETE FROM printers WHERE id = ?", (printer_id,)) > 0

    @staticmethod
    def _values(cfg: PrinterConfig) -> tuple:
        return tuple(getattr(cfg, c) for c in _COLUMNS)
