"""Backup and restore against the real daemon (a child process on a real broker with a virtual
printer): ``bambu-edge backup`` while the daemon runs and writes, ``restore`` into a fresh data
folder on which a second daemon serves the same users, history, queue and printer pins; a backup
from a newer schema, a damaged one and a restore under a running daemon are refused with the data
left as it was; the dashboard's download and upload over HTTPS, with the daemon restarting on the
restored data in its own process."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bambu_edge.backup.cli import known_schema
from bambu_edge.backup.restore import stage
from bambu_edge.store.db import load_migrations, split_sql
from tests.conftest import ACCESS_CODE
from tests.factories.threemf import PlateSpec, make_3mf
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, printer_entry, write_config
from tests.integration.running_daemon import PASSWORD, SERIAL_X1C, add_admin, eventually
from tests.integration.waiting import dashboard_tls

CLI = [sys.executable, "-m", "bambu_edge"]


def cli(cfg: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--config", str(cfg), *args], capture_output=True, text=True, timeout=120, check=check
    )


async def acli(cfg: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "--config", str(cfg), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def archive_db(archive: Path, tmp: Path) -> sqlite3.Connection:
    """The database inside a backup, opened read-only from a copy."""
    path = tmp / f"{archive.stem}-{hashlib.sha256(archive.read_bytes()).hexdigest()[:8]}.db"
    path.write_bytes(members(archive)["data/bambu-edge.db"])
    return sqlite3.connect(path)


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by relative path, with its SHA-256 (the lock file aside)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "bambu-edge.lock"
    }


def repack(archive: Path, dest: Path, change: Any) -> Path:
    """A copy of a backup with its manifest changed by ``change(doc)``."""
    files = members(archive)
    doc = json.loads(files["manifest.json"])
    change(doc)
    files["manifest.json"] = json.dumps(doc).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ["manifest.json", *[n for n in files if n != "manifest.json"]]:
            ti = tarfile.TarInfo(name)
            ti.size = len(files[name])
            tar.addfile(ti, io.BytesIO(files[name]))
    dest.write_bytes(buf.getvalue())
    return dest


async def api(http: aiohttp.ClientSession, method: str, url: str, auth: dict, **kw: Any) -> tuple[int, Any]:
    async with http.request(method, url, headers=auth, **kw) as r:
        body = await r.json() if r.content_type == "application/json" else await r.read()
        return r.status, body


async def upload_print_file(http: aiohttp.ClientSession, base: str, auth: dict, path: Path) -> dict:
    form = aiohttp.FormData()
    form.add_field("file", path.read_bytes(), filename=path.name)
    status, body = await api(http, "POST", base + "/api/queue/files", auth, data=form)
    assert status in (200, 201), body
    return body


async def record_a_print(s: dict, name: str) -> None:
    vp = s["vp"]
    vp.hold()
    await vp.simulate_print(name, duration_s=60, layers=10)

    async def recorded() -> bool:
        _, body = await api(s["http"], "GET", s["base"] + "/api/history", s["auth"])
        return any(i["job"] == name and i["outcome"] == "running" for i in body["items"])

    await eventually(recorded, 20, f"the record of {name}")
    await vp.finish()

    async def ended() -> bool:
        _, body = await api(s["http"], "GET", s["base"] + "/api/history", s["auth"])
        return any(i["job"] == name and i["outcome"] == "success" for i in body["items"])

    await eventually(ended, 20, f"{name} finished")


async def test_a_backup_taken_while_the_daemon_writes_restores_on_a_fresh_unit(
    spine: dict, tmp_path: Path, broker: Any
) -> None:
    http, base, auth = spine["http"], spine["base"], spine["auth"]
    cfg = tmp_path / "config.yaml"
    data = tmp_path / "data"
    await eventually(
        lambda: api(http, "GET", base + "/api/printers/x1c", auth),
        20,
        "the printer",
    )

    async def connected() -> bool:
        _, p = await api(http, "GET", base + "/api/printers/x1c", auth)
        return p["link"]["state"] == "connected"

    await eventually(connected, 20, "the printer's link (its certificate pinned)")
    await record_a_print(spine, "first cube")
    make_3mf(tmp_path / "desk organizer.gcode.3mf", plates=[PlateSpec()])
    qf = await upload_print_file(http, base, auth, tmp_path / "desk organizer.gcode.3mf")

    # While backups are taken, the daemon keeps writing: jobs are queued (and the queue's
    # dispatcher writes their states) and a second print runs (history progress).
    vp = spine["vp"]
    await vp.simulate_print("second cube", duration_s=3600, layers=100)
    vp.run_clock()
    stop = asyncio.Event()
    queued: list[int] = []

    async def writer() -> None:
        # As fast as the daemon takes them, from one loopback address after another (the API
        # allows 200 requests a minute per client).
        for host in range(2, 40):
            connector = aiohttp.TCPConnector(ssl=dashboard_tls(), local_addr=(f"127.0.0.{host}", 0))
            async with aiohttp.ClientSession(connector=connector) as client:
                for _ in range(150):
                    if stop.is_set():
                        return
                    status, job = await api(
                        client, "POST", base + "/api/queue", auth, json={"file_id": qf["id"], "target": "x1c"}
                    )
                    assert status == 201, job
                    queued.append(job["id"])

    writing = asyncio.create_task(writer())
    archives = []
    try:
        await eventually(lambda: len(queued) >= 2, 20, "queued jobs")
        for i in range(3):
            archive = tmp_path / f"backup{i}.tar.gz"
            rc, out, err = await acli(cfg, "backup", str(archive))
            assert rc == 0, err
            assert out.startswith(f"{archive}: backup of ") and err == ""
            archives.append(archive)
        during = len(queued)
    finally:
        stop.set()
        await writing
    assert during >= 10  # the daemon was writing while the backups were taken

    counts = []
    for archive in archives:
        assert oct(archive.stat().st_mode & 0o777) == oct(0o600)  # password hashes, access codes
        names = members(archive)
        assert next(iter(names)) == "manifest.json"
        manifest = json.loads(names["manifest.json"])
        assert manifest["schema_version"] == known_schema() and manifest["node"]
        for name, entry in manifest["files"].items():
            assert hashlib.sha256(names[name]).hexdigest() == entry["sha256"]
        db = archive_db(archive, tmp_path)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        counts.append(db.execute("SELECT count(*) FROM queue_jobs").fetchone()[0])
        # Consistent at one instant: every job's file is in the archive.
        for (sha,) in db.execute("SELECT f.sha256 FROM queue_jobs j JOIN queue_files f ON f.id = j.file_id"):
            assert f"data/queue/files/{sha}.3mf" in names
    assert counts == sorted(counts) and counts[-1] <= len(queued)
    assert f"data/queue/files/{qf['sha256']}.3mf" in members(archives[-1])

    # Restoring under the running daemon is refused; its data stays as it is.
    before = tree(data / "tls")
    rc, _, err = await acli(cfg, "restore", str(archives[-1]))
    assert rc == 1
    assert err.startswith(f"bambu-edge: bambu-edge is running on {data}") and "systemctl stop" in err
    assert err.count("\n") == 1
    assert not (data / "pre-restore").exists() and tree(data / "tls") == before

    # A fresh unit: its own config and data folder, the same printer.
    unit = tmp_path / "unit2"
    unit.mkdir()
    cfg2 = unit / "config.yaml"
    write_config(cfg2, unit / "data", [printer_entry(broker, SERIAL_X1C, ACCESS_CODE, "x1c")])
    rc, out, err = await acli(cfg2, "restore", str(archives[-1]))
    assert rc == 0, err
    assert out.startswith("restored the backup of ") and str(cfg2) + ".pre-restore" in out
    # The backup's config came along (the first unit's data folder in it is put right for the test).
    assert cfg2.read_text() == cfg.read_text()
    write_config(cfg2, unit / "data", [printer_entry(broker, SERIAL_X1C, ACCESS_CODE, "x1c")])

    source = archive_db(archives[-1], tmp_path)
    sock = NotifySocket(unit / "notify.sock").follow()
    d2 = DaemonProcess(cfg2, env={"NOTIFY_SOCKET": str(sock.path)}, log_path=unit / "daemon.log")
    try:
        await asyncio.to_thread(sock.wait_for, "READY=1", 30)
        base2 = f"https://127.0.0.1:{d2.https_port}"
        async with http.post(
            base2 + "/api/auth/login", json={"username": "admin", "password": PASSWORD}
        ) as r:
            assert r.status == 200  # the backup's admin and password
            auth2 = {"Authorization": f"Bearer {(await r.json())['token']}"}
        _, hist = await api(http, "GET", base2 + "/api/history?limit=100", auth2)
        uids = {row[0] for row in source.execute("SELECT uid FROM print_history")}
        assert {i["uid"] for i in hist["items"]} == uids
        assert "first cube" in {i["job"] for i in hist["items"]}
        _, files = await api(http, "GET", base2 + "/api/queue/files", auth2)
        assert [f["sha256"] for f in files["files"]] == [qf["sha256"]]
        status, png = await api(http, "GET", base2 + f"/api/queue/files/{qf['id']}/thumbnail", auth2)
        assert status == 200 and png[:4] == b"\x89PNG"  # the file itself came along
        _, q = await api(http, "GET", base2 + "/api/queue", auth2)
        job_ids = {row[0] for row in source.execute("SELECT id FROM queue_jobs")}
        assert {j["id"] for j in q["jobs"]} == job_ids

        async def connected2() -> bool:
            _, p = await api(http, "GET", base2 + "/api/printers/x1c", auth2)
            return p["link"]["state"] == "connected"

        await eventually(connected2, 20, "the restored unit's link to the printer")
    finally:
        d2.stop()
        sock.close()
    assert "Traceback" not in d2.output and ACCESS_CODE not in d2.output
    pin = source.execute("SELECT fingerprint FROM printer_certs WHERE printer_id = 'x1c'").fetchone()
    restored = sqlite3.connect(unit / "data" / "bambu-edge.db")
    assert (
        restored.execute("SELECT fingerprint FROM printer_certs WHERE printer_id = 'x1c'").fetchone() == pin
    )
    assert pin is not None


@pytest.fixture
def unit(tmp_path: Path) -> tuple[Path, Path]:
    """A stopped unit with an admin and a database: (config path, data folder)."""
    cfg, data = tmp_path / "config.yaml", tmp_path / "data"
    write_config(cfg, data)
    add_admin(cfg)
    return cfg, data


def test_a_backup_from_a_newer_schema_is_refused_and_nothing_changes(
    unit: tuple[Path, Path], tmp_path: Path
) -> None:
    cfg, data = unit
    good = tmp_path / "good.tar.gz"
    cli(cfg, "backup", str(good), check=True)
    newer = repack(good, tmp_path / "newer.tar.gz", lambda d: d.update(schema_version=99, app_version="9.0"))
    before = tree(data)
    done = cli(cfg, "restore", str(newer))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"bambu-edge: {newer}: this backup's database has schema version 99 (made by bambu-edge 9.0), but "
        f"this bambu-edge knows only up to version {known_schema()}: install bambu-edge 9.0 or newer to restore it; "
        "nothing was changed\n"
    )
    assert tree(data) == before and not (data / "pre-restore").exists()


@pytest.mark.parametrize("damage", ["flipped byte", "cut short", "checksum", "extra member"])
def test_a_damaged_backup_is_refused_and_the_current_data_stays(
    unit: tuple[Path, Path], tmp_path: Path, damage: str
) -> None:
    cfg, data = unit
    good = tmp_path / "good.tar.gz"
    cli(cfg, "backup", str(good), check=True)
    raw = bytearray(good.read_bytes())
    bad = tmp_path / "bad.tar.gz"
    if damage == "flipped byte":
        raw[len(raw) // 2] ^= 0xFF
        bad.write_bytes(raw)
    elif damage == "cut short":
        bad.write_bytes(raw[: len(raw) * 2 // 3])
    elif damage == "checksum":
        repack(good, bad, lambda d: d["files"]["data/bambu-edge.db"].update(sha256="0" * 64))
    else:  # a member the manifest does not list, as a path out of the folder
        files = members(good)
        with tarfile.open(bad, "w:gz") as tar:
            for name, body in [*files.items(), ("../evil", b"x")]:
                ti = tarfile.TarInfo(name)
                ti.size = len(body)
                tar.addfile(ti, io.BytesIO(body))
    before = tree(data)
    done = cli(cfg, "restore", str(bad))
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "nothing was changed" in done.stderr
    expected = {"flipped byte": "damaged", "cut short": "damaged", "checksum": "does not match its checksum"}
    assert expected.get(damage, "'../evil'") in done.stderr
    assert tree(data) == before
    assert sorted(p.name for p in data.iterdir()) == ["bambu-edge.db", "bambu-edge.lock"]
    assert not (tmp_path / "evil").exists()


def test_restore_keeps_the_previous_data_and_an_older_schema_is_migrated_at_start(
    unit: tuple[Path, Path], tmp_path: Path
) -> None:
    cfg, data = unit
    good = tmp_path / "good.tar.gz"
    assert cli(cfg, "backup", str(good)).returncode == 0
    # An older unit's backup: a database made by migrations 1-5 only (bambu-edge 0.1 before power).
    dbfile = tmp_path / "older.db"
    old = sqlite3.connect(dbfile)
    old.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    for m in load_migrations()[:5]:
        for statement in split_sql(m.sql):
            old.execute(statement)
        old.execute("INSERT INTO schema_version VALUES (?, ?, 0)", (m.version, m.name))
    old.commit()
    old.close()
    files = members(good)
    files["data/bambu-edge.db"] = dbfile.read_bytes()
    doc = json.loads(files["manifest.json"])
    doc["schema_version"] = 5
    doc["files"]["data/bambu-edge.db"] = {
        "sha256": hashlib.sha256(files["data/bambu-edge.db"]).hexdigest(),
        "size": len(files["data/bambu-edge.db"]),
    }
    files["manifest.json"] = json.dumps(doc).encode()
    older = tmp_path / "older.tar.gz"
    with tarfile.open(older, "w:gz") as tar:
        for name, body in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(body)
            tar.addfile(ti, io.BytesIO(body))
    current = (data / "bambu-edge.db").read_bytes()
    done = cli(cfg, "restore", str(older))
    assert done.returncode == 0, done.stderr
    latest = known_schema()
    assert f"migrated from schema 5 to {latest} when bambu-edge starts" in done.stdout
    assert (data / "pre-restore" / "bambu-edge.db").read_bytes() == current
    later = ", ".join(f"{v:04d}" for v in range(6, latest + 1))
    assert cli(cfg, "migrate").stdout.endswith(f"applied {later}; schema version {latest}\n")


def test_stage_reads_an_archive_from_a_stream(unit: tuple[Path, Path], tmp_path: Path) -> None:
    """The upload path: the archive is read as a stream (no seeking), as from a socket."""
    cfg, _ = unit
    good = tmp_path / "good.tar.gz"
    cli(cfg, "backup", str(good), check=True)

    class Pipe(io.RawIOBase):
        def __init__(self, raw: bytes):
            self.raw = io.BytesIO(raw)

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            chunk = self.raw.read(min(len(b), 1000))
            b[: len(chunk)] = chunk
            return len(chunk)

    staged = stage(Pipe(good.read_bytes()), tmp_path / "other", known_schema())  # type: ignore[arg-type]
    assert staged.manifest.schema_version == known_schema()
    assert (staged.path / "data" / "bambu-edge.db").is_file()
    assert gzip.decompress(good.read_bytes())[:13] == b"manifest.json"


async def test_the_dashboard_downloads_a_backup_and_restores_an_upload(spine: dict, tmp_path: Path) -> None:
    http, base, auth = spine["http"], spine["base"], spine["auth"]
    data = tmp_path / "data"
    async with http.get(base + "/api/backup", headers=auth) as r:
        assert r.status == 200 and r.content_type == "application/gzip"
        assert r.headers["Content-Disposition"].startswith('attachment; filename="backup-')
        assert r.headers["Content-Disposition"].endswith('.tar.gz"')
        archive = tmp_path / "download.tar.gz"
        archive.write_bytes(await r.read())
    manifest = json.loads(members(archive)["manifest.json"])
    assert manifest["schema_version"] == known_schema() and "data/bambu-edge.db" in manifest["files"]

    # Only an admin may download or restore.
    status, body = await api(
        http,
        "POST",
        base + "/api/users",
        auth,
        json={"name": "viewer", "password": "viewer password", "role": "user"},
    )
    assert status == 201, body
    async with http.post(
        base + "/api/auth/login", json={"username": "viewer", "password": "viewer password"}
    ) as r:
        viewer = {"Authorization": f"Bearer {(await r.json())['token']}"}
    assert (await api(http, "GET", base + "/api/backup", viewer))[0] == 403
    assert (await api(http, "POST", base + "/api/restore", viewer, data=archive.read_bytes()))[0] == 403

    # Bad uploads: a plain message each, the daemon serves on, its data untouched.
    newer = repack(archive, tmp_path / "newer.tar.gz", lambda d: d.update(schema_version=42))
    damaged = bytearray(archive.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    db_before = hashlib.sha256((data / "bambu-edge.db").read_bytes()).hexdigest()
    for payload, status_code, code, words in [
        (b"hello", 400, "not_a_backup", "not a bambu-edge backup"),
        (newer.read_bytes(), 409, "newer_schema", "schema version 42"),
        (bytes(damaged), 400, "corrupt", "damaged"),
        (b"", 400, "bad_request", "empty"),
    ]:
        form = aiohttp.FormData()
        form.add_field("file", payload, filename="backup.tar.gz", content_type="application/gzip")
        status, body = await api(http, "POST", base + "/api/restore", auth, data=form)
        assert (status, body["error"]) == (status_code, code), body
        assert words in body["message"].lower()
    assert (await api(http, "GET", base + "/api/printers", auth))[0] == 200
    assert not (data / "pre-restore").exists()
    assert [p.name for p in data.iterdir() if p.name.startswith("restore")] == []

    # After the download: a user the backup does not know.
    status, _ = await api(
        http,
        "POST",
        base + "/api/users",
        auth,
        json={"name": "later", "password": "later password", "role": "user"},
    )
    assert status == 201
    form = aiohttp.FormData()
    form.add_field("file", archive.read_bytes(), filename=archive.name, content_type="application/gzip")
    status, body = await api(http, "POST", base + "/api/restore", auth, data=form)
    assert status == 202, body
    assert body["restarting"] is True and body["backup"]["schema_version"] == known_schema()
    restore_id = body["restore_id"]

    async def restored() -> bool:
        try:
            async with http.get(base + "/api/health") as r:
                health = await r.json()
        except aiohttp.ClientError:
            return False  # restarting
        return (health["components"]["backup"].get("restored") or {}).get("id") == restore_id

    await eventually(restored, 30, "the daemon back on the restored data")
    # The session made before the backup is in the backup: still valid. "later" is gone, "viewer" too.
    _, users = await api(http, "GET", base + "/api/users", auth)
    assert sorted(u["name"] for u in users) == ["admin"]
    pre = data / "pre-restore" / "bambu-edge.db"
    assert pre.is_file() and hashlib.sha256(pre.read_bytes()).hexdigest() != db_before
    assert (await api(http, "GET", base + "/api/printers", auth))[0] == 200
