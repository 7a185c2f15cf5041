"""The printer's storage (FTPS, vsftpd) is trusted exactly as its MQTT link (mosquitto) is."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bambu_edge.config import TlsConfig
from bambu_edge.printers.bambu.ftps import PrinterTLSError
from tests.integration.links import make_link
from tests.integration.vsftpd import VsftpdServer
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration


async def test_storage_uses_the_certificate_pinned_by_the_mqtt_link(broker, pins, vsftpd_factory, tmp_path):
    ftp = vsftpd_factory(server_cert=broker.server_pair)  # one printer: one certificate on both ports
    link = make_link(broker, pins)
    link.settings = replace(link.settings, ftps_port=ftp.port)
    with pytest.raises(PrinterTLSError, match="not known yet"):
        await link.files.list("/")  # nothing pinned: nothing is trusted, no access code is sent

    await link.start()
    try:
        await eventually(lambda: link.link_state == "connected", what="connected")
        ftp.path("/cache").mkdir(parents=True)
        (ftp.path("/cache") / "cube.3mf").write_bytes(b"x" * 10)
        entries = await link.files.list("/cache")
        assert [(e.name, e.size) for e in entries] == [("cube.3mf", 10)]
    finally:
        await link.stop()


async def test_storage_with_another_certificate_is_refused(broker, pins, vsftpd: VsftpdServer):
    link = make_link(broker, pins)
    link.settings = replace(link.settings, ftps_port=vsftpd.port)  # vsftpd has its own certificate here
    await link.start()
    try:
        await eventually(lambda: link.link_state == "connected", what="connected")
        with pytest.raises(PrinterTLSError):
            await link.files.list("/")
    finally:
        await link.stop()


async def test_storage_verified_against_the_configured_ca(broker, pins, vsftpd_factory):
    ftp = vsftpd_factory(server_cert=broker.server_pair)
    link = make_link(broker, pins, tls=TlsConfig(ca_file=str(broker.ca_path)))
    link.settings = replace(link.settings, ftps_port=ftp.port)
    assert await link.files.list("/") == []  # CA mode needs no earlier connection
