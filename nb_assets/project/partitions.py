"""Daily partitions, the pure part: dates, what a partitioned notebook must declare, and
which source tables are partitioned.

A partition key is a day, "YYYY-MM-DD"; anything else (a typo, "yesterday",
month 13) is refused before anything runs or lands.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from nb_assets.project.declaration import PARTITION_PARAM, DailyPartitions, NotebookAsset, at
from nb_assets.errors import DeclarationError
from nb_assets.project.instances import label
from nb_assets.spec import NotebookSpec

if TYPE_CHECKING:
    from nb_assets.project.declare import DeclaredNotebook

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


def source_partitions(declared: Sequence[DeclaredNotebook], written: Collection[str]) -> dict[str, DailyPartitions]:
    """Source table → its daily partitions, for sources only partitioned notebooks read
    (starting at the earliest reader's start). A source that an unpartitioned notebook
    also reads stays unpartitioned, since its landings are not a day's data."""
    readers: dict[str, list[DailyPartitions | None]] = {}
    for item in declared:
        for table in item.spec.input_tables:
            if table not in written:
                readers.setdefault(table, []).append(item.decl.partitions)
    return {
        table: DailyPartitions(start=min(p.start for p in parts if p is not None))
        for table, parts in readers.items()
        if all(p is not None for p in parts)
    }


def partitioned_trigger_problems(declared: Sequence[DeclaredNotebook]) -> list[str]:
    """A partitioned notebook waiting on an unpartitioned input would run every day since
    its start at each landing (Dagster maps the one input to all days): refused."""
    source_parts = source_partitions(declared, {t for d in declared for t in d.spec.output_tables})
    day_tables = set(source_parts) | {t for d in declared if d.decl.partitions for t in d.spec.output_tables}
    return [
        at(d.decl, f"{label(d.decl, d.spec.path)}: on_inputs_landed=True on a daily-partitioned notebook needs daily inputs, "
                   f"but {t} is not partitioned (an unpartitioned notebook writes it, or one reads it); every landing would "
                   "run every day since the start")
        for d in declared if d.decl.partitions and d.decl.on_inputs_landed
        for t in d.spec.input_tables if t not in day_tables
    ]
