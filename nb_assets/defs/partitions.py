"""Daily partitions, the Dagster part: partitions definitions for notebooks and their source tables.

A source table is partitioned when every declared notebook that reads it is
partitioned (partitions.source_partitions): then a landing for one day is that
day's partition, and only that day of each reader runs.
"""

from __future__ import annotations

import functools

import dagster as dg

from nb_assets.project.declaration import DailyPartitions
from nb_assets.project.partitions import source_partitions  # re-exported: which sources are partitioned is Dagster-free

__all__ = ["daily_partitions_def", "source_partitions"]


@functools.cache
def _daily(start: str) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start)


def daily_partitions_def(parts: DailyPartitions) -> dg.DailyPartitionsDefinition:
    """One partition per day from `parts.start` to yesterday (the last whole day), keys "YYYY-MM-DD"."""
    return _daily(parts.start)
