"""A BambuLink to the test broker (playing the printer's MQTT side), with short timeouts."""

from __future__ import annotations

from bambu_edge.bus import EventBus
from bambu_edge.config import PrinterConfig, TlsConfig
from bambu_edge.demo.broker import LocalBroker
from bambu_edge.printers.backoff import Backoff
from bambu_edge.printers.bambu.link import BambuLink
from bambu_edge.printers.manager import BusListener, bambu_settings
from bambu_edge.store.pins import CertPins
from tests.conftest import ACCESS_CODE, SERIAL


def make_link(broker: LocalBroker, pins: CertPins, access_code: str = ACCESS_CODE, **kw) -> BambuLink:
    tls = kw.pop("tls", TlsConfig())
    serial = kw.pop("serial", SERIAL)
    port = kw.pop("port", broker.port)
    cfg = PrinterConfig(
        id="p1",
        name="P1",
        type="bambu",
        host=broker.host,
        serial=serial,
        access_code=access_code,
        mqtt_port=port,
        tls=tls,
    )
    kw.setdefault("backoff", Backoff(initial=0.2, cap=1.0))
    kw.setdefault("command_timeout", 1.5)
    kw.setdefault("connect_timeout", 3.0)
    # Reports reach a bus as in the daemon; tests subscribe to ``link.listener.bus``.
    return BambuLink(bambu_settings(cfg), pins, BusListener(EventBus()), **kw)
