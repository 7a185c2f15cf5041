"""GET /api/version against a real apt: a dpkg status with bambu-edge installed and a local
file repository offering a newer build, fetched by a real `apt-get update` (APT_CONFIG points
apt at the test's own state, lists and cache: nothing of the machine's apt is read or touched)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bambu_edge.app import Daemon
from bambu_edge.config import Config, WebConfig
from tests.integration.waiting import dashboard_tls
from tests.integration.web_stack import admin_auth

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt (Debian)")
PASSWORD = "correct horse battery"


def _stanza(version: str, arch: str, status: bool) -> str:
    lines = ["Package: bambu-edge", f"Version: {version}", f"Architecture: {arch}"]
    lines += (
        ["Status: install ok installed"]
        if status
        else [f"Filename: ./bambu-edge_{version}_{arch}.deb", "Size: 1"]
    )
    lines += ["Maintainer: t <t@example.org>", "Description: test", ""]
    return "\n".join(lines) + "\n"


def fake_apt(tmp: Path, installed: str, offered: str) -> Path:
    """An apt world in ``tmp``: ``installed`` in the dpkg status, ``offered`` in a file
    repository, apt-get update run. Returns the APT_CONFIG file."""
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    for d in ("state/lists/partial", "cache/archives/partial", "repo", "parts", "prefs", "log"):
        (tmp / d).mkdir(parents=True)
    (tmp / "state" / "status").write_text(_stanza(installed, arch, status=True))
    (tmp / "repo" / "Packages").write_text(_stanza(offered, arch, status=False))
    (tmp / "sources.list").write_text(f"deb [trusted=yes] file:{tmp / 'repo'} ./\n")
    conf = tmp / "apt.conf"
    conf.write_text(
        f'Dir::State "{tmp / "state"}";\n'
        f'Dir::State::status "{tmp / "state" / "status"}";\n'
        f'Dir::Cache "{tmp / "cache"}";\n'
        f'Dir::Etc::SourceList "{tmp / "sources.list"}";\n'
        f'Dir::Etc::SourceParts "{tmp / "parts"}";\n'
        f'Dir::Etc::Preferences "{tmp / "prefs" / "none"}";\n'
        f'Dir::Etc::PreferencesParts "{tmp / "prefs"}";\n'
        f'Dir::Log "{tmp / "log"}";\n'
        'APT::Sandbox::User "root";\n'
        f'APT::Architecture "{arch}";\n'
    )
    env = {**os.environ, "APT_CONFIG": str(conf), "LC_ALL": "C"}
    subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True, timeout=60)
    return conf


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls())) as session:
        yield session


async def _version(
    tmp_path: Path, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch, conf: Path
) -> dict:
    monkeypatch.setenv("APT_CONFIG", str(conf))  # the daemon's apt-cache child inherits it
    d = Daemon(
        Config(data_dir=tmp_path / "data", web=WebConfig(bind="127.0.0.1", https_port=0, http_port=None))
    )
    await d.start()
    try:
        base = f"https://127.0.0.1:{d.web.https_port}"
        async with http.get(base + "/api/version") as r:
            assert r.status == 401  # the package versions are for signed-in users
        auth = await admin_auth(http, base, d, PASSWORD)
        async with http.get(base + "/api/version", headers=auth) as r:
            assert r.status == 200
            return await r.json()
    finally:
        await d.stop()


async def test_a_newer_build_in_the_apt_source_shows_as_an_update(
    tmp_path: Path, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = fake_apt(tmp_path / "apt", installed="0.1.0", offered="0.2.0-1")
    body = await _version(tmp_path, http, monkeypatch, conf)
    pkg = body["package"]
    assert (pkg["installed"], pkg["candidate"], pkg["update_available"], pkg["error"]) == (
        "0.1.0",
        "0.2.0-1",
        True,
        None,
    )
    assert body["version"]


async def test_an_older_build_in_the_apt_source_is_no_update(
    tmp_path: Path, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = fake_apt(tmp_path / "apt", installed="0.2.0-1", offered="0.1.0")
    pkg = (await _version(tmp_path, http, monkeypatch, conf))["package"]
    assert (pkg["installed"], pkg["candidate"], pkg["update_available"]) == ("0.2.0-1", "0.2.0-1", False)
