"""Farm sync between real daemons over a real mosquitto farm broker (docs/farm.md): every unit
lists the whole farm, a command to another unit's printer is answered, a SIGKILLed unit is shown
gone by its last will, and history made on either side of a partition (the broker stopped while
prints finish) appears on every unit exactly once."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest

from tests.integration import waiting
from tests.integration.farm_units import FarmBroker, Unit, start_unit, unit_password, units_closed

pytestmark = pytest.mark.asyncio
eventually = functools.partial(waiting.eventually, every=0.5, timeout=30.0)

SERIAL_A = "00M00A000000101"  # X1C
SERIAL_B = "01P09C000000102"  # P1S
SERIAL_C = "03909C000000103"  # A1


@pytest.fixture
def farm_broker(tmp_path: Path) -> Iterator[FarmBroker]:
    b = FarmBroker(
        tmp_path / "farm-broker",
        {n: unit_password(n) for n in ("garage", "attic", "shed")},
        server_cn="farm-broker",
        port_retries=5,
    )
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
async def two_units(tmp_path, broker, farm_broker) -> AsyncIterator[tuple[Unit, Unit]]:
    units: list[Unit] = []
    async with units_closed(units):
        units.append(await start_unit(tmp_path, "garage", broker, farm_broker, {"x1c-a": (SERIAL_A, "X1C")}))
        units.append(await start_unit(tmp_path, "attic", broker, farm_broker, {"p1s-b": (SERIAL_B, "P1S")}))
        yield units[0], units[1]


async def _farm_listed(unit: Unit, ids: set[str]) -> dict[str, dict] | None:
    printers = await unit.printers()
    return (
        printers
        if set(printers) == ids and all(p["link"]["state"] == "connected" for p in printers.values())
        else None
    )


async def test_every_unit_lists_the_whole_farm_and_commands_reach_the_owner(two_units) -> None:
    garage, attic = two_units
    seen = await eventually(lambda: _farm_listed(garage, {"x1c-a", "p1s-b"}), what="the farm on garage")
    assert seen["x1c-a"]["node"] == "garage" and not seen["x1c-a"].get("remote")
    remote = seen["p1s-b"]
    assert (remote["node"], remote["node_name"], remote["remote"], remote["node_online"]) == (
        "attic",
        "Attic",
        True,
        True,
    )
    assert remote["model"] == "P1S" and remote["serial"] == SERIAL_B
    on_attic = await eventually(lambda: _farm_listed(attic, {"x1c-a", "p1s-b"}), what="the farm on attic")
    assert on_attic["p1s-b"]["node"] == "attic" and on_attic["x1c-a"]["node"] == "garage"

    # Live state: a change on the attic's printer reaches the garage's WebSocket as a printer frame.
    farm = garage.farm
    async with farm.http.ws_connect(f"{farm.https}/api/ws", headers=farm.auth) as ws:
        snapshot = orjson.loads((await ws.receive()).data)
        assert {p["id"] for p in snapshot["printers"]} == {"x1c-a", "p1s-b"}
        await attic.vps["p1s-b"].set_fields(mc_percent=37)
        status, body = await garage.call(
            "POST", "/api/printers/p1s-b/commands", json={"action": "light", "on": False}
        )
        assert status == 202, body
        seq = body["sequence_id"]
        progress_seen = outcome = None
        while progress_seen is None or outcome is None:
            msg = orjson.loads((await asyncio.wait_for(ws.receive(), 30)).data)
            if (
                msg["type"] == "printer"
                and msg["id"] == "p1s-b"
                and msg["changes"].get("print", {}).get("progress") == 37
            ):
                progress_seen = msg
            if msg["type"] == "command" and msg.get("sequence_id") == seq:
                outcome = msg
    assert outcome["id"] == "p1s-b" and outcome["result"] == "success", outcome
    # The printer itself got it, from its own unit (its single MQTT session).
    assert any(r.get("system", {}).get("command") == "ledctrl" for r in attic.vps["p1s-b"].received)

    # A bad command is refused by the calling unit before it crosses the broker.
    status, body = await garage.call(
        "POST", "/api/printers/p1s-b/commands", json={"action": "speed", "level": 9}
    )
    assert status == 400


async def test_a_killed_unit_is_shown_gone_and_the_broker_coming_back_heals(two_units, farm_broker) -> None:
    garage, attic = two_units
    await eventually(lambda: _farm_listed(garage, {"x1c-a", "p1s-b"}), what="the farm on garage")
    attic.kill()

    async def gone() -> dict | None:
        farm = await garage.ok("GET", "/api/farm")
        units = {u["node"]: u["state"] for u in farm["units"]}
        p = (await garage.printers()).get("p1s-b")
        ok = units.get("attic") == "offline" and p is not None and not p["node_online"]
        return p if ok and p["link"]["state"] == "offline" else None

    p = await eventually(gone, what="attic shown gone on garage (its last will)")
    assert "Attic" in p["link"]["error"]
    # The garage's own printer is not touched by it.
    assert (await garage.printers())["x1c-a"]["link"]["state"] == "connected"

    # The broker stopped: the garage keeps serving its own printer and says the broker is gone.
    farm_broker.stop()

    async def broker_lost() -> dict | None:
        farm = await garage.ok("GET", "/api/farm")
        return farm if not farm["broker"]["connected"] else None

    await eventually(broker_lost, what="garage noticing the broker is gone")
    mine = (await garage.printers())["x1c-a"]
    assert mine["link"]["state"] == "connected"
    status, _ = await garage.call(
        "POST", "/api/printers/x1c-a/commands", json={"action": "light", "on": True}
    )
    assert status == 202
    status, body = await garage.call(
        "POST", "/api/printers/p1s-b/commands", json={"action": "light", "on": True}
    )
    assert status == 409 and "broker" in body["message"]

    farm_broker.start()

    async def back() -> dict | None:
        farm = await garage.ok("GET", "/api/farm")
        return farm if farm["broker"]["connected"] else None

    await eventually(back, what="garage back on the broker")


def _uids(items: list[dict]) -> list[str]:
    return sorted(r["uid"] for r in items)


async def _print_once(unit: Unit, printer_id: str, name: str) -> None:
    vp = unit.vps[printer_id]
    await vp.simulate_print(name, duration_s=60, layers=20)

    async def open_record() -> bool:
        return any(r["job"] == name and r["outcome"] == "running" for r in await unit.history())

    await eventually(open_record, what=f"{name} recorded as running on {unit.node}")
    await vp.finish(steps=2)

    async def ended() -> bool:
        return any(r["job"] == name and r["outcome"] == "success" for r in await unit.history())

    await eventually(ended, what=f"{name} recorded as ended on {unit.node}")


async def test_history_made_on_both_sides_of_a_partition_appears_once_everywhere(
    tmp_path, broker, farm_broker
) -> None:
    units: list[Unit] = []
    async with units_closed(units):
        for node, pid, serial, model in (
            ("garage", "x1c-a", SERIAL_A, "X1C"),
            ("attic", "p1s-b", SERIAL_B, "P1S"),
            ("shed", "a1-c", SERIAL_C, "A1"),
        ):
            units.append(await start_unit(tmp_path, node, broker, farm_broker, {pid: (serial, model)}))
        garage, attic, shed = units
        all_ids = {"x1c-a", "p1s-b", "a1-c"}
        for u in units:
            await eventually(lambda u=u: _farm_listed(u, all_ids), what=f"the farm on {u.node}")

        # Before: one print on the garage reaches every unit.
        await _print_once(garage, "x1c-a", "Before")

        async def everywhere(n: int) -> list[list[str]] | None:
            seen = [_uids(await u.history()) for u in units]
            return seen if all(len(s) == n for s in seen) and all(s == seen[0] for s in seen) else None

        await eventually(lambda: everywhere(1), what="the first record on every unit")

        # Partition: the broker is stopped while prints on the garage and the attic finish.
        farm_broker.stop()
        for u in units:
            await eventually(
                lambda u=u: _broker_state(u, False), what=f"{u.node} noticing the broker is gone"
            )
        await _print_once(garage, "x1c-a", "During garage")
        await _print_once(attic, "p1s-b", "During attic")
        # Each side has only what it made itself.
        assert len(await shed.history()) == 1
        assert len(await attic.history()) == 2

        farm_broker.start()
        seen = await eventually(lambda: everywhere(3), what="all three records on every unit, once")
        assert len(set(seen[0])) == 3
        records = {r["job"]: r for r in await shed.history()}
        assert records["During attic"]["node"] == "attic" and records["During garage"]["node"] == "garage"
        assert (
            records["During attic"]["outcome"] == "success"
            and records["During attic"]["printer_id"] == "p1s-b"
        )
        # A restarted unit sends nothing twice: the counts stay.
        attic.farm.stop_daemon()
        await attic.farm.start_daemon()
        await eventually(lambda: _farm_listed(attic, all_ids), what="attic back in the farm")
        assert await everywhere(3)


async def _broker_state(unit: Unit, connected: bool) -> bool:
    farm = await unit.ok("GET", "/api/farm")
    return farm["broker"]["connected"] is connected
