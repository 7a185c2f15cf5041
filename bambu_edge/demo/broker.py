"""A local mosquitto with TLS and a password file that plays the printers' MQTT side.

Used by ``bambu-edge demo`` and by the integration tests: same broker the real printer runs
(port 8883 TLS, user ``bblp`` + access code, leaf certificate CN = serial).
"""

from __future__ import annotations

import errno
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from bambu_edge.certs import KeyPair, fingerprint_pem, make_ca, make_server_cert


class BrokerError(RuntimeError):
    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.errno = code  # errno.EADDRINUSE: the port was taken


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (its sockets matched to /proc/net/tcp{,6} by inode).
    Lets a caller ask a child that bound port 0 which port it got, and tell its own listener from
    another process's on the same port."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        for fd in fd_dir.iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:  # gone, or an fd closed while we looked: the caller asks again
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            # fields: sl, local address, remote address, state (0A: LISTEN), ..., inode (10th)
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def mosquitto_binaries() -> tuple[str, str]:
    mosq = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not (os.access(mosq, os.X_OK) and os.access(passwd, os.X_OK)):
        raise BrokerError("mosquitto is not installed. Run:  sudo apt-get install -y mosquitto")
    return mosq, passwd


class LocalBroker:
    """mosquitto in the foreground as a child process; files live in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        users: dict[str, str],
        server_cn: str = "bambu-edge-demo",
        port: int = 0,
        host: str = "127.0.0.1",
        ca: KeyPair | None = None,
        *,
        port_retries: int = 0,
    ):
        """``port`` 0: a free port. mosquitto 2.0 cannot bind port 0 itself (it reads ``listener 0``
        as a unix socket), so the port is picked here; ``port_retries``: when that port was taken
        before mosquitto bound it, move to another free one at the first ``start()`` (for callers
        that read ``port`` only after it, e.g. parallel tests) instead of failing."""
        self.workdir = Path(workdir)
        self.users = dict(users)
        self.server_cn = server_cn
        self.host = host
        self.port = port or free_port(host)
        self._port_retries = 0 if port else port_retries
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ca_path = self.workdir / "ca.crt"
        self.cert_path = self.workdir / "server.crt"
        self.key_path = self.workdir / "server.key"
        self.conf_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._ca = ca or self._load_or_make_ca()
        if not self.cert_path.exists():
            self.rotate_certificate()
        self._write_passwords()

    # --- files -------------------------------------------------------------------------------------

    def _load_or_make_ca(self) -> KeyPair:
        ca_key = self.workdir / "ca.key"
        if self.ca_path.exists() and ca_key.exists():
            return KeyPair(self.ca_path.read_bytes(), ca_key.read_bytes())
        # A unique CA name per broker: two CAs with one subject confuse chain building (TESTBED G4).
        ca = make_ca(f"bambu-edge demo CA {os.urandom(4).hex()}")
        ca.write(self.ca_path, ca_key)
        return ca

    def rotate_certificate(self, cn: str | None = None) -> str:
        """Issue a fresh server certificate (as a printer would after a factory reset; ``cn``: issued
        to another serial, as another printer at this address would show); returns its SHA-256
        fingerprint. Takes effect on the next (re)start."""
        cn = cn or self.server_cn
        pair = make_server_cert(cn, [cn, "localhost", self.host], issuer=self._ca)
        pair.write(self.cert_path, self.key_path)
        return fingerprint_pem(pair.cert_pem)

    @property
    def server_pair(self) -> KeyPair:
        """The certificate and key the broker presents (a printer shows the same one on FTPS)."""
        return KeyPair(self.cert_path.read_bytes(), self.key_path.read_bytes())

    @property
    def fingerprint(self) -> str:
        return fingerprint_pem(self.cert_path.read_bytes())

    def _write_passwords(self) -> None:
        _, passwd = mosquitto_binaries()
        pw_file = self.workdir / "passwd"
        pw_file.unlink(missing_ok=True)
        for i, (user, password) in enumerate(self.users.items()):
            args = [passwd, "-b"] + (["-c"] if i == 0 else []) + [str(pw_file), user, password]
            subprocess.run(args, check=True, capture_output=True)
        pw_file.chmod(0o600)

    def _write_conf(self) -> None:
        self.conf_path.write_text(
            "\n".join(
                [
                    "per_listener_settings false",
                    "allow_anonymous false",
                    f"password_file {self.workdir / 'passwd'}",
                    "persistence false",
                    "log_dest stderr",
                    "log_type error",
                    "log_type warning",
                    # Stay the invoking user: root would otherwise drop to 'mosquitto', which cannot
                    # read files in a private temp directory.
                    f"user {getpass.getuser()}",
                    "max_keepalive 120",
                    f"listener {self.port} {self.host}",
                    f"cafile {self.ca_path}",
                    f"certfile {self.cert_path}",
                    f"keyfile {self.key_path}",
                    "require_certificate false",
                    "",
                ]
            )
        )

    # --- process -----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """The running mosquitto's process id."""
        if self._proc is None:
            raise BrokerError("mosquitto is not running")
        return self._proc.pid

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        retries, self._port_retries = self._port_retries, 0  # a restart keeps its port: clients dial it
        while True:
            try:
                self._start(timeout)
                return
            except BrokerError as e:
                if e.errno != errno.EADDRINUSE or retries <= 0:
                    raise
                retries -= 1
                self.port = free_port(self.host)

    def _start(self, timeout: float) -> None:
        mosq, _ = mosquitto_binaries()
        self._write_conf()
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(
                [mosq, "-c", str(self.conf_path)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self.log_path.read_text(errors="replace")[-2000:]
                in_use = log.rstrip().endswith("Address already in use")
                self._proc = None
                raise BrokerError(
                    f"mosquitto exited; see {self.log_path}:\n" + log,
                    code=errno.EADDRINUSE if in_use else None,
                )
            # Its own listener, not another process's on the same port.
            if self.port in listening_ports(self._proc.pid):
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not open {self.host}:{self.port} within {timeout} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def kill(self) -> None:
        """Die like a printer losing power: no goodbye to clients."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
