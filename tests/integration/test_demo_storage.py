"""The demo's printer storage speaks implicit FTPS like a printer's port 990, to our own client."""

from __future__ import annotations

from pathlib import Path

import pytest

from bambu_edge.certs import make_ca, make_server_cert
from bambu_edge.demo.sdcard import DemoStorage
from bambu_edge.printers.bambu.ftps import PrinterFiles, PrinterFilesError, PrinterTLSError
from bambu_edge.printers.bambu.tls import pinned_context
from tests.conftest import ACCESS_CODE, SERIAL

pytestmark = pytest.mark.integration


@pytest.fixture
def storage(tmp_path: Path):
    pair = make_server_cert(SERIAL, [SERIAL, "127.0.0.1"], issuer=make_ca("demo storage test CA"))
    pair.write(tmp_path / "server.crt", tmp_path / "server.key")
    s = DemoStorage(tmp_path / "sd", ACCESS_CODE, tmp_path / "server.crt", tmp_path / "server.key")
    s.start()
    try:
        yield s, pair
    finally:
        s.stop()


async def test_files_round_trip_on_the_demo_card(storage, tmp_path: Path):
    s, pair = storage
    files = PrinterFiles(s.host, s.port, ACCESS_CODE, pinned_context(pair.cert_pem.decode()), timeout=5)
    data = bytes(range(256)) * 400
    (tmp_path / "cube.3mf").write_bytes(data)
    assert await files.upload(tmp_path / "cube.3mf", "/cache/cube.3mf") == "/cache/cube.3mf"
    assert (s.root / "cache" / "cube.3mf").read_bytes() == data
    assert [(e.name, e.size) for e in await files.list("/cache")] == [("cube.3mf", len(data))]
    await files.download("/cache/cube.3mf", tmp_path / "back.3mf")
    assert (tmp_path / "back.3mf").read_bytes() == data
    await files.delete("/cache/cube.3mf")
    assert await files.list("/cache") == []


async def test_demo_card_refuses_a_wrong_code_and_is_pinned(storage):
    s, pair = storage
    wrong = PrinterFiles(s.host, s.port, "00000000", pinned_context(pair.cert_pem.decode()), timeout=5)
    with pytest.raises(PrinterFilesError) as e:
        await wrong.list("/")
    assert e.value.kind == "auth"
    other = make_server_cert(SERIAL, [SERIAL], issuer=make_ca("another CA"))
    stranger = PrinterFiles(s.host, s.port, ACCESS_CODE, pinned_context(other.cert_pem.decode()), timeout=5)
    with pytest.raises(PrinterTLSError):
        await stranger.list("/")
