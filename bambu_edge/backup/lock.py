"""The data folder's lock: held by a running daemon and by ``bambu-edge restore``, so that a
restore never swaps files under a daemon that has the database open (and two daemons never share
one data folder). ``flock`` on a small file: the kernel drops it when the process ends, however it
ends, so a crash never leaves a stale lock behind."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from bambu_edge.backup.manifest import BackupError

LOCK_NAME = "bambu-edge.lock"


class DataLock:
    def __init__(self, data_dir: Path):
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, busy_message: str) -> None:
        """Take the lock now or raise BackupError("busy", busy_message)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Read-only and world-readable: the service user can lock a file root made (a restore run
        # with sudo), and nothing is ever written to it.
        fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BackupError("busy", busy_message) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None
