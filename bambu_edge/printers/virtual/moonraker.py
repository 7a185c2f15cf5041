"""The real Moonraker (PyPI ``moonraker``, in its own venv: scripts/moonraker-venv.sh) started on
loopback on a free port with its own config and data folder, talking to the stand-in Klippy
(``klippy.VirtualKlippy``) on its Unix API socket: the virtual Klipper printer of the demo and the
Klipper tests. It sends nothing off the host (see ``write_config``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bambu_edge.printers.virtual.klippy import VirtualKlippy
from bambu_edge.tasks import die_with_parent

ROOT = Path(__file__).resolve().parents[3]  # the source checkout (scripts/, .venv-moonraker)
VENV = Path(os.environ.get("MOONRAKER_VENV", ROOT / ".venv-moonraker"))
SETUP = ROOT / "scripts" / "moonraker-venv.sh"
VERSION = "0.11.0"
UNIX_PATH_MAX = 108  # sun_path, with its terminating NUL


def moonraker_ready() -> bool:
    """Moonraker's venv is made (``make run`` and the tests make it; the demo only uses it)."""
    return (VENV / f".moonraker-{VERSION}").exists()


def free_port() -> int:
    """A port free now on loopback (Moonraker takes its port from its config, not port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def moonraker_python() -> Path:
    """The venv's python, made once (a file lock: test workers share it)."""
    python = VENV / "bin" / "python"
    if not moonraker_ready():
        import fcntl

        VENV.parent.mkdir(parents=True, exist_ok=True)
        with open(str(VENV) + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            subprocess.run([str(SETUP), str(VENV)], check=True)
    return python


@dataclass
class MoonrakerServer:
    base: Path
    trusted: bool = True  # loopback is a trusted client (no API key needed)
    webcams: dict[str, str] = field(default_factory=dict)  # name -> stream URL
    power_devices: tuple[str, ...] = ()
    port: int = 0
    host: str = "127.0.0.1"  # where it listens
    trusted_clients: tuple[str, ...] = ("127.0.0.0/8",)  # with ``trusted``: who needs no API key
    prefix: tuple[str, ...] = ()  # run it under this, e.g. ``ip netns exec NAME`` (a test's namespace)
    proc: subprocess.Popen[bytes] | None = None
    klippy: VirtualKlippy | None = None
    _short_dir: Path | None = None

    @property
    def data(self) -> Path:
        return self.base / "printer_data"

    @property
    def gcodes(self) -> Path:
        return self.data / "gcodes"

    @property
    def socket(self) -> Path:
        """Klippy's API socket: in printer_data/comms as usual, unless that path is too long for a
        Unix socket (108 bytes), then in a short private folder of its own under /tmp."""
        usual = self.data / "comms" / "klippy.sock"
        if len(str(usual).encode()) < UNIX_PATH_MAX:
            return usual
        if self._short_dir is None:
            self._short_dir = Path(tempfile.mkdtemp(prefix="klippy-"))
        return self._short_dir / "klippy.sock"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_config(self) -> Path:
        for sub in ("config", "gcodes", "logs", "database", "comms", "misc"):
            (self.data / sub).mkdir(parents=True, exist_ok=True)
        # Nothing leaves loopback: an existing usb.ids stops its download, and the announcement
        # feeds (Moonlight) are off.
        (self.data / "misc" / "usb.ids").touch()
        if not self.port:
            self.port = free_port()
        lines = [
            "[server]",
            f"host: {self.host}",
            f"port: {self.port}",
            f"klippy_uds_address: {self.socket}",
            "",
            "[machine]",
            "provider: none",
            "validate_service: False",
            "",
            "[authorization]",
            "cors_domains:",
            "    http://127.0.0.1",
        ]
        if self.trusted:
            lines += ["trusted_clients:", *(f"    {net}" for net in self.trusted_clients)]
        lines += ["", "[announcements]", "enable_moonlight: False", ""]
        lines += ["[history]", "", "[file_manager]", "enable_object_processing: False", ""]
        for name, url in self.webcams.items():
            lines += [
                f"[webcam {name}]",
                "service: mjpegstreamer",
                f"stream_url: {url}",
                f"snapshot_url: {url}",
                "",
            ]
        cfg = self.data / "config" / "moonraker.conf"
        cfg.write_text("\n".join(lines))
        return cfg

    async def start(self) -> None:
        await self.spawn()
        await self.wait_up()

    async def spawn(self) -> None:
        """Its stand-in Klippy listening, Moonraker started (not yet answering)."""
        cfg = self.write_config()
        if self.klippy is None:
            self.klippy = VirtualKlippy(self.socket, self.gcodes)
            await self.klippy.start()
        python = await asyncio.to_thread(moonraker_python)
        self.proc = self._spawn(python, cfg)

    def _spawn(self, python: Path, cfg: Path) -> subprocess.Popen[bytes]:
        with open(self.base / "moonraker.out", "ab") as log:
            return subprocess.Popen(
                [*self.prefix, str(python), "-m", "moonraker", "-d", str(self.data), "-c", str(cfg), "-n"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),  # not left running if the demo or a test is killed
            )

    async def wait_up(self, timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout), aiohttp.ClientSession() as s:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"moonraker exited: {self.output()[-3000:]}")
                try:
                    async with s.get(f"{self.url}/server/info") as r:
                        if r.status in (200, 401):  # up (401: it wants the API key)
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

    def headers(self) -> dict[str, str]:
        return {} if self.trusted else {"X-Api-Key": self.api_key()}

    def api_key(self) -> str:
        """Moonraker's API key, from its own database (it makes one on first start)."""
        db = sqlite3.connect(self.data / "database" / "moonraker-sql.db")
        try:
            row = db.execute(
                "SELECT password FROM authorized_users WHERE username = '_API_KEY_USER_'"
            ).fetchone()
        finally:
            db.close()
        return row[0]

    def output(self) -> str:
        try:
            return (self.base / "moonraker.out").read_text(errors="replace")
        except OSError:
            return ""

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), 10)
            except TimeoutError:
                proc.kill()
                await asyncio.to_thread(proc.wait)

    async def close(self) -> None:
        await self.stop()
        if self.klippy is not None:
            await self.klippy.stop()
            self.klippy = None
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)
            self._short_dir = None


async def klippy_ready(server: MoonrakerServer, timeout: float = 30.0) -> None:
    """Moonraker says Klippy is ready (it polls the socket every 0.25 s)."""
    async with asyncio.timeout(timeout), aiohttp.ClientSession() as s:
        while True:
            async with s.get(f"{server.url}/server/info", headers=server.headers()) as r:
                body = await r.json()
                if body["result"]["klippy_state"] == "ready":
                    return
            await asyncio.sleep(0.1)
