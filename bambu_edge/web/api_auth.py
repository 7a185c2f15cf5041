"""Login, sessions, setup, users and API tokens; plus the helpers every API module shares (JSON
answers, the service, the authenticated caller). Reading the request itself is params.py's job."""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from bambu_edge.store.tokens import TokenInfo
from bambu_edge.store.users import User
from bambu_edge.web.errors import ApiError, bad
from bambu_edge.web.openapi import documented
from bambu_edge.web.params import get_str, path_id, read_json
from bambu_edge.web.security import client_key

if TYPE_CHECKING:
    from bambu_edge.web.server import WebService

log = logging.getLogger(__name__)

SESSION_COOKIE = "bambu_edge_session"
SERVICE: web.AppKey[Any] = web.AppKey("bambu_edge_service", object)
# Set by the auth middleware on an authenticated request: the TokenInfo and the token string.
AUTH: web.RequestKey[TokenInfo] = web.RequestKey("bambu_edge_auth", TokenInfo)
AUTH_TOKEN: web.RequestKey[str] = web.RequestKey("bambu_edge_auth_token", str)


# --- shared helpers -----------------------------------------------------------------------------


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None):
    return json_response({"error": code, "message": message}, status, headers)


def service(request: web.Request) -> WebService:
    return request.app[SERVICE]


def caller(request: web.Request) -> TokenInfo:
    info = request.get(AUTH)
    if info is None:  # the auth middleware lets only public routes through without it
        raise ApiError(401, "unauthorized", "Log in first.")
    return info


def require_admin(request: web.Request) -> User:
    user = caller(request).user
    if not user.is_admin:
        raise ApiError(403, "forbidden", "Only an admin may do this.")
    return user


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "role": user.role, "created_at": user.created_at}


def token_json(info: TokenInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "last_used_at": info.last_used_at,
    }


# --- sessions -------------------------------------------------------------------------------------

CREDENTIALS = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
}
TOKEN_RESPONSE = {"type": "object", "properties": {"token": {"type": "string"}}}


async def _start_session(request: web.Request, user: User, status: int = 200) -> web.Response:
    svc = service(request)
    ttl = svc.config.web.session_hours * 3600
    agent = (request.headers.get("User-Agent") or "browser")[:48]
    name = "".join(c for c in agent if c.isprintable()).strip() or "browser"
    token, _ = await svc.store.tokens.create(user.id, f"session: {name}", kind="session", ttl_s=ttl)
    resp = json_response({"token": token}, status)
    resp.set_cookie(
        SESSION_COOKIE, token, httponly=True, secure=True, samesite="Strict", path="/", max_age=ttl
    )
    return resp


@documented(body=CREDENTIALS, response=TOKEN_RESPONSE, public=True)
async def login(request: web.Request) -> web.Response:
    """Log in with a user name and password.

    Returns a token (usable as `Authorization: Bearer`) and sets an HttpOnly session cookie.
    Repeated failures from one address are answered with 429 and Retry-After."""
    svc = service(request)
    client = client_key(request)
    wait = svc.login_throttle.retry_after(client, time.monotonic())
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            "Too many failed logins; wait a moment and try again.",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )
    body = await read_json(request)
    username = get_str(body, "username", max_len=64)
    password = get_str(body, "password", max_len=1024)
    user = await svc.store.users.verify(username, password)
    if user is None:
        svc.login_throttle.failed(client, time.monotonic())
        raise ApiError(401, "unauthorized", "Wrong user name or password.")
    svc.login_throttle.succeeded(client)
    return await _start_session(request, user)


async def logout(request: web.Request) -> web.Response:
    """End this session (the cookie is cleared; the session token stops working)."""
    info = caller(request)
    if info.kind == "session":
        await service(request).store.tokens.revoke(info.id)
    resp = web.Response(status=204)
    resp.del_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return resp


SESSION = {
    "user": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "role": {"type": "string"}},
    },
    "csrf": {"type": "string"},
    "expires_at": {"type": ["number", "null"]},
}


def _session_json(request: web.Request, info: TokenInfo) -> dict[str, Any]:
    u = info.user
    return {
        "user": {"id": u.id, "name": u.name, "role": u.role},
        "csrf": service(request).csrf.token_for(request[AUTH_TOKEN]),
        "expires_at": info.expires_at,
    }


@documented(response={"type": "object", "properties": SESSION})
async def session(request: web.Request) -> web.Response:
    """Who is logged in, and the CSRF token for cookie-authenticated writes."""
    return json_response(_session_json(request, caller(request)))


@documented(
    response={
        "type": "object",
        "required": ["authenticated"],
        "properties": {"authenticated": {"type": "boolean"}, **SESSION},
    },
    public=True,
)
async def auth_status(request: web.Request) -> web.Response:
    """Whether this request is logged in: always 200, never 401.

    `{"authenticated": false}`, or `{"authenticated": true}` with what `GET /api/session` gives. The
    dashboard asks this on every page load, before anyone has logged in (a 401 there would be an
    error in the browser's console)."""
    info = request.get(AUTH)
    if info is None:
        return json_response({"authenticated": False})
    return json_response({"authenticated": True, **_session_json(request, info)})


