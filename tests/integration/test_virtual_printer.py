"""The virtual printer against a real mosquitto (TLS + password), seen by a plain MQTT client playing
the daemon: it must say what the captured printers say, the way they say it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
import orjson
import pytest

from bambu_edge.demo.broker import LocalBroker
from bambu_edge.printers.bambu import models
from bambu_edge.printers.bambu.fixtures import load_fixture
from bambu_edge.printers.virtual import (
    PRINT_ERROR_CANCELLED,
    PROFILES,
    VERIFY_FAILED_REASON,
    VirtualPrinter,
)
from tests.conftest import ACCESS_CODE, SERIAL

pytestmark = pytest.mark.integration
ENVELOPE = {"command", "msg", "sequence_id"}
Message = dict[str, Any]


class Daemon:
    """The daemon's side: one MQTT session that subscribes the report topic and sends requests."""

    def __init__(self, client: aiomqtt.Client):
        self.client = client
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self._seq = 100

    async def request(self, kind: str, command: str, **params: Any) -> str:
        self._seq += 1
        seq = str(self._seq)
        body = {"sequence_id": seq, "command": command, **params}
        await self.client.publish(f"device/{SERIAL}/request", orjson.dumps({kind: body}), qos=1)
        return seq

    async def next(self, match: Callable[[Message], bool], within: float = 5.0) -> Message:
        async with asyncio.timeout(within):
            while True:
                message = await self.queue.get()
                if match(message):
                    return message

    async def reply(self, kind: str, seq: str) -> Message:
        return (await self.next(lambda m: kind in m and m[kind].get("sequence_id") == seq))[kind]

    async def full(self) -> Message:
        return (await self.next(lambda m: _status(m) is not None and _status(m)["msg"] == 0))["print"]


def _status(message: Message) -> Message | None:
    body = message.get("print")
    return body if isinstance(body, dict) and body.get("command") == "push_status" else None


@contextlib.asynccontextmanager
async def daemon_side(broker: LocalBroker) -> AsyncIterator[Daemon]:
    ctx = ssl.create_default_context(cafile=str(broker.ca_path))
    ctx.check_hostname = False  # the broker's certificate names the serial, like a printer's
    async with aiomqtt.Client(
        broker.host, broker.port, username="bblp", password=ACCESS_CODE, tls_context=ctx
    ) as client:
        await client.subscribe(f"device/{SERIAL}/report")
        daemon = Daemon(client)

        async def pump() -> None:
            async for m in client.messages:
                try:
                    daemon.queue.put_nowait(orjson.loads(m.payload))
                except orjson.JSONDecodeError:
                    daemon.queue.put_nowait({"raw": m.payload})

        task = asyncio.create_task(pump())
        try:
            yield daemon
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def printer(broker: LocalBroker, model: str = models.P1S, **kw: Any) -> AsyncIterator[VirtualPrinter]:
    kw.setdefault("sensor_noise", False)
    kw.setdefault("report_hz", 20.0)
    vp = VirtualPrinter(broker.host, broker.port, SERIAL, ACCESS_CODE, model, str(broker.ca_path), **kw)
    await vp.start()
    try:
        yield vp
    finally:
        await vp.stop()


def merge(state: Message, delta: Message) -> None:
    """A client's merge (BAMBU.md section 4): dicts key by key, id-keyed lists item by item."""
    for key, value in delta.items():
        old = state.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merge(old, value)
        elif (
            isinstance(old, list)
            and isinstance(value, list)
            and all(isinstance(i, dict) and "id" in i for i in old + value)
        ):
            by_id = {i["id"]: i for i in old}
            for item in value:
                merge(by_id[item["id"]], item) if item["id"] in by_id else old.append(item)
        else:
            state[key] = value


@pytest.mark.parametrize("model", list(PROFILES))
async def test_pushall_answers_with_the_captured_full_report(broker: LocalBroker, model: str) -> None:
    capture = load_fixture(PROFILES[model].report_fixture)["print"]
    expected = dict(capture, gcode_state="IDLE", msg=0)  # documented: power-on IDLE, full = msg 0
    if capture["gcode_state"] in ("RUNNING", "PREPARE", "PAUSE"):
        expected.update(nozzle_target_temper=0.0, bed_target_temper=0.0)  # idle heaters
    # report_hz 0.1: no simulation tick (cooling of a hot capture) before the pushall is answered.
    async with printer(broker, model, report_hz=0.1) as vp, daemon_side(broker) as d:
        await d.request("pushing", "pushall", version=1, push_target=1)
        full = await d.full()
        assert int(full.pop("sequence_id")) > int(expected.pop("sequence_id"))  # the printer's counter
        assert full == expected
        assert vp.received[-1]["pushing"]["command"] == "pushall"


