"""The event bus: bounded subscriptions that drop the oldest, filters asked in the publisher's turn,
and listeners that run there and cannot break the publisher."""

from __future__ import annotations

import logging

import pytest

from bambu_edge.bus import Event, EventBus


def test_a_slow_subscriber_loses_its_oldest_events_and_the_publisher_never_waits():
    bus = EventBus()
    with bus.subscribe("printer", maxsize=2) as sub:
        for i in range(5):
            bus.publish(Event("printer", "p", {"i": i}))
        assert sub.dropped == 3
        assert [sub.get_nowait().data["i"], sub.get_nowait().data["i"]] == [3, 4]
        assert sub.get_nowait() is None


def test_a_filter_keeps_unwanted_events_out_of_the_queue():
    bus = EventBus()
    with bus.subscribe("printer", "command", maxsize=2, where=lambda e: e.data.get("link")) as sub:
        for i in range(10):  # a flood of events the filter refuses takes no queue slot
            bus.publish(Event("printer", "p", {"link": False, "i": i}))
        bus.publish(Event("printer", "p", {"link": True, "i": 10}))
        bus.publish(Event("history", "p", {"link": True}))  # not a subscribed kind
        assert sub.dropped == 0
        assert sub.get_nowait().data["i"] == 10
        assert sub.get_nowait() is None


def test_a_filter_that_fails_lets_the_event_through(caplog: pytest.LogCaptureFixture):
    bus = EventBus()
    with bus.subscribe("printer", where=lambda e: e.data["missing"]) as sub:
        bus.publish(Event("printer", "p", {}))
        assert sub.get_nowait() is not None
    assert "event filter failed" in caplog.text


def test_listeners_run_in_the_publishers_turn_in_order_and_a_failing_one_stops_nothing(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.ERROR)
    bus = EventBus()
    seen: list[int] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.listen("printer", callback=broken)
    listener = bus.listen("printer", callback=lambda e: seen.append(e.data["i"]))
    with bus.subscribe("printer") as sub:
        bus.publish(Event("printer", "p", {"i": 1}))
        bus.publish(Event("command", "p", {"i": 99}))  # another kind: not heard
        bus.publish(Event("printer", "p", {"i": 2}))
        assert seen == [1, 2]  # already, before any task ran
        assert sub.get_nowait().data["i"] == 1  # the subscriber still got its events
    listener.close()
    bus.publish(Event("printer", "p", {"i": 3}))
    assert seen == [1, 2]
    assert "a listener failed on a printer event" in caplog.text
