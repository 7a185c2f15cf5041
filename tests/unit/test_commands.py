import pytest

from bambu_edge.printers.bambu import commands
from bambu_edge.printers.base import CommandError


@pytest.mark.parametrize(
    ("action", "params", "payload", "qos"),
    [
        ("pause", {}, {"print": {"sequence_id": "7", "command": "pause", "param": ""}}, 1),
        ("resume", {}, {"print": {"sequence_id": "7", "command": "resume", "param": ""}}, 1),
        ("stop", {}, {"print": {"sequence_id": "7", "command": "stop", "param": ""}}, 1),
        ("speed", {"level": 1}, {"print": {"sequence_id": "7", "command": "print_speed", "param": "1"}}, 0),
        ("speed", {"level": 4}, {"print": {"sequence_id": "7", "command": "print_speed", "param": "4"}}, 0),
        (
            "light",
            {"on": True},
            {
                "system": {
                    "sequence_id": "7",
                    "command": "ledctrl",
                    "led_node": "chamber_light",
                    "led_mode": "on",
                    "led_on_time": 500,
                    "led_off_time": 500,
                    "loop_times": 0,
                    "interval_time": 0,
                }
            },
            0,
        ),
        (
            "gcode",
            {"line": "M104 S200"},
            {"print": {"sequence_id": "7", "command": "gcode_line", "param": "M104 S200\n"}},
            0,
        ),
    ],
)
def test_actions_build_the_exact_messages(action, params, payload, qos):
    cmd = commands.build(action, params, "7")
    assert cmd.payload == payload
    assert cmd.qos == qos
    ((kind, body),) = payload.items()
    assert cmd.key == (kind, body["command"], "7")


def test_light_off():
    body = commands.build("light", {"on": False}, "1").payload["system"]
    assert body["led_mode"] == "off" and body["led_node"] == "chamber_light"


def test_gcode_lines_are_joined_and_end_in_one_newline():
    assert commands.gcode_param("G28\nM104 S200\n") == "G28\nM104 S200\n"
    assert commands.gcode_param("G28\r\nM104 S200\r\n") == "G28\nM104 S200\n"
    assert commands.gcode_param("M117 Größe ok") == "M117 Größe ok\n"  # printable Unicode is fine
    exactly = "G1 X1" + " " * (commands.MAX_GCODE_BYTES - 6)
    assert len(commands.gcode_param(exactly).encode()) == commands.MAX_GCODE_BYTES


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("dance", {}),
        ("speed", {}),
        ("speed", {"level": 0}),
        ("speed", {"level": 5}),
        ("speed", {"level": "2"}),
        ("speed", {"level": True}),
        ("speed", {"level": 2.0}),
        ("light", {}),
        ("light", {"on": "yes"}),
        ("light", {"on": 1}),
        ("gcode", {}),
        ("gcode", {"line": None}),
        ("gcode", {"line": ""}),
        ("gcode", {"line": " \n \n"}),
        ("gcode", {"line": "G28\x00"}),
        ("gcode", {"line": "G28\tX"}),
        ("gcode", {"line": "G28\rM104"}),
        ("gcode", {"line": "M117 \x1b[2J"}),
        ("gcode", {"line": "M117 \u200b"}),
        ("gcode", {"line": "G1 X1\n" * 1000}),
        ("gcode", {"line": "G1 X1" + " " * commands.MAX_GCODE_BYTES}),
    ],
)
def test_bad_requests_are_refused_in_plain_words(action, params):
    with pytest.raises(CommandError) as e:
        commands.build(action, params, "1")
    assert e.value.code == "bad_request"
    assert e.value.message and "Traceback" not in e.value.message


def test_internal_requests():
    assert commands.pushall("3").payload == {
        "pushing": {"sequence_id": "3", "command": "pushall", "version": 1, "push_target": 1}
    }
    assert commands.get_version("4").payload == {"info": {"sequence_id": "4", "command": "get_version"}}
    assert commands.push_start("5").payload == {"pushing": {"sequence_id": "5", "command": "start"}}


def test_sequence_ids_are_unique_increasing_strings():
    s = commands.SequenceIds(start=5)
    assert [s.next() for _ in range(3)] == ["5", "6", "7"]
    ids = [commands.SequenceIds().next() for _ in range(5)]
    assert all(isinstance(i, str) and i.isdigit() for i in ids)


def test_reply_key_matches_only_command_replies():
    assert commands.reply_key({"print": {"command": "pause", "sequence_id": "12", "result": "success"}}) == (
        "print",
        "pause",
        "12",
    )
    assert commands.reply_key({"system": {"command": "ledctrl", "sequence_id": "3"}}) == (
        "system",
        "ledctrl",
        "3",
    )
    # ams_get_rfid carries "sequenceId"
    assert commands.reply_key({"print": {"command": "ams_get_rfid", "sequenceId": 7}}) == (
        "print",
        "ams_get_rfid",
        "7",
    )
    # status pushes carry the printer's own counter, not an echo
    assert commands.reply_key({"print": {"command": "push_status", "sequence_id": "40941"}}) is None
    for junk in (
        None,
        [],
        "x",
        {"print": "x"},
        {"a": {}, "b": {}},
        {"print": {"command": 5, "sequence_id": "1"}},
        {"print": {"command": "pause"}},
        {"print": {"command": "pause", "sequence_id": None}},
        {"print": {"command": "pause", "sequence_id": True}},
        {"print": {"command": "pause", "sequence_id": {"x": 1}}},
    ):
        assert commands.reply_key(junk) is None


def test_a_reply_matches_the_command_it_answers():
    cmd = commands.build("speed", {"level": 2}, "41")
    echo = {"print": {**cmd.payload["print"], "result": "SUCCESS", "reason": "SUCCESS"}}
    assert commands.reply_key(echo) == cmd.key
    other = {"print": {**cmd.payload["print"], "sequence_id": "42"}}
    assert commands.reply_key(other) != cmd.key


def test_reply_result_is_case_insensitive_and_keeps_the_reason():
    assert commands.reply_result({"print": {"result": "success"}}) == commands.Reply(True, None)
    assert commands.reply_result({"print": {"result": "SUCCESS", "reason": "SUCCESS"}}).accepted
    assert commands.reply_result({"print": {}}).accepted  # an echo without a result is an ack
    refused = commands.reply_result({"print": {"result": "failed", "reason": "mqtt message verify failed"}})
    assert refused == commands.Reply(False, "mqtt message verify failed")
    assert commands.reply_result({"print": {"result": "FAILED"}}) == commands.Reply(False, None)
    assert commands.reply_result({"print": {"result": 0, "reason": "x" * 500}}).reason == "x" * 200
    assert commands.reply_result({"print": {"result": "fail", "reason": {"a": 1}}}) == commands.Reply(
        False, None
    )
