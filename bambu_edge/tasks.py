"""A set of background tasks and child processes that ends together.

Every component owns one ``TaskSet``: what it spawns there is cancelled (tasks) or terminated, then
killed, then reaped (child processes) by ``close()``, so a stop leaves nothing running and no zombie.
A task that fails is logged with its traceback when it ends, never silently lost. A child process is
asked by the kernel to die with the daemon (Linux ``PR_SET_PDEATHSIG``): a daemon killed with
SIGKILL, which runs no cleanup, leaves no orphan ffmpeg behind.

Pure asyncio, no daemon imports: any module may use it.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
CLOSE_TIMEOUT_S = 3.0

_T = TypeVar("_T")


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return None


_PRCTL = _prctl()  # resolved here: the child, between fork and exec, only calls it


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when its parent dies.
    None where the kernel cannot (not Linux)."""
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: no signal will ever come
            os._exit(1)

    return preexec


class TaskSet:
    """Background tasks and child processes owned by one component (``owner`` names it in logs)."""

    def __init__(self, owner: str = "") -> None:
        self.owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()
        self._procs: list[asyncio.subprocess.Process] = []
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks) + len(self.processes)

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        return frozenset(self._tasks)

    @property
    def processes(self) -> list[asyncio.subprocess.Process]:
        """The child processes that have not exited yet."""
        self._forget_exited()
        return list(self._procs)

    def _forget_exited(self) -> None:
        self._procs = [p for p in self._procs if p.returncode is None]

    # --- tasks ---------------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, _T], *, name: str) -> asyncio.Task[_T]:
        """Run ``coro`` as a task this set owns. An exception it ends with is logged."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.owner or 'task set'} is closed: cannot start {name}")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s: task %s failed", self.owner or "task", task.get_name(), exc_info=exc)

    async def cancel(self, tasks: Iterable[asyncio.Task[Any]], timeout: float | None = None) -> None:
        """Cancel ``tasks`` and wait until they have ended (at most ``timeout``). Their exceptions
        are logged by the set, not raised here."""
        me = asyncio.current_task()
        pending = {t for t in tasks if t is not me and not t.done()}
        for t in pending:
            t.cancel()
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout)
        for t in late:
            log.error("%s: task %s did not end when cancelled", self.owner or "task", t.get_name())

    # --- child processes -----------------------------------------------------------------------------

    async def spawn_process(
        self,
        *argv: str,
        stdin: Any = subprocess.DEVNULL,
        stdout: Any = subprocess.DEVNULL,
        stderr: Any = None,
        death_signal: int = signal.SIGTERM,
        **kwargs: Any,
    ) -> asyncio.subprocess.Process:
        """Start ``argv`` as a child that this set reaps on close and that the kernel signals
        (``death_signal``) if the daemon dies without closing it. Keyword arguments as for
        ``asyncio.create_subprocess_exec``."""
        if self._closed:
            raise RuntimeError(f"{self.owner or 'task set'} is closed: cannot start {argv[0]}")
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            preexec_fn=die_with_parent(death_signal),
            **kwargs,
        )
        self._forget_exited()
        self._procs.append(proc)
        return proc

    async def stop_process(self, proc: asyncio.subprocess.Process, timeout: float = CLOSE_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; returns once the child is reaped."""
        if proc.returncode is None:
            try:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), timeout)
            except ProcessLookupError:
                pass
            except TimeoutError:
                log.warning("%s: pid %d ignored SIGTERM; killed", self.owner or "child", proc.pid)
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
        # wait() returns once the child watcher has reaped it (no zombie left).
        return await proc.wait()

    # --- all of it -----------------------------------------------------------------------------------

    async def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Cancel every task and wait for it; terminate every child (kill after ``timeout``) and
        reap it. Nothing can be spawned afterwards."""
        self._closed = True
        procs, self._procs = self.processes, []
        # Both at once: a task reading a child's pipe and the child end in the same budget.
        await asyncio.gather(
            self.cancel(self._tasks, timeout), *(self.stop_process(p, timeout) for p in procs)
        )
