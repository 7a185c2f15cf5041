"""Logging: journald fields under systemd, plain lines on stderr elsewhere.

Modules log with ``extra={"printer_id": ...}`` (or through ``printers.base.printer_logger``); under
systemd that becomes the journal field PRINTER_ID, so ``journalctl -u bambu-edge PRINTER_ID=x1c-left``
works.
"""

from __future__ import annotations

import logging
import os
import sys


class _PrinterIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        pid = getattr(record, "printer_id", None)
        record.printer_tag = f" [{pid}]" if pid else ""
        if pid:
            record.PRINTER_ID = pid  # journald accepts upper-case field names only
        return True


def under_systemd() -> bool:
    """True when stderr is connected to the journal (systemd sets JOURNAL_STREAM to its dev:inode)."""
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def setup_logging(level: str = "info") -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler: logging.Handler | None = None
    if under_systemd():
        try:
            from systemd.journal import JournalHandler

            handler = JournalHandler(SYSLOG_IDENTIFIER="bambu-edge")
            handler.setFormatter(logging.Formatter("%(message)s%(printer_tag)s"))
        except ImportError:
            handler = None
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s%(printer_tag)s: %(message)s")
        )
    handler.addFilter(_PrinterIdFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Third-party chatter stays at warning unless debugging.
    for noisy in ("aiohttp.access", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level != "debug" else logging.DEBUG)
