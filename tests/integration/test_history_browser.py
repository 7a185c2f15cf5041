"""The history page in real Chromium against the real daemon: search, filters, sorting, paging,
totals and the CSV export link, over a realistic history written by the real repository before the
daemon starts (tests/factories/history.py); and a print that starts while the page is open.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import date, datetime, timedelta

import pytest

from tests.factories.history import sample_records, seed_history
from tests.integration.browser import chromium, login, new_page, screenshot_on_failure, snap
from tests.integration.running_daemon import (
    PASSWORD,
    PRINTERS,
    all_connected,
    eventually,
)

pytestmark = pytest.mark.integration

PRINTER_ROWS = [("p1s-free", "P1S free", "P1S"), ("x1c-old", "X1C old", "X1C")]  # x1c-old: removed


def _midnight(d: date) -> float:
    return datetime(d.year, d.month, d.day).timestamp()


async def _count_is(pg, n: int) -> None:
    await pg.wait_for_function(
        f"() => !document.querySelector('[data-testid=history-page]')?.hasAttribute('aria-busy')"
        f" && document.querySelector('[data-testid=history-range]')?.textContent.endsWith('of {n}')",
        timeout=10_000,
    )


async def _rows(pg) -> list[dict[str, str]]:
    return await pg.evaluate(
        "() => [...document.querySelectorAll('[data-testid=history-row]')].map((r) => ({"
        " id: r.dataset.id, outcome: r.dataset.outcome, printer: r.dataset.printer,"
        " job: r.querySelector('[data-testid=history-job]').textContent,"
        " reason: r.querySelector('[data-testid=failure-reason]')?.textContent || ''}))"
    )


async def test_search_filter_sort_page_totals_and_csv(farm_factory, tmp_path):
    farm = await farm_factory({"p1s-free": PRINTERS["p1s-free"]})
    farm.stop_daemon()
    records = sample_records(PRINTER_ROWS, 60, time.time() - 3600)
    ids = await seed_history(tmp_path / "data", records)
    by_id = dict(zip(ids, records, strict=True))
    await farm.start_daemon()
    await eventually(lambda: all_connected(farm), what="printer connected")

    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors)
        async with screenshot_on_failure(pg, "history"):
            await login(pg, farm.https, PASSWORD, "/#/history")
            await _count_is(pg, 60)
            assert await pg.text_content("[data-testid=history-count]") == "60 prints"
            assert len(await _rows(pg)) == 50
            assert await pg.text_content("[data-testid=history-range]") == "1\u201350 of 60"
            # Newest first: the first row is the last print seeded.
            assert (await _rows(pg))[0]["id"] == str(ids[-1])
            await snap(pg, "history-desktop")

            # Paging.
            await pg.click("[data-testid=history-next]")
            await pg.wait_for_function(
                "() => document.querySelector('[data-testid=history-range]').textContent === '51\u201360 of 60'"
            )
            assert len(await _rows(pg)) == 10
            assert await pg.locator("[data-testid=history-next]").is_disabled()
            await pg.click("[data-testid=history-prev]")
            await pg.wait_for_function(
                "() => document.querySelector('[data-testid=history-range]').textContent === '1\u201350 of 60'"
            )

            # Totals over everything: counts by outcome, success rate, filament by type and colour.
            outcomes = [r.outcome for r in records]
            ended = sum(outcomes.count(o) for o in ("success", "failed", "cancelled"))
            rate = round(100 * outcomes.count("success") / ended)
            await pg.wait_for_function(
                "() => document.querySelector('[data-testid=total-count]').textContent === '60'"
            )
            assert (await pg.text_content("[data-testid=total-success-rate]")).startswith(f"{rate}\u00a0%")
            shown = await pg.evaluate(
                "() => [...document.querySelectorAll('[data-testid=filament-total]')]"
                ".map((e) => `${e.dataset.type} ${e.dataset.color}`)"
            )
            seeded = {f"{f.type} {f.color}" for r in records for f in r.filament}
            assert sorted(shown) == sorted(seeded)
            assert await pg.locator("[data-testid=filament-total] .swatch-fill").count() == len(seeded)

            # Search: as the user types (no button), case-insensitive, in the job name.
            await pg.fill("[data-testid=history-search]", "bench")
            benchy = [r for r in records if "bench" in r.job.lower()]
            await _count_is(pg, len(benchy))
            assert {r["job"] for r in await _rows(pg)} == {"3DBenchy"}
            await pg.wait_for_function(
                f"() => document.querySelector('[data-testid=total-count]').textContent === '{len(benchy)}'"
            )
            await pg.fill("[data-testid=history-search]", "")

            # Outcome: failed prints say why, in the printer's words.
            await pg.select_option("[data-testid=history-outcome-filter]", "failed")
            failed = [r for r in records if r.outcome == "failed"]
            await _count_is(pg, len(failed))
            rows = await _rows(pg)
            assert {r["outcome"] for r in rows} == {"failed"}
            assert all(r["reason"] == by_id[int(r["id"])].failure_reason for r in rows)
            assert "outcome=failed" in location(await pg.evaluate("location.hash"))

            # The CSV link carries the filters: it exports exactly the rows the page lists.
            href = await pg.get_attribute("[data-testid=history-csv]", "href")
            assert "outcome=failed" in href
            resp = await pg.context.request.get(farm.https + href)
            assert resp.ok and resp.headers["content-type"].startswith("text/csv")
            exported = list(csv.DictReader(io.StringIO(await resp.text())))
            assert sorted(int(r["id"]) for r in exported) == sorted(int(r["id"]) for r in rows)
            assert {r["outcome"] for r in exported} == {"failed"}

            # The filters outlive a reload (they are in the address).
            await pg.reload()
            await _count_is(pg, len(failed))
            assert await pg.input_value("[data-testid=history-outcome-filter]") == "failed"
            await pg.select_option("[data-testid=history-outcome-filter]", "")

            # A printer that was removed still has its prints, and is offered as a filter.
            await pg.select_option("[data-testid=history-printer-filter]", "x1c-old")
            old = [r for r in records if r.printer_id == "x1c-old"]
            await _count_is(pg, len(old))
            assert {r["printer"] for r in await _rows(pg)} == {"x1c-old"}
            await pg.select_option("[data-testid=history-printer-filter]", "")

            # Dates: prints started from the first day to the last one, both included.
            first = datetime.fromtimestamp(records[20].started_at).date()
            last = first + timedelta(days=6)
            await pg.fill("[data-testid=history-from]", first.isoformat())
            await pg.fill("[data-testid=history-to]", last.isoformat())
            start, end = _midnight(first), _midnight(last + timedelta(days=1))
            in_range = [r for r in records if start <= r.started_at < end]
            assert in_range
            await _count_is(pg, len(in_range))
            await pg.click("[data-testid=history-reset]")
            await _count_is(pg, 60)
            assert await pg.input_value("[data-testid=history-from]") == ""

            # Sorting: by duration, longest first, then shortest first (aria-sort says which).
            durations = {i: r.duration_s for i, r in by_id.items()}
            await pg.click("[data-testid=sort-duration]")
            await pg.wait_for_function(
                f"() => document.querySelector('[data-testid=history-row]')?.dataset.id === "
                f"'{max(durations, key=durations.get)}'"
            )
            assert await pg.get_attribute("th:has([data-testid=sort-duration])", "aria-sort") == "descending"
            await pg.click("[data-testid=sort-duration]")
            await pg.wait_for_function(
                f"() => document.querySelector('[data-testid=history-row]')?.dataset.id === "
                f"'{min(durations, key=durations.get)}'"
            )
            assert await pg.get_attribute("th:has([data-testid=sort-duration])", "aria-sort") == "ascending"
            await pg.click("[data-testid=sort-started]")  # newest first again
            await pg.wait_for_function(
                f"() => document.querySelector('[data-testid=history-row]')?.dataset.id === '{ids[-1]}'"
            )

            # A print that starts now appears on top, live, without a reload.
            await farm.vps["p1s-free"].simulate_print("Live vase", duration_s=600, layers=50)
            await pg.wait_for_function(
                "() => { const r = document.querySelector('[data-testid=history-row]');"
                " return r && r.dataset.outcome === 'running'"
                " && r.querySelector('[data-testid=history-job]').textContent === 'Live vase'; }",
                timeout=20_000,
            )
            assert await pg.text_content("[data-testid=history-count]") == "61 prints"
            await snap(pg, "history-live")
            assert errors == []


def location(hash_: str) -> str:
    return hash_.split("?", 1)[1] if "?" in hash_ else ""
