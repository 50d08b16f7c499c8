"""The next tick of a cron schedule in a time zone, as Dagster's automation would fire it.

Dagster's own iterator is private and croniter is not a dependency, so this
reads the 5-field forms Dagster accepts (project/cron_syntax.py says which):
`*`, values, names, ranges (backwards too), steps, lists, `?`, `L` as a day,
`N#K` and `LN` as weekdays, and the @aliases. Day of month and day of week
are ORed when both are restricted, as cron does.

Daylight saving time, as Dagster documents it: a tick that does not exist (the
spring-forward hour) fires at the end of the gap, except for schedules that
run every hour, which skip it; a tick that happens twice (fall back) fires
once, the later time, except for every-hour schedules, which fire at both.

Pure: no Dagster, no Docker. Used for when a spare made ahead must be ready
(sandbox/ahead.py); a wrong answer costs a run its warm start, nothing else.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

__all__ = ["next_tick"]

_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))  # minute, hour, day of month, month, day of week
_NAMES: tuple[dict[str, int], ...] = (
    {}, {}, {},
    {m: n for n, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)},
    {d: n for n, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
)
_ALIASES = {
    "@midnight": "0 0 * * *", "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}
_NTH = re.compile(r"^(.+)#([1-5])$")
_LAST_WEEKDAY = re.compile(r"^l([0-7]|[a-z]{3})$")
_HORIZON_DAYS = 366 * 8  # a Feb 29 that is also a given weekday recurs within 28 years; ORed days far sooner


class _Schedule:
    """A cron string's fields as sets; days keep the `L`, `N#K` and `LN` forms apart."""

    def __init__(self, cron: str) -> None:
        fields = _ALIASES.get(cron.strip().lower(), cron.strip().lower()).split()
        if len(fields) != 5:
            raise ValueError(f"not a 5-field cron schedule: {cron!r}")
        self.minutes = sorted(_values(fields[0], 0))
        self.hours = sorted(_values(fields[1], 1))
        self.months = _values(fields[3], 3)
        self.last_day = False
        self.days: set[int] = set()
        for item in fields[2].replace("?", "*").split(","):
            if item == "l":
                self.last_day = True
            else:
                self.days |= _values(item, 2)
        self.weekdays: set[int] = set()
        self.nth: set[tuple[int, int]] = set()  # (weekday, K): the K-th such weekday of the month
        self.last_weekdays: set[int] = set()
        for item in fields[4].replace("?", "*").split(","):
            if nth := _NTH.match(item):
                self.nth |= {(w, int(nth.group(2))) for w in _values(nth.group(1), 4)}
            elif last := _LAST_WEEKDAY.match(item):
                self.last_weekdays |= _values(last.group(1), 4)
            else:
                self.weekdays |= _values(item, 4)
        # A day field is `*` when it says so, or when it covers every value and the other one has a `*`
        # (croniter's rule, which Dagster follows); two restricted day fields are ORed.
        every_day = self.days == set(range(1, 32)) and not self.last_day
        every_weekday = self.weekdays == set(range(7)) and not (self.nth or self.last_weekdays)
        self.day_star = fields[2] in ("*", "?") or (every_day and "*" in fields[4])
        self.weekday_star = fields[4] in ("*", "?") or (every_weekday and "*" in fields[2])
        self.every_hour = self.hours == list(range(24))

    def on(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        month_end = calendar.monthrange(day.year, day.month)[1]
        weekday = (day.weekday() + 1) % 7  # cron: Sunday is 0
        by_day = day.day in self.days or (self.last_day and day.day == month_end)
        by_weekday = (weekday in self.weekdays or (weekday, (day.day - 1) // 7 + 1) in self.nth
                      or (weekday in self.last_weekdays and day.day + 7 > month_end))
        if self.day_star and self.weekday_star:
            return True
        if self.day_star:
            return by_weekday
        if self.weekday_star:
            return by_day
        return by_day or by_weekday


def _values(field: str, index: int) -> set[int]:
    low, high = _BOUNDS[index]
    out: set[int] = set()
    for item in field.replace("?", "*").split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step <= 0:
            raise ValueError(f"bad step in {field!r}")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first, last = (_number(end, index) for end in base.split("-", 1))
        else:
            first = _number(base, index)
            last = high if step_text else first  # `10/5` is `10-59/5`
        if first <= last:
            out.update(range(first, last + 1, step))
        else:  # backwards (`fri-mon`): to the end of the cycle, then on from its start
            cycle = list(range(first, high + 1)) + list(range(low, last + 1))
            out.update(cycle[::step])
    if index == 4:
        out = {0 if v == 7 else v for v in out}
    if not all(low <= v <= high for v in out) and index != 4:
        raise ValueError(f"out of range: {field!r}")
    return out


def _number(text: str, index: int) -> int:
    if text.isdigit():
        value = int(text)
        if index == 4 and value == 7:
            return 7  # Sunday; folded to 0 once the range is expanded
        return value
    try:
        return _NAMES[index][text]
    except KeyError:
        raise ValueError(f"not a cron value: {text!r}") from None


def _ticks_on(schedule: _Schedule, day: dt.date, zone: ZoneInfo) -> Iterator[dt.datetime]:
    """The day's ticks as aware datetimes (not always in order), with Dagster's DST rules applied."""
    for hour in schedule.hours:
        for minute in schedule.minutes:
            wall = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
            early, late = wall.replace(fold=0), wall.replace(fold=1)
            if not _exists(wall):
                if not schedule.every_hour:  # the end of the gap: 02:30 in a skipped hour fires at 03:00
                    gap = abs(late.utcoffset() - early.utcoffset())  # type: ignore[operator]
                    yield wall.replace(minute=0) + gap  # wall-clock arithmetic: the first time that exists
                continue
            if early.utcoffset() != late.utcoffset():  # happens twice
                if schedule.every_hour:
                    yield early
                yield late
            else:
                yield wall


def _exists(wall: dt.datetime) -> bool:
    back = wall.astimezone(dt.timezone.utc).astimezone(wall.tzinfo)
    return back.replace(tzinfo=None, fold=0) == wall.replace(tzinfo=None, fold=0)


def next_tick(cron: str, timezone: str = "UTC", after: float | None = None) -> float | None:
    """Epoch seconds of the first tick of `cron`, read in `timezone`, strictly after `after`
    (default: now); None when none comes within eight years or the schedule cannot be read."""
    try:
        schedule = _Schedule(cron)
        zone = ZoneInfo(timezone)
    except (ValueError, KeyError, OSError):
        return None
    after = dt.datetime.now(dt.timezone.utc).timestamp() if after is None else after
    # A day early: a tick's local day may start before `after`'s in UTC terms.
    day = dt.datetime.fromtimestamp(after, zone).date() - dt.timedelta(days=1)
    for _ in range(_HORIZON_DAYS):
        if schedule.on(day):
            # Sorted: an every-hour schedule's doubled hour interleaves its two passes.
            later = sorted(t.timestamp() for t in _ticks_on(schedule, day, zone) if t.timestamp() > after)
            if later:
                return later[0]
        day += dt.timedelta(days=1)
    return None
