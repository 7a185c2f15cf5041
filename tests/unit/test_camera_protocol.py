"""The printers' camera protocol (BAMBU.md section 8): the port-6000 login and frame headers, which
camera a model has, and the H2 report field that says the LAN live view is off."""

from __future__ import annotations

import struct

import pytest

from bambu_edge.printers.bambu import camera
from bambu_edge.printers.bambu.fixtures import load_fixture


def test_auth_packet_is_the_documented_80_bytes() -> None:
    packet = camera.auth_packet("12345678")
    assert len(packet) == 80
    assert struct.unpack("<IIII", packet[:16]) == (0x40, 0x3000, 0, 0)
    assert packet[16:48] == b"bblp" + b"\0" * 28
    assert packet[48:80] == b"12345678" + b"\0" * 24


def test_auth_packet_refuses_a_code_that_does_not_fit() -> None:
    with pytest.raises(ValueError):
        camera.auth_packet("x" * 33)


def test_frame_header_gives_the_payload_size() -> None:
    assert camera.frame_size(struct.pack("<IIII", 123456, 0, 1, 0)) == 123456


@pytest.mark.parametrize("size", [0, camera.MAX_FRAME_BYTES + 1, 0xFFFFFFFF])
def test_a_frame_size_no_camera_sends_is_a_protocol_error(size: int) -> None:
    # A bounded read: a broken or hostile stream cannot make the daemon allocate gigabytes.
    with pytest.raises(camera.CameraProtocolError):
        camera.frame_size(struct.pack("<IIII", size, 0, 1, 0))


def test_a_short_header_is_a_protocol_error() -> None:
    with pytest.raises(camera.CameraProtocolError):
        camera.frame_size(b"\x10\x00")


def test_frames_must_be_jpeg_images() -> None:
    assert camera.check_jpeg(b"\xff\xd8abc\xff\xd9") == b"\xff\xd8abc\xff\xd9"
    with pytest.raises(camera.CameraProtocolError):
        camera.check_jpeg(b"<html>not a picture</html>")


@pytest.mark.parametrize(
    ("model", "kind", "port"),
    [
        ("X1C", "rtsps", 322),
        ("X1", "rtsps", 322),
        ("X1E", "rtsps", 322),
        ("P2S", "rtsps", 322),
        ("H2D", "rtsps", 322),
        ("H2S", "rtsps", 322),
        ("P1P", "jpeg6000", 6000),
        ("P1S", "jpeg6000", 6000),
        ("A1", "jpeg6000", 6000),
        ("A1 mini", "jpeg6000", 6000),
    ],
)
def test_camera_auto_picks_the_models_camera(model: str, kind: str, port: int) -> None:
    assert camera.source_for_model(model) == kind
    assert camera.default_port(kind) == port


def test_live_view_switched_off_is_read_from_the_report() -> None:
    # The P2S capture reports ipcam.rtsp_url "disable" (LAN live view off).
    assert camera.live_view_disabled(load_fixture("p2s_pushall_running.json")["print"])
    assert not camera.live_view_disabled(load_fixture("x1c_pushall_finish_multi_ams.json")["print"])
    assert not camera.live_view_disabled({})
    assert not camera.live_view_disabled({"ipcam": "disable"})
