"""What fan-out clients may ask of a printer (bambu_edge/fanout/policy.py) and the fan-out and Home
Assistant config sections."""

from __future__ import annotations

import pytest

from bambu_edge.app import config_sections
from bambu_edge.config import ConfigError, parse_config
from bambu_edge.fanout import policy
from bambu_edge.fanout.access import CODE_ALPHABET, CODE_LENGTH, new_code

READ_ONLY = policy.allowed_commands(())


def kinds(msg, allowed=READ_ONLY) -> list[tuple[str, str, str]]:
    return [(p.kind, p.section, p.command) for p in policy.judge(msg, allowed)]


def test_pushall_and_start_are_answered_here_never_forwarded():
    assert kinds({"pushing": {"command": "pushall", "sequence_id": "1"}}) == [
        ("pushall", "pushing", "pushall")
    ]
    assert kinds({"pushing": {"command": "start"}}) == [("pushall", "pushing", "start")]


def test_a_read_only_client_may_query_but_not_control():
    assert kinds({"info": {"command": "get_version"}}) == [("version", "info", "get_version")]
    assert kinds({"upgrade": {"command": "get_history"}}) == [("forward", "upgrade", "get_history")]
    for control in (
        {"print": {"command": "pause"}},
        {"print": {"command": "gcode_line", "param": "G28"}},
        {"system": {"command": "ledctrl"}},
        {"print": {"command": "project_file"}},
    ):
        assert [k[0] for k in kinds(control)] == ["refuse"]


def test_grants_open_exactly_their_commands():
    allowed = policy.allowed_commands(policy.check_grants(["pause", "light"]))
    assert kinds({"print": {"command": "pause"}}, allowed)[0][0] == "forward"
    assert kinds({"system": {"command": "ledctrl"}}, allowed)[0][0] == "forward"
    assert kinds({"print": {"command": "stop"}}, allowed)[0][0] == "refuse"


def test_the_printers_access_code_is_never_handed_out():
    everything = policy.allowed_commands(policy.GRANT_NAMES)
    (part,) = policy.judge({"system": {"command": "get_access_code", "sequence_id": "5"}}, everything)
    assert part.kind == "refuse" and "access code" in (part.reason or "")
    assert policy.refusal(part) == {
        "system": {
            "command": "get_access_code",
            "result": "failed",
            "reason": part.reason,
            "sequence_id": "5",
        }
    }


def test_each_part_of_a_combined_request_is_judged_on_its_own():
    # bambulabs_api sends these three in one message on connect.
    msg = {
        "pushing": {"command": "pushall"},
        "info": {"command": "get_version"},
        "upgrade": {"command": "get_history"},
    }
    assert [k[0] for k in kinds(msg)] == ["pushall", "version", "forward"]


@pytest.mark.parametrize(
    "msg",
    [None, [], "pushall", {}, {"print": "pause"}, {"print": {"command": 7}}, {"print": {"command": ""}}],
)
def test_what_is_no_request_is_ignored(msg):
    assert policy.judge(msg, READ_ONLY) == []


def test_unknown_grants_are_named():
    with pytest.raises(ValueError, match="'fly'"):
        policy.check_grants(["pause", "fly"])
    assert policy.check_grants(["stop", "pause", "stop"]) == ("pause", "stop")  # GRANTS order, once


def test_a_full_report_carries_the_askers_sequence_id():
    report = policy.full_report({"gcode_state": "RUNNING", "msg": 1, "sequence_id": "400"}, "77")
    assert report == {
        "print": {"gcode_state": "RUNNING", "command": "push_status", "msg": 0, "sequence_id": "77"}
    }


def test_the_rate_limit_allows_bursts_then_the_rate():
    bucket = policy.TokenBucket(rate=2.0, burst=3)
    t = bucket.stamp
    assert [bucket.take(t) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(t + 0.5) is True and bucket.take(t + 0.5) is False
    assert [bucket.take(t + 100) for _ in range(4)] == [True, True, True, False]  # never above the burst


def test_access_codes_look_like_a_printers():
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == CODE_LENGTH and set(c) <= set(CODE_ALPHABET) for c in codes)


def _parse(text: str):
    return parse_config(text, "c.yaml", env={}, sections=config_sections())


def test_fanout_and_homeassistant_are_off_unless_configured():
    c = _parse("data_dir: /tmp/x\n")
    assert c.section("fanout") is None and c.section("homeassistant") is None
    c = _parse("fanout: {port: 18883, bind: 127.0.0.1}\nhomeassistant: {broker: 'mqtt://ha.lan'}\n")
    assert (c.section("fanout").port, c.section("fanout").bind) == (18883, "127.0.0.1")
    ha = c.section("homeassistant")
    assert (ha.host, ha.port, ha.tls, ha.prefix) == ("ha.lan", 1883, False, "homeassistant")
    assert _parse("homeassistant: {broker: 'mqtts://ha.lan'}\n").section("homeassistant").port == 8883


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("fanout: {port: eighty}\n", "fanout.port", "whole number"),
        ("fanout: {bind: my-pi}\n", "fanout.bind", "IP address"),
        ("fanout: {rate: 0}\n", "fanout.rate", "from 0.1"),
        ("fanout: {ports: 1}\n", "fanout.ports", "unknown key"),
        ("homeassistant: {}\n", "homeassistant.broker", "required"),
        ("homeassistant: {broker: 'http://ha.lan'}\n", "homeassistant.broker", "mqtt://"),
        ("homeassistant: {broker: 'mqtt://ha.lan', prefix: 'ha/#'}\n", "homeassistant.prefix", "wildcards"),
        (
            "homeassistant: {broker: 'mqtt://ha.lan', ca_file: /nonexistent}\n",
            "homeassistant.ca_file",
            "not a file",
        ),
    ],
)
def test_bad_sections_name_the_key(text, key, words):
    with pytest.raises(ConfigError) as e:
        _parse(text)
    assert e.value.key == key and words in e.value.message
