"""Daily partitions, the Dagster part: partitions definitions for notebooks and their source tables.

A source table is partitioned when every declared notebook that reads it is
partitioned: then a landing for one day is that day's partition, and only that
day of each reader runs. A source that an unpartitioned notebook also reads
stays unpartitioned, since its landings are not a day's data.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import dagster as dg

from nb_assets.declaration import DailyPartitions

if TYPE_CHECKING:
    from nb_assets.build_assets import DeclaredNotebook


@functools.cache
def _daily(start: str) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start)


def daily_partitions_def(parts: DailyPartitions) -> dg.DailyPartitionsDefinition:
    """One partition per day from `parts.start` to yesterday (the last whole day), keys "YYYY-MM-DD"."""
    return _daily(parts.start)


def source_partitions(declared: Sequence[DeclaredNotebook], written: Collection[str]) -> dict[str, DailyPartitions]:
    """Source table → its daily partitions, for sources only partitioned notebooks read
    (starting at the earliest reader's start)."""
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
