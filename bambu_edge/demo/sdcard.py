"""The demo's printer storage: an implicit-FTPS server per virtual printer, like port 990 on a printer.

The demo cannot use vsftpd (the tests' server): it needs root and a system user. pyftpdlib runs in
this process, on a thread, with TLS from the first byte (implicit FTPS), user ``bblp`` and the access
code, and presents the demo broker's certificate, so the daemon trusts it exactly as it trusts the
printer's MQTT side. It is less strict than a printer (it does not insist on TLS session reuse), which
is why the tests use vsftpd; for the demo it is the same protocol from the daemon's side.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

USER = "bblp"
# What the printer's user may do on its own card: list, read, write, delete, rename, make folders.
PERMISSIONS = "elradfmwMT"


class DemoStorage:
    """One printer's storage: ``root`` served on ``host:port`` (0 picks a free port)."""

    def __init__(
        self,
        root: Path,
        access_code: str,
        cert_file: Path,
        key_file: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        passive_ports: range | None = None,
    ):
        self.root = Path(root)
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._access_code = access_code
        self._cert_file, self._key_file = cert_file, key_file
        self._passive_ports = passive_ports
        self._server: FTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def __repr__(self) -> str:  # the access code stays out of logs
        return f"DemoStorage({self.root}, {self.host}:{self.port})"

    def start(self) -> None:
        if self._server is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "cache").mkdir(exist_ok=True)
        (self.root / "timelapse").mkdir(exist_ok=True)
        # Per-command INFO lines are noise in the demo's output; a handler of our own also stops
        # pyftpdlib from configuring logging for the whole process.
        ftp_log = logging.getLogger("pyftpdlib")
        ftp_log.setLevel(logging.WARNING)
        if not ftp_log.handlers:
            ftp_log.addHandler(logging.NullHandler())
        authorizer = DummyAuthorizer()
        authorizer.add_user(USER, self._access_code, str(self.root), perm=PERMISSIONS)
        handler = type(
            "ImplicitTLSHandler",
            (_ImplicitTLSHandler,),
            {
                "certfile": str(self._cert_file),
                "keyfile": str(self._key_file),
                "authorizer": authorizer,
                "passive_ports": self._passive_ports,
                "ssl_context": None,  # per class: each printer has its own certificate
            },
        )
        # Its own IO loop: pyftpdlib's default is one shared by every server in the process.
        server = FTPServer((self.host, self._requested_port), handler, ioloop=IOLoop())
        self.port = server.address[1]
        self._server = server
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"demo-ftps-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        server = self._server
        assert server is not None
        try:
            while not self._stop.is_set():
                server.ioloop.loop(0.2, blocking=False)
        finally:
            server.close_all()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(5)
        self._server = None


class _ImplicitTLSHandler(TLS_FTPHandler):
    # Implicit FTPS: TLS before the greeting, as on the printer's port 990; no plain text ever.
    tls_control_required = True
    tls_data_required = True

    def handle(self) -> None:
        self.secure_connection(self.ssl_context)
        super().handle()
