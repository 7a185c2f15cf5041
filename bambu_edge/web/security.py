"""HTTP hardening: security headers, per-client rate limit, CSRF tokens for cookie sessions."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from bambu_edge.web.ratelimit import TokenBucketLimiter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The dashboard is same-origin ES modules and nothing else: no inline script, no third parties.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Strict-Transport-Security": "max-age=31536000",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _set_headers(resp: web.StreamResponse) -> None:
    for k, v in HEADERS.items():
        resp.headers.setdefault(k, v)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as e:
        _set_headers(e)
        raise
    if not resp.prepared:  # a WebSocket or stream has sent its headers already
        _set_headers(resp)
    return resp


def client_key(request: web.Request) -> str:
    # The dashboard is served directly on the LAN (no proxy), so the peer address is the client.
    return request.remote or "unknown"


def rate_limit(limiter: TokenBucketLimiter, clock: Callable[[], float] = time.monotonic):
    """The per-client limit on the API. The dashboard's own files are not counted: one page load
    is some 35 module requests (no bundling), so a few reloads would otherwise use up the minute
    and break the page; they are answered from memory and cost less than a 429 does."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not (request.path == "/api" or request.path.startswith("/api/")):
            return await handler(request)
        wait = limiter.check(client_key(request), clock())
        if wait > 0:
            return web.json_response(
                {"error": "rate_limited", "message": "Too many requests; slow down."},
                status=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return await handler(request)

    return middleware


class CsrfTokens:
    """A CSRF token bound to a session: HMAC(server secret, session token). Nothing to store per
    session, and a token is useless with any other session."""

    def __init__(self, secret: bytes):
        self._secret = secret

    @classmethod
    def from_file(cls, path: Path) -> CsrfTokens:
        try:
            secret = path.read_bytes()
        except FileNotFoundError:
            secret = b""
        if len(secret) < 32:
            secret = secrets.token_bytes(32)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_bytes(secret)
        return cls(secret)

    def token_for(self, session_token: str) -> str:
        return hmac.new(self._secret, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()

    def valid(self, session_token: str, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.token_for(session_token), presented or "")
