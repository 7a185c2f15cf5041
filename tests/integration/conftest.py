"""Integration fixtures for real peers beyond the MQTT broker (tests/conftest.py has that one)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bambu_edge.store.db import Database
from bambu_edge.store.pins import CertPins
from tests.conftest import ACCESS_CODE, SERIAL
from tests.integration.http_camera import make_stream
from tests.integration.running_daemon import farm_factory, spine, spine_config, spine_printer  # noqa: F401 - fixtures
from tests.integration.vsftpd import INSTALL_HINT, VsftpdServer, vsftpd_binary


@pytest.fixture
def vsftpd_factory(tmp_path: Path) -> Iterator[Callable[..., VsftpdServer]]:
    """Starts vsftpd servers (implicit FTPS, session reuse required, user bblp + the test access
    code); every one is stopped and reaped when the test ends, whatever happened (TESTBED G5)."""
    if vsftpd_binary() is None:
        pytest.fail(INSTALL_HINT)
    servers: list[VsftpdServer] = []

    def start(**options: object) -> VsftpdServer:
        server = VsftpdServer(tmp_path / f"vsftpd{len(servers)}", ACCESS_CODE, SERIAL, **options)  # type: ignore[arg-type]
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def vsftpd(vsftpd_factory: Callable[..., VsftpdServer]) -> VsftpdServer:
    """One running vsftpd playing the printer's FTPS side (port 990 on a real printer)."""
    return vsftpd_factory()


@pytest.fixture
async def pins(tmp_path: Path) -> AsyncIterator[CertPins]:
    """Certificate pins in a fresh, migrated database."""
    db = await Database.open(tmp_path / "db.sqlite")
    await db.migrate()
    yield CertPins(db)
    await db.close()


@pytest.fixture(scope="session")
def ts_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minute of H.264 in MPEG-TS for ``http_camera.HttpCamera``, made once a test run."""
    return make_stream(tmp_path_factory.mktemp("http-camera") / "live.ts")
