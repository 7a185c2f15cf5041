"""The printer's side of its MQTT broker: one client (user ``bblp`` + access code, TLS) that
subscribes ``device/{serial}/request`` and publishes to ``device/{serial}/report``, reconnecting
with backoff when the broker goes away."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

log = logging.getLogger("bambu_edge.printers.virtual")


class MqttTransport:
    def __init__(
        self,
        host: str,
        port: int,
        serial: str,
        access_code: str,
        ca_file: str | None,
        *,
        on_request: Callable[[Any], Awaitable[None]],
        identifier: Callable[[], str],
        label: str,
    ):
        self.host, self.port = host, port
        self.serial, self.access_code = serial, access_code
        self.ca_file = ca_file
        self.request_topic = f"device/{serial}/request"
        self.report_topic = f"device/{serial}/report"
        self._on_request = on_request
        self._identifier = identifier
        self._label = label  # "X1C 00M09C...", for the log
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.last_error: BaseException | None = None

    def _tls_context(self) -> ssl.SSLContext:
        if self.ca_file:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            ctx.check_hostname = False  # the broker's certificate names a serial, we dial an address
        else:
            # A test/demo tool on loopback with no CA given: encrypt, but do not verify.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def run(self) -> None:
        """Stay connected, handing every request to ``on_request`` in arrival order."""
        backoff = 0.2
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    username="bblp",
                    password=self.access_code,
                    identifier=self._identifier(),
                    tls_context=self._tls_context(),
                    keepalive=30,
                ) as client:
                    await client.subscribe(self.request_topic, qos=1)
                    self._client = client
                    self.connected.set()
                    backoff = 0.2
                    log.info("virtual %s connected to %s:%s", self._label, self.host, self.port)
                    async for message in client.messages:
                        await self._on_request(message.payload)
            except aiomqtt.MqttError as e:
                self.last_error = e
                log.debug("virtual %s: connection: %s", self.serial, e)
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def publish(self, payload: bytes) -> None:
        client = self._client
        if client is None:
            return  # like a printer whose broker has no subscribers: the message is simply gone
        try:
            await client.publish(self.report_topic, payload, qos=0)
        except aiomqtt.MqttError as e:
            log.debug("virtual %s: publish failed: %s", self.serial, e)