@pytest.mark.parametrize("model", [models.X1C, models.P1S, models.A1])
async def test_get_version_is_the_models_capture(broker: LocalBroker, model: str) -> None:
    async with printer(broker, model), daemon_side(broker) as d:
        seq = await d.request("info", "get_version")
        info = await d.reply("info", seq)
        assert info["command"] == "get_version"
        assert models.model_from_version(info) == model
        ota = next(m for m in info["module"] if m["name"] == "ota")
        assert ota["sn"] == SERIAL


async def test_commands_are_echoed_and_change_the_state(broker: LocalBroker) -> None:
    async with printer(broker, models.P1S) as vp, daemon_side(broker) as d:
        seq = await d.request("print", "print_speed", param="3")
        assert await d.reply("print", seq) == {
            "sequence_id": seq,
            "command": "print_speed",
            "param": "3",
            "result": "success",
        }
        delta = (await d.next(lambda m: "spd_lvl" in (_status(m) or {})))["print"]
        assert (delta["spd_lvl"], delta["spd_mag"], delta["msg"]) == (3, 124, 1)

        led = {"led_node": "chamber_light", "led_mode": "on", "led_on_time": 500, "led_off_time": 500}
        led |= {"loop_times": 0, "interval_time": 0}
        seq = await d.request("system", "ledctrl", **led)
        reply = await d.reply("system", seq)
        assert reply == {"sequence_id": seq, "command": "ledctrl", **led, "result": "success"}
        delta = (await d.next(lambda m: "lights_report" in (_status(m) or {})))["print"]
        assert {"node": "chamber_light", "mode": "on"} in delta["lights_report"]

        seq = await d.request("print", "gcode_line", param="M104 S200\nM140 S60\n", user_id="1")
        assert (await d.reply("print", seq))["result"] == "success"
        await d.next(lambda m: (_status(m) or {}).get("nozzle_target_temper") == 200)
        assert vp.bed.target == 60

        seq = await d.request("print", "pause", param="")  # nothing to pause: acknowledged, no change
        assert (await d.reply("print", seq))["result"] == "success"
        assert vp.gcode_state == "IDLE"
        assert [next(iter(m)) for m in vp.received] == ["print", "system", "print", "print"]


async def test_without_developer_mode_control_fails_but_status_flows(broker: LocalBroker) -> None:
    async with printer(broker, models.X1C, developer_mode=False) as vp, daemon_side(broker) as d:
        await vp.simulate_print("cube", 30, 10)
        seq = await d.request("print", "pause", param="")
        reply = await d.reply("print", seq)
        assert (reply["result"], reply["reason"], reply["param"]) == ("failed", VERIFY_FAILED_REASON, "")
        seq = await d.request("system", "ledctrl", led_node="chamber_light", led_mode="off")
        assert (await d.reply("system", seq))["result"] == "failed"
        await d.request("pushing", "pushall")
        assert (await d.full())["gcode_state"] in ("PREPARE", "RUNNING")  # still printing, still reported
        seq = await d.request("info", "get_version")
        assert (await d.reply("info", seq))["module"]


async def test_a_simulated_print_runs_to_finish(broker: LocalBroker) -> None:
    async with printer(broker, models.P1S, held=True) as vp, daemon_side(broker) as d:
        await d.request("pushing", "pushall")
        state = await d.full()
        await vp.simulate_print("cube", 2.0, 12)
        await vp.finish(steps=20)  # 20 reports over the print's 2 simulated seconds
        states, percents, layers, nozzle = [], [], [], []
        while state["gcode_state"] != "FINISH":
            delta = _status(await d.next(lambda m: _status(m) is not None))
            merge(state, delta)
            if not states or states[-1] != state["gcode_state"]:
                states.append(state["gcode_state"])
            percents.append(state["mc_percent"])
            layers.append(state["layer_num"])
            nozzle.append(state["nozzle_temper"])
        assert states == ["PREPARE", "RUNNING", "FINISH"]
        assert percents == sorted(percents) and percents[-1] == 100 and len(set(percents)) > 3
        assert layers == sorted(layers) and layers[-1] == 12 == state["total_layer_num"]
        assert max(nozzle) > 200  # heated towards the 220 degC target
        assert state["subtask_name"] == "cube" and state["mc_remaining_time"] == 0


