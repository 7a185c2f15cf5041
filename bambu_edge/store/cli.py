"""``bambu-edge migrate | user ... | token ...``: the store's command-line side.

Each function is synchronous, runs its own event loop and returns an exit code: 0 ok, 1 failure
(with one plain line on stderr). They may run while the daemon runs: SQLite's WAL mode and busy
timeout let both write.
"""

from __future__ import annotations

import asyncio
import getpass
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TextIO

from bambu_edge.config import Config
from bambu_edge.store.db import Database, SchemaTooNewError
from bambu_edge.store.tokens import Tokens
from bambu_edge.store.users import Users, check_name, check_role

OK, FAILED = 0, 1


class _Fail(Exception):
    """A plain message for stderr and exit code 1."""


def _run(config: Config, action: Callable[[Database], Awaitable[int]], *, migrate: bool = True) -> int:
    async def main() -> int:
        db = await Database.open(config.db_path)
        try:
            if migrate:  # a fresh data_dir works: `user add` is the first thing run after install
                await db.migrate()
            return await action(db)
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except (_Fail, ValueError, SchemaTooNewError) as e:
        print(f"bambu-edge: {e}", file=sys.stderr)
    except (OSError, sqlite3.Error) as e:
        print(f"bambu-edge: database {config.db_path}: {e}", file=sys.stderr)
    return FAILED


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts is not None else "-"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


# --- commands -------------------------------------------------------------------------------------


def migrate_cmd(config: Config) -> int:
    async def action(db: Database) -> int:
        applied = await db.migrate()
        version = await db.schema_version()
        done = f"applied {', '.join(f'{v:04d}' for v in applied)}" if applied else "already up to date"
        print(f"{db.path}: {done}; schema version {version}")
        return OK

    return _run(config, action, migrate=False)


def user_add_cmd(config: Config, name: str, role: str, stdin: TextIO | None) -> int:
    """Add a user. The password comes from stdin: asked twice on a terminal (not echoed), else the
    first line, so ``echo "$PW" | bambu-edge user add NAME`` works in scripts."""
    try:
        check_name(name)
        check_role(role)
        password = _read_password(stdin)
    except (_Fail, ValueError) as e:
        print(f"bambu-edge: {e}", file=sys.stderr)
        return FAILED

    async def action(db: Database) -> int:
        user = await Users(db).create(name, password, role)
        print(f"added {user.role} {user.name!r}")
        return OK

    return _run(config, action)


def _read_password(stdin: TextIO | None) -> str:
    if stdin is None:
        raise _Fail("no password: pipe it on stdin")
    if stdin.isatty():
        try:
            first = getpass.getpass("Password: ")
            second = getpass.getpass("Repeat password: ")
        except (EOFError, KeyboardInterrupt):
            raise _Fail("cancelled") from None
        if first != second:
            raise _Fail("the passwords do not match")
        return first
    line = stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise _Fail("no password on stdin (expected one line)")
    return password


def user_list_cmd(config: Config) -> int:
    async def action(db: Database) -> int:
        users = await Users(db).list()
        _table(
            ("ID", "NAME", "ROLE", "CREATED"),
            [(str(u.id), u.name, u.role, _when(u.created_at)) for u in users],
        )
        return OK

    return _run(config, action)


def token_create_cmd(config: Config, token_name: str, username: str | None) -> int:
    """Create an API token and print only the token, so ``TOKEN=$(bambu-edge token create ha)`` works."""

    async def action(db: Database) -> int:
        users = Users(db)
        if username is not None:
            user = await users.get_by_name(username)
            if user is None:
                raise _Fail(f"no user {username!r}")
        else:
            admins = [u for u in await users.list() if u.is_admin]
            if not admins:
                raise _Fail("no admin user yet: add one with `bambu-edge user add NAME`")
            if len(admins) > 1:
                names = ", ".join(u.name for u in admins)
                raise _Fail(f"there are several admins ({names}): choose the owner with --user NAME")
            user = admins[0]
        token, _ = await Tokens(db).create(user.id, token_name, kind="api")
        print(token)
        return OK

    return _run(config, action)


def token_list_cmd(config: Config, username: str | None = None) -> int:
    async def action(db: Database) -> int:
        user_id = None
        if username is not None:
            user = await Users(db).get_by_name(username)
            if user is None:
                raise _Fail(f"no user {username!r}")
            user_id = user.id
        tokens = await Tokens(db).list(user_id, kind="api")
        rows = [
            (str(t.id), t.user.name, t.name, _when(t.created_at), _when(t.last_used_at), _when(t.expires_at))
            for t in tokens
        ]
        _table(("ID", "USER", "NAME", "CREATED", "LAST USED", "EXPIRES"), rows)
        return OK

    return _run(config, action)


def token_revoke_cmd(config: Config, token_id: int) -> int:
    async def action(db: Database) -> int:
        if not await Tokens(db).revoke(token_id):
            raise _Fail(f"no active token with id {token_id}")
        # The daemon caches resolved tokens briefly (tokens.CACHE_TTL_S).
        print(f"revoked token {token_id} (a running daemon refuses it within a minute)")
        return OK

    return _run(config, action)
