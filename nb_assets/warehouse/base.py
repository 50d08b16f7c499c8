"""The warehouse's shared layer: the interface every backend implements, and the plain names both use.

`Warehouse` is what the rest of nb_assets talks to; `DuckDBWarehouse`
(warehouse.py) and `PostgresWarehouse` (warehouse/postgres/warehouse.py) implement it and
warehouse.backends chooses between them. This module imports no driver and no
pyarrow, so naming a request or quoting a table loads neither backend.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

# Every table a notebook loads says who wrote it, in the table's comment: an ad hoc
# `nb-assets run` replaces only tables that name its own notebook (runs/guard.py).
from nb_assets.warehouse.writer import Writer, comment_text

if TYPE_CHECKING:
    from nb_assets.sql.see_through import Catalog
    from nb_assets.warehouse.checks import CheckRun
    from nb_assets.warehouse.deadline import Deadline

LoadMode = Literal["append", "replace"]  # how a landed file meets the table's rows (declaration.FileDrop, land)


@dataclass(frozen=True)
class PrefetchRequest:
    name: str
    query: str
    params: Mapping[str, Any]  # only the `$names` the query uses
    cell: int
    dest: Path
    # Declared sources the query reads (`source('x')`, compiled to a relation name) → their fetched Parquet.
    sources: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class TableDescription:
    table: str
    rows: int
    columns: tuple[tuple[str, str], ...]  # (name, type)


@dataclass(frozen=True)
class PartitionLoad:
    column: str  # the date column that says which day a row belongs to
    day: str  # "YYYY-MM-DD": the partition this run replaces


class Warehouse(Protocol):
    path: str  # where messages and records say the warehouse is (a URL without its password)

    def prefetch(
        self, notebook: str, requests: Sequence[PrefetchRequest], check: Callable[[Catalog], None] | None = None,
        *, deadline: Deadline | None = None,
    ) -> dict[str, int]:
        """Run each query with bound params, write its result to `dest`; rows per input.

        `check` gets the catalog read on the same read-only connection and
        snapshot before any query runs; whatever it raises refuses the fetch.
        Past `deadline` the running query is cancelled in the engine (StageTimeoutError)."""
        ...

    def load(
        self, notebook: str, outputs: Mapping[str, Path], checks: CheckRun | None = None, *, deadline: Deadline | None = None,
    ) -> dict[str, int]:
        """Replace each table with its Parquet file, all or nothing; rows per table. `checks` run after
        every table is written and before the commit; a blocking failure rolls it all back (OutputCheckError).
        Past `deadline` the transaction is cancelled and rolled back (StageTimeoutError)."""
        ...

    def load_partition(
        self, notebook: str, outputs: Mapping[str, Path], part: PartitionLoad, checks: CheckRun | None = None,
        *, deadline: Deadline | None = None,
    ) -> dict[str, int]:
        """Replace only the rows of `part.day` in each table, all or nothing; rows loaded per table; `checks` as load's,
        on the day's rows only; `deadline` as load's."""
        ...

    def describe(self, table: str) -> TableDescription | None:
        ...

    def recorded_writers(self, tables: Sequence[str]) -> dict[str, Writer | None]:
        """Of `tables`, those that exist → the notebook their load recorded as writer (None: none recorded)."""
        ...

    def scratch_copy(self, dest: Path) -> Warehouse:
        """A warehouse to try a notebook against (the schedule trial) that leaves this one as it is."""
        ...

    def read_catalog(self) -> Catalog:
        """The catalog (tables, views, macros) as a prefetch would see it now; WarehouseError if it cannot be read."""
        ...


def writer_comment(notebook: str) -> str:
    """The comment a load puts on each table (warehouse.writer: the notebook's name and where it lives), as an SQL literal."""
    return "'" + comment_text(notebook).replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted identifier, the same on DuckDB and Postgres."""
    return '"' + name.replace('"', '""') + '"'


def quote_table(table: str) -> str:
    """`schema.table` as a quoted identifier."""
    schema, name = table.split(".")
    return f"{ident(schema)}.{ident(name)}"


def first_line(exc: BaseException) -> str:
    """An error's first line, its whitespace collapsed (the exception's type when it says nothing)."""
    return re.sub(r"\s+", " ", str(exc).strip().splitlines()[0]) if str(exc).strip() else type(exc).__name__


def engine_message(exc: BaseException | str) -> str:
    """The engine's message on one line, hints kept (DuckDB's `Did you mean "web_events"?` and
    `Candidate bindings: ...`, Postgres' `HINT:`), the quoted query and its caret left out."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    head = list(itertools.takewhile(lambda line: line.strip() and not line.startswith("LINE "), lines))
    hints = [line for line in lines[len(head):] if line.startswith(("HINT:", "DETAIL:"))]
    return re.sub(r"\s+", " ", " ".join(head + hints))
