"""The web service: HTTPS API + dashboard, and an optional plain-HTTP listener that only redirects.

Middlewares, outermost first: security headers, per-client rate limit, JSON errors, authentication
(Bearer token or session cookie) with CSRF checks for cookie-authenticated writes. The API routes
are those the components declare (handed in as ``routes``); the dashboard's files are served here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from bambu_edge.bus import EventBus
from bambu_edge.config import Config
from bambu_edge.printers.temps import TempHistory
from bambu_edge.web.api_auth import AUTH, AUTH_TOKEN, SERVICE, SESSION_COOKIE, ApiError, error_response
from bambu_edge.web.ratelimit import LoginThrottle, TokenBucketLimiter
from bambu_edge.web.security import (
    CSRF_HEADER,
    UNSAFE_METHODS,
    CsrfTokens,
    Handler,
    rate_limit,
    security_headers,
)
from bambu_edge.web.static import StaticFiles, find_web_root
from bambu_edge.web.tls import server_context, trim_tls_read_buffers

log = logging.getLogger(__name__)

# Routes that need no login: (method, path). HEAD is treated as GET.
PUBLIC = frozenset(
    {
        ("GET", "/api/health"),
        ("POST", "/api/auth/login"),
        ("GET", "/api/auth/status"),
        ("GET", "/api/setup"),
        ("POST", "/api/setup/admin"),
    }
)
CLIENT_MAX_SIZE = 1024 * 1024


def is_public(method: str, path: str) -> bool:
    return ("GET" if method == "HEAD" else method, path) in PUBLIC


def _needs_auth(request: web.Request) -> bool:
    path = request.path
    return (path == "/api" or path.startswith("/api/")) and not is_public(request.method, path)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ApiError -> JSON; aiohttp's own 4xx on /api become JSON too; a bug is a 500, logged."""
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.code, e.message, e.headers)
    except web.HTTPException as e:
        if request.path.startswith("/api") and e.status >= 400 and e.content_type != "application/json":
            code = {404: "not_found", 405: "method_not_allowed", 413: "bad_request"}.get(e.status, "error")
            headers = {k: v for k, v in e.headers.items() if k in ("Allow", "Retry-After")}
            return error_response(e.status, code, e.reason, headers or None)
        raise
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("error in %s %s", request.method, request.path)
        return error_response(500, "internal", "Something went wrong inside bambu-edge; see its log.")


def _presented_token(request: web.Request) -> tuple[str | None, bool]:
    """(token, via_cookie). A Bearer header wins over the cookie."""
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, True
    return None, False


class WebService:
    def __init__(
        self,
        config: Config,
        store: Any,
        manager: Any,
        bus: EventBus,
        *,
        routes: Sequence[web.RouteDef] = (),
        history: Any = None,
        queue: Any = None,
        temps: TempHistory | None = None,
        health: Callable[[], dict[str, Any]] | None = None,
    ):
        self.config = config
        self.store = store
        self.manager = manager
        self.bus = bus
        # Optional components' services, wired in app.py; their routes answer 503 while absent.
        self.history = history
        self.queue = queue
        self.temps = temps if temps is not None else TempHistory()  # empty without the sampler
        self.health = health or dict
        self.limiter = TokenBucketLimiter(per_minute=200)
        self.login_throttle = LoginThrottle()
        # "Test connection" opens a real connection to a device on the LAN: a few per minute per
        # client, and at most two at a time.
        self.probe_limiter = TokenBucketLimiter(per_minute=12, burst=6)
        self.probe_slots = asyncio.Semaphore(2)
        self.probe_timeout = 10.0
        self.csrf = CsrfTokens.from_file(config.data_dir / "csrf.key")
        self.setup_lock = asyncio.Lock()
        self.static = StaticFiles(find_web_root())
        self.app = self._build_app(routes)
        self._runners: list[web.AppRunner] = []
        self.https_port: int | None = None
        self.http_port: int | None = None

    # --- app -----------------------------------------------------------------------------------

    def _build_app(self, routes: Sequence[web.RouteDef]) -> web.Application:
        app = web.Application(
            middlewares=[security_headers, rate_limit(self.limiter), errors, self._auth],
            client_max_size=CLIENT_MAX_SIZE,
        )
        app[SERVICE] = self
        app.router.add_routes(routes)
        app.router.add_get("/", self.static.handle)
        for path in self.static.paths():
            if path != "/":
                app.router.add_get(path, self.static.handle)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        token, via_cookie = _presented_token(request)
        info = await self.store.tokens.resolve(token) if token else None
        if info is not None:
            request[AUTH] = info
            request[AUTH_TOKEN] = token
        if not _needs_auth(request):
            return await handler(request)
        if info is None:
            msg = "Log in first." if token is None else "The session or token is not valid (any more)."
            raise ApiError(401, "unauthorized", msg)
        if via_cookie and request.method in UNSAFE_METHODS:
            if not self.csrf.valid(token, request.headers.get(CSRF_HEADER)):
                raise ApiError(403, "csrf", f"Missing or wrong {CSRF_HEADER} header.")
        return await handler(request)

    def _redirect_app(self) -> web.Application:
        https_port = self.https_port

        async def redirect(request: web.Request) -> web.StreamResponse:
            host = request.url.host or self.config.web.bind
            if ":" in host:  # IPv6 literal
                host = f"[{host}]"
            target = f"https://{host}:{https_port}{request.rel_url}"
            raise web.HTTPPermanentRedirect(target)

        app = web.Application(middlewares=[security_headers], client_max_size=1024)
        app.router.add_route("*", "/{tail:.*}", redirect)
        return app

    # --- service -------------------------------------------------------------------------------

    async def _serve(self, app: web.Application, port: int, ssl_context: Any = None) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self.config.web.bind, port, ssl_context=ssl_context, backlog=128)
        await site.start()
        return runner.addresses[0][1]

    async def start(self) -> None:
        web_cfg = self.config.web
        ssl_context = await asyncio.to_thread(server_context, self.config)
        trim_tls_read_buffers()
        try:
            self.https_port = await self._serve(self.app, web_cfg.https_port, ssl_context)
            if web_cfg.http_port is not None:
                self.http_port = await self._serve(self._redirect_app(), web_cfg.http_port)
        except BaseException:
            await self.stop()
            raise
        log.info(
            "dashboard on https://%s:%d%s",
            web_cfg.bind,
            self.https_port,
            f" (http port {self.http_port} redirects)" if self.http_port else "",
        )

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()
