"""``bambu-edge backup FILE`` and ``bambu-edge restore FILE``.

Made for scripts too (the Debian package's postinst takes a backup before migrating): no
questions asked; exit code 0 with one line on stdout, or 1 with one line on stderr.

``backup`` may run while the daemon runs (the database is copied with SQLite's online backup).
``restore`` refuses while the daemon runs: it would swap the database under an open connection.
Stop the service, restore, start it (or upload the backup in the dashboard, which stages it and
restarts the daemon itself).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from bambu_edge.backup.lock import DataLock
from bambu_edge.backup.manifest import BackupError
from bambu_edge.backup.restore import RESTORED_CONFIG, apply_staged, stage
from bambu_edge.backup.writer import atomic_file, prepare, write_archive
from bambu_edge.config import Config
from bambu_edge.node import id_from_hostname
from bambu_edge.store.db import load_migrations

OK, FAILED = 0, 1


def node_id(config: Config) -> str:
    node = config.section("node")
    if node is not None:
        return node.id
    import socket

    return id_from_hostname(socket.gethostname())


def known_schema() -> int:
    migrations = load_migrations()
    return migrations[-1].version if migrations else 0


def busy_message(config: Config) -> str:
    return (
        f"bambu-edge is running on {config.data_dir} (or another restore is): stop it first "
        "(sudo systemctl stop bambu-edge), restore, then start it again; or restore from the "
        "dashboard (Settings > Backup), which restarts bambu-edge itself"
    )


def _fail(message: str) -> int:
    print(f"bambu-edge: {message}", file=sys.stderr)
    return FAILED


def _kb(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 10 * 1024 * 1024 else f"{n / 1024 / 1024:.0f} MB"


def backup_cmd(config: Config, file: str) -> int:
    dest = Path(file)
    if dest.is_dir():
        return _fail(f"{dest} is a folder: name the backup file, e.g. {dest}/bambu-edge-backup.tar.gz")
    try:
        with prepare(config, node_id(config)) as prepared, atomic_file(dest) as f:
            write_archive(prepared, f)
            m = prepared.manifest
    except BackupError as e:
        return _fail(e.message)
    except (OSError, sqlite3.Error) as e:
        return _fail(f"backup failed: {e}")
    size = dest.stat().st_size
    print(f"{dest}: backup of {m.node}, {len(m.files)} files, {_kb(size)}, schema version {m.schema_version}")
    return OK


def restore_cmd(config: Config, file: str, *, keep_config: bool = False) -> int:
    src = Path(file)
    if not src.is_file():
        return _fail(f"{src}: no such file")
    lock = DataLock(config.data_dir)
    try:
        lock.acquire(busy_message(config))
    except BackupError as e:
        return _fail(e.message)
    except OSError as e:
        return _fail(f"cannot use {config.data_dir}: {e.strerror or e}")
    try:
        with open(src, "rb") as f:
            stage(f, config.data_dir, known_schema())
        done = apply_staged(config.data_dir)
        assert done is not None
        config_note = _put_config(config, keep_config)
    except BackupError as e:
        return _fail(f"{src}: {e.message}; nothing was changed")
    except (OSError, sqlite3.Error) as e:
        return _fail(f"restore of {src} failed: {e}")
    finally:
        lock.release()
    m = done.manifest
    known = known_schema()
    migrate = (
        f"; the database is migrated from schema {m.schema_version} to {known} when bambu-edge starts"
        if m.schema_version < known
        else ""
    )
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.created_at))
    print(
        f"restored the backup of {m.node} made {when} (bambu-edge {m.app_version}): the previous data "
        f"is in {config.data_dir / 'pre-restore'}{config_note}{migrate}"
    )
    return OK


def _put_config(config: Config, keep: bool) -> str:
    """The backup's config in place of the current one (the old one kept as *.pre-restore)."""
    restored = config.data_dir / RESTORED_CONFIG
    if not restored.exists():
        return "; the backup holds no config"
    target = Path(config.source) if config.source else None
    if keep or target is None:
        return f"; the backup's config is in {restored}"
    new = restored.read_bytes()
    if target.exists() and target.read_bytes() == new:
        restored.unlink()
        return ""
    old = target.stat() if target.exists() else None
    note = ""
    try:
        if old is not None:
            shutil.copy2(target, target.with_name(target.name + ".pre-restore"))
            note = f", the previous config in {target}.pre-restore"
        with atomic_file(target) as f:
            f.write(new)
        if old is not None:  # the same mode and owner as the file it replaces
            os.chmod(target, old.st_mode & 0o7777)
            with contextlib.suppress(PermissionError):
                os.chown(target, old.st_uid, old.st_gid)
    except BackupError as e:
        return f"; the config was not replaced ({e.message}): the backup's config is in {restored}"
    except OSError as e:
        return f"; the config was not replaced ({e.strerror or e}): the backup's config is in {restored}"
    restored.unlink()
    return note
