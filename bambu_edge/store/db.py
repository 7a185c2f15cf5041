"""SQLite via aiosqlite: one connection per process, numbered SQL migrations, and the ``Store`` service.

The connection runs in autocommit mode (``isolation_level=None``): a lone statement is committed at
once, and several statements that must land together go in ``async with db.transaction():``. Writes
from coroutines sharing the connection are serialised by one lock, so a statement can never slip into
another coroutine's open transaction. Rows come back as ``sqlite3.Row`` (by name or index).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bambu_edge.config import Config
from bambu_edge.store.pins import CertPins
from bambu_edge.store.printers import StoredPrinters
from bambu_edge.store.setup_gate import SetupGate
from bambu_edge.store.tokens import Tokens
from bambu_edge.store.users import Users

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
BUSY_TIMEOUT_MS = 5000  # the CLI and the daemon may write at the same moment

Params = Sequence[Any] | dict[str, Any]
_T = TypeVar("_T")


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer bambu-edge than this one."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """``NNNN_name.sql`` files, sorted by version. Versions must be unique."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = MIGRATION_FILE_RE.match(path.name)
        if not m:
            raise ValueError(f"{path}: migration files are named NNNN_name.sql (lower-case name)")
        version = int(m.group(1))
        if version in found:
            raise ValueError(f"{path}: migration version {version} is used twice")
        found[version] = Migration(version, m.group(2), path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def split_sql(script: str) -> list[str]:
    """Split a script into statements. ``sqlite3.complete_statement`` knows about quotes, comments
    and trigger bodies, so a ';' inside them does not end a statement."""
    *parts, tail = script.split(";")
    statements: list[str] = []
    buf = ""
    for part in parts:
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    rest = buf + tail
    if _strip_comments(rest).strip():
        raise ValueError(f"incomplete SQL statement at the end: {rest.strip()[:80]!r}")
    return statements


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.S)


def _create_private(path: Path) -> None:
    # The database holds access codes and password hashes: owner-only. SQLite gives the -wal and
    # -shm files the mode and owner of the main file.
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # `sudo bambu-edge user add` must not leave a root-owned file the daemon cannot write:
            # give it to the owner of the data directory (the bambu-edge service user).
            st = path.parent.stat()
            os.fchown(fd, st.st_uid, st.st_gid)
    finally:
        os.close(fd)


