import random

from bambu_edge.printers.backoff import Backoff, auth_backoff
from bambu_edge.printers.bambu import commands


def test_backoff_grows_to_a_cap_with_jitter_and_resets():
    b = Backoff(initial=1.0, cap=60.0, rng=random.Random(1))
    delays = [b.next() for _ in range(12)]
    assert 0.5 <= delays[0] <= 1.0
    assert all(d <= 60.0 for d in delays) and max(delays) >= 30.0
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not lockstep
    b.reset()
    assert b.next() <= 1.0


def test_auth_failures_back_off_in_minutes():
    b = auth_backoff(random.Random(2))
    assert b.next() >= 30.0
    assert max(b.next() for _ in range(10)) <= 900.0


def test_reply_key_matches_only_command_replies():
    assert commands.reply_key({"print": {"command": "pause", "sequence_id": "12", "result": "success"}}) == (
        "print",
        "pause",
        "12",
    )
    assert commands.reply_key({"print": {"command": "push_status", "sequence_id": "40941"}}) is None
    assert commands.reply_key({"print": {"command": "ams_get_rfid", "sequenceId": 7}}) == (
        "print",
        "ams_get_rfid",
        "7",
    )
    for junk in (None, [], {"print": "x"}, {"a": {}, "b": {}}, {"print": {"command": 5}}):
        assert commands.reply_key(junk) is None


def test_reply_result_is_case_insensitive_and_keeps_reason():
    assert commands.reply_result({"print": {"result": "SUCCESS"}}) == (True, None)
    assert commands.reply_result({"print": {"result": "failed", "reason": "nope"}}) == (False, "nope")


def test_sequence_ids_are_unique_increasing_strings():
    s = commands.SequenceIds(start=5)
    assert [s.next() for _ in range(3)] == ["5", "6", "7"]
