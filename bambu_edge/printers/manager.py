"""One link per printer: the printers of the YAML config and those added in the dashboard (kept in
the database), started and stopped together; dashboard printers are added, edited and removed at
runtime.

Printers from the YAML config are read-only here. A stored printer whose id a YAML printer also
uses is not started: the config file wins, and the log says so. Every change is committed to the
database before it is announced on the bus (``printer_added`` / ``printer_removed``).

The links are library code (printers/bambu/): they take their settings as ``BambuSettings`` and
report through a ``LinkListener``; here the daemon's config becomes those settings and what links
report becomes bus events (``BusListener``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any, Protocol

from bambu_edge.bus import Event, EventBus
from bambu_edge.config import Config, PrinterConfig
from bambu_edge.printers.bambu.link import BambuLink
from bambu_edge.printers.bambu.settings import BambuSettings
from bambu_edge.printers.base import (
    COMMAND_EVENT,
    PRINTER_ADDED_EVENT,
    PRINTER_EVENT,
    PRINTER_REMOVED_EVENT,
    CommandOutcome,
    PrinterLink,
    PrinterUpdate,
)
from bambu_edge.printers.moonraker.link import MoonrakerLink
from bambu_edge.printers.moonraker.settings import MoonrakerSettings
from bambu_edge.store.materials import StoredMaterials
from bambu_edge.store.pins import CertPins
from bambu_edge.store.printers import StoredPrinters, new_printer_id

log = logging.getLogger(__name__)

# What a dashboard edit may change; the serial is the printer's identity (topics, certificate).
EDITABLE = frozenset({"name", "host", "access_code", "model", "mqtt_port", "ftps_port", "port", "api_key"})


ReportTap = Callable[[str, bytes, dict[str, Any]], None]


class BusListener:
    """What links report, as bus events: Event(PRINTER_EVENT, id, PrinterUpdate) and
    Event(COMMAND_EVENT, id, CommandOutcome). The printers' messages as received go to the
    ``taps`` (the fan-out relays them unchanged), not on the bus: a call each, only when tapped."""

    def __init__(self, bus: EventBus):
        self.bus = bus
        self.taps: list[ReportTap] = []

    def on_report(self, printer_id: str, payload: bytes, msg: dict[str, Any]) -> None:
        for tap in self.taps:
            try:
                tap(printer_id, payload, msg)
            except Exception:
                log.exception("printer %s: a report tap failed", printer_id)

    def on_update(self, printer_id: str, update: PrinterUpdate) -> None:
        self.bus.publish(Event(PRINTER_EVENT, printer_id, update))

    def on_command(self, printer_id: str, outcome: CommandOutcome) -> None:
        self.bus.publish(Event(COMMAND_EVENT, printer_id, outcome))


def bambu_settings(cfg: PrinterConfig) -> BambuSettings:
    """A configured Bambu printer, as its link takes it."""
    return BambuSettings(
        id=cfg.id,
        name=cfg.name,
        host=cfg.host,
        serial=cfg.serial,
        access_code=cfg.access_code,
        mqtt_port=cfg.mqtt_port,
        ftps_port=cfg.ftps_port,
        model=cfg.model,
        ca_file=cfg.tls.ca_file,
        fingerprint=cfg.tls.fingerprint,
    )


def moonraker_settings(cfg: PrinterConfig) -> MoonrakerSettings:
    """A configured Klipper printer (type: moonraker), as its link takes it."""
    return MoonrakerSettings(
        id=cfg.id,
        name=cfg.name,
        host=cfg.host,
        port=cfg.port,
        api_key=cfg.api_key,
        light_macro_on=cfg.light_on,
        light_macro_off=cfg.light_off,
        light_power_device=cfg.light_power_device,
    )


class RemotePrinters(Protocol):
    """Printers of other units in the farm (bambu_edge/farm/): listed with the local ones, and
    their commands carried to their owning unit."""

    def views(self) -> list[dict[str, Any]]: ...

    def view(self, printer_id: str) -> dict[str, Any] | None: ...

    async def send_command(self, printer_id: str, action: str, params: dict[str, Any], user: Any) -> str:
        """Send to the owning unit; the sequence id the answer will carry (CommandError as a link)."""
        ...


class ReadOnlyPrinterError(Exception):
    """The printer is declared in the YAML config; the dashboard may not change it."""


class SerialInUseError(Exception):
    """A printer with this serial is running already (a printer takes one MQTT session)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class HostInUseError(SerialInUseError):
    """A Klipper printer at this Moonraker host and port is configured already."""


