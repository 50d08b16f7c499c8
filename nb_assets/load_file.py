"""Load one CSV or Parquet file into a source table and record the landing, in one transaction.

The file must have the table's columns (by name, any order); values are cast
to the table's types as they are read, so a bad value fails the whole load
naming its line (CSV) or row (Parquet) and column, and the warehouse is
exactly as before. A table that does not exist yet is created from the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb

from nb_assets.locations import is_postgres_url
from nb_assets.declaration import LoadMode
from nb_assets.errors import LandingError
from nb_assets.landing import Landing, append_landing, find_landing, in_transaction, table_columns
from nb_assets.warehouse import quote_table

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class LandResult:
    landing: Landing
    already_landed: bool = False  # `once_per_source`: this source had landed before; nothing loaded


def land_file(
    warehouse: str | Path,
    table: str,
    file: Path,
    *,
    mode: LoadMode = "append",
    partition: str | None = None,
    source: str | None = None,
    once_per_source: bool = False,
) -> LandResult:
    """Load `file` into `table` (append, or replace all rows) and append its landing row.

    once_per_source: if a landing of `table` with exactly this `source` exists,
    load nothing and return it (how a file drop loads each file once).
    """
    reader = _FileReader.open(file)
    source = source or f"file {file.resolve()}"
    if is_postgres_url(warehouse):
        return _land_postgres(str(warehouse), table, reader, mode, partition, source, once_per_source)

    def work(con: duckdb.DuckDBPyConnection) -> LandResult:
        earlier = find_landing(con, table, source) if once_per_source else None
        if earlier is not None:
            return LandResult(earlier, already_landed=True)
        rows = _load(con, reader, table, mode)
        return LandResult(append_landing(con, table, rows=rows, partition=partition, source=source))

    return in_transaction(warehouse, work)


def _land_postgres(
    dsn: str, table: str, reader: _FileReader, mode: LoadMode, partition: str | None, source: str, once_per_source: bool
) -> LandResult:
    from nb_assets import pg_landing

    def work(cur: object) -> LandResult:
        earlier = pg_landing.find_landing(cur, table, source) if once_per_source else None
        if earlier is not None:
            return LandResult(earlier, already_landed=True)
        rows = pg_landing.load_rows(cur, reader, table, mode)
        return LandResult(pg_landing.append_landing(cur, table, rows=rows, partition=partition, source=source))

    return pg_landing.in_transaction(dsn, work)


def _load(con: duckdb.DuckDBPyConnection, reader: _FileReader, table: str, mode: LoadMode) -> int:
    existing = table_columns(con, table)
    file_columns = reader.columns(con)
    if not existing:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.split(".")[0]}"')
        con.execute(f"CREATE TABLE {quote_table(table)} AS SELECT * FROM {reader.sniffing_sql()} LIMIT 0", reader.params)
        existing = table_columns(con, table)
    _check_columns(reader.file, table, file_columns, existing)
    if mode == "replace":
        con.execute(f"DELETE FROM {quote_table(table)}")
    try:
        result = con.execute(f"INSERT INTO {quote_table(table)} BY NAME SELECT * FROM {reader.typed_sql(file_columns, existing)}", reader.params)
    except duckdb.Error as exc:
        raise LandingError(f"{reader.file}: {reader.locate(con, exc, existing)}; nothing loaded") from exc
    return int(result.fetchone()[0])


def _check_columns(file: Path, table: str, file_columns: list[str], table_cols: dict[str, str]) -> None:
    lowered = [c.lower() for c in file_columns]
    duplicated = sorted({c for c in lowered if lowered.count(c) > 1})
    if duplicated:
        raise LandingError(f"{file}: column(s) {', '.join(duplicated)} appear more than once; nothing loaded")
    wanted = {c.lower() for c in table_cols}
    missing = [c for c in table_cols if c.lower() not in lowered]
    unexpected = [c for c in file_columns if c.lower() not in wanted]
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(unexpected)}"] if unexpected else [])
        raise LandingError(
            f"{file}: its columns do not match {table} ({'; '.join(parts)}); {table} has "
            f"{', '.join(table_cols)}; nothing loaded"
        )


@dataclass(frozen=True)
class _FileReader:
    """How DuckDB reads one file: its columns, and a reader that casts to the table's types."""

    file: Path
    kind: Literal["csv", "parquet"]

    @classmethod
    def open(cls, file: Path) -> _FileReader:
        if not file.is_file():
            raise LandingError(f"{file}: no such file")
        name = file.name.lower()
        if name.endswith(CSV_SUFFIXES):
            return cls(file, "csv")
        if name.endswith(PARQUET_SUFFIXES):
            return cls(file, "parquet")
        raise LandingError(f"{file}: not a CSV ({', '.join(CSV_SUFFIXES)}) or Parquet ({', '.join(PARQUET_SUFFIXES)}) file")

    @property
    def params(self) -> dict[str, str]:
        return {"path": str(self.file)}

    def columns(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        if self.kind == "csv":
            return self._csv_header()
        try:
            return [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet($path)", self.params).fetchall()]
        except duckdb.Error as exc:
            raise LandingError(f"{self.file}: not a readable Parquet file ({_first_line(exc)}); nothing loaded") from exc

    def _csv_header(self) -> list[str]:
        opener = gzip.open if self.file.name.lower().endswith(".gz") else open
        try:
            with opener(self.file, "rt", encoding="utf-8-sig", newline="") as handle:  # type: ignore[operator]
                header = next(csv.reader(io.StringIO(handle.readline())), [])
        except (OSError, UnicodeDecodeError) as exc:
            raise LandingError(f"{self.file}: line 1: cannot read the CSV header ({exc}); nothing loaded") from exc
        header = [h.strip() for h in header]
        if not header or any(not h for h in header):
            raise LandingError(f"{self.file}: line 1: the first line must name every column (a CSV header); nothing loaded")
        return header

    def sniffing_sql(self) -> str:
        """For a table's first load: DuckDB guesses the types."""
        return "read_csv($path, header = true)" if self.kind == "csv" else "read_parquet($path)"

    def typed_sql(self, file_columns: list[str], table_cols: dict[str, str]) -> str:
        if self.kind == "parquet":
            return "read_parquet($path)"  # the INSERT casts; a failure is located by locate()
        types = {c.lower(): t for c, t in table_cols.items()}
        struct = ", ".join(f"{_literal(c)}: {_literal(types[c.lower()])}" for c in file_columns)
        # No sniffing: the header and the table's types are known, and a sniffer
        # confused by a ragged line would blame the header instead of that line.
        return (
            "read_csv($path, auto_detect = false, header = true, delim = ',', quote = '\"', escape = '\"', "
            f"columns = {{{struct}}})"
        )

    def locate(self, con: duckdb.DuckDBPyConnection, exc: duckdb.Error, table_cols: dict[str, str]) -> str:
        """Which line (CSV) or row (Parquet) and column made the load fail."""
        text = str(exc)
        line = re.search(r"CSV Error on Line: (\d+)", text)
        if line:
            column = re.search(r'converting column "([^"]+)"', text)
            where = f"line {line.group(1)}" + (f", column {column.group(1)}" if column else "")
            value = re.search(r"Could not convert string \"(.*?)\" to '([^']+)'", text, re.S)
            if value:
                return f"{where}: {value.group(1)!r} is not a {value.group(2)}"
            count = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
            if count:
                return f"{where}: {count.group(2)} fields where the header has {count.group(1)}"
            return f"{where}: {_first_line(exc)}"
        if self.kind == "parquet":
            probe = con.cursor()  # the failed statement aborted the load's transaction, not this one
            try:
                for column, type_ in table_cols.items():
                    quoted = '"' + column.replace('"', '""') + '"'
                    row = probe.execute(
                        f"SELECT n, CAST(v AS VARCHAR) FROM (SELECT row_number() OVER () AS n, {quoted} AS v "
                        f"FROM read_parquet($path)) WHERE v IS NOT NULL AND TRY_CAST(v AS {type_}) IS NULL LIMIT 1",
                        self.params,
                    ).fetchone()
                    if row:
                        return f"row {row[0]}, column {column}: {row[1]!r} is not a {type_}"
            finally:
                probe.close()
        return _first_line(exc)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
