from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bambu_edge.config import (
    BUILTIN_SECTIONS,
    ConfigError,
    ConfigNode,
    SectionSpec,
    load_config,
    parse_config,
)

GOOD = """\
data_dir: /tmp/be
web: {bind: 127.0.0.1, http_port: 3000, https_port: 3443}
printers:
  - id: x1c-left
    name: X1C left
    host: 192.168.1.50
    serial: 01S00C123456789
    access_code: "31415926"
    tls: {fingerprint: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"}
"""


def test_good_config_becomes_typed_values():
    c = parse_config(GOOD, "c.yaml", env={})
    assert c.data_dir == Path("/tmp/be")
    assert c.web.https_port == 3443 and c.web.http_port == 3000
    (p,) = c.printers
    assert (p.id, p.name, p.type, p.mqtt_port, p.ftps_port) == ("x1c-left", "X1C left", "bambu", 8883, 990)
    assert p.access_code == "31415926"
    assert p.tls.fingerprint == "abcdef0123456789" * 4


def test_access_code_never_in_repr():
    c = parse_config(GOOD, "c.yaml", env={})
    assert "31415926" not in repr(c)


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("web:\n  https_port: 99999\n", 2, "web.https_port", "from 0 to 65535"),
        ("web:\n  https_port: x\n", 2, "web.https_port", "whole number"),
        ("colour: red\n", 1, "colour", "unknown key"),
        (
            "printers:\n  - id: a\n    host: h\n    serial: 01S00C1234\n    access_code: 01234567\n",
            5,
            "printers[0].access_code",
            "quoted string",
        ),
        ("printers:\n  - id: Bad_Id\n    host: h\n", 2, "printers[0].id", "lower-case"),
        ("printers:\n  - id: a\n    host: h\n    access_code: '1'\n", 2, "printers[0].serial", "required"),
        (
            "printers:\n  - {id: a, host: h, serial: ABC123, access_code: '1'}\n"
            "  - {id: a, host: h, serial: ABC123, access_code: '1'}\n",
            3,
            "printers[1].id",
            "used twice",
        ),
        (
            "printers:\n  - {id: a, host: h, serial: ABC123, access_code: '1', tls: {fingerprint: zz}}\n",
            2,
            "printers[0].tls.fingerprint",
            "SHA-256",
        ),
        ("web: [1, 2]\n", 1, "web", "mapping"),
        ("web:\n  https_port: 1\n  https_port: 2\n", 3, "web.https_port", "duplicate"),
        (
            "printers:\n  - id: a\n    camera: webcam\n    host: h\n    serial: ABC123\n    access_code: '1'\n",
            3,
            "printers[0].camera",
            "one of",
        ),
    ],
)
def test_bad_config_names_line_and_key(text, line, key, words):
    with pytest.raises(ConfigError) as e:
        parse_config(text, "/etc/bambu-edge/config.yaml", env={})
    err = e.value
    assert (err.file, err.line, err.key) == ("/etc/bambu-edge/config.yaml", line, key)
    assert words in err.message
    assert str(err).startswith(f"/etc/bambu-edge/config.yaml:{line}: {key}: ")


def test_yaml_syntax_error_has_a_line():
    with pytest.raises(ConfigError) as e:
        parse_config("web:\n  bind: [oops\n", "c.yaml", env={})
    assert e.value.line is not None and "YAML" in e.value.message


def test_environment_overrides_file_values():
    env = {
        "BAMBU_EDGE_WEB_HTTPS_PORT": "8443",
        "BAMBU_EDGE_DATA_DIR": "/srv/be",
        "BAMBU_EDGE_PRINTER_X1C_LEFT_ACCESS_CODE": "00000001",
        "BAMBU_EDGE_UNRELATED": "x",
        "HOME": "/root",
    }
    c = parse_config(GOOD, "c.yaml", env=env)
    assert c.web.https_port == 8443
    assert c.data_dir == Path("/srv/be")
    assert c.printers[0].access_code == "00000001"  # stays a string, leading zeros kept


def test_bad_environment_override_is_reported():
    with pytest.raises(ConfigError) as e:
        parse_config(GOOD, "c.yaml", env={"BAMBU_EDGE_WEB_HTTPS_PORT": "eighty"})
    assert e.value.key == "web.https_port"


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "nope.yaml")
    assert "not found" in str(e.value)


