"""Model identification and capabilities (protocol/BAMBU.md sections 8, 10, 13)."""

from __future__ import annotations

import pytest

from bambu_edge.printers.bambu import models
from bambu_edge.printers.bambu.fixtures import load_fixture, read_fixture_text


@pytest.mark.parametrize(
    ("serial", "model"),
    [
        ("00M09C452703629", "X1C"),
        ("01S00C123456789", "P1P"),
        ("01P00A000000000", "P1S"),
        ("03W00X000000000", "X1E"),
        ("0300AA000000000", "A1 mini"),
        ("0390AA000000000", "A1"),
        ("0940AA000000000", "H2D"),
        ("0930AA000000000", "H2S"),
        ("2390AA000000000", "H2D Pro"),
        ("31B0AA000000000", "H2C"),
        ("22E0AA000000000", "P2S"),
        ("20P0AA000000000", "X2D"),
        ("26A0AA000000000", "A2L"),
        ("01p00a000000000", "P1S"),  # case-insensitive prefix
    ],
)
def test_model_from_serial_prefix(serial, model):
    assert models.model_from_serial(serial) == model


@pytest.mark.parametrize("serial", ["", "0", "ZZZ123", None, 123, "MOCK-X1CMULTIAMS"])
def test_unknown_serial(serial):
    assert models.model_from_serial(serial) is None


def _ssdp_headers(text: str) -> dict[str, str]:
    headers = {}
    for line in text.splitlines()[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def test_model_from_real_ssdp_notify():
    h = _ssdp_headers(read_fixture_text("x1c_ssdp_notify.txt"))
    assert models.model_from_ssdp(h["devmodel.bambu.com"]) == "X1C"
    assert models.model_from_serial(h["usn"]) == "X1C"


@pytest.mark.parametrize(
    ("dev_model", "model"),
    [
        ("BL-P001", "X1C"),
        ("3DPrinter-X1-Carbon", "X1C"),
        ("BL-P002", "X1"),
        ("C11", "P1P"),
        ("C12", "P1S"),
        ("C13", "X1E"),
        ("N1", "A1 mini"),
        ("N2S", "A1"),
        ("O1D", "H2D"),
        ("n7", "P2S"),
        (" C12 ", "P1S"),
        ("XYZ", None),
        ("", None),
        (None, None),
    ],
)
def test_model_from_ssdp(dev_model, model):
    assert models.model_from_ssdp(dev_model) == model


@pytest.mark.parametrize(
    ("name", "model", "firmware"),
    [
        ("x1c_get_version.json", "X1C", "01.09.00.01"),  # product_name "Bambu Lab X1-Carbon"
        ("h2d_get_version.json", "H2D", "01.01.01.00"),
        ("p2s_get_version.json", "P2S", "01.01.00.00"),
        ("p1p_get_version_contents.json", "P1P", "01.07.00.00"),  # esp32 AP04 + C11
        ("a1_get_version.json", "A1", "01.05.00.00"),  # esp32 AP05 + N2S
        ("x1_get_version.json", "X1C", "99.00.00.00"),  # ap AP05, no project_name
        ("x1c_get_version_openbambuapi.json", "X1C", "01.01.01.00"),  # rv1126 AP05
    ],
)
def test_model_and_firmware_from_get_version(name, model, firmware):
    reply = load_fixture(name)
    assert models.model_from_version(reply) == model
    assert models.model_from_version(reply["info"]) == model
    assert models.model_from_version(reply["info"]["module"]) == model
    assert models.firmware_from_version(reply) == firmware


def test_product_name_wins_and_ams_names_are_ignored():
    modules = [
        {"name": "n3f/0", "product_name": "AMS 2 Pro (1)", "hw_ver": "N3F05"},
        {"name": "ap", "hw_ver": "AP05", "sw_ver": "1"},  # would say X1C by the legacy rule
        {"name": "ota", "product_name": "Bambu Lab H2D Pro", "sw_ver": "01.00.00.00"},
    ]
    assert models.model_from_version(modules) == "H2D Pro"


@pytest.mark.parametrize(
    ("modules", "model"),
    [
        ([{"name": "rv1126", "hw_ver": "AP02"}], "X1E"),
        ([{"name": "esp32", "hw_ver": "AP05", "project_name": "N1"}], "A1 mini"),
        ([{"name": "esp32", "hw_ver": "AP04", "project_name": "C12"}], "P1S"),
        ([{"name": "mc", "hw_ver": "MC07"}], None),
    ],
)
def test_legacy_rules(modules, model):
    assert models.model_from_version(modules) == model


@pytest.mark.parametrize(
    "junk", [None, "x", 5, {"info": 3}, {"module": "x"}, [1, None, "a"], {"info": {"module": [{}]}}]
)
def test_version_junk(junk):
    assert models.model_from_version(junk) is None
    assert models.firmware_from_version(junk) is None


def test_capabilities():
    x1c = models.capabilities("X1C")
    assert (x1c.camera, x1c.has_chamber_sensor, x1c.legacy_sdcard) == ("rtsps", True, True)
    p1s = models.capabilities("P1S")
    assert (p1s.camera, p1s.has_chamber_sensor, p1s.legacy_sdcard) == ("jpeg6000", False, True)
    a1_mini = models.capabilities("A1 mini")
    assert (a1_mini.camera, a1_mini.has_chamber_sensor) == ("jpeg6000", False)
    h2d = models.capabilities("H2D")
    assert (h2d.camera, h2d.has_chamber_sensor, h2d.legacy_sdcard) == ("rtsps", True, False)
    p2s = models.capabilities("P2S")
    assert (p2s.camera, p2s.legacy_sdcard) == ("rtsps", False)
    # section 13.7: every model is treated as delta-capable
    assert all(models.capabilities(m).delta_reports for m in models.MODELS)
    assert models.capabilities(None) == models.DEFAULT_CAPABILITIES
    assert models.capabilities("Z9") == models.DEFAULT_CAPABILITIES


def test_every_model_is_reachable_from_a_serial_prefix():
    assert set(models.SERIAL_PREFIXES.values()) | {"X1"} == set(models.MODELS)
