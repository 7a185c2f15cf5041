"""The component list: built without I/O, in an order where every requirement comes first, and
declaring the routes and event kinds the daemon serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from bambu_edge.app import COMPONENTS, Daemon
from bambu_edge.component import Component
from bambu_edge.config import Config
from tests.integration.web_stack import EVENT_KINDS, api_routes


def _endpoints(routes) -> set[tuple[str, str]]:
    return {(r.method, r.path) for r in routes}


def test_building_the_daemon_touches_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    d = Daemon(Config(data_dir=data))
    assert not data.exists()  # no database, no certificate, no directory: that is start()'s work
    assert [name for name in d.health()] == [c.name for c in COMPONENTS]
    assert all(
        h == {"state": "stopped", "optional": h["optional"], "error": None} for h in d.health().values()
    )
    core = {name for name, h in d.health().items() if not h["optional"]}
    # backup holds the data folder's lock: a daemon that cannot take it must not open the database
    assert core == {"backup", "store", "printers", "web"}


def test_the_web_api_tests_serve_what_the_daemon_mounts() -> None:
    d = Daemon(Config())
    assert _endpoints(d.routes()) == _endpoints(api_routes(None))
    assert EVENT_KINDS == d.event_kinds()


def test_a_requirement_must_come_before_the_component() -> None:
    class Camera(Component):
        name = "camera"
        requires = ("printers",)

    class Late(Component):
        name = "printers"

    with pytest.raises(ValueError, match="requires \\['printers'\\], which must come before it"):
        Daemon(Config(), [Camera, Late])
    with pytest.raises(ValueError, match="two components are named 'printers'"):
        Daemon(Config(), [Late, Late])
