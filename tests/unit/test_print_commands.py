"""project_file / gcode_file payloads (BAMBU.md section 6, 13.1, 13.4) for legacy and newer models."""

from __future__ import annotations

import pytest

from bambu_edge.printers.bambu import commands, models
from bambu_edge.printers.base import CommandError


def test_project_file_on_a_legacy_model_is_exactly_section_6():
    cmd = commands.project_file(
        "42",
        path="/cache/cube.gcode.3mf",
        plate=2,
        model=models.P1S,
        subtask_name="cube",
        ams_mapping=[3, -1, 254],
    )
    assert cmd.qos == 0
    assert cmd.key == ("print", "project_file", "42")
    assert cmd.payload == {
        "print": {
            "sequence_id": "42",
            "command": "project_file",
            "param": "Metadata/plate_2.gcode",
            "url": "file:///sdcard/cache/cube.gcode.3mf",
            "subtask_name": "cube",
            "project_id": "0",
            "profile_id": "0",
            "task_id": "0",
            "subtask_id": "0",
            "md5": "",
            "timelapse": False,
            "bed_type": "auto",
            "bed_leveling": True,
            "flow_cali": True,
            "vibration_cali": True,
            "layer_inspect": True,
            "use_ams": True,
            "ams_mapping": [3, -1, 254],
        }
    }


@pytest.mark.parametrize("model", sorted(models.LEGACY_SDCARD_MODELS))
def test_legacy_models_use_file_sdcard(model):
    body = commands.project_file("1", path="/cache/x.3mf", plate=1, model=model).payload["print"]
    assert body["url"] == "file:///sdcard/cache/x.3mf"


@pytest.mark.parametrize("model", [models.H2D, models.H2S, models.P2S, models.X2D, None, "Unknown"])
def test_newer_and_unknown_models_use_ftp(model):
    body = commands.project_file("1", path="cache/x.3mf", plate=1, model=model).payload["print"]
    assert body["url"] == "ftp:///cache/x.3mf"


def test_options_override_the_defaults_and_bed_leveling_is_spelt_like_hab():
    body = commands.project_file(
        "1",
        path="/x.3mf",
        plate=1,
        model=models.X1C,
        options={"timelapse": True, "bed_leveling": False, "use_ams": False, "layer_inspect": False},
        md5="0123456789ABCDEF0123456789abcdef",
    ).payload["print"]
    assert body["timelapse"] is True and body["bed_leveling"] is False and "bed_levelling" not in body
    assert body["use_ams"] is False and body["layer_inspect"] is False
    assert body["flow_cali"] is True and body["vibration_cali"] is True
    assert body["md5"] == "0123456789ABCDEF0123456789abcdef"
    assert body["subtask_name"] == "x"  # from the file name when not given


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"path": "/cache/../etc/x.3mf"}, "'..'"),
        ({"path": "/cache/x\n.3mf"}, "line breaks"),
        ({"plate": 0}, "plate"),
        ({"plate": True}, "plate"),
        ({"options": {"turbo": True}}, "unknown print option 'turbo'"),
        ({"options": {"timelapse": "yes"}}, "true or false"),
        ({"ams_mapping": [300]}, "tray indices"),
        ({"ams_mapping": [True]}, "tray indices"),
        ({"ams_mapping": "0"}, "list"),
        ({"md5": "xyz"}, "md5"),
        ({"subtask_name": "a\x00b"}, "printable"),
    ],
)
def test_bad_parameters_are_refused_in_plain_words(kwargs, words):
    args = {"path": "/cache/x.3mf", "plate": 1, "model": models.P1S, **kwargs}
    with pytest.raises(CommandError, match=words) as e:
        commands.project_file("1", **args)
    assert e.value.code == "bad_request"


def test_print_action_picks_project_file_or_gcode_file():
    cmd = commands.build("print", {"path": "/cache/cube.3mf", "plate": 3}, "9", model=models.H2D)
    body = cmd.payload["print"]
    assert body["command"] == "project_file" and body["param"] == "Metadata/plate_3.gcode"
    assert body["url"] == "ftp:///cache/cube.3mf"
    cmd = commands.build("print", {"path": "/cache/benchy.gcode"}, "9", model=models.P1S)
    assert cmd.payload == {
        "print": {"sequence_id": "9", "command": "gcode_file", "param": "/sdcard/cache/benchy.gcode"}
    }
    with pytest.raises(CommandError, match=r"\.3mf"):
        commands.build("print", {"path": "/cache/notes.txt"}, "9")
    with pytest.raises(CommandError, match="path"):
        commands.build("print", {}, "9")


def test_print_is_not_an_action_of_the_commands_route():
    assert "print" not in commands.ACTIONS
