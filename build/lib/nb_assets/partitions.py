"""Daily partitions, the pure part: dates and what a partitioned notebook must declare.

A partition key is a day, "YYYY-MM-DD"; anything else (a typo, "yesterday",
month 13) is refused before anything runs or lands.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from nb_assets.declaration import PARTITION_PARAM, NotebookAsset
from nb_assets.errors import DeclarationError
from nb_assets.spec import NotebookSpec

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def partition_day(key: str, where: str) -> date:
    """The day a partition key names; DeclarationError saying `where` it came from otherwise."""
    try:
        if not isinstance(key, str) or not _DAY.match(key):
            raise ValueError
        return date.fromisoformat(key)
    except ValueError:
        raise DeclarationError(f"{where}: partition key {key!r} is not a date (YYYY-MM-DD, e.g. '2026-01-03')") from None


def check_day(key: str, start: str, where: str) -> date:
    """The day `key` names, if it is a partition of daily partitions from `start`: from that
    day to yesterday in UTC, the days Dagster's daily partitions have (a day is a partition
    once it has ended). DeclarationError saying `where` otherwise."""
    day, first = partition_day(key, where), partition_day(start, where)
    last = datetime.now(timezone.utc).date() - timedelta(days=1)
    if not first <= day <= last:
        raise DeclarationError(f"{where}: {key} is not one of the partitions' days ({first.isoformat()} to yesterday, {last.isoformat()})")
    return day


def days(first: str, last: str, where: str) -> list[str]:
    """Every day from `first` to `last`, both included, as partition keys."""
    start, end = partition_day(first, where), partition_day(last, where)
    if end < start:
        raise DeclarationError(f"{where}: the range ends ({last}) before it starts ({first})")
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def partition_problems(decl: NotebookAsset, spec: NotebookSpec, where: str) -> list[str]:
    """What keeps a declaration's partitions from working, each naming the notebook."""
    parts = decl.partitions
    if parts is None:
        return []
    problems: list[str] = []
    try:
        partition_day(parts.start, f"{where}: DailyPartitions(start=...)")
    except DeclarationError as exc:
        problems.append(str(exc))
    if not isinstance(parts.column, str) or not _COLUMN.match(parts.column):
        problems.append(f"{where}: DailyPartitions(column={parts.column!r}) is not a column name")
    param = spec.parameter(PARTITION_PARAM)
    if param is None:
        problems.append(
            f"{where}: partitioned daily, but its parameters cell does not declare {PARTITION_PARAM!r}; "
            f'add e.g. {PARTITION_PARAM} = "2026-01-01": each run gets its day there'
        )
    elif param.type not in ("str", "none"):
        problems.append(f"{where}: parameter {PARTITION_PARAM!r} receives the day as a string ('2026-01-03'), but its default is {param.type}")
    if PARTITION_PARAM in decl.params:
        problems.append(f"{where}: params= sets {PARTITION_PARAM!r}, which a partitioned notebook receives from its partition")
    return problems
