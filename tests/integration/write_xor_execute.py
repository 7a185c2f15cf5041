"""``python -m tests.integration.write_xor_execute ARGS``: bambu-edge's CLI under the kernel's own
version of the unit's ``MemoryDenyWriteExecute=yes``: ``prctl(PR_SET_MDWE)`` (Linux 6.3+), which
systemd 253+ uses for that setting too. Any writable-and-executable mapping fails from then on
(cffi, ctypes, a JIT), in this process and in its children (the certificate helper, ffmpeg).

Exit 77 (the "skipped" convention) when the kernel does not have it.
"""

from __future__ import annotations

import ctypes
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def deny_write_execute() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0


if __name__ == "__main__":
    if not deny_write_execute():
        print("this kernel has no PR_SET_MDWE", file=sys.stderr)
        sys.exit(77)
    from bambu_edge.cli import main

    sys.exit(main())
