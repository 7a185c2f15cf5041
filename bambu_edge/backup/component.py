"""Backup and restore as a component (core, started before the store).

At start it takes the data folder's lock (so ``bambu-edge restore`` refuses while the daemon
runs, and two daemons never share a data folder) and swaps in a restore the dashboard staged
before the restart, before the store opens the database. Its routes make a backup (download) and
stage one (upload); a staged restore is applied by restarting the daemon in its own process
(``Registry.request_restart``): the components stop, this one swaps the files in at its next
start, the store migrates an older schema, and the rest starts on the restored data.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from bambu_edge.backup import api
from bambu_edge.backup.cli import known_schema, node_id
from bambu_edge.backup.lock import DataLock
from bambu_edge.backup.manifest import BackupError
from bambu_edge.backup.restore import Staged, apply_staged
from bambu_edge.component import Component, ComponentError, Context

log = logging.getLogger(__name__)


class BackupComponent(Component):
    name = "backup"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.lock = DataLock(ctx.data_dir)
        self.restored: Staged | None = None  # what the last start swapped in
        self.busy = asyncio.Lock()  # one backup or restore upload at a time
        self.restarting = False

    @property
    def node(self) -> str:
        return node_id(self.ctx.config)

    @property
    def known_schema(self) -> int:
        return known_schema()

    async def start(self) -> None:
        data_dir = self.ctx.data_dir
        try:
            await asyncio.to_thread(
                self.lock.acquire, f"{data_dir} is in use by another bambu-edge (a daemon, or a restore)"
            )
        except BackupError as e:
            raise ComponentError(e.message) from None
        try:
            self.restored = await asyncio.to_thread(apply_staged, data_dir)
        except (OSError, BackupError, ValueError, KeyError) as e:
            self.lock.release()
            raise ComponentError(f"the restore staged in {data_dir} could not be applied: {e}") from None

    async def stop(self) -> None:
        self.lock.release()

    def request_restart(self) -> None:
        self.restarting = True
        self.ctx.registry.request_restart()

    def routes(self) -> list[web.RouteDef]:
        return api.routes(lambda: self.ctx.registry.running(self.name))

    def health(self) -> dict[str, Any]:
        r = self.restored
        return {"restored": None if r is None else {"id": r.restore_id, **r.manifest.summary()}}
