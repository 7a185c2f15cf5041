"""``python -m tests.integration.stalling_daemon ARGS``: bambu-edge's CLI, plus one thing a test
needs and production must never have: SIGUSR2 blocks the event loop for $STALL_SECONDS.

Python runs signal handlers in the main thread, between bytecodes of whatever it is doing there,
which in the daemon is the event loop: a ``time.sleep`` in the handler stalls the loop as a blocking
call in a coroutine would, while every other thread (aiosqlite's, the default pool) runs on.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from bambu_edge.cli import main


def stall_the_loop(signum: int, frame: object) -> None:
    print("stalling the event loop", file=sys.stderr, flush=True)  # tests wait for this line
    time.sleep(float(os.environ["STALL_SECONDS"]))


if __name__ == "__main__":
    signal.signal(signal.SIGUSR2, stall_the_loop)
    sys.exit(main())
