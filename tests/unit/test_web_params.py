"""Integers a request carries (web/params.py): what a client may send, and the plain 400 (or 404)
for what SQLite could not hold or no row could have."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import MultiDict

from bambu_edge.web.api_history import parse_time
from bambu_edge.web.errors import ApiError
from bambu_edge.web.params import INT64_MAX, INT64_MIN, body_id, body_int, int_text, path_id, query_int

BIG = "99999999999999999999"


def refused(fn: Any, *args: Any, **kw: Any) -> ApiError:
    with pytest.raises(ApiError) as e:
        fn(*args, **kw)
    return e.value


def with_id(text: str) -> Any:
    request = make_mocked_request("DELETE", "/api/users/x")
    request.match_info.update({"id": text})  # what the router would have matched
    return request


def test_url_integers_take_ascii_digits_within_64_bits():
    assert int_text("42", "n") == 42
    assert int_text("-7", "n") == -7
    assert int_text(str(INT64_MAX), "n") == INT64_MAX
    assert int_text(str(INT64_MIN), "n") == INT64_MIN
    assert int_text("000000000000000000000000000001", "n") == 1  # leading zeros are no overflow
    for text in ("", " 1", "1 ", "1_000", "\u0661", "1.0", "1e3", "0x10", "+", "--1"):
        e = refused(int_text, text, "n")
        assert (e.status, e.message) == (400, "'n' must be a whole number"), text
    for text in (BIG, str(INT64_MAX + 1), str(INT64_MIN - 1), "9" * 5000):
        e = refused(int_text, text, "n")
        assert e.status == 400 and "'n' must be a whole number from" in e.message, text


def test_a_path_id_is_404_when_not_a_number_and_400_when_no_row_can_have_it():
    assert path_id(with_id("12")) == 12
    for text in ("abc", "1.5", "..", "\u0661"):
        e = refused(path_id, with_id(text))
        assert (e.status, e.code) == (404, "not_found"), text
    for text in (BIG, str(2**63), "-1", "0", str(-(2**63) - 1)):
        e = refused(path_id, with_id(text))
        assert e.status == 400 and e.message == f"'id' must be a whole number from 1 to {INT64_MAX}", text


def test_query_integers_have_a_default_and_a_range():
    q = MultiDict([("limit", "20"), ("offset", ""), ("big", BIG), ("neg", "-1")])
    assert query_int(q, "limit", 50, 0, 500) == 20
    assert query_int(q, "offset", 0, 0, 10) == 0  # empty: the default
    assert query_int(q, "absent", 5, 0, 10) == 5
    assert refused(query_int, q, "big", 1, 0, 10).message == "'big' must be a whole number from 0 to 10"
    assert refused(query_int, q, "neg", 1, 0, 10).status == 400


def test_body_integers_are_json_integers_in_range():
    assert body_int({"copies": 3}, "copies", 1, 1, 1000) == 3
    assert body_int({}, "copies", 1, 1, 1000) == 1
    for v in (None, True, 1.0, "1", 0, 1001, 2**63, [], {}):
        e = refused(body_int, {"copies": v}, "copies", 1, 1, 1000)
        assert e.message == "'copies' must be a whole number from 1 to 1000", v
    assert refused(body_int, {}, "level", None, 1, 4).status == 400  # no default: required


def test_body_ids_fit_sqlite():
    assert body_id({"file_id": INT64_MAX}, "file_id") == INT64_MAX
    assert body_id({}, "before", nullable=True) is None
    assert body_id({"before": None}, "before", nullable=True) is None
    for v in (None, 0, -1, 2**63, 2**64 - 1, True, "1", 1.5):
        e = refused(body_id, {"file_id": v}, "file_id", "the id of an uploaded file")
        assert e.message.startswith("'file_id' must be the id of an uploaded file (a whole number"), v
    e = refused(body_id, {"before": 2**63}, "before", "a job id", nullable=True)
    assert e.message == f"'before' must be a job id (a whole number from 1 to {INT64_MAX}) or null"


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("0001-01-01", False),
        ("0001-01-01T00:00:00", False),
        ("9999-12-31", True),
        ("9999-12-31T23:59:59", False),
    ],
)
def test_history_times_past_what_a_clock_can_hold_are_out_of_range(text: str, end: bool):
    e = refused(parse_time, text, "to" if end else "from", end=end)
    assert e.status == 400 and "out of range" in e.message
