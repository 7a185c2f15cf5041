"""One link per printer: built from the config, started and stopped together, added and removed at
runtime (the dashboard's "add printer")."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bambu_edge.bus import EventBus
from bambu_edge.config import Config, PrinterConfig
from bambu_edge.printers.bambu.link import BambuLink
from bambu_edge.printers.base import PrinterLink
from bambu_edge.store.pins import CertPins

log = logging.getLogger(__name__)


class PrinterManager:
    def __init__(self, config: Config, bus: EventBus, pins: CertPins):
        self.config = config
        self.bus = bus
        self.pins = pins
        self._links: dict[str, PrinterLink] = {}
        self._skipped: set[str] = set()  # printers of a type without a link yet, logged once each

    async def start(self) -> None:
        for cfg in self.config.printers:
            await self.add_printer(cfg)

    async def stop(self) -> None:
        """Stop every link at once: each gets the same few seconds, not one after another."""
        links, self._links = list(self._links.values()), {}
        results = await asyncio.gather(*(link.stop() for link in links), return_exceptions=True)
        for link, result in zip(links, results, strict=True):
            if isinstance(result, BaseException):
                log.error("printer %s: link failed to stop", link.printer_id, exc_info=result)

    def _make(self, cfg: PrinterConfig) -> PrinterLink | None:
        if cfg.type == "bambu":
            return BambuLink(cfg, self.bus, self.pins)
        if cfg.id not in self._skipped:
            self._skipped.add(cfg.id)
            log.warning("printer %s: type %s is not supported yet; it is skipped", cfg.id, cfg.type)
        return None

    async def add_printer(self, cfg: PrinterConfig) -> PrinterLink | None:
        """Create and start the printer's link; None if its type has no link yet.
        ValueError if the id is taken."""
        if cfg.id in self._links:
            raise ValueError(f"printer id {cfg.id!r} is already in use")
        link = self._make(cfg)
        if link is None:
            return None
        self._links[cfg.id] = link
        await link.start()
        return link

    async def remove_printer(self, printer_id: str) -> bool:
        """Stop and forget the printer's link. False if there was none."""
        link = self._links.pop(printer_id, None)
        if link is None:
            return False
        await link.stop()
        return True

    def get(self, printer_id: str) -> PrinterLink | None:
        return self._links.get(printer_id)

    def links(self) -> list[PrinterLink]:
        return list(self._links.values())

    def views(self) -> list[dict[str, Any]]:
        return [link.state.view() for link in self._links.values()]
