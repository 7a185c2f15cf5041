"""Printer TLS certificates pinned on first use (DESIGN §5).

A printer's first certificate is pinned. A different one later is kept as *pending* and refused
(`tls_mismatch`) until the user accepts it in the dashboard; it is never trusted on its own.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bambu_edge.store.db import Database

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    printer_id: str
    fingerprint: str  # SHA-256 of the DER certificate, lower-case hex without colons
    pem: str
    pinned_at: float
    pending_fingerprint: str | None
    pending_pem: str | None
    pending_seen_at: float | None


def normalize_fingerprint(fingerprint: str) -> str:
    """``AB:CD:...`` or ``abcd...`` -> ``abcd...``; ValueError unless it is a SHA-256 fingerprint."""
    fp = fingerprint.replace(":", "").strip().lower() if isinstance(fingerprint, str) else ""
    if not _HEX64.fullmatch(fp):
        raise ValueError("a certificate fingerprint is a SHA-256: 64 hex digits")
    return fp


_FIELDS = tuple(Pin.__dataclass_fields__)


def _pin(row: sqlite3.Row) -> Pin:
    return Pin(*row)


class CertPins:
    """The daemon's trust store for printer links (``printers.bambu.tls.TrustStore``), in its database."""

    def __init__(self, db: Database):
        self._db = db

    async def get(self, printer_id: str) -> Pin | None:
        row = await self._db.fetchone(
            f"SELECT {', '.join(_FIELDS)} FROM printer_certs WHERE printer_id = ?", (printer_id,)
        )
        return _pin(row) if row else None

    async def pin(self, printer_id: str, pem: str, fingerprint: str) -> Pin:
        """Trust this certificate for the printer, replacing any earlier pin and pending one."""
        fp = normalize_fingerprint(fingerprint)
        await self._db.execute(
            "INSERT INTO printer_certs (printer_id, fingerprint, pem, pinned_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (printer_id) DO UPDATE SET fingerprint = excluded.fingerprint,"
            " pem = excluded.pem, pinned_at = excluded.pinned_at,"
            " pending_fingerprint = NULL, pending_pem = NULL, pending_seen_at = NULL",
            (printer_id, fp, pem, time.time()),
        )
        return await self._get_existing(printer_id)

    async def set_pending(self, printer_id: str, pem: str, fingerprint: str) -> Pin:
        """Remember a certificate that differs from the pinned one, for the user to accept.

        Offering the pinned certificate again clears any pending one. ValueError if nothing is
        pinned yet: then the caller pins instead.
        """
        fp = normalize_fingerprint(fingerprint)
        if await self.get(printer_id) is None:
            raise ValueError(f"printer {printer_id!r} has no pinned certificate")
        # One statement, compared against the pin as it is when written: a retry that saw the old pin
        # must not mark the certificate the user has just accepted as pending again.
        await self._db.execute(
            "UPDATE printer_certs SET"
            " pending_fingerprint = CASE WHEN fingerprint = ? THEN NULL ELSE ? END,"
            " pending_pem = CASE WHEN fingerprint = ? THEN NULL ELSE ? END,"
            " pending_seen_at = CASE WHEN fingerprint = ? THEN NULL ELSE ? END"
            " WHERE printer_id = ?",
            (fp, fp, fp, pem, fp, time.time(), printer_id),
        )
        return await self._get_existing(printer_id)

    async def accept_pending(self, printer_id: str) -> bool:
        """Pin the pending certificate. False if there is none."""
        changed = await self._db.execute(
            "UPDATE printer_certs SET fingerprint = pending_fingerprint, pem = pending_pem, pinned_at = ?,"
            " pending_fingerprint = NULL, pending_pem = NULL, pending_seen_at = NULL"
            " WHERE printer_id = ? AND pending_fingerprint IS NOT NULL",
            (time.time(), printer_id),
        )
        return changed > 0

    async def forget(self, printer_id: str) -> bool:
        """Drop the pin: the next certificate seen is pinned anew. False if there was none."""
        return await self._db.execute("DELETE FROM printer_certs WHERE printer_id = ?", (printer_id,)) > 0

    async def _get_existing(self, printer_id: str) -> Pin:
        pin = await self.get(printer_id)
        if pin is None:  # deleted by a concurrent forget()
            raise LookupError(f"printer {printer_id!r} has no pinned certificate")
        return pin
