"""What a Bambu link needs to know about its printer: where it is, who it is, how to trust it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BambuSettings:
    id: str  # the program's name for the printer (logs, pins, events)
    name: str  # for people
    host: str
    serial: str  # MQTT topics; a certificate verified against ca_file must be issued to it
    access_code: str = field(default="", repr=False)  # never logged
    mqtt_port: int = 8883
    ftps_port: int = 990
    model: str | None = None  # overrides detection (get_version, serial prefix)
    ca_file: str | None = None  # verify the printer's chain against this CA instead of pinning
    fingerprint: str | None = None  # SHA-256 of the one certificate to trust (hex)
