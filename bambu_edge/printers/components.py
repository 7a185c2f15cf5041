"""The printers (one link each, ``PrinterManager``) and the temperature sampler as components."""

from __future__ import annotations

from aiohttp import web

from bambu_edge.component import Component, Context
from bambu_edge.config import PRINTERS_SECTION
from bambu_edge.node import node_of
from bambu_edge.printers.base import COMMAND_EVENT, PRINTER_ADDED_EVENT, PRINTER_EVENT, PRINTER_REMOVED_EVENT
from bambu_edge.printers.manager import PrinterManager
from bambu_edge.printers.temps import TempHistory, TempSampler
from bambu_edge.printers.transfers import TRANSFER_EVENT
from bambu_edge.store.materials import StoredMaterials
from bambu_edge.web import api_files, api_klipper, api_printers


class PrintersComponent(Component):
    """Core: the printers of the config file and of the dashboard, their state and commands."""

    name = "printers"
    requires = ("store",)
    config_section = PRINTERS_SECTION
    event_kinds = (PRINTER_EVENT, COMMAND_EVENT, PRINTER_ADDED_EVENT, PRINTER_REMOVED_EVENT, TRANSFER_EVENT)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.service: PrinterManager | None = None  # made at start: it needs the opened store

    @property
    def manager(self) -> PrinterManager:
        if self.service is None:
            raise RuntimeError("the printers component is not started")
        return self.service

    async def start(self) -> None:
        store = self.ctx.store
        self.service = PrinterManager(
            self.ctx.config,
            self.ctx.bus,
            store.pins,
            store.printers,
            StoredMaterials(store.db),
            node=node_of(self.ctx.config).id,
        )
        await self.service.start()

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()

    def routes(self) -> list[web.RouteDef]:
        return [*api_printers.routes(), *api_files.routes(), *api_klipper.routes()]


class TempsComponent(Component):
    """The last hour of temperatures per printer, sampled in memory (the chart's data)."""

    name = "temps"
    optional = True
    requires = ("printers",)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.history = TempHistory()
        self._sampler: TempSampler | None = None

    async def start(self) -> None:
        manager = self.ctx.require("printers", PrintersComponent).manager
        self._sampler = TempSampler(self.history, manager.views, self.ctx.tasks)
        await self._sampler.start()

    async def stop(self) -> None:
        if self._sampler is not None:
            await self._sampler.stop()
