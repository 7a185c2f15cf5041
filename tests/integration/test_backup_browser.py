"""Settings > Backup in Chromium against the real daemon: the download button gives a good backup;
a damaged file is refused with the server's words on the page; a good one restores, the daemon
restarts and the page comes back by itself on the restored data."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bambu_edge.backup.cli import known_schema
from bambu_edge.backup.restore import stage
from tests.integration.browser import chromium, login, new_page, screenshot_on_failure
from tests.integration.running_daemon import PASSWORD


def _stage(archive: Path, into: Path) -> int:
    with open(archive, "rb") as f:
        return stage(f, into, known_schema()).manifest.schema_version


async def test_the_settings_page_downloads_and_restores_a_backup(spine: dict, tmp_path: Path) -> None:
    base = spine["base"]
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors, accept_downloads=True)
        async with screenshot_on_failure(pg, "backup-settings"):
            await login(pg, base, PASSWORD, "/#/settings/backup")
            await pg.locator("[data-testid=backup-panel]").wait_for()
            async with pg.expect_download() as info:
                await pg.click("[data-testid=backup-download]")
            download = await info.value
            assert download.suggested_filename.startswith("backup-")
            archive = tmp_path / download.suggested_filename
            await download.save_as(archive)
            assert await asyncio.to_thread(_stage, archive, tmp_path / "check") == known_schema()

            damaged = bytearray(archive.read_bytes())
            damaged[len(damaged) // 2] ^= 0xFF
            (tmp_path / "damaged.tar.gz").write_bytes(damaged)
            await pg.set_input_files("[data-testid=restore-file]", str(tmp_path / "damaged.tar.gz"))
            await pg.click("[data-testid=restore-submit]")
            await pg.click("[data-testid=confirm-ok]")
            error = pg.locator("[data-testid=restore-error]")
            await error.wait_for(state="visible")
            assert "damaged" in (await error.text_content() or "")

            await pg.set_input_files("[data-testid=restore-file]", str(archive))
            await pg.click("[data-testid=restore-submit]")
            await pg.click("[data-testid=confirm-ok]")
            status = pg.locator("[data-testid=restore-status]")
            await status.wait_for(state="visible")
            assert "bambu-edge is restarting" in (await status.text_content() or "")
            # Back on the restored data, the page reloads itself (the session is in the backup).
            await status.wait_for(state="detached", timeout=60_000)
            await pg.locator("[data-testid=backup-panel]").wait_for(timeout=30_000)
        assert errors == []
    assert (tmp_path / "data" / "pre-restore" / "bambu-edge.db").is_file()
