"""Making a backup: an online snapshot of the database, the files that go with it, the archive.

Synchronous (run it in a worker thread from the event loop). The database is copied with SQLite's
online backup API in one step: one read transaction, so the copy is the database as it was at one
instant, while the daemon goes on writing (WAL: a reader never blocks the writer). The archive is
a gzip-compressed tar with ``manifest.json`` first; each file is hashed before the archive is
written and again while it is written, so a file that changed in between fails the backup instead
of giving an archive whose checksums lie.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bambu_edge import __version__
from bambu_edge.backup.manifest import (
    CONFIG_NAME,
    DATA_FILES,
    DB_NAME,
    MANIFEST_NAME,
    BackupError,
    FileEntry,
    Manifest,
)
from bambu_edge.config import Config

CHUNK = 256 * 1024
COMPRESS_LEVEL = 6  # most of the bytes are print files (zip already) or a small database
BUSY_TIMEOUT_MS = 10_000


@dataclass
class Prepared:
    """A backup ready to be written: its manifest and where each member's bytes are."""

    manifest: Manifest
    sources: dict[str, Path]  # archive name -> file
    tmp_dir: Path | None = None  # holds the database snapshot
    size: int = field(default=0)  # bytes of all members, before compression

    def close(self) -> None:
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sha256(path: Path) -> FileEntry:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return FileEntry(h.hexdigest(), size)


def _give_back(db: Path) -> None:
    """Run as root (a package's maintainer script), SQLite may have made the -wal/-shm files of a
    database it only read: give them to the database's owner, or the daemon cannot open it."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    with contextlib.suppress(OSError):
        st = db.stat()
        for suffix in ("-wal", "-shm"):
            side = db.with_name(db.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                if side.stat().st_uid != st.st_uid:
                    os.chown(side, st.st_uid, st.st_gid)


def snapshot_database(db: Path, dest: Path) -> tuple[int, list[str]]:
    """Copy ``db`` to ``dest`` with the online backup API. Returns (schema version, queue file
    names under data_dir) as the copy has them."""
    if not db.is_file():
        raise BackupError("no_database", f"there is no database at {db}: nothing to back up")
    # Read-write although it only reads: the last connection to close (when the daemon is stopped)
    # then removes the -wal and -shm files it made, as a read-only one cannot.
    src = sqlite3.connect(db, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        src.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        out = sqlite3.connect(dest)
        try:
            src.backup(out)  # pages=-1: the whole database in one step, one read transaction
        finally:
            out.close()
    finally:
        src.close()
        _give_back(db)
    copy = sqlite3.connect(f"file:{dest}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        schema = 0
        if "schema_version" in tables:
            schema = int(copy.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
        queue: list[str] = []
        if "queue_files" in tables:
            queue = [
                f"queue/files/{sha}.{kind}"
                for sha, kind in copy.execute("SELECT sha256, kind FROM queue_files")
            ]
    finally:
        copy.close()
    return schema, queue


def prepare(config: Config, node: str, *, now: float | None = None) -> Prepared:
    """Snapshot the database and list (and hash) what goes into the backup."""
    tmp = Path(tempfile.mkdtemp(prefix="bambu-edge-backup-"))
    try:
        snap = tmp / "bambu-edge.db"
        schema, queue_files = snapshot_database(config.db_path, snap)
        sources: dict[str, Path] = {}
        if config.source and Path(config.source).is_file():
            sources[CONFIG_NAME] = Path(config.source)
        sources[DB_NAME] = snap
        for rel in DATA_FILES[1:]:
            path = config.data_dir / rel
            if path.is_file():
                sources[f"data/{rel}"] = path
        missing = []
        for rel in queue_files:
            path = config.data_dir / rel
            if path.is_file():
                sources[f"data/{rel}"] = path
            else:
                missing.append(rel)
        if missing:
            raise BackupError(
                "missing_file", f"{config.data_dir / missing[0]} is missing: the queue lists it"
            )
        files = {name: _sha256(path) for name, path in sources.items()}
        manifest = Manifest(__version__, schema, time.time() if now is None else now, node, files)
        return Prepared(manifest, sources, tmp, sum(e.size for e in files.values()))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class _Hashing(io.RawIOBase):
    """Reads a file for tarfile and hashes what it read."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.h.update(data)
        self.n += len(data)
        return data


def write_archive(prepared: Prepared, out: BinaryIO) -> None:
    """The archive onto ``out`` (written in order, never sought: a socket or pipe will do)."""
    import gzip  # here, not at the top: the daemon needs them only while it makes a backup
    import tarfile

    m = prepared.manifest
    mtime = int(m.created_at)

    def info(name: str, size: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime, ti.type = size, 0o600, mtime, tarfile.REGTYPE
        return ti

    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=mtime) as gz:
        with tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            raw = m.dumps()
            tar.addfile(info(MANIFEST_NAME, len(raw)), io.BytesIO(raw))
            for name, path in prepared.sources.items():
                entry = m.files[name]
                with open(path, "rb") as f:
                    reader = _Hashing(f)
                    try:
                        tar.addfile(info(name, entry.size), reader)
                    except OSError as e:
                        if reader.n < entry.size and not isinstance(e, _WriteError):
                            raise _changed(name) from None
                        raise
                    if reader.h.hexdigest() != entry.sha256:
                        raise _changed(name)


def _changed(name: str) -> BackupError:
    return BackupError("changed", f"{name} changed while it was being backed up: try again")


class _WriteError(OSError):
    """Writing the archive failed (not reading a member)."""


class _Sink(io.RawIOBase):
    """A file for write_archive that tells write errors apart from read errors."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        try:
            n = self.f.write(data)
        except OSError as e:
            raise _WriteError(e.errno, e.strerror) from e
        self.written += len(data)
        return n if n is not None else len(data)


def backup_name(node: str, now: float | None = None) -> str:
    """``backup-<node>-<UTC time>.tar.gz``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"backup-{node}-{stamp}.tar.gz"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:  # some filesystems (vfat on old kernels) refuse fsync on a directory
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _write_error(dest: Path, e: OSError) -> BackupError:
    where = dest.parent
    if e.errno == errno.EROFS:
        return BackupError("read_only", f"{where} is read-only (write-protected, or mounted read-only)")
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return BackupError("no_space", f"{where} is full: the backup does not fit")
    if e.errno in (errno.EACCES, errno.EPERM):
        return BackupError("not_writable", f"bambu-edge may not write to {where}")
    return BackupError("write_failed", f"could not write {dest}: {e.strerror or e}")


@contextlib.contextmanager
def atomic_file(dest: Path) -> Iterator[BinaryIO]:
    """A new file at ``dest`` (mode 0600) that appears whole or not at all: written to a temp file
    beside it, fsynced, renamed, and the folder fsynced. OSError becomes a BackupError in plain
    words (read-only, full, not allowed)."""
    tmp = dest.with_name(f".{dest.name}.{os.urandom(4).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise _write_error(dest, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _write_error(dest, e) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_backup_file(config: Config, node: str, dest: Path) -> Manifest:
    """Make a backup into the file ``dest`` (atomically). Returns its manifest."""
    try:
        if os.statvfs(dest.parent).f_flag & os.ST_RDONLY:
            raise _write_error(dest, OSError(errno.EROFS, "read-only"))
    except FileNotFoundError:
        raise BackupError("write_failed", f"{dest.parent} does not exist") from None
    with prepare(config, node) as prepared, atomic_file(dest) as f:
        write_archive(prepared, _Sink(f))  # type: ignore[arg-type]
        return prepared.manifest
