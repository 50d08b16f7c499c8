"""Is a string a cron schedule Dagster accepts? Answered without importing Dagster.

A port of what `AutomationCondition.cron_tick_passed(cron)` checks
(`dagster._utils.schedules.is_valid_cron_string` over Dagster's vendored
croniter): after the @aliases, exactly five fields, each a comma list of
values, `*`, ranges and steps inside the field's bounds; month and weekday
names; `?` for either day; `L` for the last day of the month; `N#K` and `LN`
for a month's K-th and last weekday N; and not the 30th or 31st of February.
One deliberate difference: hashed and random fields (`H`, `R`) are refused;
Dagster refuses `H` too (it gives no hash id), and an `R` field would draw a
different schedule at every load. tests/unit/project/test_declaration_checks.py gives
Dagster and this module the same strings and expects the same verdict.
"""

from __future__ import annotations

import functools
import re

_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))  # minute, hour, day of month, month, day of week
_DAY, _MONTH, _WEEKDAY = 2, 3, 4
_MONTHS = {m: n for n, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_WEEKDAYS = {d: n for n, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_NAMES: tuple[dict[str, int | str], ...] = ({}, {}, {"l": "l"}, dict(_MONTHS), dict(_WEEKDAYS))
_EVERY = (60, 24, 31, 12, 7)  # this many values in a field means every value
_ALIASES = {
    "@midnight": "0 0 * * *", "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}
_RANGE = re.compile(r"^([^-]+)-([^-/]+)(/(\d+))?$")
_INT = re.compile(r"^\d+$")
_STAR_OR_INT = re.compile(r"^(\d+|\*)$")
_W, _M = "|".join(_WEEKDAYS), "|".join(_MONTHS)
_NTH_WEEKDAY = re.compile(rf"^(?P<pre>((?P<he>((({_W})(-({_W}))?)|(({_M})(-({_M}))?)|\w+))#)|l)(?P<last>\d+)$")
_HASHED = re.compile(r"^(h|r)(\((\d+)-(\d+)\))?(/(\d+))?$")


class _NotCron(Exception):
    pass


@functools.cache
def is_cron(text: object) -> bool:
    """True when Dagster would take `text` as a cron schedule."""
    if not isinstance(text, str):
        return False
    try:
        fields = _expand(text)
    except _NotCron:
        return False
    return not (fields[_MONTH] == [2] and fields[_DAY] in ([30], [31]))


def _expand(text: str) -> list[list[int | str]]:
    lowered = text.lower()
    fields = _ALIASES.get(lowered, lowered).split()
    if len(fields) != 5:  # croniter also reads 6 and 7 fields (seconds, years); Dagster does not
        raise _NotCron
    expanded: list[list[int | str]] = []
    nth: dict[int | str, set[int | str]] = {}
    for index, field in enumerate(fields):
        values = _field(field, index, fields, nth)
        ordered = sorted(set(values), key=lambda v: f"{v:02}" if isinstance(v, int) else v)
        # All of a day field is `*` only when the other day field is a `*` too (cron ORs the two).
        other = {_DAY: _WEEKDAY, _WEEKDAY: _DAY}.get(index)
        if len(ordered) == _EVERY[index] and (other is None or "*" in fields[other]):
            ordered = ["*"]
        expanded.append(ordered)
    if nth:  # `2#3` cannot be mixed with plain weekdays, unless those are every weekday
        plain = set(expanded[_WEEKDAY]) - set(nth) - {"*"}
        if plain and len(set(expanded[_WEEKDAY])) != _EVERY[_WEEKDAY]:
            raise _NotCron
    return expanded


def _field(field: str, index: int, fields: list[str], nth_of: dict[int | str, set[int | str]]) -> list[int | str]:
    low_bound, high_bound = _BOUNDS[index]
    if _HASHED.match(field):
        raise _NotCron
    if "?" in field:
        if field != "?" or index not in (_DAY, _WEEKDAY):
            raise _NotCron
        field = "*"
    pending: list[int | str] = list(field.split(","))
    values: list[int | str] = []
    while pending:
        item, nth = str(pending.pop()), None
        if index == _WEEKDAY and (special := _NTH_WEEKDAY.match(item)):
            if special.group("he"):
                item, nth = special.group("he"), int(special.group("last"))
                if not 1 <= nth <= 5:
                    raise _NotCron
            else:
                item, nth = special.group("last"), "l"
        text = re.sub(r"^\*(/.+)$", f"{low_bound}-{high_bound}\\1", item)
        match = _RANGE.search(text)
        if not match:  # `10/5` is `10-59/5`
            text = re.sub(r"^(.+)/(.+)$", f"\\1-{high_bound}/\\2", item)
            match = _RANGE.search(text)
        if match:
            pending += [v for v in _range(match, index) if v not in pending] if nth in (None, "l") else [
                f"{v}#{nth}" for v in _range(match, index) if f"{v}#{nth}" not in pending
            ]
            continue
        if text.startswith("-"):
            raise _NotCron
        value = _alias(_int_or_same(text if _STAR_OR_INT.search(text) else _name(index, text)), index)
        if value not in ("*", "l") and not low_bound <= int(value) <= high_bound:
            raise _NotCron
        values.append(value)
        if index == _WEEKDAY and nth:
            nth_of.setdefault(value, set()).add(nth)
    return values


def _range(match: re.Match[str], index: int) -> list[int]:
    low_bound, high_bound = _BOUNDS[index]
    low, high, step = match.group(1), match.group(2), int(match.group(4) or 1)
    if index == _DAY and high == "l":
        high = "31"
    ends = [end if _INT.search(end) else _name(index, end) for end in (low, high)]
    if not all(_INT.search(str(end)) for end in ends):
        raise _NotCron
    first, last = (_alias(int(end), index) for end in ends)
    if max(first, last) > high_bound or step == 0:
        raise _NotCron
    if first == last:  # `mon-mon`: the whole cycle
        return list(range(low_bound, high_bound + 1, step))
    if first < last:
        return list(range(first, last + 1, step))
    # Backwards (`fri-mon`, `nov-feb`): to the end of the cycle, then on from its start.
    values = list(range(first, high_bound + 1, step))
    skip = 0
    if values:
        cycle = list(range(low_bound, high_bound + 1))
        after = list(reversed(cycle)).index(values[-1])
        if cycle.index(values[-1]) + step > len(cycle) and after < step:
            skip = step - after
    return values + list(range(low_bound + skip, last + 1, step))


def _name(index: int, name: str) -> int | str:
    try:
        return _NAMES[index][name]
    except KeyError:
        raise _NotCron from None


def _int_or_same(value: int | str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def _alias(value: int | str, index: int) -> int | str:
    return 0 if index == _WEEKDAY and value == 7 else value  # Sunday is 0 and 7
