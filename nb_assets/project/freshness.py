"""How fresh a notebook's outputs must be: the `freshness=` field, read and judged without Dagster.

Two forms, both of Dagster's freshness policies (dagster/_core/definitions/freshness.py):

- a maximum age, `"26h"`, `"90m"`, `"2d"`, `"1d 2h"`: the outputs must have
  been materialized within that long (Dagster's `FreshnessPolicy.time_window`);
- a daily deadline, `"by 07:00"` (UTC) or `"by 07:00 Europe/Berlin"`: by each
  day's 07:00 the outputs must have been materialized within the 24 hours
  before it (`FreshnessPolicy.cron("0 7 * * *", lower_bound_delta=24h, timezone)`).

Dagster refuses windows under one minute, so this does too, with the notebook
named. `stale_from` is the one rule both the freshness sensor and `nb-assets
status` apply: it says when an asset last materialized at `last_success` goes
stale, the same answer Dagster's own evaluators give for these policies.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

DAY_S = 86400
MIN_WINDOW_S = 60  # Dagster: "fail_window cannot be less than 1 minute"
_UNITS = {"d": DAY_S, "h": 3600, "m": 60}
_AGE = re.compile(r"^\s*(?:\d+\s*[dhm]\s*)+$")
_PART = re.compile(r"(\d+)\s*([dhm])")
_DEADLINE = re.compile(r"^\s*by\s+(\d{1,2}):(\d{2})(?:\s+(\S+))?\s*$", re.IGNORECASE)
EXAMPLES = "'26h', '90m', '2d', '1d 2h' (a maximum age) or 'by 07:00 Europe/Berlin' (a daily deadline)"


@dataclass(frozen=True)
class Freshness:
    """A parsed `freshness=`: either `max_age_s`, or a daily deadline at `hour:minute` in `timezone`."""

    text: str
    max_age_s: int | None = None
    hour: int = 0
    minute: int = 0
    timezone: str = "UTC"

    @property
    def is_deadline(self) -> bool:
        return self.max_age_s is None

    @property
    def deadline_cron(self) -> str:
        """The deadline as the cron schedule Dagster's CronFreshnessPolicy takes."""
        return f"{self.minute} {self.hour} * * *"

    def describe(self) -> str:
        if self.max_age_s is not None:
            return f"materialized within the last {_duration(self.max_age_s)}"
        return f"materialized by {self.hour:02d}:{self.minute:02d} {self.timezone} each day"

    def stale_from(self, last_success: float | None, watched_since: float) -> float:
        """The moment the outputs are stale, given their last materialization (None: never).

        A notebook that never materialized is judged from `watched_since` (when the
        freshness sensor first saw it), so one that never runs at all is not silent."""
        if self.max_age_s is not None:
            return (last_success if last_success is not None else watched_since) + self.max_age_s
        # Dagster's CronFreshnessPolicy: at deadline T, fresh iff last_success >= T - 24h;
        # so the first deadline missed is the first one after last_success + 24h.
        after = last_success + DAY_S if last_success is not None else watched_since
        return self._next_deadline(after)

    def _next_deadline(self, after: float) -> float:
        zone = zoneinfo.ZoneInfo(self.timezone)
        moment = datetime.fromtimestamp(after, tz=zone)
        day = moment.date()
        for _ in range(3):  # today's, else tomorrow's (a DST gap moves it, never by a day)
            candidate = datetime(day.year, day.month, day.day, self.hour, self.minute, tzinfo=zone).timestamp()
            if candidate > after:
                return candidate
            day += timedelta(days=1)
        raise AssertionError("unreachable: a daily deadline recurs within two days")


class FreshnessError(ValueError):
    """A `freshness=` value that is neither form; the message says what is accepted."""


def parse_freshness(value: object) -> Freshness:
    """`value` read as one of the two forms; a FreshnessError saying why not."""
    if not isinstance(value, str):
        raise FreshnessError(f"freshness={value!r} must be a string: {EXAMPLES}")
    if _AGE.match(value):
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(value))
        if seconds < MIN_WINDOW_S:
            raise FreshnessError(f"freshness={value!r} is under one minute, which Dagster's freshness policies refuse")
        return Freshness(value, max_age_s=seconds)
    match = _DEADLINE.match(value)
    if match is None:
        raise FreshnessError(f"freshness={value!r} is not a freshness rule: {EXAMPLES}")
    hour, minute, zone = int(match[1]), int(match[2]), match[3] or "UTC"
    if hour > 23 or minute > 59:
        raise FreshnessError(f"freshness={value!r}: {match[1]}:{match[2]} is not a time of day (00:00 to 23:59)")
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise FreshnessError(f"freshness={value!r}: {zone!r} is not an IANA time zone (e.g. 'Europe/Berlin')") from None
    return Freshness(value, hour=hour, minute=minute, timezone=zone)


def freshness_problems(value: object, where: str) -> list[str]:
    """The declaration check: [] for None or a valid rule, else one line naming `where`."""
    if value is None:
        return []
    try:
        parse_freshness(value)
    except FreshnessError as exc:
        return [f"{where}: {exc}"]
    return []


def _duration(seconds: int) -> str:
    parts = []
    for unit, size in _UNITS.items():
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return " ".join(parts) or "0m"


def iso(timestamp: float | None) -> str | None:
    """A timestamp as people and JSON read it: UTC, to the second."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
