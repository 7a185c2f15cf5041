"""API tokens and browser sessions: random bearer strings of which only the SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bambu_edge.store.users import User

if TYPE_CHECKING:
    from bambu_edge.store.db import Database

# Recognisable in a config file or a leaked log, so secret scanners and people can spot it.
TOKEN_PREFIX = "be_"
KINDS = ("api", "session")
MAX_TOKEN_LEN = 128
TOUCH_INTERVAL_S = 3600.0  # last_used_at is a hint, not an audit log: one write per hour per token
CACHE_TTL_S = 60.0  # bounds how long another process's revoke (the CLI) takes to bite
CACHE_SIZE = 256


@dataclass(frozen=True)
class TokenInfo:
    id: int
    user_id: int
    name: str
    kind: str
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None
    user: User

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (time.time() if now is None else now)


def hash_token(token: str) -> str:
    # A plain hash is enough: the token has 256 random bits, so there is nothing to brute-force,
    # and a fast lookup by hash keeps every API request cheap.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_SELECT = (
    "SELECT t.id, t.user_id, t.name, t.kind, t.created_at, t.expires_at, t.last_used_at, t.revoked_at,"
    " u.name AS user_name, u.role AS user_role, u.created_at AS user_created_at"
    " FROM api_tokens t JOIN users u ON u.id = t.user_id"
)


def _info(row: sqlite3.Row) -> TokenInfo:
    user = User(
        id=row["user_id"], name=row["user_name"], role=row["user_role"], created_at=row["user_created_at"]
    )
    return TokenInfo(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        kind=row["kind"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
        user=user,
    )


class Tokens:
    def __init__(self, db: Database, *, cache_ttl_s: float = CACHE_TTL_S, cache_size: int = CACHE_SIZE):
        self._db = db
        self._cache_ttl_s = cache_ttl_s
        self._cache_size = cache_size
        # token hash -> (info, monotonic time it was read). Keyed by hash so no token sits in memory.
        self._cache: OrderedDict[str, tuple[TokenInfo, float]] = OrderedDict()

    async def create(
        self, user_id: int, name: str, kind: str = "api", ttl_s: float | None = None
    ) -> tuple[str, TokenInfo]:
        """A new token and its record. The token string is returned once and never stored."""
        name = name.strip() if isinstance(name, str) else ""
        if not 1 <= len(name) <= 64 or not name.isprintable():
            raise ValueError("token name must be 1 to 64 printable characters")
        if kind not in KINDS:
            raise ValueError(f"token kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if ttl_s is not None and not ttl_s > 0:
            raise ValueError("token lifetime must be positive")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        expires_at = now + ttl_s if ttl_s is not None else None
        try:
            token_id = await self._db.insert(
                "INSERT INTO api_tokens (user_id, name, kind, token_hash, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, name, kind, hash_token(token), now, expires_at),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"no user with id {user_id}") from None
        row = await self._db.fetchone(_SELECT + " WHERE t.id = ?", (token_id,))
        return token, _info(row)

    async def resolve(self, token: str) -> TokenInfo | None:
        """The token's record (with its user) if it is valid: known, not expired, not revoked."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LEN:
            return None
        key = hash_token(token)
        now = time.time()
        hit = self._cache.get(key)
        if hit is not None:
            info, read_at = hit
            if time.monotonic() - read_at < self._cache_ttl_s and not info.expired(now):
                self._cache.move_to_end(key)
                return info
            del self._cache[key]
        row = await self._db.fetchone(
            _SELECT + " WHERE t.token_hash = ? AND t.revoked_at IS NULL"
            " AND (t.expires_at IS NULL OR t.expires_at > ?)",
            (key, now),
        )
        if row is None:
            return None
        info = _info(row)
        if info.last_used_at is None or now - info.last_used_at >= TOUCH_INTERVAL_S:
            await self._db.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (now, info.id))
            info = replace(info, last_used_at=now)
        self._cache[key] = (info, time.monotonic())
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return info

    async def list(
        self, user_id: int | None = None, *, kind: str | None = "api", include_revoked: bool = False
    ) -> list[TokenInfo]:
        """Tokens of one user (or everyone's), newest first. Expired ones are listed until purged."""
        where, params = [], []
        if user_id is not None:
            where.append("t.user_id = ?")
            params.append(user_id)
        if kind is not None:
            where.append("t.kind = ?")
            params.append(kind)
        if not include_revoked:
            where.append("t.revoked_at IS NULL")
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY t.id DESC"
        return [_info(r) for r in await self._db.fetchall(sql, params)]

    async def get(self, token_id: int) -> TokenInfo | None:
        row = await self._db.fetchone(_SELECT + " WHERE t.id = ?", (token_id,))
        return _info(row) if row else None

    async def revoke(self, token_id: int, user_id: int | None = None) -> bool:
        """Revoke one token; with user_id, only if it belongs to that user. False if nothing to revoke."""
        sql = "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
        params: list[object] = [time.time(), token_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        changed = await self._db.execute(sql, params)
        self._evict(lambda info: info.id == token_id)
        return changed > 0

    async def revoke_all_sessions(self, user_id: int, *, except_token_id: int | None = None) -> int:
        """End every browser session of a user (e.g. after a password change), optionally but one."""
        changed = await self._db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND kind = 'session'"
            " AND revoked_at IS NULL AND id IS NOT ?",
            (time.time(), user_id, except_token_id),
        )
        self._evict(
            lambda info: info.user_id == user_id and info.kind == "session" and info.id != except_token_id
        )
        return changed

    async def purge_expired(self) -> int:
        """Delete expired and revoked tokens. Returns how many."""
        changed = await self._db.execute(
            "DELETE FROM api_tokens WHERE revoked_at IS NOT NULL OR expires_at <= ?", (time.time(),)
        )
        self._evict(lambda info: info.expired())
        return changed

    def forget_user(self, user_id: int) -> None:
        """Drop a (deleted) user's tokens from the cache."""
        self._evict(lambda info: info.user_id == user_id)

    def _evict(self, match: Callable[[TokenInfo], bool]) -> None:
        for key in [k for k, (info, _) in self._cache.items() if match(info)]:
            del self._cache[key]
