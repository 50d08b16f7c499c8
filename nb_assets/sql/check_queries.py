"""The SQL each output check compiles to: one query returning the failing rows.

The same text runs on DuckDB and Postgres (quoted identifiers, standard literals, NOT EXISTS);
a partitioned output is checked on its day's rows only, through the `src` the queries read.
Values are literals the constructors validated (strings, numbers, booleans), quoted here; the one
free text, a `sql(...)` check's query, passed the static SQL checks (analysis/output_checks.py).

Pure: no driver.
"""

from __future__ import annotations

from dataclasses import dataclass

from nb_assets.inbox.checks import OutputCheck

SAMPLE_ROWS = 10


def ident(name: str) -> str:
    """A quoted identifier, the same on DuckDB and Postgres (as warehouse.base.ident)."""
    return '"' + name.replace('"', '""') + '"'


def quoted_table(table: str) -> str:
    schema, name = table.split(".")
    return f"{ident(schema)}.{ident(name)}"


def literal(value: object) -> str:
    """A validated constructor value as an SQL literal."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class CheckQuery:
    """`failing` returns the failing rows; freshness is judged on the host (`latest`), where time zones are plain."""

    failing: str | None = None
    latest: str | None = None  # freshness_column: the newest value


def source(table: str, partition_column: str | None = None, day: str | None = None) -> str:
    """What a check reads as its output: the table, or only the partition's day of it."""
    if partition_column is None or day is None:
        return quoted_table(table)
    return (f"(SELECT * FROM {quoted_table(table)} WHERE CAST({ident(partition_column)} AS DATE) = "
            f"CAST({literal(day)} AS DATE))")


def compile_check(check: OutputCheck, src: str) -> CheckQuery:
    """The query of one check over `src` (source())."""
    cols = [ident(c) for c in check.columns]
    if check.kind == "not_null":
        return CheckQuery(f"SELECT * FROM {src} AS o WHERE " + " OR ".join(f"o.{c} IS NULL" for c in cols))
    if check.kind == "unique":
        keys = ", ".join(f"o.{c}" for c in cols)
        present = " AND ".join(f"o.{c} IS NOT NULL" for c in cols)
        return CheckQuery(f"SELECT {keys}, count(*) AS n_rows FROM {src} AS o WHERE {present} GROUP BY {keys} HAVING count(*) > 1")
    if check.kind == "accepted_values":
        values = ", ".join(literal(v) for v in check.values)
        return CheckQuery(f"SELECT * FROM {src} AS o WHERE o.{cols[0]} IS NOT NULL AND o.{cols[0]} NOT IN ({values})")
    if check.kind == "row_count":
        bounds = [f"count(*) >= {check.min}" if check.min is not None else None,
                  f"count(*) <= {check.max}" if check.max is not None else None]
        ok = " AND ".join(b for b in bounds if b)
        return CheckQuery(f"SELECT count(*) AS n_rows FROM {src} AS o HAVING NOT ({ok})")
    if check.kind == "relationships":
        assert check.to is not None
        target, column = check.to.rsplit(".", 1)
        return CheckQuery(
            f"SELECT * FROM {src} AS o WHERE o.{cols[0]} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {quoted_table(target)} AS r WHERE r.{ident(column)} = o.{cols[0]})"
        )
    if check.kind == "freshness_column":
        return CheckQuery(latest=f"SELECT max(o.{cols[0]}) FROM {src} AS o")
    if check.kind == "sql":
        assert check.query is not None
        return CheckQuery(check.query)
    raise ValueError(f"unknown check kind {check.kind!r}")


def count_query(failing: str) -> str:
    return f"SELECT count(*) FROM ({failing}) AS failing"


def sample_query(failing: str) -> str:
    return f"SELECT * FROM ({failing}) AS failing LIMIT {SAMPLE_ROWS}"
