"""Printer files over implicit FTPS against a real vsftpd that, like the printers, insists on TLS
session reuse on the data channel (shared/TESTBED.md section 2)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ftplib
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bambu_edge.certs import make_ca, make_server_cert
from bambu_edge.printers.bambu import ftps
from bambu_edge.printers.bambu.ftps import (
    PrinterFiles,
    PrinterFilesError,
    PrinterTLSError,
    RemoteFile,
    RemotePathError,
)
from bambu_edge.printers.bambu.ftps.listing import parse_list_line, parse_mlsd_line
from bambu_edge.printers.bambu.ftps.transport import ImplicitFTPS
from bambu_edge.printers.bambu.storage import normalize_remote_path
from tests.conftest import ACCESS_CODE, SERIAL
from tests.integration.vsftpd import FTP_USER, VsftpdServer

pytestmark = pytest.mark.integration


def files_for(server: VsftpdServer, context: ssl.SSLContext | None = None, **kw: object) -> PrinterFiles:
    return PrinterFiles(
        server.host, server.port, ACCESS_CODE, context or server.client_context, timeout=5, **kw
    )  # type: ignore[arg-type]


def pinned_leaf_context(cert_pem: bytes) -> ssl.SSLContext:
    """Trust exactly one leaf certificate, as a pin-on-first-use trust store does."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=cert_pem.decode())
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the leaf itself is the trust anchor
    return ctx


def ftps_threads() -> list[str]:
    """Threads currently executing code from the ftps package."""
    package = os.path.dirname(ftps.__file__) + os.sep
    frames = sys._current_frames()
    busy = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1)
        while frame is not None:
            if frame.f_code.co_filename.startswith(package):
                busy.append(thread.name)
                break
            frame = frame.f_back
    return busy


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass  # the fd listdir itself used
    return count


# --- the happy paths ---------------------------------------------------------------------------------


async def test_upload_list_download_delete(vsftpd: VsftpdServer, tmp_path: Path) -> None:
    data = os.urandom(1_500_000)
    src = tmp_path / "cube.gcode.3mf"
    src.write_bytes(data)
    files = files_for(vsftpd)
    events: list[tuple[int, int]] = []

    # /cache does not exist yet: the upload creates it (no separate mkdir call).
    assert not vsftpd.path("/cache").exists()
    assert await files.upload(src, "cache//cube.gcode.3mf", lambda d, t: events.append((d, t))) == (
        "/cache/cube.gcode.3mf"
    )
    assert vsftpd.path("/cache/cube.gcode.3mf").read_bytes() == data
    assert events[-1] == (len(data), len(data))
    assert [d for d, _ in events] == sorted(d for d, _ in events)
    assert {t for _, t in events} == {len(data)}
    # Only the final name remains; the temp name is gone.
    assert names(vsftpd.path("/cache")) == ["cube.gcode.3mf"]

    root = await files.list("/")
    assert [(f.name, f.path, f.is_dir) for f in root] == [("cache", "/cache", True)]
    (entry,) = await files.list("/cache")
    assert entry.name == "cube.gcode.3mf" and entry.path == "/cache/cube.gcode.3mf"
    assert entry.size == len(data) and not entry.is_dir
    assert entry.modified is not None and abs(entry.modified - time.time()) < 120

    down: list[tuple[int, int]] = []
    dst = tmp_path / "back.3mf"
    await files.download("/cache/cube.gcode.3mf", dst, lambda d, t: down.append((d, t)))
    assert dst.read_bytes() == data
    assert down[-1] == (len(data), len(data))
    assert [n for n in names(tmp_path) if n.startswith(".")] == []  # no temp left locally

    await files.delete("/cache/cube.gcode.3mf")
    assert not vsftpd.path("/cache/cube.gcode.3mf").exists()
    assert await files.list("/cache") == []


async def test_upload_replaces_an_existing_file(vsftpd: VsftpdServer, tmp_path: Path) -> None:
    files = files_for(vsftpd)
    src = tmp_path / "plate.3mf"
    src.write_bytes(b"first version")
    await files.upload(src, "/plate.3mf")
    src.write_bytes(b"second, longer version")
    await files.upload(src, "/plate.3mf")
    assert vsftpd.path("/plate.3mf").read_bytes() == b"second, longer version"


