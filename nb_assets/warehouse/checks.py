"""Write, audit, publish: run a load's output checks inside its transaction, before the commit.

Both backends call `audit` after every output of the run is written and before they commit, with
a `fetch` that runs one query on the load's own connection (so the checks see the new rows, and
a relationships check sees another output of the same run). A failing blocking check raises
OutputCheckError; the backend rolls the whole load back, so every output stays as it was. Warnings
are recorded and the load commits.

The failing rows' sample is data of the output: it carries the output's zones. It travels in the
error's `outcomes` and the record, never in the error's text (which notices carry off the machine).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from nb_assets.errors import NbAssetsError, OutputCheckError, WarehouseError
from nb_assets.inbox.checks import OutputCheck
from nb_assets.sql.check_queries import SAMPLE_ROWS, compile_check, count_query, sample_query, source
from nb_assets.warehouse.base import engine_message

# (columns, rows) of one query, run on the load's connection inside its transaction.
Fetch = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]


@dataclass(frozen=True)
class CheckOutcome:
    """What one check found. `failed_rows` counts the rows its query returned (for unique: the duplicated keys)."""

    table: str
    check: OutputCheck
    passed: bool
    failed_rows: int = 0
    columns: tuple[str, ...] = ()  # of the sample
    sample: tuple[tuple[Any, ...], ...] = ()  # up to SAMPLE_ROWS failing rows, values as text

    @property
    def blocked(self) -> bool:
        return not self.passed and self.check.blocking

    def summary(self) -> str:
        verdict = "passed" if self.passed else f"failed on {self.failed_rows} row(s)"
        severity = "" if self.passed else (" (blocking)" if self.check.blocking else " (warning: published)")
        return f"{self.table}: check {self.check.name} = {self.check.describe()} {verdict}{severity}"

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table, "check": self.check.name, "kind": self.check.kind, "severity": self.check.severity,
            "passed": self.passed, "failed_rows": self.failed_rows, "description": self.check.describe(),
            "sample": {"columns": list(self.columns), "rows": [list(r) for r in self.sample]} if self.sample else None,
        }


@dataclass
class CheckRun:
    """The checks a load runs (output table → checks) and, once it ran them, what they found.

    Passed to Warehouse.load / load_partition; the outcomes are filled in even when a blocking
    check fails (the OutputCheckError carries them too)."""

    checks: Mapping[str, Sequence[OutputCheck]]
    outcomes: list[CheckOutcome] = field(default_factory=list)

    def for_tables(self, tables: Sequence[str]) -> dict[str, Sequence[OutputCheck]]:
        return {t: self.checks[t] for t in tables if self.checks.get(t)}


def audit(
    fetch: Fetch,
    notebook: str,
    run: CheckRun | None,
    tables: Sequence[str],
    *,
    partition_column: str | None = None,
    day: str | None = None,
    now: datetime | None = None,
) -> None:
    """Run the checks of `tables` (the outputs this load wrote); raise OutputCheckError if one blocks."""
    if run is None:
        return
    now = now or datetime.now(timezone.utc)
    for table, checks in run.for_tables(tables).items():
        src = source(table, partition_column, day)
        for check in checks:
            try:
                run.outcomes.append(_run_one(fetch, table, check, src, now))
            except NbAssetsError:
                raise
            except Exception as exc:  # noqa: BLE001 - the engine's error (a column the output lacks), named by its check
                raise WarehouseError(
                    f"{notebook}: {table}: check {check.name} = {check.describe()} could not run, nothing loaded: {engine_message(exc)}"
                ) from exc
    blocked = [o for o in run.outcomes if o.blocked]
    if blocked:
        where = f" (partition {day})" if day else ""
        lines = "; ".join(f"{o.table}: check {o.check.name} = {o.check.describe()} failed on {o.failed_rows} row(s)" for o in blocked)
        raise OutputCheckError(
            f"{notebook}: output checks failed{where}, nothing loaded (every output stays as it was): {lines}. "
            f"Up to {SAMPLE_ROWS} failing rows of each are in the run's record and the asset check's metadata",
            outcomes=tuple(run.outcomes),
        )


def _run_one(fetch: Fetch, table: str, check: OutputCheck, src: str, now: datetime) -> CheckOutcome:
    query = compile_check(check, src)
    if query.latest is not None:
        _, rows = fetch(query.latest)
        latest = rows[0][0] if rows else None
        fresh = latest is not None and (now - _as_utc(latest)).total_seconds() <= (check.max_age_s or 0)
        if fresh:
            return CheckOutcome(table, check, True)
        return CheckOutcome(table, check, False, 1, ("latest",), ((_text(latest),),))
    assert query.failing is not None
    _, counted = fetch(count_query(query.failing))
    failed = int(counted[0][0]) if counted else 0
    if failed == 0:
        return CheckOutcome(table, check, True)
    columns, rows = fetch(sample_query(query.failing))
    return CheckOutcome(table, check, False, failed, tuple(columns), tuple(tuple(_text(v) for v in r) for r in rows))


def _as_utc(value: Any) -> datetime:
    """A date or timestamp as an aware UTC time; a naive one is read as UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    raise TypeError(f"freshness_column needs a date or timestamp column, got {type(value).__name__} {value!r}")


def _text(value: Any) -> str | None:
    """Sample values as text of bounded length: they go into metadata and records, not into code."""
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= 200 else text[:199] + "…"
