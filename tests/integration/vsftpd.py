"""vsftpd as the printer's FTPS side: implicit TLS on a loopback port it binds itself (port 0), user ``bblp`` with the
access code, and ``require_ssl_reuse=YES`` like the printers (shared/TESTBED.md section 2).

vsftpd runs in the foreground as a child process in its own process group, so stop() can end it
and its per-session children and reap the listener (TESTBED G5, G6).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from bambu_edge.certs import KeyPair, make_ca, make_server_cert
from bambu_edge.demo.broker import listening_ports

FTP_USER = "bblp"
INSTALL_HINT = "vsftpd is not installed: run `make test` (it installs it) or `apt-get install -y vsftpd`"


class VsftpdError(RuntimeError):
    pass


def vsftpd_binary() -> str | None:
    found = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
    return found if os.access(found, os.X_OK) else None


_USER_LOCK = Path(tempfile.gettempdir()) / "bambu-edge-ftp-user.lock"
_users_set: dict[str, pwd.struct_passwd] = {}


def ensure_ftp_user(password: str) -> pwd.struct_passwd:
    """The system user vsftpd authenticates (via PAM), as on the printer: ``bblp`` + access code.
    Needs root, as vsftpd itself does. Parallel test processes take turns (useradd and chpasswd
    each lock /etc/shadow and fail, not wait, when another holds it)."""
    if password in _users_set:
        return _users_set[password]
    with open(_USER_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _users_set.clear()
        _users_set[password] = _ensure_ftp_user(password)
    return _users_set[password]


def _ensure_ftp_user(password: str) -> pwd.struct_passwd:
    try:
        entry = pwd.getpwnam(FTP_USER)
    except KeyError:
        # pam_shells wants a shell listed in /etc/shells. vsftpd enters the home directory before
        # local_root (which holds the per-test files), so the home must exist: "/" always does.
        subprocess.run(
            ["useradd", "--system", "-M", "-d", "/", "-s", "/bin/bash", FTP_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(FTP_USER)
    if not os.path.isdir(entry.pw_dir):
        subprocess.run(["usermod", "-d", "/", FTP_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(FTP_USER)
    # Always set it: a user left over from another run may carry another password.
    subprocess.run(["chpasswd"], input=f"{FTP_USER}:{password}\n".encode(), check=True, capture_output=True)
    return entry


class VsftpdServer:
    """One vsftpd listener. Config, certificates and logs live in ``workdir``; the FTP root is a
    fresh world-traversable temp directory (pytest's tmp dirs are 0700, which ``bblp`` cannot enter)."""

    def __init__(
        self,
        workdir: Path,
        access_code: str,
        serial: str,
        *,
        host: str = "127.0.0.1",
        max_rate: int = 0,
        ca: KeyPair | None = None,
        server_cert: KeyPair | None = None,
    ):
        self.workdir = Path(workdir)
        self.access_code = access_code
        self.serial = serial
        self.host = host
        self.port = 0  # the port vsftpd bound, known once start() returns
        self.max_rate = max_rate
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.workdir / "vsftpd.conf"
        self.log_path = self.workdir / "vsftpd.log"
        self.out_path = self.workdir / "vsftpd.out"
        self.cert_path = self.workdir / "server.crt"
        self.key_path = self.workdir / "server.key"
        # Unique CA name per server: two CAs with one subject confuse chain building (TESTBED G4).
        self.ca = ca or make_ca(f"bambu-edge test FTP CA {os.urandom(4).hex()}")
        # server_cert: present this certificate instead, e.g. the broker's, so that one printer shows
        # the same certificate on its MQTT and FTPS ports as a real one does.
        self.server_cert = server_cert or make_server_cert(
            serial, [serial, "localhost", host], issuer=self.ca
        )
        self.server_cert.write(self.cert_path, self.key_path)
        self._base = Path(tempfile.mkdtemp(prefix="bambu-edge-ftp-"))
        self._base.chmod(0o755)
        self.root = self._base / "root"
        self._empty = self._base / "empty"  # secure_chroot_dir: empty, root-owned, not writable
        self._proc: subprocess.Popen[bytes] | None = None

    # --- client-side helpers ------------------------------------------------------------------------

    def client_context(self) -> ssl.SSLContext:
        """Trust the test CA; the leaf's CN/SAN is the serial while we connect by IP (as the daemon does)."""
        ctx = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
        ctx.check_hostname = False
        return ctx

    def path(self, remote: str) -> Path:
        """Where a remote path lives on disk."""
        return self.root / remote.lstrip("/")

    def folder(self, remote: str) -> Path:
        """Make a folder on the storage as the printer's own would be: owned by the FTP user, so
        uploads into it work (a folder the test makes as root is read-only to vsftpd's user)."""
        owner = self.root.stat()
        path = self.root
        for part in remote.strip("/").split("/"):
            path = path / part
            path.mkdir(exist_ok=True)
            os.chown(path, owner.st_uid, owner.st_gid)
        return path

    # --- files -------------------------------------------------------------------------------------

    def _write_conf(self, user: pwd.struct_passwd) -> None:
        self.root.mkdir(exist_ok=True)
        os.chown(self.root, user.pw_uid, user.pw_gid)
        self._empty.mkdir(mode=0o755, exist_ok=True)
        lines = [
            "listen=YES",
            "listen_ipv6=NO",
            f"listen_address={self.host}",
            # First start 0: the kernel picks and start() asks which (no pick-then-bind race between
            # parallel tests). A restart keeps the port, as a printer's storage does.
            f"listen_port={self.port}",
            "background=NO",
            "anonymous_enable=NO",
            "local_enable=YES",
            "write_enable=YES",
            "local_umask=022",
            f"local_root={self.root}",
            "chroot_local_user=YES",
            "allow_writeable_chroot=YES",
            f"secure_chroot_dir={self._empty}",
            "pam_service_name=vsftpd",
            "check_shell=NO",
            "seccomp_sandbox=NO",
            "pasv_enable=YES",
            f"pasv_address={self.host}",
            # No pasv_min_port/pasv_max_port: vsftpd draws each data port itself and draws again
            # when one is taken.
            "ssl_enable=YES",
            "implicit_ssl=YES",
            "force_local_logins_ssl=YES",
            "force_local_data_ssl=YES",
            "require_ssl_reuse=YES",
            "ssl_ciphers=HIGH",
            f"rsa_cert_file={self.cert_path}",
            f"rsa_private_key_file={self.key_path}",
            f"local_max_rate={self.max_rate}",
            "xferlog_enable=YES",
            "dual_log_enable=YES",
            f"vsftpd_log_file={self.log_path}",
            "log_ftp_protocol=YES",
            "",
        ]
        self.conf_path.write_text("\n".join(lines))
        # vsftpd refuses a config file not owned by root.
        os.chown(self.conf_path, 0, 0)
        self.conf_path.chmod(0o600)

    def log(self) -> str:
        parts = [p.read_text(errors="replace") for p in (self.log_path, self.out_path) if p.exists()]
        return "\n".join(parts)

    # --- process -----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        binary = vsftpd_binary()
        if binary is None:
            raise VsftpdError(INSTALL_HINT)
        if os.geteuid() != 0:
            raise VsftpdError("vsftpd tests need root (system user bblp, root-owned config)")
        self._write_conf(ensure_ftp_user(self.access_code))
        with open(self.out_path, "ab") as out:
            self._proc = subprocess.Popen(
                [binary, str(self.conf_path)],
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends session children too
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise VsftpdError(f"vsftpd exited ({code}):\n{self.log()[-2000:]}")
            ports = listening_ports(self._proc.pid)
            if ports:
                (self.port,) = ports  # the listener; session children are not vsftpd's own pid
                return
            time.sleep(0.02)
        self.stop()
        raise VsftpdError(f"vsftpd did not listen on {self.host} within {timeout} s")

    def stop(self, *, keep_files: bool = False) -> None:
        """Stop the server; ``keep_files``: the storage stays, for a ``start()`` again (a printer
        that was away comes back with its SD card as it was)."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        finally:
            if not keep_files:
                shutil.rmtree(self._base, ignore_errors=True)

    def __enter__(self) -> VsftpdServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
