"""HTTP to one smart plug: a timeout on every request, a few quick retries, a circuit breaker.

Errors come out as ``PlugError`` in plain words ("no answer within 2.5 s"); nothing here waits
longer than ``attempts * timeout_s`` plus the short pauses between, so an API call that reads a
plug that hangs still answers within the contract's 10 s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from yarl import URL

from bambu_edge.power.breaker import CircuitBreaker

log = logging.getLogger(__name__)

TIMEOUT_S = 2.5
ATTEMPTS = 3
RETRY_PAUSE_S = 0.2
MAX_BODY = 64 * 1024  # a plug's status is a few kB


class PlugError(Exception):
    """The plug could not be reached or did not answer sensibly; the message is for the user."""


class PlugHttp:
    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = TIMEOUT_S,
        attempts: int = ATTEMPTS,
        retry_pause_s: float = RETRY_PAUSE_S,
        breaker: CircuitBreaker | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.username, self.password = username, password
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.retry_pause_s = retry_pause_s
        self.breaker = breaker or CircuitBreaker()
        self.digest = False  # Shelly Gen2+: HTTP digest instead of basic authentication
        self._session: aiohttp.ClientSession | None = None

    def url(self, path: str, params: Mapping[str, str] | None = None) -> URL:
        # Spaces as %20: Tasmota's documented form is cm?cmnd=Power%20On.
        query = "?" + urlencode(dict(params), quote_via=quote) if params else ""
        return URL(self.base_url + path + query, encoded=True)

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                connector=aiohttp.TCPConnector(limit=2, force_close=True),
            )
        return self._session

    def _auth(self) -> tuple[dict[str, str], Sequence[Any]]:
        """Headers and middlewares that log in: basic authentication, or digest for Shelly Gen2+."""
        if self.password is None:
            return {}, ()
        if self.digest:
            return {}, (aiohttp.DigestAuthMiddleware(self.username or "admin", self.password),)
        return {"Authorization": aiohttp.encode_basic_auth(self.username or "admin", self.password)}, ()

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``path`` and its JSON body, retried; PlugError when the plug fails every attempt or
        the breaker keeps it alone for now."""
        if not self.breaker.allow():
            raise PlugError(f"unreachable; trying again in {self.breaker.retry_in():.0f} s")
        error = "no answer"
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.retry_pause_s)
            try:
                body = await self._get(path, params)
            except PlugError as e:
                error = str(e)
                self.breaker.failure()  # each attempt: one call to a dead plug opens the breaker
                if "password" in error or not self.breaker.allow():
                    break  # asking again will not help (now)
                continue
            self.breaker.success()
            return body
        raise PlugError(error)

    async def _get(self, path: str, params: Mapping[str, str] | None) -> Any:
        headers, middlewares = self._auth()
        try:
            async with self._session_now().get(
                self.url(path, params), headers=headers, middlewares=tuple(middlewares)
            ) as r:
                if r.status == 401:
                    raise PlugError("the plug refused the username or password")
                if r.status != 200:
                    raise PlugError(f"the plug answered HTTP {r.status}")
                raw = await r.content.read(MAX_BODY + 1)
        except TimeoutError:
            raise PlugError(f"no answer within {self.timeout_s:g} s") from None
        except aiohttp.ClientConnectorError as e:
            raise PlugError(f"cannot connect: {e.os_error.strerror or e.os_error}") from None
        except aiohttp.ClientError as e:
            raise PlugError(f"HTTP error: {e}") from None
        if len(raw) > MAX_BODY:
            raise PlugError("the plug's answer is too long")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise PlugError("the plug's answer is not JSON") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
