"""Restoring a backup in three steps, each safe to stop at any point (synchronous; worker thread):

1. ``stage``: the archive is read (as a stream: an upload or a file) into a fresh folder
   ``restore.tmp-*`` inside data_dir. The manifest comes first and is checked before anything else
   is written (format, schema version: a backup from a newer schema is refused here); each member
   must be on the allow-list and match its size and SHA-256; then the database copy must pass
   ``PRAGMA integrity_check`` and hold the schema version the manifest names. Only then is the
   folder renamed ``restore-staged`` (one atomic rename). Until here the current data is untouched.
2. ``apply_staged`` (with the daemon stopped: the CLI holds the data lock, the daemon applies it at
   its next start before the database is opened): the current database (with its -wal/-shm), TLS
   files and CSRF key are moved into ``pre-restore/`` and the staged ones into their place, all by
   renames within data_dir; queue files are added (they are named by their hash, so the ones
   present stay). A marker makes a second run after a crash finish the job, never undo half of it.
3. The staged folder is removed. The config from the backup is left as ``restored-config.yaml``
   (the service cannot write /etc); the CLI puts it in place itself.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bambu_edge.backup.manifest import (
    CONFIG_NAME,
    DB_NAME,
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    BackupError,
    Manifest,
    check_complete,
    check_file,
    check_member,
    check_schema,
    member_kind,
    parse_manifest,
)

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
MAX_RESTORE_BYTES = 4 * 1024**3  # everything unpacked
STAGED = "restore-staged"
STAGING_PREFIX = "restore.tmp-"
DONE = "restore-done.tmp"
PRE_RESTORE = "pre-restore"
RESTORED_CONFIG = "restored-config.yaml"
INFO = "restore.json"
APPLYING = ".applying"
# Replaced as a whole from the backup (the database's side files go with it: a stale WAL would be
# played into the restored database).
REPLACED = ("bambu-edge.db", "bambu-edge.db-wal", "bambu-edge.db-shm", "tls", "csrf.key")


@dataclass(frozen=True)
class Staged:
    manifest: Manifest
    restore_id: str
    path: Path


def _corrupt(what: str) -> BackupError:
    return BackupError("corrupt", f"the archive is damaged or not a gzip tar file ({what})")


def _owner_of(data_dir: Path) -> tuple[int, int] | None:
    """As root (the CLI run with sudo) files must go to the data folder's owner, the service user."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    st = data_dir.stat()
    return st.st_uid, st.st_gid


def _chown_tree(root: Path, owner: tuple[int, int] | None) -> None:
    if owner is None:
        return
    for dirpath, dirnames, filenames in os.walk(root):
        for n in [*dirnames, *filenames]:
            os.chown(os.path.join(dirpath, n), *owner, follow_symlinks=False)
    os.chown(root, *owner)


def _write_member(src: BinaryIO, dest: Path, size: int) -> str:
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    h, left = hashlib.sha256(), size
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while left > 0:
            chunk = src.read(min(CHUNK, left))
            if not chunk:
                raise _corrupt("cut short")
            h.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return h.hexdigest()


def _read_into(src: BinaryIO, folder: Path, known_schema: int) -> Manifest:
    import tarfile  # here: the daemon needs it only while it reads an upload

    try:
        tar = tarfile.open(fileobj=src, mode="r|gz")
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise BackupError("not_a_backup", f"not a bambu-edge backup (not a gzip tar file: {e})") from None
    with tar:
        try:
            first = tar.next()
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise BackupError("not_a_backup", f"not a bambu-edge backup ({e})") from None
        if (
            first is None
            or first.name != MANIFEST_NAME
            or not first.isreg()
            or first.size > MAX_MANIFEST_BYTES
        ):
            raise BackupError("not_a_backup", "not a bambu-edge backup: it does not start with manifest.json")
        f = tar.extractfile(first)
        assert f is not None
        manifest = parse_manifest(f.read(MAX_MANIFEST_BYTES + 1))
        check_schema(manifest, known_schema)
        total = sum(e.size for e in manifest.files.values())
        if total > MAX_RESTORE_BYTES:
            raise BackupError("too_large", f"the backup unpacks to more than {MAX_RESTORE_BYTES >> 30} GB")
        seen: set[str] = set()
        try:
            for member in tar:
                if member is first:  # a stream's iteration starts with what next() read already
                    continue
                name = member.name
                if member_kind(name) in (None, "manifest") or not member.isreg():
                    raise BackupError(
                        "corrupt", f"the archive holds {name[:100]!r}, which is not for restoring"
                    )
                entry = check_member(manifest, name, seen)
                if member.size != entry.size:
                    raise BackupError(
                        "corrupt", f"{name} does not match its checksum: the archive is damaged"
                    )
                data = tar.extractfile(member)
                assert data is not None
                check_file(name, entry, _write_member(data, folder / name, member.size), member.size)
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise _corrupt(str(e)) from None
        check_complete(manifest, seen)
    return manifest


