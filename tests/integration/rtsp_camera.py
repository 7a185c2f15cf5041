"""An X1-style camera for the tests: ``gst_rtsp_server.py`` run by Debian's python3 as a child
process (RTSPS with the printer's certificate, Basic auth ``bblp`` + access code, a live H.264 test
pattern at /streaming/live/1). ``clients`` counts the RTSP connections it has accepted, ``open_connections`` those not closed yet."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from bambu_edge.certs import KeyPair
from tests.integration.daemon_proc import end_process

SERVER = Path(__file__).with_name("gst_rtsp_server.py")
PYTHON = "/usr/bin/python3"  # python3-gi lives there, not in the venv (TESTBED.md G1/G2)


class RtspCamera:
    def __init__(
        self,
        workdir: Path,
        pair: KeyPair | None,
        *,
        user: str | None = "bblp",
        password: str | None = None,
        size: str = "640x360",
        fps: int = 30,
        stamped: bool = False,
        pattern: str = "ball",
        digest: bool = False,
        codec: str = "h264",
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.argv = [
            PYTHON,
            str(SERVER),
            "--size",
            size,
            "--fps",
            str(fps),
            *(["--stamped"] if stamped else []),
            "--pattern",
            pattern,
            *(["--digest"] if digest else []),
            "--codec",
            codec,
        ]
        if pair is not None:
            pem = self.workdir / "camera.pem"
            pem.write_bytes(pair.cert_pem + pair.key_pem)  # GIO reads both from one file
            self.argv += ["--tls", str(pem)]
        if user:
            self.argv += ["--user", user, "--password", password or ""]
        self.port = 0
        self.clients = 0
        self.closed = 0
        self.stderr_path = self.workdir / "gst.log"
        self._proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> None:
        self._ready.clear()
        with open(self.stderr_path, "ab") as err:
            self._proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=err, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"the RTSP camera did not start: {self.stderr_path.read_text()[-2000:]}")

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == "port":
                self.port = int(rest)
                self._ready.set()
            elif word == "client":
                self.clients += 1
            elif word == "closed":
                self.closed += 1

    @property
    def open_connections(self) -> int:
        return self.clients - self.closed

    def wait_clients(self, n: int, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while self.clients < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.clients

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        end_process(proc)
        if self._reader is not None:
            self._reader.join(2)
