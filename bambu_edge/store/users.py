"""Dashboard users with argon2id password hashes."""

from __future__ import annotations

import asyncio
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

if TYPE_CHECKING:
    from bambu_edge.store.db import Database

NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
ROLES = ("admin", "user")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # hashing a megabyte "password" is a cheap denial of service


def make_hasher() -> PasswordHasher:
    # argon2id with the OWASP minimum (t=2, m=19 MiB, p=1). The Pi Zero 2 W has 512 MB of RAM and
    # four slow cores: argon2-cffi's default of 64 MiB per hash would let a few parallel logins take a
    # big share of memory, and p=1 keeps one login on one core. Hashes made with other parameters are
    # upgraded at the next successful login.
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    created_at: float

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValueError("user name must be 1 to 32 characters: letters, digits, '_', '.' or '-' (no spaces)")


def check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValueError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"password must be at most {MAX_PASSWORD} characters")


def check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")


_COLUMNS = "id, name, role, created_at"


def _user(row: sqlite3.Row) -> User:
    return User(id=row["id"], name=row["name"], role=row["role"], created_at=row["created_at"])


class Users:
    def __init__(
        self,
        db: Database,
        *,
        hasher: PasswordHasher | None = None,
        on_delete: Callable[[int], None] | None = None,
    ):
        self._db = db
        self._hasher = hasher or make_hasher()
        self._on_delete = on_delete
        self._dummy_hash: str | None = None

    async def create(self, name: str, password: str, role: str = "admin") -> User:
        check_name(name)
        check_password(password)
        check_role(role)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        now = time.time()
        try:
            user_id = await self._db.insert(
                "INSERT INTO users (name, password_hash, role, created_at, password_changed_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, password_hash, role, now, now),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"user {name!r} already exists") from None
        return User(id=user_id, name=name, role=role, created_at=now)

    async def verify(self, name: str, password: str) -> User | None:
        """The user if the password is right, else None. Takes about as long for an unknown name as
        for a wrong password, so timing does not tell which names exist."""
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            return None
        row = None
        if isinstance(name, str) and NAME_RE.fullmatch(name):
            row = await self._db.fetchone(
                f"SELECT {_COLUMNS}, password_hash FROM users WHERE name = ?", (name,)
            )
        if row is None:
            await asyncio.to_thread(self._check, await self._dummy(), password)
            return None
        if not await asyncio.to_thread(self._check, row["password_hash"], password):
            return None
        if self._hasher.check_needs_rehash(row["password_hash"]):
            new_hash = await asyncio.to_thread(self._hasher.hash, password)
            await self._db.execute(
                "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                (new_hash, row["id"], row["password_hash"]),
            )
        return _user(row)

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):  # VerifyMismatchError is a VerificationError
            return False

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(self._hasher.hash, secrets.token_urlsafe(16))
        return self._dummy_hash

    async def count(self) -> int:
        row = await self._db.fetchone("SELECT count(*) FROM users")
        return int(row[0])

    async def get(self, user_id: int) -> User | None:
        row = await self._db.fetchone(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    async def get_by_name(self, name: str) -> User | None:
        row = await self._db.fetchone(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,))
        return _user(row) if row else None

    async def list(self) -> list[User]:
        rows = await self._db.fetchall(f"SELECT {_COLUMNS} FROM users ORDER BY name")
        return [_user(r) for r in rows]

    async def set_password(self, user_id: int, password: str) -> bool:
        """False if there is no such user. Sessions are left alone: the caller decides which to end."""
        check_password(password)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        changed = await self._db.execute(
            "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
            (password_hash, time.time(), user_id),
        )
        return changed > 0

    async def delete(self, user_id: int) -> bool:
        """Delete a user and its tokens. Refuses (ValueError) to delete the last admin, which would
        lock everyone out of the dashboard."""
        async with self._db.transaction() as conn:
            async with conn.execute("SELECT role FROM users WHERE id = ?", (user_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                return False
            if row["role"] == "admin":
                async with conn.execute("SELECT count(*) FROM users WHERE role = 'admin'") as cur:
                    if (await cur.fetchone())[0] <= 1:
                        raise ValueError("cannot delete the last admin")
            await conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
        if self._on_delete is not None:
            self._on_delete(user_id)
        return True
