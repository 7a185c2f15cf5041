"""Print history (the tracker) and the queue (the dispatcher) as components."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bambu_edge.component import Component, Context
from bambu_edge.files.thumbnails import ThumbnailCache
from bambu_edge.jobs.dispatcher import QUEUE_EVENT, Dispatcher
from bambu_edge.jobs.history_service import HISTORY_EVENT, HistoryService
from bambu_edge.jobs.moonraker_history import MoonrakerHistoryImport
from bambu_edge.jobs.queue import QueueStore
from bambu_edge.printers.components import PrintersComponent
from bambu_edge.web import api_history, api_queue


class HistoryComponent(Component):
    """Follows every print into the history; its API answers 503 while it is not running."""

    name = "history"
    optional = True
    requires = ("printers",)
    event_kinds = (HISTORY_EVENT,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.service: HistoryService | None = None
        self.moonraker_import: MoonrakerHistoryImport | None = None
        self.thumbnails: ThumbnailCache | None = None

    async def start(self) -> None:
        manager = self.ctx.require("printers", PrintersComponent).manager
        # One thumbnail cache, shared with the queue.
        self.thumbnails = await asyncio.to_thread(ThumbnailCache.in_data_dir, self.ctx.data_dir)
        service = HistoryService(
            self.ctx.store, manager, self.ctx.bus, thumbnails=self.thumbnails, tasks=self.ctx.tasks
        )
        await service.start()
        self.service = service
        # Klipper printers: their past prints from Moonraker's own history, once (issue 14)
        self.moonraker_import = MoonrakerHistoryImport(service.repo, manager, self.ctx.bus, self.ctx.tasks)
        self.moonraker_import.start()

    async def stop(self) -> None:
        if self.moonraker_import is not None:
            self.moonraker_import.stop()
        if self.service is not None:
            await self.service.stop()

    def routes(self) -> list[web.RouteDef]:
        return api_history.routes()


class QueueComponent(Component):
    """Starts queued jobs on free printers; its API answers 503 while it is not running."""

    name = "queue"
    optional = True
    requires = ("printers", "history")
    event_kinds = (QUEUE_EVENT,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.dispatcher: Dispatcher | None = None

    async def start(self) -> None:
        manager = self.ctx.require("printers", PrintersComponent).manager
        history = self.ctx.require("history", HistoryComponent)
        dispatcher = Dispatcher(
            self.ctx.config,
            QueueStore(self.ctx.store.db),
            manager,
            self.ctx.bus,
            history.service,
            thumbnails=history.thumbnails,
            tasks=self.ctx.tasks,
        )
        await dispatcher.start()
        self.dispatcher = dispatcher

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()

    def routes(self) -> list[web.RouteDef]:
        return api_queue.routes()
