"""Output checks: what must hold of an output before it is published. One model for all three places
a check is written: the notebook (`output("mart.x", df, checks=[unique("id")])`), the Python
declaration (`NotebookAsset(..., checks={"mart.x": [unique("id")]})`) and `declarations.yaml`.

The constructors validate their arguments and return a frozen `OutputCheck`. The host never runs the
notebook's calls: the parser reads their literal arguments from the source and calls these same
constructors (analysis/output_checks.py), so a notebook, a declaration and a YAML file cannot mean
different things by `unique("order_id")`. The SQL each kind compiles to is sql/check_queries.py's;
running it inside the load transaction is warehouse/checks.py's.

Standard library only: this file is copied into the sandbox beside the notebook runtime.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

SEVERITIES = ("error", "warn")
KINDS = ("not_null", "unique", "accepted_values", "row_count", "relationships", "freshness_column", "sql")
_NAME = re.compile(r"^[A-Za-z0-9_]+$")  # what Dagster accepts as an asset check's name
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TARGET = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class OutputCheck:
    """One check of one output. `severity="error"` blocks the publish; `"warn"` publishes and reports."""

    kind: str
    columns: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()  # accepted_values
    min: int | None = None  # row_count
    max: int | None = None
    to: str | None = None  # relationships: "schema.table.column"
    max_age_s: float | None = None  # freshness_column
    query: str | None = None  # sql: a query returning the failing rows
    severity: str = "error"
    name: str = ""  # the Dagster check name; derived from the kind and columns when not given

    @property
    def blocking(self) -> bool:
        return self.severity == "error"

    @property
    def ref_table(self) -> str | None:
        """The table a relationships check looks values up in."""
        return self.to.rsplit(".", 1)[0] if self.to else None

    def describe(self) -> str:
        """As an author would write it: `unique(order_id)`, `row_count(min=1)`."""
        if self.kind == "row_count":
            args = ", ".join(f"{k}={v}" for k, v in (("min", self.min), ("max", self.max)) if v is not None)
        elif self.kind == "accepted_values":
            args = f"{self.columns[0]}, {list(self.values)!r}"
        elif self.kind == "relationships":
            args = f"{self.columns[0]}, to={self.to}"
        elif self.kind == "freshness_column":
            args = f"{self.columns[0]}, max_age={self.max_age_s:g}s"
        elif self.kind == "sql":
            args = repr(_one_line(self.query or ""))
        else:
            args = ", ".join(self.columns)
        return f"{self.kind}({args})" + ("" if self.blocking else " [warn]")


def _one_line(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _columns(kind: str, columns: Any) -> tuple[str, ...]:
    found = (columns,) if isinstance(columns, str) else tuple(columns) if isinstance(columns, (list, tuple)) else None
    if not found or not all(isinstance(c, str) and c.strip() for c in found):
        raise ValueError(f"{kind}() needs a column name or a list of column names, got {columns!r}")
    return found


def _column(kind: str, column: Any) -> str:
    if not isinstance(column, str) or not column.strip():
        raise ValueError(f"{kind}() needs one column name as a string, got {column!r}")
    return column


def _finish(check: OutputCheck, severity: str, name: str | None) -> OutputCheck:
    if severity not in SEVERITIES:
        raise ValueError(f"{check.kind}(): severity must be 'error' or 'warn', got {severity!r}")
    if name is None:
        parts = [check.kind, *check.columns]
        if check.kind == "sql":  # named by its text, so reordering checks keeps every name
            parts.append(hashlib.sha256((check.query or "").encode()).hexdigest()[:8])
        name = re.sub(r"[^A-Za-z0-9_]+", "_", "_".join(parts)).strip("_")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{check.kind}(): name must be letters, digits and _, got {name!r}")
    return OutputCheck(**{**check.__dict__, "severity": severity, "name": name})


def not_null(columns: str | list[str], *, severity: str = "error", name: str | None = None) -> OutputCheck:
    """Fails on each row where one of `columns` is NULL."""
    return _finish(OutputCheck("not_null", _columns("not_null", columns)), severity, name)


def unique(columns: str | list[str], *, severity: str = "error", name: str | None = None) -> OutputCheck:
    """Fails on each value (or combination of values) of `columns` that appears more than once; NULLs are not_null's business."""
    return _finish(OutputCheck("unique", _columns("unique", columns)), severity, name)