def verify_database(db: Path, schema: int) -> None:
    """The restored database must be whole and hold the schema version its manifest names."""
    try:
        conn = sqlite3.connect(db)  # not read-only: closing it removes the -wal/-shm it made
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            version = 0
            if conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone():
                version = int(conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise BackupError("corrupt", f"the backup's database cannot be read: {e}") from None
    if rows != ["ok"]:
        raise BackupError("corrupt", f"the backup's database is damaged: {'; '.join(map(str, rows[:3]))}")
    if version != schema:
        raise BackupError(
            "corrupt", f"the backup's database has schema version {version}, its manifest says {schema}"
        )


def stage(src: BinaryIO, data_dir: Path, known_schema: int) -> Staged:
    """Read, check and verify an archive into ``data_dir/restore-staged`` (replacing a staged
    restore not applied yet). The current data is not touched. BackupError says what is wrong."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    restore_id = os.urandom(8).hex()
    folder = data_dir / f"{STAGING_PREFIX}{restore_id}"
    folder.mkdir(mode=0o700)
    try:
        try:
            manifest = _read_into(src, folder, known_schema)
            verify_database(folder / DB_NAME, manifest.schema_version)
            for suffix in ("-wal", "-shm"):  # only the database itself is swapped in
                with contextlib.suppress(FileNotFoundError):
                    (folder / (DB_NAME + suffix)).unlink()
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise BackupError("no_space", f"{data_dir} is full: the backup does not fit") from None
            raise
        info = {"id": restore_id, "manifest": manifest.to_json()}
        (folder / INFO).write_text(json.dumps(info) + "\n", encoding="utf-8")
        _chown_tree(folder, _owner_of(data_dir))
        staged = data_dir / STAGED
        if staged.exists():
            shutil.rmtree(staged)
        os.rename(folder, staged)
        _fsync_dir(data_dir)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Staged(manifest, restore_id, staged)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _leftovers(data_dir: Path) -> Iterator[Path]:
    with contextlib.suppress(FileNotFoundError):
        for e in data_dir.iterdir():
            if e.name.startswith(STAGING_PREFIX) or e.name == DONE or e.name.startswith("restore-upload-"):
                yield e


def apply_staged(data_dir: Path) -> Staged | None:
    """Swap a staged restore in (the daemon must not have the database open). None if there is
    none. Safe to run again after a crash half-way."""
    for old in _leftovers(data_dir):  # a staging or an upload that a stopped process left
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    staged = data_dir / STAGED
    if not (staged / INFO).is_file():
        if staged.exists():
            shutil.rmtree(staged)  # cannot be: the info is written before the rename
        return None
    info = json.loads((staged / INFO).read_text(encoding="utf-8"))
    manifest = parse_manifest(json.dumps(info["manifest"]).encode())
    pre = data_dir / PRE_RESTORE
    marker = staged / APPLYING
    if not marker.exists():
        shutil.rmtree(pre, ignore_errors=True)  # only the data before the latest restore is kept
        pre.mkdir(mode=0o700)
        marker.touch()
        _fsync_dir(staged)
    new_root = staged / "data"
    for rel in REPLACED:
        new, cur, keep = new_root / rel, data_dir / rel, pre / rel
        replace = new.exists() or rel.startswith("bambu-edge.db")
        if replace and (cur.exists() or cur.is_symlink()) and not keep.exists():
            os.rename(cur, keep)
        if new.exists():
            os.rename(new, cur)
    queue_new = new_root / "queue" / "files"
    if queue_new.is_dir():
        queue_cur = data_dir / "queue" / "files"
        queue_cur.mkdir(parents=True, exist_ok=True, mode=0o700)
        for f in queue_new.iterdir():
            if not (queue_cur / f.name).exists():
                os.rename(f, queue_cur / f.name)
    config = staged / CONFIG_NAME
    if config.exists():
        os.replace(config, data_dir / RESTORED_CONFIG)
    _fsync_dir(data_dir)
    os.rename(staged, data_dir / DONE)
    shutil.rmtree(data_dir / DONE, ignore_errors=True)
    log.info(
        "restored the backup of %s made %s (schema %d): the previous data is in %s",
        manifest.node,
        manifest.to_json()["created"],
        manifest.schema_version,
        pre,
    )
    return Staged(manifest, str(info["id"]), data_dir)
