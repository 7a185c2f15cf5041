"""History API query parsing (web/api_history.py): what a browser may send, and plain 400s."""

from __future__ import annotations

from datetime import datetime

import pytest
from multidict import MultiDict

from bambu_edge.web.api_auth import ApiError
from bambu_edge.web.api_history import parse_filter, parse_sort, parse_time


def q(*pairs: tuple[str, str]) -> MultiDict[str]:
    return MultiDict(pairs)


def test_filters_accept_repeats_commas_and_the_status_alias():
    f = parse_filter(
        q(("printer", "x1c"), ("printer", "p1s, a1"), ("status", "failed"), ("outcome", "cancelled,failed"))
    )
    assert f.printers == ("x1c", "p1s", "a1") and f.outcomes == ("cancelled", "failed")
    assert parse_filter(q()).printers == () and parse_filter(q(("q", "  "))).q is None
    assert parse_filter(q(("q", " Benchy "))).q == "Benchy"


def test_times_are_unix_seconds_or_iso_dates():
    assert parse_time("1764000000", "from") == 1764000000.0
    assert parse_time("1764000000.5", "from") == 1764000000.5
    assert (
        parse_time("2025-01-31T18:00:00Z", "from")
        == datetime.fromisoformat("2025-01-31T18:00:00+00:00").timestamp()
    )
    midnight = datetime(2025, 1, 31).timestamp()  # naive: the unit's local time
    assert parse_time("2025-01-31", "from") == midnight
    assert parse_time("2025-01-31", "to", end=True) == datetime(2025, 2, 1).timestamp()  # the whole day
    f = parse_filter(q(("from", "2025-01-31"), ("to", "2025-01-31")))
    assert f.since == midnight and f.until == datetime(2025, 2, 1).timestamp()


@pytest.mark.parametrize(
    ("pairs", "words"),
    [
        ((("outcome", "finished"),), "unknown outcome"),
        ((("status", "x' OR 1=1"),), "unknown outcome"),
        ((("from", "yesterday"),), "'from' must be Unix seconds or an ISO date"),
        ((("to", "2025-13-01"),), "'to' must be"),
        ((("from", "nan"),), "out of range"),
        ((("from", "-5"),), "out of range"),
        ((("from", "2025-02-01"), ("to", "2025-01-01")), "before"),
        ((("q", "a\x00b"),), "printable"),
        ((("q", "x" * 201),), "at most 200"),
        ((("printer", "p" * 201),), "printer ids"),
        (tuple(("printer", f"p{i}") for i in range(51)), "at most 50"),
    ],
)
def test_bad_values_are_a_plain_400(pairs, words):
    with pytest.raises(ApiError) as e:
        parse_filter(q(*pairs))
    assert e.value.status == 400 and words in e.value.message


def test_sort_is_whitelisted():
    assert parse_sort(q()) == "-started_at"
    assert parse_sort(q(("sort", "printer"))) == "printer"
    for evil in ("started_at DESC", "id", "-started_at; DROP TABLE print_history", "(SELECT 1)"):
        with pytest.raises(ApiError) as e:
            parse_sort(q(("sort", evil)))
        assert e.value.status == 400 and "'sort' must be one of" in e.value.message