class Database:
    def __init__(self, conn: aiosqlite.Connection, path: Path):
        self._conn = conn
        self.path = path
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Database:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            _create_private(path)
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            async with conn.execute("PRAGMA journal_mode=WAL") as cur:
                mode = (await cur.fetchone())[0]
            if str(mode).lower() != "wal":
                log.warning("%s: SQLite refused WAL mode (got %s); writes will be slower", path, mode)
            # NORMAL + WAL: fsync at checkpoints, not at every commit (SD card wear). A power cut
            # may lose the last commits but never corrupts the database.
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        except BaseException:
            await conn.close()
            raise
        return cls(conn, path)

    @property
    def conn(self) -> aiosqlite.Connection:
        return self._conn

    async def close(self) -> None:
        await self._conn.close()

    # --- queries ------------------------------------------------------------------------------------

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        async with self._conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        async with self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One write statement, committed at once. Returns the number of rows changed."""
        async with self._write_lock, self._conn.execute(sql, params) as cur:
            return cur.rowcount

    async def insert(self, sql: str, params: Params = ()) -> int:
        """One INSERT, committed at once. Returns the new row id."""
        async with self._write_lock, self._conn.execute(sql, params) as cur:
            return cur.lastrowid or 0

    @contextlib.asynccontextmanager
    async def transaction(self, *, durable: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any error or cancellation.

        IMMEDIATE takes the write lock up front, so a concurrent writer (the CLI) makes us wait
        ``busy_timeout`` rather than fail half-way with SQLITE_BUSY.

        ``durable``: this commit must survive a power cut (a finished print's record). The database
        runs ``synchronous=NORMAL`` to spare the SD card; this one transaction runs with ``FULL``
        (the WAL is fsynced at its commit). The pragma cannot change inside a transaction, so it is
        set before ``BEGIN`` and restored after the end, all under the write lock.
        """
        async with self._write_lock:
            if durable:
                await self._conn.execute("PRAGMA synchronous=FULL")
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException:
                # A cancelled await does not stop its statement: aiosqlite still runs it, in order,
                # on its thread. A ROLLBACK queued behind it undoes it (and is a no-op if nothing is
                # open); shielded so that a second cancel cannot skip it.
                await asyncio.shield(self._conn.rollback())
                raise
            finally:
                if durable:
                    await asyncio.shield(self._conn.execute("PRAGMA synchronous=NORMAL"))

    # --- migrations -----------------------------------------------------------------------------------

    async def schema_version(self) -> int:
        """Highest applied migration, 0 for a new database."""
        row = await self.fetchone(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        )
        if row is None:
            return 0
        row = await self.fetchone("SELECT max(version) FROM schema_version")
        return int(row[0] or 0)

    async def migrate(self, migrations: Iterable[Migration] | None = None) -> list[int]:
        """Apply the migrations not applied yet, each in its own transaction. Returns their versions.

        Safe to run again (nothing to do) and against a concurrent migrator (the version is checked
        again once the write lock is held).
        """
        todo = load_migrations() if migrations is None else sorted(migrations, key=lambda m: m.version)
        known = todo[-1].version if todo else 0
        await self.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        current = await self.schema_version()
        if current > known:
            raise SchemaTooNewError(
                f"database {self.path} has schema version {current}, but this bambu-edge knows only up "
                f"to version {known}: it was used by a newer bambu-edge. Install that version again, "
                "or restore a backup made with this one."
            )
        applied: list[int] = []
        for m in todo:
            if m.version <= current:
                continue
            statements = split_sql(m.sql)
            async with self.transaction() as conn:
                async with conn.execute("SELECT 1 FROM schema_version WHERE version = ?", (m.version,)) as c:
                    if await c.fetchone() is not None:
                        continue  # another process applied it while we waited for the lock
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.name, time.time()),
                )
            log.info("database %s: applied migration %04d_%s", self.path, m.version, m.name)
            applied.append(m.version)
        return applied


class Store:
    """The store service for ``app.py``: opens and migrates the database on start, closes it on stop.

    ``db``, ``users``, ``tokens``, ``pins`` and ``printers`` are available between ``start()`` and
    ``stop()``.
    """

    def __init__(self, config: Config):
        self.config = config
        self._db: Database | None = None
        self._users: Users | None = None
        self._tokens: Tokens | None = None
        self._pins: CertPins | None = None
        self._printers: StoredPrinters | None = None
        # The web setup reopened by the panel button (a file, usable before start and after stop).
        self.setup = SetupGate(config.data_dir)

    async def start(self) -> None:
        db = await Database.open(self.config.db_path)
        try:
            await db.migrate()
            tokens = Tokens(db)
            await tokens.purge_expired()
        except BaseException:
            await db.close()
            raise
        self._db, self._tokens = db, tokens
        # Deleting a user deletes its tokens in SQL; the token cache must forget them at once too.
        self._users = Users(db, on_delete=tokens.forget_user)
        self._pins = CertPins(db)
        self._printers = StoredPrinters(db)

    async def stop(self) -> None:
        db, self._db = self._db, None
        self._users = self._tokens = self._pins = self._printers = None
        if db is not None:
            await db.close()

    @property
    def db(self) -> Database:
        return self._require(self._db)

    @property
    def users(self) -> Users:
        return self._require(self._users)

    @property
    def tokens(self) -> Tokens:
        return self._require(self._tokens)

    @property
    def pins(self) -> CertPins:
        return self._require(self._pins)

    @property
    def printers(self) -> StoredPrinters:
        return self._require(self._printers)

    @staticmethod
    def _require(value: _T | None) -> _T:
        if value is None:
            raise RuntimeError("the store is not started")
        return value
