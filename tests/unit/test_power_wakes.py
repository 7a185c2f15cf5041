"""The wake rule (power/wakes.py) shared by the queue's wake hook and auto-off: a printer switched
on for a job is held on until the job started or was given up there, and is not switched on for the
same job again before a growing back-off; and what the queue tells it (jobs/dispatch.still_wanted)."""

from __future__ import annotations

import math

import pytest

from bambu_edge.jobs.dispatch import Tray, still_wanted
from bambu_edge.power.rules import AutoOffTimer, PrinterFacts
from bambu_edge.power.setting import AutoOff
from bambu_edge.power.wakes import WakeRule
from tests.unit.test_dispatch import job, printer

MIN = 60.0


def woken_and_on(rule: WakeRule, pid: str = "p", job_id: int = 7, now: float = 0.0) -> None:
    assert rule.wake_in(pid, job_id, now) == 0
    rule.woken(pid, job_id, now)
    rule.powered(pid, True, now + 5)


def test_a_printer_switched_on_for_a_job_is_held_until_the_job_starts():
    rule = WakeRule(hold_max_s=30 * MIN)
    assert not rule.held("p", 0.0)
    woken_and_on(rule)
    assert rule.held("p", 10 * MIN)
    assert rule.wake_in("p", 7, 10 * MIN) == math.inf  # on already: nothing to switch on
    rule.review("p", "waiting", 10 * MIN)
    assert rule.held("p", 10 * MIN)
    rule.review("p", "started", 11 * MIN)
    assert not rule.held("p", 11 * MIN) and rule.wake_in("p", 7, 11 * MIN) == 0


def test_given_up_ends_the_hold_and_the_same_job_waits_out_a_growing_back_off():
    rule = WakeRule(backoff_s=(15 * MIN, 60 * MIN))
    t = 0.0
    for wait in (15 * MIN, 60 * MIN, 60 * MIN):  # the last step repeats
        woken_and_on(rule, now=t)
        rule.review("p", "given_up", t + MIN)
        assert not rule.held("p", t + MIN)
        assert rule.wake_in("p", 7, t + MIN) == pytest.approx(wait)
        assert rule.wake_in("p", 7, t + MIN + wait - 1) == pytest.approx(1)
        assert rule.wake_in("p", 8, t + MIN) == 0  # another job may switch it on at once
        t += MIN + wait
    # A start forgives the misses.
    woken_and_on(rule, now=t)
    rule.review("p", "started", t + MIN)
    assert rule.wake_in("p", 7, t + MIN) == 0


def test_switched_off_before_its_job_started_ends_the_hold_as_a_miss():
    rule = WakeRule(backoff_s=(15 * MIN,))
    rule.woken("p", 7, 0.0)
    rule.powered("p", False, 1.0)  # an "off" from before the switch went on: still held
    assert rule.held("p", 2.0)
    rule.powered("p", True, 3.0)
    rule.powered("p", False, 10 * MIN)  # by hand, at the plug, or auto-off after the hold
    assert not rule.held("p", 10 * MIN)
    assert rule.wake_in("p", 7, 10 * MIN) == pytest.approx(15 * MIN)


def test_a_hold_that_gets_no_verdict_ends_by_itself():
    rule = WakeRule(hold_max_s=30 * MIN, backoff_s=(15 * MIN,))
    woken_and_on(rule)
    assert rule.held("p", 30 * MIN - 1) and not rule.held("p", 30 * MIN)
    rule.review("p", "waiting", 30 * MIN)
    assert "p" not in rule.holds and rule.wake_in("p", 7, 30 * MIN) == pytest.approx(15 * MIN)


def test_repeated_wakes_before_the_printer_came_on_keep_one_hold():
    rule = WakeRule()
    rule.woken("p", 7, 0.0)
    assert rule.wake_in("p", 7, 5.0) == 0  # not on yet: asking again is harmless (power ignores it)
    rule.woken("p", 7, 5.0)
    assert rule.holds["p"].since == 0.0


def test_misses_of_jobs_gone_from_the_queue_are_forgotten():
    rule = WakeRule()
    woken_and_on(rule, "p", 7)
    rule.review("p", "given_up", MIN)
    woken_and_on(rule, "q", 8)
    rule.review("q", "given_up", MIN)
    rule.forget_jobs_but({8})
    assert set(rule.misses) == {("q", 8)}


# --- auto-off follows it ----------------------------------------------------------------------------


def test_auto_off_waits_while_held_and_counts_its_minutes_from_the_end_of_the_hold():
    t = AutoOffTimer(AutoOff(idle_min=10))
    rest = PrinterFacts("connected", "IDLE", 30.0)
    for now in (0.0, 20 * MIN, 40 * MIN):
        assert not t.observe(rest, True, now, held=True)
    assert not t.observe(rest, True, 41 * MIN)  # released: the ten minutes start now
    assert not t.observe(rest, True, 50 * MIN)
    assert t.observe(rest, True, 51 * MIN)


# --- what the queue tells it ------------------------------------------------------------------------


def test_the_queue_gives_a_woken_printer_up_when_it_cannot_take_the_job():
    p = printer()
    assert still_wanted(job(), p)
    assert still_wanted(job(target="p1s"), p)
    assert not still_wanted(job(target="other"), p)
    assert not still_wanted(job(copies_left=0), p)  # all copies placed (or being sent)
    assert not still_wanted(job(), printer(model="A1"))  # it reported another model
    assert not still_wanted(job(), printer(trays=(Tray(0, "PETG", "#FFFFFFFF", 50),)))  # no black PLA
    # What it has not reported yet does not rule it out.
    assert still_wanted(job(), printer(model=None, nozzle_diameter=None, trays=()))
