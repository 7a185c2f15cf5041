"""``bambu-edge demo``: the real daemon with three virtual printers on a local broker, all in ./var/.

First run: generates an access code, serials and the admin password (kept in ``var/demo.json`` and
``var/demo-login.txt``, both mode 600). Every run: writes ``var/config.yaml`` from them (so a port that
became busy is simply replaced), starts mosquitto (``var/broker``), the virtual printers and the daemon,
and stops them all on Ctrl-C. Certificates, database and password survive re-runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import secrets
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bambu_edge.component import StartError
from bambu_edge.config import Config, load_config
from bambu_edge.demo.broker import BrokerError, LocalBroker, free_port, mosquitto_binaries
from bambu_edge.printers.bambu import models
from bambu_edge.printers.virtual import VirtualPrinter, make_serial

DEFAULT_HTTPS_PORT = 3443
DEFAULT_HTTP_PORT = 3000
BIND = "127.0.0.1"  # the login is printed in clear: only this machine, unless the user says otherwise
ADMIN = "admin"
DEMO_PRINT_S = 900.0  # one demo print: 15 minutes, so progress is visible but not frantic
# Queued files print at this speed in the demo: a one-hour slice takes three minutes.
DEMO_TIME_SCALE = 0.05


@dataclass(frozen=True)
class DemoPrinter:
    id: str
    name: str
    model: str
    prints: bool  # loop demo prints; False: stays idle
    phase: float = 0.0  # where in its first print it starts (0..1)


DEMO_PRINTERS = (
    DemoPrinter("x1c-demo", "X1C demo", models.X1C, prints=True, phase=0.55),
    DemoPrinter("p1s-demo", "P1S demo", models.P1S, prints=True, phase=0.08),
    DemoPrinter("a1-demo", "A1 demo", models.A1, prints=False),
)


@dataclass(frozen=True)
class DemoFiles:
    workdir: Path

    @property
    def config(self) -> Path:
        return self.workdir / "config.yaml"

    @property
    def state(self) -> Path:
        return self.workdir / "demo.json"

    @property
    def login(self) -> Path:
        return self.workdir / "demo-login.txt"

    @property
    def broker(self) -> Path:
        return self.workdir / "broker"

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    def sdcard(self, printer_id: str) -> Path:
        """The virtual printer's storage, served over implicit FTPS like a printer's port 990."""
        return self.workdir / "sdcard" / printer_id


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    path.chmod(0o600)  # an existing file keeps its old mode through os.open


def load_state(files: DemoFiles) -> dict[str, Any]:
    """Access code, serials and broker port, made once and reused (same printers on every run)."""
    state: dict[str, Any] = {}
    if files.state.exists():
        with contextlib.suppress(ValueError, OSError):
            state = json.loads(files.state.read_text(encoding="utf-8"))
    changed = not isinstance(state, dict) or not state
    if not isinstance(state, dict):
        state = {}
    if not isinstance(state.get("access_code"), str):
        state["access_code"] = f"{secrets.randbelow(10**8):08d}"
        changed = True
    serials = state.setdefault("serials", {})
    for p in DEMO_PRINTERS:
        if not isinstance(serials.get(p.id), str):
            serials[p.id] = make_serial(p.model)
            changed = True
    if changed:
        _write_private(files.state, json.dumps(state, indent=2) + "\n")
    return state


def port_is_free(port: int, host: str = BIND) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server binds
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(wanted: int | None, default: int, what: str) -> int:
    """The asked-for port (must be free), else the default, else a free one, said out loud."""
    if wanted is not None:
        if not port_is_free(wanted):
            raise OSError(errno.EADDRINUSE, f"{what} port {wanted} is already in use")
        return wanted
    if port_is_free(default):
        return default
    port = free_port(BIND)
    print(f"Port {default} ({what}) is in use; using {port} instead.", flush=True)
    return port


def write_config(
    files: DemoFiles,
    state: dict[str, Any],
    broker: LocalBroker,
    https: int,
    http: int,
    ftps_ports: dict[str, int],
) -> None:
    printers = [
        {
            "id": p.id,
            "name": p.name,
            "type": "bambu",
            "host": broker.host,
            "mqtt_port": broker.port,
            "ftps_port": ftps_ports[p.id],
            "serial": state["serials"][p.id],
            "access_code": state["access_code"],
            # One local broker plays every printer, so its certificate names no serial: pin it.
            "tls": {"fingerprint": broker.fingerprint},
            "camera": "off",  # the virtual printers have no camera
        }
        for p in DEMO_PRINTERS
    ]
    config = {
        "data_dir": str(files.data.resolve()),
        "log_level": "warning",  # keep the console for the banner; raise it here to see more
        "web": {"bind": BIND, "https_port": https, "http_port": http},
        "printers": printers,
    }
    header = (
        "# Generated by `bambu-edge demo` on every start (edits are replaced).\n"
        "# Access code, serials: demo.json. Dashboard login: demo-login.txt.\n"
    )
    _write_private(files.config, header + yaml.safe_dump(config, sort_keys=False))


async def ensure_admin(config: Config, login_file: Path) -> str | None:
    """Create ``admin`` with a generated password when the database has no user yet. Returns the
    password on record (None if the user made their own and the file is gone)."""
    from bambu_edge.store.db import Store

    saved = _saved_password(login_file)
    store = Store(config)
    await store.start()
    try:
        if await store.users.count() > 0:
            return saved
        password = saved or secrets.token_urlsafe(12)
        await store.users.create(ADMIN, password, "admin")
    finally:
        await store.stop()
    _write_private(login_file, f"user: {ADMIN}\npassword: {password}\n")
    return password


def _saved_password(login_file: Path) -> str | None:
    with contextlib.suppress(OSError):
        for line in login_file.read_text(encoding="utf-8").splitlines():
            if line.startswith("password: "):
                return line.removeprefix("password: ").strip() or None
    return None


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


def banner(files: DemoFiles, config: Config, password: str | None) -> str:
    url = f"https://localhost:{config.web.https_port}/"
    login = f"{ADMIN} / {password}" if password else f"{ADMIN} / the password you set"
    busy = ", ".join(f"{p.model} {'printing' if p.prints else 'idle'}" for p in DEMO_PRINTERS)
    lines = [
        "",
        "bambu-edge demo is running.",
        "",
        f"  Dashboard:  {url}",
        "              The certificate is self-signed: your browser warns once; accept it to go on.",
        f"  Login:      {login}   (saved in {_shown(files.login)})",
        f"  Printers:   {len(DEMO_PRINTERS)} virtual printers ({busy}) on a local MQTT broker",
        f"  Files:      {_shown(files.config)} (config), {_shown(files.data)}/ (database, certificates),",
        f"              {_shown(files.broker)}/ (mosquitto), {_shown(files.workdir)}/sdcard/ (printer storage).",
        f"              Delete {_shown(files.workdir)}/ to start afresh.",
        "  Stop:       press Ctrl-C",
    ]
    if config.web.bind == BIND:
        lines.append(
            "  Only this machine can open it; for others: BAMBU_EDGE_WEB_BIND=0.0.0.0 bambu-edge demo"
        )
    return "\n".join(lines) + "\n"


async def _serve(files: DemoFiles, config: Config, state: dict[str, Any], broker: LocalBroker) -> int:
    from bambu_edge.app import Daemon
    from bambu_edge.demo.sdcard import DemoStorage

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    printers: list[VirtualPrinter] = []
    storages: list[DemoStorage] = []
    daemon: Daemon | None = None
    try:
        broker.start()
        ports = {p.id: p.ftps_port for p in config.printers}
        for p in DEMO_PRINTERS:
            # The broker's certificate on both ports, as one printer shows one certificate.
            storage = DemoStorage(
                files.sdcard(p.id),
                state["access_code"],
                broker.cert_path,
                broker.key_path,
                host=broker.host,
                port=ports[p.id],
            )
            storage.start()
            storages.append(storage)
        for p in DEMO_PRINTERS:
            vp = VirtualPrinter(
                broker.host,
                broker.port,
                state["serials"][p.id],
                state["access_code"],
                p.model,
                str(broker.ca_path),
                demo_prints=p.prints,
                demo_phase=p.phase,
                demo_print_s=DEMO_PRINT_S,
                sdcard_dir=files.sdcard(p.id),  # print commands print the files uploaded there
                time_scale=DEMO_TIME_SCALE,
            )
            await vp.start()
            printers.append(vp)
        password = await ensure_admin(config, files.login)
        daemon = Daemon(config)
        await daemon.start()
        print(banner(files, config, password), flush=True)
        await stop.wait()
        print("Stopping ...", flush=True)
        return 0
    finally:
        if daemon is not None:
            await daemon.stop()
        for vp in printers:
            await vp.stop()
        for storage in storages:
            storage.stop()
        broker.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def demo_main(
    workdir: Path = Path("var"), *, https_port: int | None = None, http_port: int | None = None
) -> int:
    try:
        mosquitto_binaries()
    except BrokerError as e:
        print(f"bambu-edge demo: {e}", file=sys.stderr)
        return 1
    files = DemoFiles(Path(workdir).resolve())  # mosquitto.conf names absolute paths
    try:
        files.workdir.mkdir(parents=True, exist_ok=True)
        files.data.mkdir(exist_ok=True)
        state = load_state(files)
        https = choose_port(https_port, DEFAULT_HTTPS_PORT, "HTTPS")
        http = choose_port(http_port, DEFAULT_HTTP_PORT, "HTTP")
        port = state.get("broker_port")
        broker = LocalBroker(
            files.broker,
            {"bblp": state["access_code"]},
            port=port if isinstance(port, int) and port_is_free(port) else 0,
        )
        if broker.port != port:
            state["broker_port"] = broker.port
            _write_private(files.state, json.dumps(state, indent=2) + "\n")
        write_config(files, state, broker, https, http, {p.id: free_port(BIND) for p in DEMO_PRINTERS})
        from bambu_edge.app import config_sections

        config = load_config(files.config, sections=config_sections())
    except (OSError, BrokerError) as e:
        print(f"bambu-edge demo: {e}", file=sys.stderr)
        return 1

    from bambu_edge.logs import setup_logging

    setup_logging(config.log_level)
    try:
        return asyncio.run(_serve(files, config, state, broker))
    except (OSError, BrokerError, ConnectionError, StartError) as e:
        print(f"bambu-edge demo: cannot start: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        broker.stop()
        return 130