@documented(
    body={
        "type": "object",
        "required": ["current", "new"],
        "properties": {"current": {"type": "string"}, "new": {"type": "string"}},
    }
)
async def change_password(request: web.Request) -> web.Response:
    """Change your password; your other browser sessions are ended."""
    info = caller(request)
    svc = service(request)
    body = await read_json(request)
    current = get_str(body, "current")
    new = get_str(body, "new", max_len=1024)
    if await svc.store.users.verify(info.user.name, current) is None:
        raise ApiError(403, "forbidden", "The current password is wrong.")
    try:
        await svc.store.users.set_password(info.user.id, new)
    except ValueError as e:
        raise bad(str(e)) from None
    keep = info.id if info.kind == "session" else None
    await svc.store.tokens.revoke_all_sessions(info.user.id, except_token_id=keep)
    return web.Response(status=204)


# --- first-run setup -------------------------------------------------------------------------------


@documented(response={"type": "object", "properties": {"needs_admin": {"type": "boolean"}}}, public=True)
async def setup_status(request: web.Request) -> web.Response:
    """Whether an admin has to be created: no user yet, or the setup was reopened by holding the
    panel button (a forgotten password; the other users and all data stay)."""
    store = service(request).store
    return json_response({"needs_admin": store.setup.is_open() or await store.users.count() == 0})


@documented(body=CREDENTIALS, response=TOKEN_RESPONSE, public=True)
async def setup_admin(request: web.Request) -> web.Response:
    """Create the first admin and log in. Only while no user exists, or once after the setup was
    reopened by the panel button: then an existing admin's name sets that admin's password (its
    sessions end) and a new name makes a new admin (409 otherwise)."""
    svc = service(request)
    body = await read_json(request)
    username = get_str(body, "username", max_len=64)
    password = get_str(body, "password", max_len=1024)
    async with svc.setup_lock:
        reopened = svc.store.setup.is_open()
        if not reopened and await svc.store.users.count() > 0:
            raise ApiError(409, "conflict", "An admin exists already; log in instead.")
        try:
            user = await _setup_user(svc, username, password, reopened)
        except ValueError as e:
            raise bad(str(e)) from None
        if reopened:
            svc.store.setup.close()
            log.warning("setup reopened by the panel button: admin %r set; setup closed again", user.name)
    return await _start_session(request, user, 201)


async def _setup_user(svc: WebService, username: str, password: str, reopened: bool) -> User:
    existing = await svc.store.users.get_by_name(username) if reopened else None
    if existing is None:
        return await svc.store.users.create(username, password, "admin")
    if not existing.is_admin:
        raise ApiError(409, "conflict", f"{existing.name!r} is not an admin: choose another name.")
    await svc.store.users.set_password(existing.id, password)
    await svc.store.tokens.revoke_all_sessions(existing.id)
    return existing


# --- users (admin) ---------------------------------------------------------------------------------


async def list_users(request: web.Request) -> web.Response:
    """All users (admin)."""
    require_admin(request)
    return json_response([user_json(u) for u in await service(request).store.users.list()])


@documented(
    body={
        "type": "object",
        "required": ["name", "password"],
        "properties": {
            "name": {"type": "string"},
            "password": {"type": "string"},
            "role": {"type": "string", "enum": ["admin", "user"]},
        },
    }
)
async def create_user(request: web.Request) -> web.Response:
    """Create a user (admin)."""
    require_admin(request)
    body = await read_json(request)
    name = get_str(body, "name", max_len=64)
    password = get_str(body, "password", max_len=1024)
    role = get_str(body, "role", max_len=16, required=False) or "user"
    try:
        user = await service(request).store.users.create(name, password, role)
    except ValueError as e:
        status = 409 if "exists" in str(e) else 400
        raise ApiError(status, "conflict" if status == 409 else "bad_request", str(e)) from None
    return json_response(user_json(user), 201)


async def delete_user(request: web.Request) -> web.Response:
    """Delete a user and its tokens (admin). The last admin cannot be deleted."""
    require_admin(request)
    user_id = path_id(request)
    try:
        deleted = await service(request).store.users.delete(user_id)
    except ValueError as e:
        raise ApiError(409, "conflict", str(e)) from None
    if not deleted:
        raise ApiError(404, "not_found", "No such user.")
    return web.Response(status=204)


# --- API tokens (own) ------------------------------------------------------------------------------


async def list_tokens(request: web.Request) -> web.Response:
    """Your API tokens (never the token strings)."""
    info = caller(request)
    tokens = await service(request).store.tokens.list(info.user_id, kind="api")
    return json_response([token_json(t) for t in tokens])


@documented(body={"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}})
async def create_token(request: web.Request) -> web.Response:
    """Create an API token; the token string is shown once."""
    info = caller(request)
    body = await read_json(request)
    name = get_str(body, "name", max_len=64)
    try:
        token, created = await service(request).store.tokens.create(info.user_id, name, kind="api")
    except ValueError as e:
        raise bad(str(e)) from None
    return json_response({"token": token, **token_json(created)}, 201)


async def delete_token(request: web.Request) -> web.Response:
    """Revoke one of your API tokens."""
    info = caller(request)
    token_id = path_id(request)
    if not await service(request).store.tokens.revoke(token_id, info.user_id):
        raise ApiError(404, "not_found", "No such token.")
    return web.Response(status=204)


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/auth/login", login),
        web.post("/api/auth/logout", logout),
        web.post("/api/auth/password", change_password),
        web.get("/api/session", session),
        web.get("/api/auth/status", auth_status),
        web.get("/api/setup", setup_status),
        web.post("/api/setup/admin", setup_admin),
        web.get("/api/users", list_users),
        web.post("/api/users", create_user),
        web.delete("/api/users/{id}", delete_user),
        web.get("/api/tokens", list_tokens),
        web.post("/api/tokens", create_token),
        web.delete("/api/tokens/{id}", delete_token),
    ]
