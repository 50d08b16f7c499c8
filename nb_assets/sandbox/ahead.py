"""Spares for runs known in advance: when to boot them, how long they may wait, how many may idle.

A warm spare made after every run (sandbox/spares.py) serves runs that come
back to back: a chain's next step, a backfill's next day. A notebook run once
a day never meets one; its spare expired hours before. But its next run is
known: the next tick of its cron. A spare made for it is started at once and
*boots* (papermill imported, kernel started) only BOOT_AT = due - lead, by
itself, inside its container (inbox/supervisor.py): until then it holds a
sleeping supervisor (about 10 MB), not a booted kernel (about 150 MB), and no
host process has to stay alive to wake it. It waits for its run until
due + grace, then ends by itself, like any unclaimed spare, so a spare whose
host died is gone at its claim-by too. Each spare still serves one run only.

A declared notebook's next run is its cron's next tick in its time zone
(next_run_at, over sandbox/cron_ticks.py); the Dagster resource hands it to
the Docker sandbox before the run (expect_next_run), whose spare made after
the run is then one for that tick.

Pure: no Docker, no Dagster. Settings (environment):
    NB_ASSETS_SPARE_LEAD_S     boot this long before the run is due (default 30)
    NB_ASSETS_SPARE_GRACE_S    wait this long after it is due (default 600: the
                               sensor's interval and the queue come first)
    NB_ASSETS_MAX_IDLE_SPARES  booted spares of this user on this host (or
                               pool) that may wait at once (default 8); one
                               made ahead counts once it boots
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nb_assets.sandbox.cron_ticks import next_tick

__all__ = [
    "SpareWindow", "expect_next_run", "grace_s", "idle_held_mb_s", "lead_s", "max_idle_spares", "next_run_at",
    "spare_window",
]


def lead_s() -> float:
    return float(os.environ.get("NB_ASSETS_SPARE_LEAD_S", "30"))


def grace_s() -> float:
    return float(os.environ.get("NB_ASSETS_SPARE_GRACE_S", "600"))


def max_idle_spares() -> int:
    return int(os.environ.get("NB_ASSETS_MAX_IDLE_SPARES", "8"))


@dataclass(frozen=True)
class SpareWindow:
    """A spare for a run due at `due`: it boots at `boot_at` (0: as soon as it starts) and is
    claimable until `claim_by`, all in epoch seconds."""

    due: float
    boot_at: float
    claim_by: float


def spare_window(due: float, now: float, *, lead: float | None = None, grace: float | None = None,
                 min_claim_s: float = 0.0) -> SpareWindow:
    """The window of a spare made at `now` for a run due at `due`. A run due within `lead`
    gets a spare that boots at once; `min_claim_s` keeps it claimable at least that long."""
    lead = lead_s() if lead is None else lead
    grace = grace_s() if grace is None else grace
    boot_at = due - lead
    claim_by = max(due + grace, now + min_claim_s)
    return SpareWindow(due=due, boot_at=0.0 if boot_at <= now else boot_at, claim_by=claim_by)


def idle_held_mb_s(windows: Iterable[SpareWindow], claimed_at: Iterable[float], *, idle_mb: float,
                   booted_mb: float, made_at: Iterable[float]) -> float:
    """Memory held by spares while they wait, in MB·s: `idle_mb` from being made until they boot,
    `booted_mb` from booting until their run claims them (or their claim-by, for None)."""
    total = 0.0
    for window, claimed, made in zip(windows, claimed_at, made_at):
        end = window.claim_by if claimed is None else min(claimed, window.claim_by)
        boot = max(made, window.boot_at or made)
        total += idle_mb * max(0.0, min(boot, end) - made) + booted_mb * max(0.0, end - boot)
    return total


def next_run_at(cron: str | None, timezone: str | None = None, now: float | None = None) -> float | None:
    """When a notebook declared with `cron` (read in `timezone`, default UTC) runs next, in epoch
    seconds: the first tick after `now`, as Dagster fires it across DST. None without a cron."""
    if not cron:
        return None
    return next_tick(cron, timezone or "UTC", now)


def expect_next_run(sandbox: Any, cron: str | None, timezone: str | None = None, now: float | None = None) -> float | None:
    """Tell a sandbox that keeps spares (DockerSandbox.next_run_at) when this notebook runs next, so
    the spare it makes after this run is for that tick; other sandboxes are left alone."""
    due = next_run_at(cron, timezone, now)
    if due is not None and hasattr(sandbox, "next_run_at"):
        sandbox.next_run_at = due
    return due
