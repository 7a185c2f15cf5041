"""The Component interface: how a subsystem plugs into the daemon.

A component is built synchronously, without I/O, from a ``Context``: its own typed config section,
the bus, the store, the components it ``requires`` (by name, started before it), the data directory
and its ``TaskSet``. Then ``await start()`` / ``await stop()``. It declares itself what it adds to
the daemon: its config section (``config_section``), its HTTP routes (``routes()``, mounted by the
web component), the bus event kinds the WebSocket forwards to browsers (``event_kinds``) and a
JSON-ready ``health()`` shown in ``GET /api/health``.

``app.py`` walks one ordered list of component classes. An ``optional`` component whose start fails
is logged and shown failed; a core one stops start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from aiohttp import web

from bambu_edge.bus import EventBus
from bambu_edge.config import Config, SectionSpec
from bambu_edge.tasks import TaskSet

if TYPE_CHECKING:
    from bambu_edge.store.db import Store

__all__ = ["Component", "ComponentError", "Context", "Registry", "StartError", "TaskSet"]

C = TypeVar("C", bound="Component")


class ComponentError(Exception):
    """A component refuses to start, in plain words (logged without a traceback)."""


class StartError(Exception):
    """A core component could not start: the daemon does not run. ``component`` names it."""

    def __init__(self, component: str, message: str):
        super().__init__(f"{component}: {message}")
        self.component = component


class Registry(Protocol):
    """What the running daemon tells the components that serve all the others (web, ws hub)."""

    def routes(self) -> list[web.RouteDef]:
        """Every component's routes, in the list's order (a failed optional component's routes
        too: they answer 503 while it is absent, and the API description stays complete)."""
        ...

    def event_kinds(self) -> tuple[str, ...]:
        """Every bus event kind a component declared for browsers."""
        ...

    def health(self) -> dict[str, dict[str, Any]]:
        """``{name: {"state", "optional", "error", ...}}`` for ``GET /api/health``."""
        ...

    def running(self, name: str) -> Component | None:
        """Component ``name`` if it is running (for an optional peer, which is not required)."""
        ...

    def request_restart(self) -> None:
        """Stop every component and start them all again (a restored backup is swapped in)."""
        ...


@dataclass(frozen=True)
class Context:
    config: Config
    section: Any  # the component's own typed section (None if it declares none)
    bus: EventBus
    store: Store
    tasks: TaskSet  # owns the component's tasks and children; closed after its stop()
    requires: Mapping[str, Component]  # the components it named in ``requires``, started before it
    registry: Registry

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    def require(self, name: str, kind: type[C]) -> C:
        """The required component ``name``, checked to be a ``kind``."""
        return _checked(name, self.requires[name], kind)

    def running(self, name: str, kind: type[C]) -> C | None:
        """An optional peer ``name`` (not required) if it is running now, checked to be a ``kind``."""
        comp = self.registry.running(name)
        return None if comp is None else _checked(name, comp, kind)


def _checked(name: str, comp: Component, kind: type[C]) -> C:
    if not isinstance(comp, kind):
        raise TypeError(f"component {name!r} is a {type(comp).__name__}, not a {kind.__name__}")
    return comp


class Component:
    """Subclasses set ``name`` (and ``optional``, ``requires``, ``config_section``, ``event_kinds``
    as needed) and override what they use. The constructor must not do I/O: everything that touches
    the disk, the network or a peer belongs in ``start()``."""

    name: ClassVar[str]
    optional: ClassVar[bool] = False
    requires: ClassVar[tuple[str, ...]] = ()
    config_section: ClassVar[SectionSpec | None] = None
    event_kinds: ClassVar[tuple[str, ...]] = ()
    start_timeout_s: ClassVar[float | None] = 30.0  # None: as long as it takes (migrations)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        """Bring the subsystem up; raise to refuse (a clear message: the user reads it)."""

    async def stop(self) -> None:
        """Release what ``start()`` took. The context's TaskSet is closed right after."""

    def routes(self) -> list[web.RouteDef]:
        return []

    def health(self) -> dict[str, Any]:
        """Extra JSON-ready facts for ``GET /api/health`` while running (public: no secrets)."""
        return {}
