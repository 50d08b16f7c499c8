"""Write, audit, publish: output checks run inside the load transaction — real DuckDB and real Postgres.

Each test loads real Parquet outputs through the warehouse's own load with checks, then reads the
warehouse back: a failing blocking check leaves every output exactly as it was (snapshot compare),
a warning publishes and is reported, a passing check publishes, a partitioned check sees its day only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nb_assets.errors import OutputCheckError, WarehouseError
from nb_assets.inbox.checks import accepted_values, freshness_column, not_null, relationships, row_count, sql, unique
from nb_assets.warehouse.backends import open_warehouse
from nb_assets.warehouse.base import PartitionLoad
from nb_assets.warehouse.checks import CheckRun
from support.warehouses import pg_snapshot, warehouse_snapshot


def _parquet(path: Path, **columns: list[Any]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@pytest.fixture(params=["duckdb", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Callable[[], dict[str, list[tuple]]]]:
    """A warehouse holding mart.orders and mart.customers from an earlier load, and its snapshot function."""
    if request.param == "duckdb":
        location = str(tmp_path / "warehouse.duckdb")
        duckdb.connect(location).close()
        snapshot = lambda: warehouse_snapshot(Path(location))  # noqa: E731
    else:
        location = request.getfixturevalue("pg_warehouse")
        snapshot = lambda: pg_snapshot(location)  # noqa: E731
    earlier = {
        "mart.customers": _parquet(tmp_path / "c0.parquet", customer_id=[1, 2, 3]),
        "mart.orders": _parquet(tmp_path / "o0.parquet", order_id=[1, 2], customer_id=[1, 2], status=["paid", "paid"]),
    }
    open_warehouse(location).load("earlier.ipynb", earlier)
    return location, snapshot


def _outputs(tmp_path: Path, order_ids: list[int], customers: list[int | None], status: list[str]) -> dict[str, Path]:
    return {
        "mart.customers": _parquet(tmp_path / "c1.parquet", customer_id=[1, 2, 3, 4]),
        "mart.orders": _parquet(tmp_path / "o1.parquet", order_id=order_ids, customer_id=customers, status=status),
    }


def test_a_failing_blocking_check_leaves_every_output_as_it_was(backend: Any, tmp_path: Path) -> None:
    location, snapshot = backend
    before = snapshot()
    outputs = _outputs(tmp_path, [10, 11, 11, 12], [1, 2, 2, 4], ["paid", "paid", "paid", "refunded"])
    run = CheckRun({"mart.orders": (unique("order_id"), not_null("customer_id"))})
    with pytest.raises(OutputCheckError) as raised:
        open_warehouse(location).load("nb.ipynb", outputs, checks=run)
    message = str(raised.value)
    assert "nb.ipynb" in message and "unique_order_id = unique(order_id) failed on 1 row(s)" in message
    assert "nothing loaded" in message and "11" not in message.split("failed on")[1]  # rows stay out of the text
    assert snapshot() == before  # mart.customers too: it was written in the same transaction and rolled back
    failed = [o for o in raised.value.outcomes if not o.passed]
    assert [(o.check.name, o.failed_rows, o.columns, o.sample) for o in failed] == [
        ("unique_order_id", 1, ("order_id", "n_rows"), (("11", "2"),)),
    ]
    assert [o.passed for o in run.outcomes] == [False, True]


def test_a_warning_publishes_and_is_reported(backend: Any, tmp_path: Path) -> None:
    location, snapshot = backend
    outputs = _outputs(tmp_path, [10, 11, 12], [1, 2, 4], ["paid", "lost", "refunded"])
    run = CheckRun({"mart.orders": (accepted_values("status", ["paid", "refunded"], severity="warn"),
                                    relationships("customer_id", to="mart.customers.customer_id"))})
    assert open_warehouse(location).load("nb.ipynb", outputs, checks=run) == {"mart.customers": 4, "mart.orders": 3}
    warned, related = run.outcomes
    assert (warned.passed, warned.blocked, warned.failed_rows) == (False, False, 1)
    assert "lost" in [v for row in warned.sample for v in row]
    assert related.passed  # customer 4 is in the mart.customers written by the same load
    assert sorted(r[0] for r in snapshot()["mart.orders"]) == [10, 11, 12]


def test_passing_checks_publish(backend: Any, tmp_path: Path) -> None:
    location, snapshot = backend
    outputs = _outputs(tmp_path, [10, 11, 12], [1, None, 4], ["paid", "paid", "refunded"])
    run = CheckRun({"mart.orders": (unique("order_id"), row_count(min=1, max=3), sql("SELECT * FROM mart.orders WHERE order_id < 0"))})
    open_warehouse(location).load("nb.ipynb", outputs, checks=run)
    assert all(o.passed for o in run.outcomes) and len(run.outcomes) == 3
    assert sorted(r[0] for r in snapshot()["mart.orders"]) == [10, 11, 12]


def test_a_relationship_to_a_missing_key_blocks(backend: Any, tmp_path: Path) -> None:
    location, snapshot = backend
    before = snapshot()
    outputs = _outputs(tmp_path, [10, 11], [1, 9], ["paid", "paid"])
    run = CheckRun({"mart.orders": (relationships("customer_id", to="mart.customers.customer_id"), row_count(max=0, severity="warn"))})
    with pytest.raises(OutputCheckError, match="relationships_customer_id"):
        open_warehouse(location).load("nb.ipynb", outputs, checks=run)
    assert snapshot() == before


def test_a_check_that_cannot_run_names_itself_and_loads_nothing(backend: Any, tmp_path: Path) -> None:
    location, snapshot = backend
    before = snapshot()
    outputs = _outputs(tmp_path, [10], [1], ["paid"])
    with pytest.raises(WarehouseError, match="check not_null_no_such_column .* could not run, nothing loaded"):
        open_warehouse(location).load("nb.ipynb", outputs, checks=CheckRun({"mart.orders": (not_null("no_such_column"),)}))
    assert snapshot() == before


def test_freshness_column_is_judged_at_load_time(backend: Any, tmp_path: Path) -> None:
    import datetime as dt

    location, _ = backend
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    outputs = {"mart.events": _parquet(tmp_path / "e.parquet", at=[now - dt.timedelta(days=3), now - dt.timedelta(minutes=5)])}
    fresh = CheckRun({"mart.events": (freshness_column("at", max_age="1h"),)})
    open_warehouse(location).load("nb.ipynb", outputs, checks=fresh)
    assert fresh.outcomes[0].passed
    stale = {"mart.events": _parquet(tmp_path / "e2.parquet", at=[now - dt.timedelta(days=3)])}
    with pytest.raises(OutputCheckError, match="freshness_column_at"):
        open_warehouse(location).load("nb.ipynb", stale, checks=CheckRun({"mart.events": (freshness_column("at", max_age="2d"),)}))


def test_a_partitioned_check_looks_only_at_its_day(backend: Any, tmp_path: Path) -> None:
    import datetime as dt

    location, snapshot = backend
    d1, d2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
    warehouse = open_warehouse(location)
    # Day 1 is loaded without checks, with a duplicated id and only 2 rows.
    warehouse.load_partition("nb.ipynb", {"mart.daily": _parquet(tmp_path / "d1.parquet", ds=[d1, d1], id=[7, 7])}, PartitionLoad("ds", "2026-01-01"))
    checks = {"mart.daily": (unique("id"), row_count(min=3, max=3))}
    # Day 2 is clean: day 1's duplicate and row count are not its business.
    run = CheckRun(checks)
    day2 = {"mart.daily": _parquet(tmp_path / "d2.parquet", ds=[d2, d2, d2], id=[7, 8, 9])}
    warehouse.load_partition("nb.ipynb", day2, PartitionLoad("ds", "2026-01-02"), checks=run)
    assert all(o.passed for o in run.outcomes)
    before = snapshot()
    # Day 2 again, now with its own duplicate: blocked, and day 2 keeps its earlier rows.
    bad = {"mart.daily": _parquet(tmp_path / "d2b.parquet", ds=[d2, d2, d2], id=[5, 5, 6])}
    with pytest.raises(OutputCheckError, match=r"partition 2026-01-02.*unique_id"):
        warehouse.load_partition("nb.ipynb", bad, PartitionLoad("ds", "2026-01-02"), checks=CheckRun(checks))
    assert snapshot() == before


def test_a_sql_check_cannot_read_files_even_past_the_static_check(tmp_path: Path) -> None:
    """DuckDB's second wall: once the rows are in, the load's connection loses file access for its checks."""
    location = str(tmp_path / "warehouse.duckdb")
    decoy = _parquet(tmp_path / "decoy.parquet", secret=["decoy"])
    outputs = {"mart.x": _parquet(tmp_path / "x.parquet", a=[1])}
    run = CheckRun({"mart.x": (sql(f"SELECT * FROM read_parquet('{decoy}')"),)})  # built directly: no parser in the way
    with pytest.raises(WarehouseError, match="could not run, nothing loaded"):
        open_warehouse(location).load("nb.ipynb", outputs, checks=run)
    assert "mart.x" not in warehouse_snapshot(Path(location))


def test_a_slow_check_is_cancelled_at_checks_timeout_and_nothing_is_published(backend: Any, tmp_path: Path) -> None:
    """The checks run under their own deadline inside the load's (warehouse/deadline.py): a check that
    would run for hours is cancelled in the engine at checks_timeout, and the load rolls back."""
    from nb_assets.warehouse.deadline import RunBudget, StageTimeoutError

    location, snapshot = backend
    before = snapshot()
    many = list(range(3000))  # 3000^4 rows to look at: far longer than any test
    outputs = _outputs(tmp_path, many, [1] * len(many), ["paid"] * len(many))
    endless = ("hash(a.order_id, b.order_id, c.order_id, d.order_id) = 0" if not location.startswith("postgresql")
               else "md5(a.order_id::text || b.order_id::text || c.order_id::text || d.order_id::text) = ''")
    slow = sql(f"SELECT a.order_id FROM mart.orders a, mart.orders b, mart.orders c, mart.orders d WHERE {endless}", name="endless")
    deadline = RunBudget(600).stage("load", "load_timeout", 300, subs={"checks_timeout": 2})
    with pytest.raises(StageTimeoutError) as raised:
        open_warehouse(location).load("nb.ipynb", outputs, checks=CheckRun({"mart.orders": (slow,)}), deadline=deadline)
    message = str(raised.value)
    assert "nb.ipynb" in message and "output checks" in message and "checks_timeout 2 s" in message, message
    assert snapshot() == before
