"""Switching a printer on for a queued job, and keeping it on until that job has had its chance.
Pure: the clock is a number the caller passes in.

The one rule the queue's wake hook (jobs/dispatcher.py) and auto-off (service.py, through
``Watch.held``) both follow, so that they cannot work against each other:

* A printer switched on for job X at t is *held*: auto-off leaves it alone (its idle minutes start
  when the hold ends) until job X has started there (the printer prints), or was given up there
  (the job is done, failed, removed or placed elsewhere, or the printer, once it reported, cannot
  take it), or the printer went off anyway (by hand, at the plug), or ``hold_max_s`` passed (a
  verdict that never comes must not keep a printer on for ever).
* A hold that ended without the job starting was a wasted wake: the same printer is switched on
  for the same job again only after a back-off that grows with each one (``backoff_s``), so a job
  that cannot start there never switches a printer off and on in a loop. A start forgives them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

WAKE_BACKOFF_S = (15 * 60.0, 60 * 60.0, 4 * 3600.0)
HOLD_MAX_S = 30 * 60.0

# What the queue says of a held printer's job after each decision.
Verdict = Literal["started", "waiting", "given_up"]


@dataclass(slots=True)
class Hold:
    job_id: int
    since: float  # when the printer was switched on for the job
    on_seen: bool = False  # its switch has said "on" since


@dataclass(frozen=True, slots=True)
class Misses:
    count: int  # wakes for this job that ended without it starting
    last: float  # when the last of them ended


@dataclass
class WakeRule:
    backoff_s: tuple[float, ...] = WAKE_BACKOFF_S
    hold_max_s: float = HOLD_MAX_S
    holds: dict[str, Hold] = field(default_factory=dict)  # printer -> its hold
    misses: dict[tuple[str, int], Misses] = field(default_factory=dict)  # (printer, job) -> misses

    # --- the queue's wake hook ----------------------------------------------------------------------

    def wake_in(self, printer_id: str, job_id: int, now: float) -> float:
        """Seconds until this printer may be switched on for this job: 0 now, inf while it is held
        on (there is nothing to switch on)."""
        hold = self.holds.get(printer_id)
        if hold is not None and hold.on_seen:
            return math.inf
        miss = self.misses.get((printer_id, job_id))
        if miss is None:
            return 0.0
        wait = self.backoff_s[min(miss.count, len(self.backoff_s)) - 1]
        return max(miss.last + wait - now, 0.0)

    def woken(self, printer_id: str, job_id: int, now: float) -> None:
        """The printer is being switched on for the job (a repeat before it came on changes nothing)."""
        hold = self.holds.get(printer_id)
        if hold is None or hold.job_id != job_id:
            self.holds[printer_id] = Hold(job_id, now)

    def review(self, printer_id: str, verdict: Verdict, now: float) -> None:
        """What the queue's decision says of the held printer's job."""
        hold = self.holds.get(printer_id)
        if hold is None:
            return
        if verdict == "started":
            del self.holds[printer_id]
            self.misses.pop((printer_id, hold.job_id), None)
        elif verdict == "given_up" or now - hold.since >= self.hold_max_s:
            self._missed(printer_id, now)

    def forget_jobs_but(self, job_ids: set[int]) -> None:
        """Drop the misses of jobs that are no longer in the queue."""
        for key in [k for k in self.misses if k[1] not in job_ids]:
            del self.misses[key]

    # --- what the switch says -------------------------------------------------------------------------

    def powered(self, printer_id: str, on: bool, now: float) -> None:
        """The printer's switch said on or off (switched by anyone)."""
        hold = self.holds.get(printer_id)
        if hold is None:
            return
        if on:
            hold.on_seen = True
        elif hold.on_seen:  # off again before its job started: the hold is over
            self._missed(printer_id, now)

    # --- auto-off -------------------------------------------------------------------------------------

    def held(self, printer_id: str, now: float) -> bool:
        """Must auto-off leave this printer on for now?"""
        hold = self.holds.get(printer_id)
        return hold is not None and now - hold.since < self.hold_max_s

    def _missed(self, printer_id: str, now: float) -> None:
        hold = self.holds.pop(printer_id)
        key = (printer_id, hold.job_id)
        before = self.misses.get(key)
        self.misses[key] = Misses((before.count if before else 0) + 1, now)
