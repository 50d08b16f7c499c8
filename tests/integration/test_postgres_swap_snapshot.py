"""A load that commits while a prefetch is under way never hands the prefetch an empty table.

A prefetch reads all of a notebook's inputs in one REPEATABLE READ snapshot. Postgres DDL is not
MVCC-safe: when a load swaps a table in (DROP + RENAME) after that snapshot and before the prefetch
reads the table, the name resolves to the new relation, whose rows the snapshot cannot see. Each test
holds a real `PostgresWarehouse.prefetch` of two inputs between them: the first input waits on an
advisory lock the test holds (so the prefetch's snapshot is taken), the real load runs and commits,
the lock is released, and the second input reads the table the load replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest

from nb_assets.errors import WarehouseError
from nb_assets.warehouse.base import PartitionLoad, PrefetchRequest
from nb_assets.warehouse.postgres.warehouse import PostgresWarehouse
from support.warehouses import parquet_file, pg_execute, pg_snapshot

GATE = 7_340_001  # the advisory lock the first input waits on (advisory locks are per database)
_WAIT_S = 60.0


@contextmanager
def _prefetch_held_after_its_snapshot(dsn: str, tmp_path: Path, table: str) -> Iterator[Callable[[], Future]]:
    """Start a prefetch of [raw.orders behind the gate, `table`] and return once its first input waits at the gate
    (its snapshot is taken by then: the prefetch's catalog and role checks ran first). Yields `release`, which
    opens the gate and gives the prefetch's future."""
    requests = [
        PrefetchRequest("first", f"WITH gate AS (SELECT pg_advisory_xact_lock_shared({GATE})) "
                                 "SELECT o.order_id FROM raw.orders o, gate", {}, 1, tmp_path / "first.parquet"),
        PrefetchRequest("second", f"SELECT * FROM {table}", {}, 2, tmp_path / "second.parquet"),
    ]
    with psycopg.connect(dsn, autocommit=True) as gate, ThreadPoolExecutor(1) as pool:
        gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        future = pool.submit(PostgresWarehouse(dsn).prefetch, "downstream.ipynb", requests)
        _wait_for_a_waiter(gate, future)
        released = False

        def release() -> Future:
            nonlocal released
            gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
            released = True
            return future

        try:
            yield release
        finally:
            if not released:
                release()


def _wait_for_a_waiter(gate: psycopg.Connection, future: Future) -> None:
    """Until the prefetch's first input waits on the gate (a condition the server reports, not a guess at time)."""
    deadline = time.monotonic() + _WAIT_S
    while time.monotonic() < deadline:
        if future.done():
            raise AssertionError(f"the prefetch ended before reaching the gate: {future.exception() or future.result()}")
        waiting = gate.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())", (GATE,),
        ).fetchone()
        if waiting and waiting[0]:
            return
        time.sleep(0.01)
    raise AssertionError(f"the prefetch did not reach the gate within {_WAIT_S} s")


def _read(path: Path) -> list[tuple]:
    return sorted(tuple(r.values()) for r in pq.read_table(path).to_pylist())


def test_a_reload_with_the_same_columns_leaves_a_concurrent_prefetch_the_old_rows(pg_warehouse: str, tmp_path: Path) -> None:
    wh = PostgresWarehouse(pg_warehouse)
    wh.load("upstream.ipynb", {"mart.t": parquet_file(tmp_path, "old", pd.DataFrame({"x": [1, 2, 3], "s": ["a", "b", "c"]}))})
    new = parquet_file(tmp_path, "new", pd.DataFrame({"x": [10, 20, 30, 40], "s": ["p", "q", "r", "s"]}))
    with _prefetch_held_after_its_snapshot(pg_warehouse, tmp_path, "mart.t") as release:
        assert wh.load("upstream.ipynb", {"mart.t": new}) == {"mart.t": 4}  # committed while the prefetch waits
        rows = release().result(timeout=_WAIT_S)
    assert rows == {"first": 20, "second": 3}, f"the prefetch read {rows}: an empty 'second' is the swap's empty read"
    assert _read(tmp_path / "second.parquet") == [(1, "a"), (2, "b"), (3, "c")]
    assert pg_snapshot(pg_warehouse)["mart.t"] == sorted([(10, "p"), (20, "q"), (30, "r"), (40, "s")], key=repr)
    after = PrefetchRequest("t", "SELECT * FROM mart.t", {}, 1, tmp_path / "after.parquet")
    assert wh.prefetch("downstream.ipynb", [after]) == {"t": 4}  # a prefetch that starts later reads the new rows