async def test_time_follows_the_clock_real_or_held(broker: LocalBroker) -> None:
    async with printer(broker, models.P1S) as vp, daemon_side(broker) as d:  # real time: it runs itself
        await vp.simulate_print("clip", 0.5, 5)
        await d.next(lambda m: (_status(m) or {}).get("gcode_state") == "FINISH")
        assert vp.report["mc_percent"] == 100 and vp.job is not None and vp.job.state == "FINISH"

    async with printer(broker, models.P1S, held=True) as vp, daemon_side(broker) as d:
        job = await vp.simulate_print("vase", 100.0, 50)  # 10 s preparing, then 90 s printing
        await asyncio.sleep(6 / vp.report_hz)  # six ticks of the real clock: held time stays put
        assert (job.state, job.work_s, vp.report["mc_percent"]) == ("PREPARE", 0.0, 0)
        await vp.advance(55.0)  # preparing done, half of the printing
        delta = (await d.next(lambda m: (_status(m) or {}).get("gcode_state") == "RUNNING"))["print"]
        assert delta["mc_percent"] == 50 and delta["layer_num"] == 25
        vp.run_clock()
        await d.next(lambda m: (_status(m) or {}).get("mc_percent", 0) > 50)  # real time moves it on
        vp.hold()
        assert (await vp.finish()).state == "FINISH"
        await d.next(lambda m: (_status(m) or {}).get("gcode_state") == "FINISH")
        with pytest.raises(RuntimeError, match="no preparing or printing job"):
            await vp.finish()


async def test_pause_resume_and_stop_like_the_printer(broker: LocalBroker) -> None:
    async with printer(broker, models.A1) as vp, daemon_side(broker) as d:
        await vp.simulate_print("bracket", 60.0, 50, start_fraction=0.3)
        await d.request("print", "pause", param="")
        await d.next(lambda m: (_status(m) or {}).get("gcode_state") == "PAUSE")
        frozen = vp.report["mc_percent"]
        await asyncio.sleep(6 / vp.report_hz)  # six ticks of its running clock: a paused job stays put
        assert vp.report["mc_percent"] == frozen and vp.report["stg_cur"] == 16
        await d.request("print", "resume", param="")
        await d.next(lambda m: (_status(m) or {}).get("gcode_state") == "RUNNING")
        seq = await d.request("print", "stop", param="")
        assert (await d.reply("print", seq))["result"] == "success"
        delta = (await d.next(lambda m: (_status(m) or {}).get("gcode_state") == "FAILED"))["print"]
        assert delta["print_error"] == PRINT_ERROR_CANCELLED
        assert vp.nozzle.target == 0 and vp.bed.target == 0


async def test_deltas_carry_only_changed_keys(broker: LocalBroker) -> None:
    async with printer(broker, models.P1S, sensor_noise=True) as vp, daemon_side(broker) as d:
        await d.request("pushing", "pushall")
        state = await d.full()
        last_seq = int(state["sequence_id"])
        for _ in range(8):  # sensor jitter at 20 Hz
            delta = _status(await d.next(lambda m: _status(m) is not None))
            assert delta["msg"] == 1 and delta["command"] == "push_status"
            assert int(delta["sequence_id"]) == last_seq + 1  # the printer's own counter
            last_seq = int(delta["sequence_id"])
            changed = set(delta) - ENVELOPE
            assert changed and changed <= {"nozzle_temper", "bed_temper", "wifi_signal"}
            assert all(state[k] != delta[k] for k in changed)
            merge(state, delta)

    async with printer(broker, models.P1S, report_hz=0.2) as vp, daemon_side(broker) as d:
        assert await vp.set_fields(mc_percent=7, layer_num=260) == {"mc_percent": 7}  # layer_num was 260
        delta = (await d.next(lambda m: _status(m) is not None))["print"]
        seq = delta["sequence_id"]
        assert delta == {"mc_percent": 7, "command": "push_status", "msg": 1, "sequence_id": seq}
        assert next(iter(delta)) == "mc_percent"  # fields first, envelope last, as the P1S sends them


async def test_x1_style_models_push_full_reports(broker: LocalBroker) -> None:
    async with printer(broker, models.X1C), daemon_side(broker) as d:
        msgs = [_status(await d.next(lambda m: _status(m) is not None)) for _ in range(3)]
        assert [m["msg"] for m in msgs] == [0, 0, 0]
        assert all(len(m) > 80 for m in msgs)


async def test_junk_requests_do_not_hurt_and_raw_reports_pass_through(broker: LocalBroker) -> None:
    async with printer(broker, models.P1S) as vp, daemon_side(broker) as d:
        for junk in (b"\xff", b"[]", b'{"print": 5}', b'{"a": {}, "b": {}}', b'{"print": {"command": 3}}'):
            await d.client.publish(f"device/{SERIAL}/request", junk)
        await vp.publish_raw(b"not json")
        assert (await d.next(lambda m: "raw" in m))["raw"] == b"not json"
        seq = await d.request("print", "print_speed", param="9")
        assert (await d.reply("print", seq))["result"] == "failed"
        assert vp.connected
