"""The fan-out's mosquitto: its files and its process.

Everything it reads lives in a private runtime directory (tmpfs under systemd's PrivateTmp):
nothing is written to the SD card, and the access codes file (mode 0600) is gone when it stops.
bambu-edge reaches it on a unix socket (no TLS, no extra TCP port); clients on the TLS listener.
"""

from __future__ import annotations

import getpass
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bambu_edge.component import ComponentError

MAX_CONNECTIONS = 64  # per listener: a Pi serves a few slicers and dashboards, not a crowd


def mosquitto_binary() -> str:
    path = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.access(path, os.X_OK):
        raise ComponentError("the fan-out endpoint needs mosquitto: sudo apt-get install -y mosquitto")
    return path


@dataclass(frozen=True)
class BrokerFiles:
    directory: Path
    plugin: Path
    cert: Path
    key: Path
    port: int
    bind: str

    @property
    def conf(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def codes(self) -> Path:
        return self.directory / "codes"

    @property
    def socket(self) -> Path:
        return self.directory / "mqtt.sock"

    def write_conf(self) -> None:
        lines = [
            "per_listener_settings false",
            "allow_anonymous false",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            # Stay our own user: as root it would drop to 'mosquitto', which cannot read these files.
            f"user {getpass.getuser()}",
            f"plugin {self.plugin}",
            f"plugin_opt_codes_file {self.codes}",
            f"listener 0 {self.socket}",
            f"listener {self.port} {self.bind}",
            f"max_connections {MAX_CONNECTIONS}",
            f"certfile {self.cert}",
            f"keyfile {self.key}",
            "",
        ]
        _write_private(self.conf, "\n".join(lines))

    def write_codes(self, bridge: tuple[str, str], codes: dict[str, str]) -> None:
        """``codes``: serial -> access code. Atomic: mosquitto re-reads it on SIGHUP."""
        lines = [f"@bridge {bridge[0]} {bridge[1]}"] + [f"{serial} {code}" for serial, code in codes.items()]
        _write_private(self.codes, "\n".join(lines) + "\n")


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def runtime_dir() -> Path:
    # A short path: a unix socket's name is limited to 107 bytes.
    return Path(tempfile.mkdtemp(prefix="bambu-edge-fanout-"))