def test_a_reload_with_new_columns_fails_a_concurrent_prefetch_clearly(pg_warehouse: str, tmp_path: Path) -> None:
    """The one case the swap stays for: its relation is new, no snapshot taken before it can read it."""
    wh = PostgresWarehouse(pg_warehouse)
    wh.load("upstream.ipynb", {"mart.t": parquet_file(tmp_path, "old", pd.DataFrame({"x": [1, 2, 3]}))})
    new = parquet_file(tmp_path, "new", pd.DataFrame({"x": [10, 20], "added": [0.5, 1.5]}))
    with _prefetch_held_after_its_snapshot(pg_warehouse, tmp_path, "mart.t") as release:
        wh.load("upstream.ipynb", {"mart.t": new})
        future = release()
        with pytest.raises(WarehouseError) as refused:
            future.result(timeout=_WAIT_S)
    message = str(refused.value)
    assert "downstream.ipynb: cell 2: SQL input 'second'" in message and "mart.t" in message, message
    assert "retry: its table was replaced while it was read" in message, message
    assert refused.value.cell == 2
    assert not (tmp_path / "second.parquet").exists()
    assert wh.describe("mart.t").columns == (("x", "BIGINT"), ("added", "DOUBLE PRECISION"))


def test_the_first_load_of_a_partitioned_table_fails_a_concurrent_prefetch_clearly(pg_warehouse: str, tmp_path: Path) -> None:
    """load_partition creates a missing table by renaming its staging table: new to a snapshot taken before."""
    wh = PostgresWarehouse(pg_warehouse)
    pg_execute(pg_warehouse, "CREATE SCHEMA mart")
    day = parquet_file(tmp_path, "day", pd.DataFrame({"ds": [pd.Timestamp("2026-11-02").date()] * 2, "v": [1, 2]}))
    with _prefetch_held_after_its_snapshot(pg_warehouse, tmp_path, "mart.p") as release:
        wh.load_partition("upstream.ipynb", {"mart.p": day}, PartitionLoad("ds", "2026-11-02"))
        future = release()
        with pytest.raises(WarehouseError, match=r"downstream.ipynb: cell 2: SQL input 'second' read mart\.p, .*"
                                                 r"retry: its table was replaced while it was read"):
            future.result(timeout=_WAIT_S)
    assert len(pg_snapshot(pg_warehouse)["mart.p"]) == 2


def test_a_partition_reload_leaves_a_concurrent_prefetch_the_old_day(pg_warehouse: str, tmp_path: Path) -> None:
    wh = PostgresWarehouse(pg_warehouse)
    day = lambda d, v: pd.DataFrame({"ds": [pd.Timestamp(d).date()] * len(v), "v": v})  # noqa: E731
    wh.load_partition("upstream.ipynb", {"mart.p": parquet_file(tmp_path, "d2", day("2026-11-02", [1, 2]))}, PartitionLoad("ds", "2026-11-02"))
    wh.load_partition("upstream.ipynb", {"mart.p": parquet_file(tmp_path, "d3", day("2026-11-03", [3]))}, PartitionLoad("ds", "2026-11-03"))
    with _prefetch_held_after_its_snapshot(pg_warehouse, tmp_path, "mart.p") as release:
        again = parquet_file(tmp_path, "d2b", day("2026-11-02", [7, 8, 9]))
        wh.load_partition("upstream.ipynb", {"mart.p": again}, PartitionLoad("ds", "2026-11-02"))
        assert release().result(timeout=_WAIT_S) == {"first": 20, "second": 3}
    assert sorted(v for _, v in _read(tmp_path / "second.parquet")) == [1, 2, 3]
    assert sorted(v for _, v in pg_snapshot(pg_warehouse)["mart.p"]) == [3, 7, 8, 9]


def test_a_reload_with_the_same_columns_keeps_the_views_grants_and_indexes_on_the_table(pg_warehouse: str, tmp_path: Path) -> None:
    """Replacing the rows, not the relation: what people built on an output survives its next load."""
    wh = PostgresWarehouse(pg_warehouse)
    wh.load("upstream.ipynb", {"mart.t": parquet_file(tmp_path, "old", pd.DataFrame({"x": [1, 2]}))})
    pg_execute(pg_warehouse, "CREATE VIEW mart.t_view AS SELECT x * 2 AS y FROM mart.t", "CREATE INDEX t_x ON mart.t (x)",
         "GRANT SELECT ON mart.t TO PUBLIC")
    assert wh.load("upstream.ipynb", {"mart.t": parquet_file(tmp_path, "new", pd.DataFrame({"x": [5, 6, 7]}))}) == {"mart.t": 3}
    snapshot = pg_snapshot(pg_warehouse)
    assert snapshot["mart.t"] == [(5,), (6,), (7,)] and snapshot["mart.t_view"] == [(10,), (12,), (14,)]
    assert "mart.t__nb_stage" not in snapshot
    with psycopg.connect(pg_warehouse) as con:
        assert con.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'mart'").fetchall() == [("t_x",)]
        assert con.execute("SELECT has_table_privilege('public', 'mart.t', 'SELECT')").fetchone() == (True,)
        comment = con.execute("SELECT obj_description('mart.t'::regclass, 'pg_class')").fetchone()[0]
    assert "upstream" in comment  # the writer is recorded on either path


