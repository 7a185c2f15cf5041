"""The "setup reopened" flag: a 10 s hold of the panel button lets the web setup create an admin
again (a forgotten password), while every user and all data stay.

It is a small file in the data directory, not a database row: the flag must survive a restart
(the hold may come just before one) and it must be settable by a button handler without a schema
change. It expires after REOPEN_WINDOW_S so a setup left open by accident does not stay open on
the LAN for good, and it is closed as soon as an admin has been made through it.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

REOPEN_WINDOW_S = 3600.0
FILE_NAME = "setup-reopened"


class SetupGate:
    def __init__(self, data_dir: Path, window_s: float = REOPEN_WINDOW_S):
        self.path = data_dir / FILE_NAME
        self.window_s = window_s

    def reopen(self, now: float | None = None) -> None:
        """Open the setup (written durably: the next request may come after a power cut)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{time.time() if now is None else now:.3f}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    def opened_at(self) -> float | None:
        try:
            return float(self.path.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None

    def is_open(self, now: float | None = None) -> bool:
        at = self.opened_at()
        if at is None:
            return False
        now = time.time() if now is None else now
        return at <= now + 60 and now - at < self.window_s  # a clock set back a lot closes it too

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