def accepted_values(column: str, values: list[Any], *, severity: str = "error", name: str | None = None) -> OutputCheck:
    """Fails on each row whose `column` is not NULL and not one of `values` (strings, numbers, booleans)."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"accepted_values() needs a non-empty list of values, got {values!r}")
    for value in values:
        if not isinstance(value, (str, int, float, bool)) or (isinstance(value, float) and value != value):
            raise ValueError(f"accepted_values(): values must be strings, numbers or booleans, got {value!r}")
    return _finish(OutputCheck("accepted_values", (_column("accepted_values", column),), values=tuple(values)), severity, name)


def row_count(*, min: int | None = None, max: int | None = None, severity: str = "error", name: str | None = None) -> OutputCheck:  # noqa: A002
    """Fails when the output (a partition: its day) has fewer than `min` or more than `max` rows."""
    for label, bound in (("min", min), ("max", max)):
        if bound is not None and (not isinstance(bound, int) or isinstance(bound, bool) or bound < 0):
            raise ValueError(f"row_count(): {label} must be a whole number >= 0, got {bound!r}")
    if min is None and max is None:
        raise ValueError("row_count() needs min=, max= or both")
    if min is not None and max is not None and min > max:
        raise ValueError(f"row_count(): min={min} is more than max={max}")
    return _finish(OutputCheck("row_count", min=min, max=max), severity, name)


def relationships(column: str, to: str, *, severity: str = "error", name: str | None = None) -> OutputCheck:
    """Fails on each row whose `column` is not NULL and has no match in `to` ("schema.table.column")."""
    if not isinstance(to, str) or not _TARGET.match(to):
        raise ValueError(f"relationships(): to= must be 'schema.table.column' (lowercase schema and table), got {to!r}")
    return _finish(OutputCheck("relationships", (_column("relationships", column),), to=to), severity, name)


def freshness_column(column: str, max_age: str | int | float, *, severity: str = "error", name: str | None = None) -> OutputCheck:
    """Fails when the newest value of `column` (a date or timestamp, read as UTC) is older than
    `max_age` ("30m", "26h", "2d", or seconds) when the load runs, or when there is none."""
    if isinstance(max_age, str) and _AGE.match(max_age):
        amount, unit = _AGE.match(max_age).groups()  # type: ignore[union-attr]
        seconds = float(amount) * _AGE_UNITS[unit]
    elif isinstance(max_age, (int, float)) and not isinstance(max_age, bool) and max_age > 0:
        seconds = float(max_age)
    else:
        raise ValueError(f"freshness_column(): max_age must be like '26h', '30m', '2d' or seconds, got {max_age!r}")
    return _finish(OutputCheck("freshness_column", (_column("freshness_column", column),), max_age_s=seconds), severity, name)


def sql(query: str, *, severity: str = "error", name: str | None = None) -> OutputCheck:
    """A read-only query over the output and warehouse tables that returns the failing rows; passes when it returns none."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError("sql() needs the query as a non-empty string")
    return _finish(OutputCheck("sql", query=query.strip().rstrip(";").strip()), severity, name)


sql_check = sql  # the name `nb_assets` exports it under: nb_assets.sql is the SQL analysis package

CONSTRUCTORS = {
    "not_null": not_null, "unique": unique, "accepted_values": accepted_values, "row_count": row_count,
    "relationships": relationships, "freshness_column": freshness_column, "sql": sql,
}


def check_list(table: str, checks: Any) -> tuple[OutputCheck, ...]:
    """`checks=` of one output as given: a list of OutputCheck whose names are distinct."""
    if checks is None:
        return ()
    if not isinstance(checks, (list, tuple)) or not all(isinstance(c, OutputCheck) for c in checks):
        raise ValueError(f"checks of {table} must be a list of checks, e.g. [unique('id'), not_null('id')]")
    names = [c.name for c in checks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"checks of {table}: two checks are named {', '.join(twice)}; give one of them name=")
    return tuple(checks)