def test_empty_file_gives_defaults(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("")
    c = load_config(f, env={})
    assert c.printers == () and c.web.https_port == 3443


def _cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("BAMBU_EDGE_")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "bambu_edge", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_check_config_exit_codes(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    r = _cli("--config", str(good), "check-config")
    assert r.returncode == 0, r.stderr
    assert "1 printers" in r.stdout
    assert "31415926" not in r.stdout + r.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace('"31415926"', "31415926"))
    r = _cli("--config", str(bad), "check-config")
    assert r.returncode == 2
    assert f"{bad}:8: printers[0].access_code" in r.stderr
    assert "31415926" not in r.stderr


def test_config_path_from_environment(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nonsense: true\n")
    r = _cli("check-config", env_extra={"BAMBU_EDGE_CONFIG": str(bad)})
    assert r.returncode == 2 and str(bad) in r.stderr


def test_model_is_checked_and_spelled_canonically():
    text = "printers:\n  - {id: a, host: h, serial: ABC123, access_code: '1', model: 'a1 MINI'}\n"
    assert parse_config(text, "c.yaml", env={}).printers[0].model == "A1 mini"
    with pytest.raises(ConfigError) as e:
        parse_config(text.replace("a1 MINI", "Ender 3"), "c.yaml", env={})
    assert e.value.key == "printers[0].model" and "X1C" in e.value.message


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("host", "'http://192.168.1.5'", "not a host"),
        ("access_code", "'12 34'", "without spaces"),
        ("name", "'" + "x" * 101 + "'", "at most 100"),
        ("serial", "'01S-00C'", "serial number"),
    ],
)
def test_printer_fields_follow_the_shared_rules(field, value, words):
    fields = {"id": "a", "host": "h", "serial": "ABC123", "access_code": "'1'", field: value}
    text = "printers:\n  - {" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}\n"
    with pytest.raises(ConfigError) as e:
        parse_config(text, "c.yaml", env={})
    assert e.value.key == f"printers[0].{field}" and words in e.value.message


# --- sections declared by components ------------------------------------------------------------


@dataclass(frozen=True)
class CameraSection:
    idle_s: int = 30
    hw_encoder: bool = False
    devices: tuple[str, ...] = ()


def _camera(node: ConfigNode) -> CameraSection:
    s = node.mapping({"idle_s", "hw_encoder", "devices"})
    devices = tuple(
        s.str("dev", required=True) for s in (d.mapping({"dev"}) for d in s.node("devices").items("devices"))
    )
    return CameraSection(
        idle_s=s.int("idle_s", 30, lo=1, hi=3600),
        hw_encoder=s.bool("hw_encoder", False),
        devices=devices,
    )


CAMERA = SectionSpec("camera", _camera)
WITH_CAMERA = (*BUILTIN_SECTIONS, CAMERA)


def test_a_component_section_becomes_its_typed_value():
    text = GOOD + "camera:\n  idle_s: 12\n  hw_encoder: true\n  devices:\n    - {dev: /dev/video0}\n"
    c = parse_config(text, "c.yaml", env={}, sections=WITH_CAMERA)
    assert c.section("camera") == CameraSection(idle_s=12, hw_encoder=True, devices=("/dev/video0",))
    assert c.section("web") is c.web and c.section("printers") is c.printers
    # Left out: the parser's defaults, as for any other section.
    assert parse_config(GOOD, "c.yaml", env={}, sections=WITH_CAMERA).section("camera") == CameraSection()


@pytest.mark.parametrize(
    ("yaml_text", "line", "key", "words"),
    [
        (
            "camera:\n  idle_s: 12\n  idle: 3\n",
            3,
            "camera.idle",
            "unknown key (allowed: devices, hw_encoder, idle_s)",
        ),
        ("camera:\n  idle_s: 0\n", 2, "camera.idle_s", "must be from 1 to 3600, got 0"),
        ("camera:\n  hw_encoder: 1\n", 2, "camera.hw_encoder", "must be true or false"),
        ("camera: [1]\n", 1, "camera", "must be a mapping"),
        (
            "camera:\n  devices:\n    - {dev: /dev/video0, fps: 5}\n",
            3,
            "camera.devices[0].fps",
            "unknown key",
        ),
        ("camera:\n  devices: /dev/video0\n", 2, "camera.devices", "must be a list of devices"),
    ],
)
def test_a_component_section_is_checked_with_file_line_and_key(yaml_text, line, key, words):
    with pytest.raises(ConfigError) as e:
        parse_config(GOOD + yaml_text, "c.yaml", env={}, sections=WITH_CAMERA)
    msg = str(e.value)
    assert msg.startswith(f"c.yaml:{line + GOOD.count(chr(10))}: {key}: "), msg
    assert words in msg


def test_a_section_no_component_declares_is_refused():
    with pytest.raises(ConfigError) as e:
        parse_config(GOOD + "camera:\n  idle_s: 12\n", "c.yaml", env={})
    assert str(e.value).startswith(f"c.yaml:{GOOD.count(chr(10)) + 1}: camera: unknown key (allowed: ")


def test_the_daemon_validates_every_section_its_components_declare():
    from bambu_edge.app import COMPONENTS, config_sections

    assert [s.key for s in config_sections()] == [
        c.config_section.key for c in COMPONENTS if c.config_section is not None
    ]
    assert {"web", "printers"} <= {s.key for s in config_sections()}
    with pytest.raises(ValueError, match="distinct keys"):
        parse_config(GOOD, sections=(*BUILTIN_SECTIONS, SectionSpec("web", _camera)))
