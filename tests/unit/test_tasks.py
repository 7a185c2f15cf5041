"""TaskSet: tasks cancelled and awaited, failures logged, real child processes terminated, killed
when they ignore SIGTERM, reaped (no zombie), and gone when the daemon itself is SIGKILLed."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bambu_edge.tasks import TaskSet

IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie is dead but not reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def exists(pid: int) -> bool:
    """Anything at all with this pid, zombies included."""
    return Path(f"/proc/{pid}").exists()


async def test_close_cancels_every_task_and_waits_for_it() -> None:
    tasks = TaskSet("test")
    cleaned: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.01)  # cleanup that itself awaits: close() waits for it
            cleaned.append(name)

    a = tasks.spawn(forever("a"), name="a")
    b = tasks.spawn(forever("b"), name="b")
    await asyncio.sleep(0)
    assert len(tasks) == 2
    await tasks.close(timeout=2)
    assert a.cancelled() and b.cancelled()
    assert sorted(cleaned) == ["a", "b"]
    assert len(tasks) == 0
    with pytest.raises(RuntimeError, match="closed"):
        tasks.spawn(forever("c"), name="c")


async def test_a_failing_task_is_logged_with_its_name(caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskSet("camera")

    async def broken() -> None:
        raise ValueError("no such device")

    with caplog.at_level(logging.ERROR, logger="bambu_edge.tasks"):
        task = tasks.spawn(broken(), name="camera-reader")
        await asyncio.wait([task])
        await asyncio.sleep(0)
    (record,) = [r for r in caplog.records if "camera-reader" in r.getMessage()]
    assert record.getMessage() == "camera: task camera-reader failed"
    assert record.exc_info is not None and "no such device" in str(record.exc_info[1])
    assert len(tasks) == 0
    await tasks.close()


async def test_cancel_ends_only_the_tasks_named() -> None:
    tasks = TaskSet("test")
    one = tasks.spawn(asyncio.sleep(60), name="one")
    other = tasks.spawn(asyncio.sleep(60), name="other")
    await tasks.cancel([one])
    assert one.cancelled() and not other.done()
    await tasks.close()
    assert other.cancelled()


async def test_close_terminates_children_kills_the_stubborn_and_reaps_them_all() -> None:
    tasks = TaskSet("test")
    sleeper = await tasks.spawn_process("sleep", "60")
    stubborn = await tasks.spawn_process(sys.executable, "-c", IGNORES_SIGTERM, stdout=subprocess.PIPE)
    assert stubborn.stdout is not None
    assert await asyncio.wait_for(stubborn.stdout.readline(), 10) == b"ready\n"  # SIGTERM ignored now
    assert alive(sleeper.pid) and alive(stubborn.pid)
    assert len(tasks.processes) == 2

    t0 = time.monotonic()
    await tasks.close(timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert sleeper.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL  # it ignored SIGTERM: killed after the timeout
    assert not exists(sleeper.pid) and not exists(stubborn.pid)  # reaped: not even a zombie
    assert tasks.processes == []


async def test_a_child_that_exits_by_itself_is_forgotten() -> None:
    tasks = TaskSet("test")
    proc = await tasks.spawn_process(sys.executable, "-c", "pass")
    assert await asyncio.wait_for(proc.wait(), 10) == 0
    assert tasks.processes == []
    await tasks.close()


DAEMON = textwrap.dedent(
    """
    import asyncio, sys
    from bambu_edge.tasks import TaskSet

    async def main():
        tasks = TaskSet("daemon")
        owned = await tasks.spawn_process("sleep", "60")
        # The control: started without the TaskSet, nothing tells it that its parent died.
        plain = await asyncio.create_subprocess_exec("sleep", "60")
        print(owned.pid, plain.pid, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_daemon_killed_with_sigkill_leaves_no_orphan_child() -> None:
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON], stdout=subprocess.PIPE, text=True)
    plain = None
    try:
        assert daemon.stdout is not None
        owned, plain = (int(pid) for pid in daemon.stdout.readline().split())
        assert alive(owned) and alive(plain)
        daemon.kill()  # SIGKILL: no cleanup of any kind runs in the daemon
        daemon.wait(10)
        deadline = time.monotonic() + 10
        while alive(owned) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(owned), "the TaskSet's child outlived its daemon"
        assert alive(plain)  # the control shows that it was the death signal that ended the other
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        if plain is not None and alive(plain):
            os.kill(plain, signal.SIGKILL)
