"""HMS codes and print_error formatting (protocol/BAMBU.md section 5.2)."""

from __future__ import annotations

import pytest

from bambu_edge.printers.bambu.fixtures import load_fixture
from bambu_edge.printers.bambu.hms import (
    hms_code,
    hms_entry,
    hms_module,
    hms_severity,
    hms_text,
    hms_url,
    print_error_code,
)


def test_documented_example():
    # attr 50331904 = 0x03000100, code 65543 = 0x00010007
    assert hms_code(50331904, 65543) == "0300_0100_0001_0007"
    assert hms_severity(65543) == "fatal"
    assert hms_module(50331904) == "mc"


def test_fixture_alarm():
    (raw,) = load_fixture("x1_pushall_running_hms.json")["print"]["hms"]
    entry = hms_entry(raw)
    assert entry == {
        "code": "0C00_0300_0003_0007",
        "severity": "common",
        "module": "xcam",
        "text": "Camera (AI detection): problem",
        "url": "https://wiki.bambulab.com/en/x1/troubleshooting/hmscode/0C00_0300_0003_0007",
    }


@pytest.mark.parametrize(
    ("code", "severity"),
    [(0x00010000, "fatal"), (0x00020000, "serious"), (0x00030000, "common"), (0x00040000, "info")],
)
def test_severity_from_high_half_of_code(code, severity):
    assert hms_severity(code) == severity


def test_unknown_severity_is_null():
    assert hms_severity(0x00090001) is None
    assert hms_entry({"attr": 0x07000000, "code": 0x00090001})["severity"] is None


@pytest.mark.parametrize(
    ("attr", "module"),
    [
        (0x03000000, "mc"),
        (0x05000000, "mainboard"),
        (0x07010200, "ams"),
        (0x08000000, "toolhead"),
        (0x0C000300, "xcam"),
        (0x12000000, "other"),
    ],
)
def test_module_from_top_byte_of_attr(attr, module):
    assert hms_module(attr) == module


def test_text_is_plain_words():
    assert hms_text("ams", "serious") == "AMS: serious problem"
    assert hms_text("mc", "fatal") == "Motion controller: fatal error"
    assert hms_text("nonsense", None) == "Printer: problem"
    assert hms_url("0700_0100_0001_0007").endswith("/hmscode/0700_0100_0001_0007")


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "x",
        [],
        {},
        {"attr": 1},
        {"code": 1},
        {"attr": -1, "code": 1},
        {"attr": 2**32, "code": 1},
        {"attr": True, "code": 1},
        {"attr": 1.5, "code": 1},
        {"attr": "abc", "code": 1},
    ],
)
def test_invalid_entries_are_skipped(raw):
    assert hms_entry(raw) is None


def test_numeric_strings_are_accepted():
    assert hms_entry({"attr": "201327360", "code": "196615"})["code"] == "0C00_0300_0003_0007"


def test_print_error():
    assert print_error_code(117473286) == "0700_8006"
    assert print_error_code(0) is None
    assert print_error_code(None) is None
    assert print_error_code(-3) is None
    assert print_error_code(2**40) is None
    assert print_error_code("117473286") == "0700_8006"
