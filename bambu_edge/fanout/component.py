"""The fan-out endpoint as a component (``fanout:``; null: off).

Start: the plugin (found or built), the unit's certificate (the dashboard's, web/tls.py), the
access codes (made for printers that have none), mosquitto's files in a private runtime directory;
then mosquitto as a child (restarted with backoff when it dies) and bambu-edge's own client on its
unix socket. Printers added or removed in the dashboard, and rotated codes, rewrite the codes file
and SIGHUP mosquitto, whose plugin then disconnects the clients of any code that changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import signal
import socket
from collections import deque
from typing import Any

from aiohttp import web

from bambu_edge.bus import Event, Listener
from bambu_edge.component import Component, ComponentError, Context
from bambu_edge.fanout import api
from bambu_edge.fanout.access import Access, AccessCodes
from bambu_edge.fanout.bridge import Bridge
from bambu_edge.fanout.broker import BrokerFiles, mosquitto_binary, runtime_dir
from bambu_edge.fanout.config import FANOUT_SECTION, FanoutConfig
from bambu_edge.fanout.plugin import find_or_build
from bambu_edge.printers.backoff import Backoff
from bambu_edge.printers.base import PRINTER_ADDED_EVENT, PRINTER_REMOVED_EVENT
from bambu_edge.printers.components import PrintersComponent
from bambu_edge.printers.manager import PrinterManager
from bambu_edge.web.tls import cert_paths

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 15.0
BRIDGE_USER = "bambu-edge"


def _free_port(bind: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET) as s:
        s.bind((bind, 0))
        return s.getsockname()[1]


class FanoutComponent(Component):
    name = "fanout"
    optional = True
    requires = ("store", "printers")
    config_section = FANOUT_SECTION

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.cfg: FanoutConfig | None = ctx.section
        self.port: int | None = None
        self.bridge: Bridge | None = None
        self.access: AccessCodes | None = None
        self.restarts = 0
        self._files: BrokerFiles | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._exited: asyncio.Future[str] | None = None  # mosquitto's last words, if it ended
        self._up = False  # came up once: restart it when it ends
        self._credentials = (BRIDGE_USER, secrets.token_urlsafe(24))
        self._untap: Any = None
        self._listener: Listener | None = None
        self._sync_lock = asyncio.Lock()

    @property
    def manager(self) -> PrinterManager:
        return self.ctx.require("printers", PrintersComponent).manager

    @property
    def enabled(self) -> bool:
        return self.cfg is not None

    async def start(self) -> None:
        if self.cfg is None:
            return
        try:
            await self._start(self.cfg)
        except BaseException:
            # Failed: the routes answer 503, and what it started ends with its TaskSet.
            self.bridge = self.access = self.port = None
            if self._files is not None:
                shutil.rmtree(self._files.directory, ignore_errors=True)
            raise

    async def _start(self, cfg: FanoutConfig) -> None:
        mosquitto = mosquitto_binary()
        plugin = await asyncio.to_thread(find_or_build, self.ctx.data_dir / "fanout")
        cert, key = await asyncio.to_thread(cert_paths, self.ctx.config)
        self.access = AccessCodes(self.ctx.store.db)
        self.port = cfg.port or _free_port(cfg.bind)
        self._files = BrokerFiles(runtime_dir(), plugin, cert, key, self.port, cfg.bind)
        self._files.write_conf()
        bridge = Bridge(
            str(self._files.socket),
            self._credentials,
            self.manager,
            self.ctx.tasks,
            rate=cfg.rate,
            burst=cfg.burst,
        )
        self.bridge = bridge
        await self._sync(reload=False)
        self._exited = asyncio.get_running_loop().create_future()
        self.ctx.tasks.spawn(self._supervise(mosquitto), name="fanout-mosquitto")
        self.ctx.tasks.spawn(bridge.run(), name="fanout-bridge")
        ready = asyncio.ensure_future(bridge.connected.wait())
        try:
            done, _ = await asyncio.wait(
                {ready, self._exited}, timeout=READY_TIMEOUT_S, return_when="FIRST_COMPLETED"
            )
        finally:
            ready.cancel()
        if self._exited in done:
            raise ComponentError(f"mosquitto did not start: {self._exited.result()}")
        if not bridge.connected.is_set():
            raise ComponentError(f"mosquitto did not accept bambu-edge's client within {READY_TIMEOUT_S:g} s")
        self._up = True  # from now on an ended mosquitto is restarted
        self._untap = self.manager.tap_reports(bridge.relay)
        self._listener = self.ctx.bus.listen(
            PRINTER_ADDED_EVENT, PRINTER_REMOVED_EVENT, callback=self._printers_changed
        )
        log.info(
            "fan-out endpoint on %s:%d (TLS) for %d printer(s)",
            cfg.bind,
            self.port,
            len(self.manager.links()),
        )

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._untap is not None:
            self._untap()
            self._untap = None
        await self.ctx.tasks.close()
        if self._files is not None:
            shutil.rmtree(self._files.directory, ignore_errors=True)

    # --- mosquitto ---------------------------------------------------------------------------------

    async def _supervise(self, mosquitto: str) -> None:
        files = self._files
        assert files is not None and self._exited is not None
        backoff = Backoff(initial=1.0, cap=60.0)
        while True:
            proc = await self.ctx.tasks.spawn_process(
                mosquitto, "-c", str(files.conf), stderr=asyncio.subprocess.PIPE
            )
            self._proc = proc
            tail: deque[str] = deque(maxlen=5)
            assert proc.stderr is not None
            async for raw in proc.stderr:
                line = raw.decode(errors="replace").strip()
                text = line.split(": ", 1)[-1]  # without mosquitto's timestamp
                tail.append(text)
                if "Error" in text or ("Warning" in text and "root" not in text):
                    log.warning("fan-out mosquitto: %s", text)
            rc = await proc.wait()
            self._proc = None
            why = f"exit code {rc}" + (f": {' / '.join(tail)}" if tail else "")
            if not self._up:
                self._exited.set_result(why)  # it never came up: start() says why and gives up
                return
            self.restarts += 1
            delay = backoff.next()
            log.warning("fan-out mosquitto ended (%s); restarting in %.1f s", why, delay)
            await asyncio.sleep(delay)

    def _reload(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGHUP)

    # --- printers and codes ------------------------------------------------------------------------

    def _printers_changed(self, event: Event) -> None:
        self.ctx.tasks.spawn(self._sync(), name="fanout-sync")

    async def _sync(self, reload: bool = True) -> None:
        """Codes file and bridge after the printers or their codes changed."""
        access, bridge, files = self.access, self.bridge, self._files
        if access is None or bridge is None or files is None:
            return
        async with self._sync_lock:
            printers = {}
            own = set()
            for link in self.manager.links():
                cfg = self.manager.config_of(link.printer_id)
                if cfg is not None and cfg.type == "bambu":
                    printers[link.printer_id] = cfg.serial
                    own.add(cfg.access_code)
            rows = await access.ensure(list(printers), avoid=frozenset(own))
            for pid in bridge.printer_ids():
                if pid not in printers:
                    bridge.unfront(pid)
            for pid, serial in printers.items():
                bridge.front(pid, serial, rows[pid].grants)
            files.write_codes(self._credentials, {printers[pid]: a.access_code for pid, a in rows.items()})
            if reload:
                self._reload()

    async def rotate(self, printer_id: str) -> Access:
        assert self.access is not None
        own = {
            cfg.access_code
            for link in self.manager.links()
            if (cfg := self.manager.config_of(link.printer_id))
        }
        row = await self.access.rotate(printer_id, avoid=frozenset(own))
        await self._sync()
        log.info("fan-out: the access code of %s was rotated; its clients were disconnected", printer_id)
        return row

    async def set_grants(self, printer_id: str, grants: tuple[str, ...]) -> Access:
        assert self.access is not None
        row = await self.access.set_grants(printer_id, grants)
        await self._sync(reload=False)
        log.info(
            "fan-out: clients of %s may send: %s", printer_id, ", ".join(row.grants) or "read-only queries"
        )
        return row

    async def entries(self) -> list[dict[str, Any]]:
        if self.access is None or self.bridge is None:
            return []
        rows = {a.printer_id: a for a in await self.access.all()}
        out = []
        for pid in self.bridge.printer_ids():
            f, a = self.bridge.fronted(pid), rows.get(pid)
            if f is not None and a is not None:
                out.append(
                    {"id": pid, "serial": f.serial, "access_code": a.access_code, "grants": list(a.grants)}
                )
        return out

    # --- the daemon --------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return api.routes(lambda: self)

    def health(self) -> dict[str, Any]:
        if self.cfg is None:
            return {"enabled": False}
        c = self.bridge.counters if self.bridge else None
        return {
            "enabled": True,
            "port": self.port,
            "broker": self._proc is not None,
            "restarts": self.restarts,
            "relayed": c.reports if c else 0,
            "forwarded": c.forwarded if c else 0,
            "refused": c.refused if c else 0,
        }
