"""The landing log's contract: how the system learns that a source table has new data.

A landing is one row of `nb_assets.landings`, appended by whatever loaded the
data, in the same transaction as the data (docs/triggers-and-landing.md, "Landing data": the
contract for any loader). Ids are `max(id) + 1` under a primary key, so two
loaders racing for the same id make one of them fail on commit instead of
leaving a gap: ids are committed in order, and a reader that remembers the
last id it saw misses nothing and sees nothing twice.

The same table and the same rules on both backends: landing.py and
warehouse/duckdb/landing.py keep the log on DuckDB, warehouse/postgres/landing.py on Postgres.
"""

from __future__ import annotations

from dataclasses import dataclass

from nb_assets.errors import LandingError

LOG_SCHEMA = "nb_assets"
LOG_TABLE = f"{LOG_SCHEMA}.landings"
LOG_COLUMNS = ("id", "table", "partition", "rows", "landed_at", "source")
LOG_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {LOG_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {LOG_TABLE} (
        id        BIGINT PRIMARY KEY,
        "table"   VARCHAR NOT NULL,
        partition VARCHAR,
        rows      BIGINT,
        landed_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        source    VARCHAR
    )""",
)


@dataclass(frozen=True)
class Landing:
    id: int
    table: str
    partition: str | None
    rows: int | None
    landed_at: float  # seconds since the epoch
    source: str | None


@dataclass(frozen=True)
class LandResult:
    landing: Landing
    already_landed: bool = False  # `once_per_source`: this source had landed before; nothing loaded


def check_log_columns(columns: list[str], warehouse: str) -> None:
    """The landing log's columns as the warehouse has them (none: no log), checked against the contract."""
    if not columns:
        raise LandingError(
            f"warehouse {warehouse} has no landing log ({LOG_TABLE}); it is created by the first "
            f"`nb-assets land`, or by running the CREATE TABLE shown in docs/triggers-and-landing.md (\"Landing data\")"
        )
    missing = [c for c in LOG_COLUMNS if c not in columns]
    if missing:
        raise LandingError(
            f"the landing log {LOG_TABLE} in {warehouse} is not in the expected shape: it lacks column(s) "
            f"{', '.join(missing)} (expected {', '.join(LOG_COLUMNS)}); recreate it as docs/triggers-and-landing.md shows"
        )