class PrinterManager:
    def __init__(
        self,
        config: Config,
        bus: EventBus,
        pins: CertPins,
        stored: StoredPrinters | None = None,
        materials: StoredMaterials | None = None,  # Klipper printers' nozzle and filament
        node: str | None = None,
    ):
        self.config = config
        self.materials = materials
        self.node = node  # this unit's id, carried by every printer object (DESIGN §4 "Farm")
        self.remote: RemotePrinters | None = None  # set by the farm component while it runs
        self.bus = bus
        self.pins = pins
        self.stored = stored
        self._listener = BusListener(bus)
        self._links: dict[str, PrinterLink] = {}
        self._configs: dict[str, PrinterConfig] = {}  # of the printers that have a link
        self._skipped: set[str] = set()  # printers of a type without a link yet, logged once each
        self._edit_lock = asyncio.Lock()  # one dashboard change at a time: ids stay unique

    async def start(self) -> None:
        for cfg in self.config.printers:
            await self.add_printer(cfg)
        if self.stored is None:
            return
        declared = {cfg.id for cfg in self.config.printers}
        for cfg in await self.stored.list():
            if cfg.id in declared:
                log.warning(
                    "printer %s: added in the dashboard and also declared in %s; the config file's "
                    "printer is used (remove one of them to silence this)",
                    cfg.id,
                    self.config.source or "the config file",
                )
                continue
            await self.add_printer(cfg)

    async def stop(self) -> None:
        """Stop every link at once: each gets the same few seconds, not one after another."""
        links, self._links = list(self._links.values()), {}
        self._configs.clear()
        results = await asyncio.gather(*(link.stop() for link in links), return_exceptions=True)
        for link, result in zip(links, results, strict=True):
            if isinstance(result, BaseException):
                log.error("printer %s: link failed to stop", link.printer_id, exc_info=result)

    def _make(self, cfg: PrinterConfig) -> PrinterLink | None:
        if cfg.type == "bambu":
            return BambuLink(bambu_settings(cfg), self.pins, self._listener)
        if cfg.type == "moonraker":
            return MoonrakerLink(moonraker_settings(cfg), self._listener)
        if cfg.id not in self._skipped:
            self._skipped.add(cfg.id)
            log.warning("printer %s: type %s is not supported yet; it is skipped", cfg.id, cfg.type)
        return None

    async def add_printer(self, cfg: PrinterConfig) -> PrinterLink | None:
        """Create and start the printer's link; None if its type has no link yet.
        ValueError if the id is taken. Nothing is stored or announced: see ``create``."""
        if cfg.id in self._links:
            raise ValueError(f"printer id {cfg.id!r} is already in use")
        link = self._make(cfg)
        if link is None:
            return None
        self._links[cfg.id] = link
        self._configs[cfg.id] = cfg
        if isinstance(link, MoonrakerLink) and self.materials is not None:
            link.set_materials(await self.materials.get(cfg.id))
        await link.start()
        return link

    async def remove_printer(self, printer_id: str) -> bool:
        """Stop and forget the printer's link. False if there was none."""
        link = self._links.pop(printer_id, None)
        self._configs.pop(printer_id, None)
        if link is None:
            return False
        await link.stop()
        return True

    # --- dashboard printers ----------------------------------------------------------------------

    def _taken_ids(self, stored: set[str]) -> set[str]:
        return {cfg.id for cfg in self.config.printers} | stored | set(self._links)

    def _require_editable(self, printer_id: str) -> PrinterConfig:
        cfg = self._configs.get(printer_id)
        if cfg is None:
            raise LookupError(printer_id)
        if cfg.read_only:
            raise ReadOnlyPrinterError(printer_id)
        return cfg

    def _stored(self) -> StoredPrinters:
        if self.stored is None:
            raise RuntimeError("printers cannot be added without a database")
        return self.stored

    async def create(
        self,
        *,
        name: str,
        host: str,
        serial: str,
        access_code: str,
        model: str | None = None,
        mqtt_port: int = 8883,
        ftps_port: int = 990,
    ) -> dict[str, Any]:
        """Store a new Bambu printer (id derived from the name), start its link, announce it.
        The fields must have been validated (config.check_*). Returns its view.
        SerialInUseError if a running printer has this serial."""
        stored = self._stored()
        async with self._edit_lock:
            for other in self._configs.values():
                if other.serial == serial:
                    raise SerialInUseError(other.name)
            pid = new_printer_id(name, self._taken_ids(await stored.ids()))
            cfg = PrinterConfig(
                id=pid,
                name=name,
                type="bambu",
                host=host,
                serial=serial,
                access_code=access_code,
                mqtt_port=mqtt_port,
                ftps_port=ftps_port,
                model=model,
                read_only=False,
            )
            await stored.add(cfg)
            await self.add_printer(cfg)
            log.info("printer %s (%s at %s) added from the dashboard", pid, serial, host)
            return self._announce(pid)

    async def create_moonraker(
        self, *, name: str, host: str, port: int = 7125, api_key: str | None = None
    ) -> dict[str, Any]:
        """Store a new Klipper printer (type moonraker; id from the name), start its link, announce
        it. Returns its view. HostInUseError if a printer already talks to that Moonraker."""
        stored = self._stored()
        async with self._edit_lock:
            for other in self._configs.values():
                if other.type == "moonraker" and other.host == host and other.port == port:
                    raise HostInUseError(other.name)
            pid = new_printer_id(name, self._taken_ids(await stored.ids()))
            cfg = PrinterConfig(
                id=pid, name=name, type="moonraker", host=host, port=port, api_key=api_key, read_only=False
            )
            await stored.add(cfg)
            await self.add_printer(cfg)
            log.info("Klipper printer %s (Moonraker at %s:%d) added from the dashboard", pid, host, port)
            return self._announce(pid)

    async def update(self, printer_id: str, **changes: Any) -> dict[str, Any]:
        """Change a dashboard printer's settings (EDITABLE keys) and restart its link.
        LookupError / ReadOnlyPrinterError. Returns the new view."""
        unknown = set(changes) - EDITABLE
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
        stored = self._stored()
        async with self._edit_lock:
            cfg = dataclasses.replace(self._require_editable(printer_id), **changes)
            if not await stored.update(cfg):
                raise LookupError(printer_id)
            await self.remove_printer(printer_id)
            await self.add_printer(cfg)
            what = ", ".join(sorted("access code" if k == "access_code" else k for k in changes)) or "nothing"
            log.info("printer %s changed from the dashboard (%s); its link restarted", printer_id, what)
            return self._announce(printer_id)

    async def delete(self, printer_id: str) -> None:
        """Remove a dashboard printer: row, link and certificate pin. LookupError / ReadOnlyPrinterError."""
        stored = self._stored()
        async with self._edit_lock:
            self._require_editable(printer_id)
            await stored.delete(printer_id)
            # The link stops before the pin goes: a link still running could pin it again.
            await self.remove_printer(printer_id)
            await self.pins.forget(printer_id)
            log.info("printer %s removed from the dashboard", printer_id)
            self.bus.publish(Event(PRINTER_REMOVED_EVENT, printer_id, {}))

    def _announce(self, printer_id: str) -> dict[str, Any]:
        view = self.view(printer_id)
        if view is None:  # its link was just started: only a bug gets here
            raise RuntimeError(f"printer {printer_id!r} has no link")
        self.bus.publish(Event(PRINTER_ADDED_EVENT, printer_id, {"printer": view}))
        return view

    # --- reading ---------------------------------------------------------------------------------

    def get(self, printer_id: str) -> PrinterLink | None:
        return self._links.get(printer_id)

    def config_of(self, printer_id: str) -> PrinterConfig | None:
        return self._configs.get(printer_id)

    def tap_reports(self, tap: ReportTap) -> Callable[[], None]:
        """Have ``tap(printer_id, payload, msg)`` called with every message a printer sends, in the
        link's turn; returns the function that stops it."""
        self._listener.taps.append(tap)
        return lambda: self._listener.taps.remove(tap) if tap in self._listener.taps else None

    def links(self) -> list[PrinterLink]:
        return list(self._links.values())

    def view(self, printer_id: str) -> dict[str, Any] | None:
        """The printer's live view (DESIGN §4) plus where it comes from and how it is reached.
        Never the access code."""
        link = self._links.get(printer_id)
        if link is None:
            return None
        cfg = self._configs[printer_id]
        return {
            **link.state.view(),
            "node": self.node,
            "read_only": cfg.read_only,
            "host": cfg.host,
            "mqtt_port": cfg.mqtt_port,
            "ftps_port": cfg.ftps_port,
            **({"port": cfg.port} if cfg.type == "moonraker" else {}),  # Moonraker's; never its key
        }

    def views(self) -> list[dict[str, Any]]:
        """This unit's printers (what the local services act on)."""
        return [v for pid in self._links if (v := self.view(pid)) is not None]

    def farm_views(self) -> list[dict[str, Any]]:
        """This unit's printers, then the other units' (the API's and the dashboard's list)."""
        remote = self.remote
        return self.views() + (remote.views() if remote is not None else [])

    def farm_view(self, printer_id: str) -> dict[str, Any] | None:
        """A printer of this unit or, failing that, of another unit in the farm."""
        view = self.view(printer_id)
        if view is None and self.remote is not None:
            view = self.remote.view(printer_id)
        return view
