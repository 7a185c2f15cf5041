"""The store as a component: the database is opened (and migrated) first and closed last."""

from __future__ import annotations

from bambu_edge.component import Component


class StoreComponent(Component):
    """Core: nothing runs without the database. The ``Store`` itself is in every context."""

    name = "store"
    start_timeout_s = None  # a migration takes what it takes

    async def start(self) -> None:
        await self.ctx.store.start()

    async def stop(self) -> None:
        await self.ctx.store.stop()
