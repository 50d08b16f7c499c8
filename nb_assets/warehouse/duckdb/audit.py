"""A DuckDB load's output checks: on the load's own connection, after the write, before the commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from nb_assets.warehouse.base import PartitionLoad
from nb_assets.warehouse.checks import CheckRun, audit
from nb_assets.warehouse.deadline import Deadline


def audit_in_transaction(
    con: duckdb.DuckDBPyConnection, notebook: str, checks: CheckRun | None, tables: Sequence[str], part: PartitionLoad | None = None,
    deadline: Deadline | None = None,
) -> None:
    """The load's checks (warehouse/checks.py), on its connection, after the rows are written and before
    the commit. File and network access go off first: the rows are in, and a check reads tables only."""
    if checks is None or not checks.for_tables(tables):
        return
    con.execute("SET enable_external_access = false")  # one way: the connection cannot turn it back on

    def fetch(query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cursor = con.execute(query)
        return [d[0] for d in cursor.description or ()], cursor.fetchall()

    # Inside the load's own deadline, the checks have theirs (checks_timeout): the engine is interrupted at the earlier.
    checks_deadline = (deadline or Deadline.unlimited("load")).sub("checks_timeout")
    with checks_deadline.watching(con.interrupt, notebook, f"the output checks of {', '.join(tables)}"):
        audit(fetch, notebook, checks, tables, partition_column=part.column if part else None, day=part.day if part else None)