async def test_empty_file_round_trip(vsftpd: VsftpdServer, tmp_path: Path) -> None:
    files = files_for(vsftpd)
    src = tmp_path / "empty.gcode"
    src.write_bytes(b"")
    events: list[tuple[int, int]] = []
    await files.upload(src, "/empty.gcode", lambda d, t: events.append((d, t)))
    assert events == [(0, 0)]
    await files.download("/empty.gcode", tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b""


async def test_timelapses_listed_newest_first_and_downloadable(vsftpd: VsftpdServer, tmp_path: Path) -> None:
    folder = vsftpd.path("/timelapse")
    (folder / "thumbnail").mkdir(parents=True)
    (folder / "thumbnail" / "video_2024-05-01_10-00-00.jpg").write_bytes(b"jpg")
    clips = {
        "video_2024-05-01_10-00-00.mp4": os.urandom(2000),
        "video_2024-06-12_08-30-15.mp4": os.urandom(3000),
        "video_2023-01-02_03-04-05.avi": os.urandom(1000),  # older models record .avi
    }
    for name, body in clips.items():
        (folder / name).write_bytes(body)
    (folder / "notes.txt").write_text("not a video")

    files = files_for(vsftpd)
    videos = await files.timelapses()
    assert [v.name for v in videos] == [
        "video_2024-06-12_08-30-15.mp4",
        "video_2024-05-01_10-00-00.mp4",
        "video_2023-01-02_03-04-05.avi",
    ]
    assert all(isinstance(v, RemoteFile) and not v.is_dir for v in videos)
    assert {v.path: v.size for v in videos} == {f"/timelapse/{n}": len(b) for n, b in clips.items()}

    newest = videos[0]
    await files.download(newest.path, tmp_path / newest.name)
    assert (tmp_path / newest.name).read_bytes() == clips[newest.name]


async def test_printer_without_timelapse_folder_has_none(vsftpd: VsftpdServer) -> None:
    assert await files_for(vsftpd).timelapses() == []


async def test_missing_files_are_reported_plainly(vsftpd: VsftpdServer, tmp_path: Path) -> None:
    files = files_for(vsftpd)
    with pytest.raises(PrinterFilesError) as err:
        await files.list("/no-such-folder")
    assert err.value.kind == "not_found" and "/no-such-folder" in str(err.value)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with pytest.raises(PrinterFilesError) as err:
        await files.download("/missing.3mf", downloads / "x")
    assert err.value.kind == "not_found" and err.value.code == 550
    assert names(downloads) == []  # neither the file nor a temp file
    with pytest.raises(PrinterFilesError) as err:
        await files.delete("/missing.3mf")
    assert err.value.kind == "not_found"


async def test_calls_for_one_printer_use_one_connection_at_a_time(
    vsftpd: VsftpdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    active, peak = 0, 0
    real_connect, real_close = ImplicitFTPS.connect, ImplicitFTPS.close

    def connect(self: ImplicitFTPS, *a: object, **kw: object) -> str:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        time.sleep(0.05)  # widen the window an overlap would need
        return real_connect(self, *a, **kw)  # type: ignore[arg-type]

    def close(self: ImplicitFTPS) -> None:
        nonlocal active
        if self.guard is not None and not getattr(self, "_counted", False):
            self._counted = True  # type: ignore[attr-defined]
            active -= 1
        real_close(self)

    monkeypatch.setattr(ImplicitFTPS, "connect", connect)
    monkeypatch.setattr(ImplicitFTPS, "close", close)
    files = files_for(vsftpd)
    results = await asyncio.gather(*(files.list("/") for _ in range(4)), files.timelapses())
    assert results == [[], [], [], [], []]
    assert peak == 1


# --- TLS session reuse, credentials, certificate trust ---------------------------------------------


def test_data_channel_without_session_reuse_is_refused(vsftpd: VsftpdServer) -> None:
    """The reason for the ImplicitFTPS subclass: stock FTP_TLS data sockets start a fresh TLS session,
    and a printer (here vsftpd with require_ssl_reuse) refuses them with 522."""

    class StockDataChannel(ImplicitFTPS):
        ntransfercmd = ftplib.FTP_TLS.ntransfercmd  # what plain ftplib.FTP_TLS does on the data socket

    for cls, works in ((StockDataChannel, False), (ImplicitFTPS, True)):
        ftp = cls(vsftpd.client_context(), timeout=5)
        try:
            ftp.connect(vsftpd.host, vsftpd.port)
            ftp.login(FTP_USER, ACCESS_CODE)
            ftp.prot_p()
            if works:
                assert ftp.nlst() == []
            else:
                with pytest.raises(ftplib.error_perm, match=r"^522 .*session reuse required"):
                    ftp.nlst()
        finally:
            ftp.close()
    assert "No SSL session reuse on data channel" in vsftpd.log()


async def test_wrong_access_code_is_reported_as_such(vsftpd: VsftpdServer) -> None:
    files = PrinterFiles(vsftpd.host, vsftpd.port, "87654321", vsftpd.client_context, timeout=5)
    with pytest.raises(PrinterFilesError) as err:
        await files.list("/")
    assert err.value.kind == "auth" and err.value.code == 530
    assert "access code rejected" in str(err.value)
    assert "87654321" not in str(err.value) and "87654321" not in repr(files)


async def test_pinned_leaf_certificate_is_accepted(vsftpd: VsftpdServer) -> None:
    """A context that trusts exactly the printer's certificate (pin on first use) works for the
    control channel and the resumed data channel alike."""
    files = files_for(vsftpd, pinned_leaf_context(vsftpd.server_cert.cert_pem))
    assert await files.list("/") == []


async def test_serial_checked_as_hostname_when_asked(vsftpd: VsftpdServer) -> None:
    strict = ssl.create_default_context(cadata=vsftpd.ca.cert_pem.decode())  # check_hostname on
    assert await files_for(vsftpd, strict, server_hostname=SERIAL).list("/") == []
    with pytest.raises(PrinterTLSError):
        await files_for(vsftpd, strict, server_hostname="01P00A999999999").list("/")


@pytest.mark.parametrize("trust", ["other_leaf", "other_ca"])
async def test_certificate_not_matching_the_trusted_one_is_refused(vsftpd: VsftpdServer, trust: str) -> None:
    other_ca = make_ca(f"some other CA {os.urandom(4).hex()}")
    if trust == "other_leaf":  # the printer's certificate changed since it was pinned
        ctx = pinned_leaf_context(make_server_cert(SERIAL, [SERIAL], issuer=other_ca).cert_pem)
    else:
        ctx = ssl.create_default_context(cadata=other_ca.cert_pem.decode())
        ctx.check_hostname = False
    with pytest.raises(PrinterTLSError) as err:
        await files_for(vsftpd, ctx).list("/")
    assert err.value.kind == "tls_mismatch"
    assert isinstance(err.value, PrinterFilesError)
    assert "certificate" in str(err.value)


# --- paths ---------------------------------------------------------------------------------------------

BAD_PATHS = [
    "../etc/passwd",
    "/cache/../../etc/shadow",
    "cache/..",
    "a\0b.3mf",
    "x.3mf\r\nDELE /important.3mf",
    "x.3mf\nQUIT",
    "..\\..\\boot.ini",
    "/cache\\x.3mf",
    "esc\x1b[2J.3mf",
    "n" * 256,
    "/" + "d/" * 600 + "f.3mf",
]


@pytest.mark.parametrize("path", BAD_PATHS)
@pytest.mark.parametrize("method", ["list", "upload", "download", "delete"])
async def test_bad_remote_paths_are_refused_before_any_network_traffic(
    tmp_path: Path, method: str, path: str
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    contexts: list[int] = []

    def context() -> ssl.SSLContext:
        contexts.append(1)
        return ssl.create_default_context()

    local = tmp_path / "local.3mf"
    local.write_bytes(b"x")
    files = PrinterFiles("127.0.0.1", listener.getsockname()[1], ACCESS_CODE, context, timeout=2)
    calls: dict[str, Callable[[], object]] = {
        "list": lambda: files.list(path),
        "upload": lambda: files.upload(local, path),
        "download": lambda: files.download(path, tmp_path / "out"),
        "delete": lambda: files.delete(path),
    }
    try:
        with pytest.raises(RemotePathError) as err:
            await calls[method]()  # type: ignore[misc]
        assert isinstance(err.value, ValueError) and err.value.kind == "bad_path"
        assert "\n" not in str(err.value) and "\0" not in str(err.value)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked
        assert contexts == []
    finally:
        listener.close()


def test_remote_path_normalisation() -> None:
    assert normalize_remote_path("cache//cube.3mf") == "/cache/cube.3mf"
    assert normalize_remote_path("/./timelapse/./video_2024-01-01_00-00-00.mp4") == (
        "/timelapse/video_2024-01-01_00-00-00.mp4"
    )
    assert normalize_remote_path("/", file=False) == "/"
    assert normalize_remote_path("a..b/...") == "/a..b/..."  # dots inside names are fine
    assert normalize_remote_path("Würfel 2.3mf") == "/Würfel 2.3mf"
    for bad in ("", "/", "//"):
        with pytest.raises(RemotePathError, match="storage root"):
            normalize_remote_path(bad)


def test_listing_lines_are_parsed_defensively() -> None:
    now = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
    f = parse_list_line("-rw-r--r--    1 999      995        100000 Feb 25 01:40 my cube.3mf", "/cache", now)
    assert f == RemoteFile(
        "my cube.3mf",
        "/cache/my cube.3mf",
        100000,
        dt.datetime(2024, 2, 25, 1, 40, tzinfo=dt.UTC).timestamp(),
        False,
    )
    old = parse_list_line("drwxr-xr-x 2 0 0 4096 Dec 31 23:59 timelapse", "/", now)
    assert (
        old is not None
        and old.is_dir
        and old.modified == dt.datetime(2023, 12, 31, 23, 59, tzinfo=dt.UTC).timestamp()
    )
    link = parse_list_line("lrwxrwxrwx 1 0 0 7 Jan  1  2020 sd -> /mnt/sd", "/", now)
    assert link is not None and link.name == "sd" and link.path == "/sd"
    dos = parse_list_line("03-01-24  01:05PM       <DIR>          model", "/", now)
    assert dos is not None and dos.is_dir and dos.size is None
    for junk in (
        "total 12",
        "",
        "drwxr-xr-x 2 0 0 4096 Jan 01 2020 ..",
        "-rw-r--r-- 1 0 0 1 Jan 01 2020 a\x1bb",
        "garbage",
    ):
        assert parse_list_line(junk, "/", now) is None
    m = parse_mlsd_line("type=file;size=42;modify=20240102030405.5; plate 1.gcode", "/")
    assert m == RemoteFile(
        "plate 1.gcode",
        "/plate 1.gcode",
        42,
        dt.datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=dt.UTC).timestamp(),
        False,
    )
    assert parse_mlsd_line("type=cdir;modify=20240102030405; .", "/") is None
    assert parse_mlsd_line("type=dir;size=x; sub", "/") == RemoteFile("sub", "/sub", None, None, True)
    assert parse_mlsd_line("no-space-no-name", "/") is None


# --- cancellation ----------------------------------------------------------------------------------------


async def test_cancelled_upload_leaves_no_file_thread_or_socket(vsftpd_factory, tmp_path: Path) -> None:
    server = vsftpd_factory(max_rate=256 * 1024)  # slow printer: the upload is surely in flight
    src = tmp_path / "big.3mf"
    src.write_bytes(os.urandom(4 * 1024 * 1024))
    files = files_for(server)
    sockets_before = open_sockets()
    started = asyncio.Event()
    task = asyncio.create_task(files.upload(src, "/cache/big.3mf", lambda d, t: started.set()))
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(0.2)
    in_flight = names(server.path("/cache"))
    assert len(in_flight) == 1 and in_flight[0].startswith(".bambu-edge-")  # data goes to a temp name

    began = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - began < 3, "cancel must not wait for the transfer or a timeout"
    assert not server.path("/cache/big.3mf").exists()
    assert ftps_threads() == []
    assert open_sockets() <= sockets_before

    # The next session for this printer clears the partial temp file and works normally.
    assert await files.list("/cache") == []
    assert names(server.path("/cache")) == []


async def test_cancelled_download_leaves_no_local_file(vsftpd_factory, tmp_path: Path) -> None:
    server = vsftpd_factory(max_rate=256 * 1024)
    server.path("/timelapse").mkdir()
    server.path("/timelapse/video_2024-01-01_00-00-00.mp4").write_bytes(os.urandom(3 * 1024 * 1024))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    files = files_for(server)
    started = asyncio.Event()
    task = asyncio.create_task(
        files.download(
            "/timelapse/video_2024-01-01_00-00-00.mp4", downloads / "v.mp4", lambda d, t: started.set()
        )
    )
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert names(downloads) == []  # neither the file nor its temp
    assert ftps_threads() == []


async def test_cancel_while_queued_behind_another_call(vsftpd_factory, tmp_path: Path) -> None:
    server = vsftpd_factory(max_rate=256 * 1024)
    src = tmp_path / "big.3mf"
    src.write_bytes(os.urandom(1024 * 1024))
    files = files_for(server)
    upload = asyncio.create_task(files.upload(src, "/big.3mf"))
    await asyncio.sleep(0.3)
    queued = asyncio.create_task(files.delete("/whatever.3mf"))
    await asyncio.sleep(0.1)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    await asyncio.wait_for(upload, 30)  # the running call is unaffected
    assert server.path("/big.3mf").read_bytes() == src.read_bytes()
