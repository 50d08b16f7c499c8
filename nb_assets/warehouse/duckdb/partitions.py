"""Load a partitioned notebook's outputs: replace one day's rows, leave every other day alone.

All outputs of a run go in one transaction: each table loses the rows whose
partition column is the run's day and gets the output's rows, which must all
be of that day. An output without the column, or with a row of another day
(or no day), refuses the whole load before any table is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from nb_assets.errors import OutputValidationError, WarehouseError
from nb_assets.warehouse.base import PartitionLoad, first_line, ident, quote_table
from nb_assets.warehouse.deadline import Deadline
from nb_assets.warehouse.duckdb.audit import audit_in_transaction
from nb_assets.warehouse.files import check_partition_outputs

if TYPE_CHECKING:
    from nb_assets.warehouse.checks import CheckRun


def replace_partition(con: duckdb.DuckDBPyConnection, notebook: str, outputs: Mapping[str, Path], part: PartitionLoad) -> dict[str, int]:
    """In the caller's transaction: check all outputs, then replace the day's rows of each; rows loaded per table."""
    check_partition_outputs(con, notebook, outputs, part)
    col = ident(part.column)
    rows: dict[str, int] = {}
    for table, path in outputs.items():
        con.execute(f'CREATE SCHEMA IF NOT EXISTS {ident(table.split(".")[0])}')
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $s AND table_name = $t",
            {"s": table.split(".")[0], "t": table.split(".")[1]},
        ).fetchone()
        if not exists or not exists[0]:
            con.execute(f"CREATE TABLE {quote_table(table)} AS SELECT * FROM read_parquet($path)", {"path": str(path)})
        else:
            columns = {r[0] for r in con.execute(f"DESCRIBE {quote_table(table)}").fetchall()}
            if part.column not in columns:
                raise OutputValidationError(
                    f"{notebook}: partition {part.day}: {table} in the warehouse has no column {part.column!r}, "
                    "so its days cannot be told apart; nothing loaded"
                )
            con.execute(f"DELETE FROM {quote_table(table)} WHERE TRY_CAST({col} AS DATE) = CAST($day AS DATE)", {"day": part.day})
            con.execute(f"INSERT INTO {quote_table(table)} BY NAME SELECT * FROM read_parquet($path)", {"path": str(path)})
        rows[table] = int(con.execute("SELECT count(*) FROM read_parquet($path)", {"path": str(path)}).fetchone()[0])
    return rows


def load_partition(
    connect: object, notebook: str, outputs: Mapping[str, Path], part: PartitionLoad, checks: CheckRun | None = None,
    deadline: Deadline | None = None,
) -> dict[str, int]:
    """One write transaction around replace_partition, under `deadline`; `connect` opens the warehouse for writing."""
    if not outputs:
        return {}
    deadline = deadline or Deadline.unlimited("load")
    with connect(read_only=False) as con, deadline.watching(con.interrupt, notebook, f"partition {part.day}") as watch:  # type: ignore[operator]
        con.execute("BEGIN TRANSACTION")
        try:
            watch.at(f"partition {part.day}: loading {', '.join(outputs)}")
            rows = replace_partition(con, notebook, outputs, part)
            audit_in_transaction(con, notebook, checks, list(outputs), part, deadline)  # the day's rows only, before the commit
            deadline.check(notebook, f"partition {part.day}: before the commit")
            con.execute("COMMIT")
        except OutputValidationError:
            con.execute("ROLLBACK")
            raise
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise WarehouseError(f"{notebook}: partition {part.day}: loading outputs failed, nothing loaded: {first_line(exc)}") from exc
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return rows
