"""systemd notifications (Type=notify): READY, STATUS, WATCHDOG, STOPPING.

Uses systemd-python where installed; otherwise speaks the (tiny, stable) datagram protocol itself,
so a pip install without libsystemd-dev behaves the same. Without NOTIFY_SOCKET it does nothing.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

try:
    from systemd import daemon as _sd_daemon
except ImportError:  # pragma: no cover - depends on the machine
    _sd_daemon = None


def notify(*lines: str) -> bool:
    msg = "\n".join(lines)
    if not os.environ.get("NOTIFY_SOCKET"):
        return False
    try:
        if _sd_daemon is not None:
            return bool(_sd_daemon.notify(msg))
        addr = os.environ["NOTIFY_SOCKET"]
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        # Non-blocking: a receiver that stopped reading must not freeze the event loop.
        with socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        ) as s:
            s.sendto(msg.encode(), addr)
        return True
    except OSError as e:  # systemd-python raises too: a gone socket must not stop a clean shutdown
        log.warning("sd_notify failed: %s", e)
        return False


def watchdog_timeout() -> float | None:
    """systemd's ``WatchdogSec=`` in seconds (from ``WATCHDOG_USEC``), or None when not watched
    (no watchdog, or one meant for another process)."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        seconds = int(usec) / 1e6
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half the timeout, as sd_watchdog_enabled(3) advises), or
    None when not watched."""
    timeout = watchdog_timeout()
    return None if timeout is None else max(timeout / 2, 0.05)
