"""The SSDP NOTIFY parser against the real captured X1C announcement and hostile packets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bambu_edge.printers.bambu.fixtures import read_fixture_text
from bambu_edge.printers.bambu.ssdp import MAX_PACKET, Announcement, parse_notify


def capture(eol: str = "\r\n") -> bytes:
    """The captured packet as it travels: CRLF lines, an empty line at the end."""
    lines = read_fixture_text("x1c_ssdp_notify.txt").splitlines()
    return (eol.join(lines) + eol + eol).encode()


def packet(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


BASE = (
    "NOTIFY * HTTP/1.1",
    "HOST: 239.255.255.250:1900",
    "NT: urn:bambulab-com:device:3dprinter:1",
    "NTS: ssdp:alive",
    "USN: 01P09C000000001",
    "Location: 10.0.0.7",
)


def test_the_real_x1c_capture_parses() -> None:
    a = parse_notify(capture())
    assert a == Announcement(
        serial="00M09C452703629",
        model="X1C",
        name="3DP-00M-629",
        host="192.168.1.68",
        max_age_s=1800,
        dev_model="BL-P001",
        firmware="01.08.00.00",
        connect="lan",
        bind="free",
    )
    # The file as stored (LF lines) reads the same.
    assert parse_notify(capture("\n")) == a


def test_header_names_are_matched_whatever_their_case() -> None:
    text = capture().decode()
    shouted = "\r\n".join(
        line.partition(":")[0].upper() + ":" + line.partition(":")[2] if ":" in line else line
        for line in text.split("\r\n")
    )
    a = parse_notify(shouted.encode())
    assert a is not None and (a.serial, a.model, a.name) == ("00M09C452703629", "X1C", "3DP-00M-629")


def test_model_comes_from_devmodel_then_from_the_serial_prefix() -> None:
    p1s = parse_notify(packet(*BASE, "DevModel.bambu.com: C12"))
    assert p1s is not None and p1s.model == "P1S"
    # An unknown DevModel code: the serial's prefix (01P) still names it.
    guessed = parse_notify(packet(*BASE, "DevModel.bambu.com: Z99"))
    assert guessed is not None and guessed.model == "P1S" and guessed.dev_model == "Z99"
    unknown = parse_notify(packet(*BASE[:4], "USN: ZZZ000000001"))
    assert unknown is not None and unknown.model is None


def test_host_is_the_location_only_when_it_is_an_ip_address() -> None:
    def host(location: str) -> str | None:
        a = parse_notify(packet(*BASE[:5], f"Location: {location}"))
        assert a is not None
        return a.host

    assert host("192.168.1.68") == "192.168.1.68"
    assert host("http://10.1.2.3:80/desc.xml") == "10.1.2.3"
    assert host("fe80::1") == "fe80::1"
    assert host("printer.local") is None
    assert host("0.0.0.0") is None
    assert host("239.255.255.250") is None
    assert host("http://evil.example/") is None
    missing = parse_notify(packet(*BASE[:5]))
    assert missing is not None and missing.host is None


def test_max_age_is_read_and_clamped() -> None:
    def age(value: str) -> int:
        a = parse_notify(packet(*BASE, f"Cache-Control: {value}"))
        assert a is not None
        return a.max_age_s

    assert age("max-age=60") == 60
    assert age("no-cache, MAX-AGE = 120") == 120
    assert age("max-age=0") == 1
    assert age("max-age=999999999") == 24 * 3600
    assert age("max-age=soon") == 1800
    assert parse_notify(packet(*BASE)).max_age_s == 1800  # type: ignore[union-attr]


def test_what_is_not_a_printers_alive_announcement_is_none() -> None:
    assert parse_notify(b"") is None
    assert parse_notify(b"\xff\xfe\x00garbage") is None
    assert parse_notify(packet("M-SEARCH * HTTP/1.1", *BASE[1:])) is None
    assert parse_notify(packet(*BASE[:3], "NTS: ssdp:byebye", *BASE[4:])) is None
    assert parse_notify(packet(BASE[0], BASE[1], "NT: upnp:rootdevice", *BASE[3:])) is None
    assert parse_notify(packet(*BASE[:4], "USN: uuid:../../etc/passwd")) is None
    assert parse_notify(packet(*BASE[:4])) is None  # no serial
    assert parse_notify(packet(*BASE[:4], "USN: 01P<script>")) is None
    # Too large to be a printer's announcement.
    assert parse_notify(packet(*BASE, "X-Pad: " + "a" * MAX_PACKET)) is None


def test_hostile_values_are_cut_and_cleaned() -> None:
    a = parse_notify(
        packet(
            *BASE,
            "DevName.bambu.com: <img src=x>\x1b[31m" + "n" * 500,
            "DevVersion.bambu.com: \xff\xfe",
        )
    )
    assert a is not None
    assert a.name is not None and len(a.name) == 64 and "\x1b" not in a.name
    assert a.firmware is not None and "\ufffd" not in a.firmware
    # Bad UTF-8 bytes become replacement characters, which are dropped from shown values.
    raw = packet(*BASE).replace(b"\r\n\r\n", b"\r\nDevName.bambu.com: Lab \xff\xfe one\r\n\r\n")
    b = parse_notify(raw)
    assert b is not None and b.name == "Lab  one"
    # A repeated header cannot override the first one.
    c = parse_notify(packet(*BASE, "USN: 01P09C999999999"))
    assert c is not None and c.serial == "01P09C000000001"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_parse_to_none_or_a_clean_announcement(data: bytes) -> None:
    a = parse_notify(data)
    assert a is None or (a.serial.isalnum() and 1 <= a.max_age_s <= 86400)


header_name = st.sampled_from(
    ["NT", "nts", "USN", "Location", "Cache-Control", "DevModel.bambu.com", "DevName.bambu.com", "X"]
)
header_value = st.text(max_size=80)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(header_name, header_value), max_size=20))
def test_structured_headers_never_raise_and_values_stay_bounded(pairs: list[tuple[str, str]]) -> None:
    lines = [BASE[0], BASE[2], *(f"{k}: {v}" for k, v in pairs), BASE[4]]
    a = parse_notify(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass"))
    if a is not None:
        assert a.name is None or (len(a.name) <= 64 and a.name.isprintable())
        assert a.host is None or ":" in a.host or a.host.replace(".", "").isdigit()