def test_a_failed_load_with_the_same_columns_leaves_the_old_rows(pg_warehouse: str, tmp_path: Path) -> None:
    """The in-place path is in the load's one transaction: a later output failing rolls its DELETE back too."""
    wh = PostgresWarehouse(pg_warehouse)
    wh.load("upstream.ipynb", {"mart.a": parquet_file(tmp_path, "a", pd.DataFrame({"x": [1]})),
                               "mart.b": parquet_file(tmp_path, "b", pd.DataFrame({"y": ["k"]}))})
    before = pg_snapshot(pg_warehouse)
    outputs = {"mart.a": parquet_file(tmp_path, "a2", pd.DataFrame({"x": [5, 6]})),  # same columns: rows replaced in place
               "mart.b": parquet_file(tmp_path, "b2", pd.DataFrame({"y": [1.5]}))}   # new type: swapped
    pg_execute(pg_warehouse, "CREATE VIEW mart.b_view AS SELECT * FROM mart.b")  # so the server refuses b's DROP
    with pytest.raises(WarehouseError, match=r"upstream.ipynb: loading outputs failed, nothing loaded: .*depend"):
        wh.load("upstream.ipynb", outputs)
    assert pg_snapshot(pg_warehouse) == {**before, "mart.b_view": before["mart.b"]}


def test_two_loads_of_one_table_at_once_leave_one_of_them_not_both(pg_warehouse: str, tmp_path: Path) -> None:
    """In place, two loads' DELETEs could each miss the other's new rows and both sets would stay; loads of one
    table go one at a time, as DROP made them. Both queue behind another session's lock on the table."""
    wh = PostgresWarehouse(pg_warehouse)
    wh.load("upstream.ipynb", {"mart.t": parquet_file(tmp_path, "old", pd.DataFrame({"x": [0]}))})
    files = {n: parquet_file(tmp_path, f"run{n}", pd.DataFrame({"x": [n, n]})) for n in (1, 2)}
    with psycopg.connect(pg_warehouse) as holder, ThreadPoolExecutor(2) as pool:
        holder.execute("LOCK TABLE mart.t IN ACCESS EXCLUSIVE MODE")
        loads = []
        try:
            for n in (1, 2):  # one after the other: the first is waiting before the second starts
                loads.append(pool.submit(wh.load, f"run{n}.ipynb", {"mart.t": files[n]}))
                _wait_for_waiting_sessions(holder, n, loads)
        finally:
            holder.rollback()  # before the pool waits for the loads
        assert [f.result(timeout=_WAIT_S) for f in loads] == [{"mart.t": 2}, {"mart.t": 2}]
    assert pg_snapshot(pg_warehouse)["mart.t"] in ([(1,), (1,)], [(2,), (2,)])


def _wait_for_waiting_sessions(con: psycopg.Connection, count: int, futures: list[Future]) -> None:
    deadline = time.monotonic() + _WAIT_S
    while time.monotonic() < deadline:
        if any(f.done() for f in futures):
            raise AssertionError(f"a load ended instead of waiting: {[f.done() and (f.exception() or f.result()) for f in futures]}")
        con.execute("SELECT pg_stat_clear_snapshot()")  # else the view stays as first read in this transaction
        waiting = con.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                              "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()").fetchone()
        if waiting and waiting[0] == count:
            return
        time.sleep(0.01)
    raise AssertionError(f"{count} load(s) did not wait within {_WAIT_S} s")


def test_a_reader_in_the_middle_of_a_table_does_not_hold_its_reload_back(pg_warehouse: str, tmp_path: Path) -> None:
    """The swap's DROP waited for every open reader of the table (and queued new ones behind it); in place, none."""
    from nb_assets.warehouse.deadline import Deadline

    wh = PostgresWarehouse(pg_warehouse)
    wh.load("upstream.ipynb", {"mart.t": parquet_file(tmp_path, "old", pd.DataFrame({"x": [1, 2]}))})
    with psycopg.connect(pg_warehouse) as reader:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        assert reader.execute("SELECT count(*) FROM mart.t").fetchone() == (2,)  # holds its lock until the end
        bound = Deadline(_WAIT_S, stage="load", why="a bound for this test, not a measurement")
        assert wh.load("upstream.ipynb", {"mart.t": parquet_file(tmp_path, "new", pd.DataFrame({"x": [7]}))}, deadline=bound) == {"mart.t": 1}
        assert reader.execute("SELECT x FROM mart.t").fetchall() == [(1,), (2,)]  # its snapshot, still whole
    assert pg_snapshot(pg_warehouse)["mart.t"] == [(7,)]


def test_a_table_another_loader_truncates_and_refills_fails_a_concurrent_prefetch_clearly(pg_warehouse: str, tmp_path: Path) -> None:
    """Not a load of ours: TRUNCATE gives the table a new file, which an older snapshot reads as empty too."""
    pg_execute(pg_warehouse, "CREATE SCHEMA mart", "CREATE TABLE mart.t AS SELECT 1 AS x")
    with _prefetch_held_after_its_snapshot(pg_warehouse, tmp_path, "mart.t") as release:
        with psycopg.connect(pg_warehouse) as loader:
            loader.execute("TRUNCATE mart.t")
            loader.execute("INSERT INTO mart.t VALUES (2)")
        future = release()
        with pytest.raises(WarehouseError, match=r"cell 2: SQL input 'second' read mart\.t, .*truncated.* "
                                                 r"retry: its table was replaced while it was read"):
            future.result(timeout=_WAIT_S)
