"""The files a warehouse reads and writes, checked the same way whichever backend loads them.

A run's outputs are validated before anything touches the warehouse; a
prefetched input is streamed to Parquet; a landed CSV or Parquet file is read
and its columns checked; a partitioned run's outputs must hold only its day.
The reading is done by an in-memory DuckDB (a file reader, not a warehouse),
imported inside the functions that need it, so validating outputs loads no
DuckDB.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow.parquet as pq

from nb_assets.errors import LandingError, OutputValidationError
from nb_assets.warehouse.base import PartitionLoad, first_line, ident

if TYPE_CHECKING:
    import duckdb

MAX_OUTPUT_ENTRIES = 1000  # a notebook spraying files is refused without listing them all
CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def validate_outputs(notebook: str, output_dir: Path, declared: Sequence[str] | Mapping[str, str]) -> dict[str, Path]:
    """Map each declared table to its file; refuse anything else in the folder.

    `declared` is the tables, or the name each is written under → the table it
    loads into (an instance's `mart.revenue` → `mart.revenue_emea`)."""
    names = dict(declared) if isinstance(declared, Mapping) else {t: t for t in declared}
    expected = {f"{written}.parquet": table for written, table in names.items()}
    found: dict[str, Path] = {}
    problems: list[str] = []
    for count, entry in enumerate(sorted(output_dir.iterdir()), start=1):
        if count > MAX_OUTPUT_ENTRIES:
            raise OutputValidationError(f"{notebook}: more than {MAX_OUTPUT_ENTRIES} files in the outputs folder; refused")
        if entry.is_symlink() or not entry.is_file():
            problems.append(f"{entry.name!r} is not a regular file")
        elif entry.name not in expected:
            problems.append(f"{entry.name!r} is not a declared output (declared: {', '.join(names) or 'none'})")
        else:
            found[expected[entry.name]] = entry
    problems.extend(f"declared output {w} was not written; call output({w!r}, df)" for w, t in names.items() if t not in found)
    for table, path in found.items():
        try:
            pq.read_metadata(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            problems.append(f"output {table} is not a readable Parquet file ({exc})")
    if problems:
        raise OutputValidationError(f"{notebook}: outputs refused, nothing loaded: " + "; ".join(problems))
    return found


def write_parquet(reader: Any, dest: Path) -> int:
    """Streamed, so memory stays at one batch. Input files live for one run:
    dictionary encoding cost more time than it saved in size (benchmarks/data_path.py)."""
    rows = 0
    with pq.ParquetWriter(dest, reader.schema, use_dictionary=False) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def check_partition_outputs(con: duckdb.DuckDBPyConnection, notebook: str, outputs: Mapping[str, Path], part: PartitionLoad) -> None:
    """Every output has the partition column and only rows of the run's day; else nothing loads.
    `con` reads the files: the DuckDB warehouse's own connection, or an in-memory one."""
    problems: list[str] = []
    col = ident(part.column)
    for table, path in outputs.items():
        if part.column not in pq.read_schema(path).names:
            problems.append(f"output {table} has no partition column {part.column!r}")
            continue
        stray = con.execute(
            f"SELECT count(*), min(CAST({col} AS VARCHAR)) FROM read_parquet($path) "
            f"WHERE TRY_CAST({col} AS DATE) IS DISTINCT FROM CAST($day AS DATE)",
            {"path": str(path), "day": part.day},
        ).fetchone()
        assert stray is not None
        if stray[0]:
            example = "no day" if stray[1] is None else repr(stray[1])
            problems.append(
                f"output {table} has {stray[0]} row(s) whose {part.column!r} is not {part.day} (e.g. {example}); "
                "a partitioned run writes only its own day"
            )
    if problems:
        raise OutputValidationError(f"{notebook}: partition {part.day}: outputs refused, nothing loaded: " + "; ".join(problems))


def check_columns(file: Path, table: str, file_columns: list[str], table_cols: Mapping[str, str]) -> None:
    """A landed file has exactly the table's columns (by name, any order, any case); else nothing loads."""
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
class FileReader:
    """How DuckDB reads one file: its columns, and a reader that casts to the table's types."""

    file: Path
    kind: Literal["csv", "parquet"]

    @classmethod
    def open(cls, file: Path) -> FileReader:
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
        import duckdb

        if self.kind == "csv":
            return self._csv_header()
        try:
            return [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet($path)", self.params).fetchall()]
        except duckdb.Error as exc:
            raise LandingError(f"{self.file}: not a readable Parquet file ({first_line(exc)}); nothing loaded") from exc

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

    def typed_sql(self, file_columns: list[str], table_cols: Mapping[str, str]) -> str:
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

    def locate(self, con: duckdb.DuckDBPyConnection, exc: duckdb.Error, table_cols: Mapping[str, str]) -> str:
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
            return f"{where}: {first_line(exc)}"
        if self.kind == "parquet":
            probe = con.cursor()  # the failed statement aborted the load's transaction, not this one
            try:
                for name, type_ in table_cols.items():
                    row = probe.execute(
                        f"SELECT n, CAST(v AS VARCHAR) FROM (SELECT row_number() OVER () AS n, {ident(name)} AS v "
                        f"FROM read_parquet($path)) WHERE v IS NOT NULL AND TRY_CAST(v AS {type_}) IS NULL LIMIT 1",
                        self.params,
                    ).fetchone()
                    if row:
                        return f"row {row[0]}, column {name}: {row[1]!r} is not a {type_}"
            finally:
                probe.close()
        return first_line(exc)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
