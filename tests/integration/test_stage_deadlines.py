"""Every host stage has a deadline (warehouse/deadline.py): a slow prefetch or load is cut there,
its query cancelled in the engine itself, with an error naming the notebook, the input and the limit,
and the warehouse exactly as before.

Real parts: a DuckDB file and the suite's Postgres cluster, `nb-assets run` in a fresh interpreter,
Dagster's `materialize`, the local sandbox. The slow queries really are slow in their engine: a cross
join of ranges counted (DuckDB: 10^15 rows; Postgres: 2 x 10^11), or `pg_sleep` where no static check
stands in between. No test asserts on wall time beyond "it returned before the test's generous bound"
(each subprocess and wait has one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from nb_assets import NotebookAsset, NotebookResource, build_notebook_assets
from nb_assets.defs.build import RESOURCE_KEY
from nb_assets.sandbox.base import SandboxLimits
from nb_assets.warehouse.base import PrefetchRequest
from nb_assets.warehouse.deadline import Deadline, RunBudget, StageTimeoutError
from support.cli import NB_ASSETS
from support.paths import REPO
from support.notebook_factory import RUNTIME, code, md, write_notebook
from support.warehouses import pg_snapshot, warehouse_snapshot

pytestmark = pytest.mark.slow

BOUND_S = 240  # generous: each stage below is cut after a few seconds; a hang runs into this instead
DUCK_SLOW = "SELECT count(*) AS n FROM raw.orders a, range(100000) b, range(100000) c, range(100000) d"
PG_SLOW = "SELECT count(*) AS n FROM raw.orders a, generate_series(1, 100000) b, generate_series(1, 100000) c"


def _slow_notebook(folder: Path, query: str, name: str = "slow") -> Path:
    return write_notebook(folder / f"{name}.ipynb", md(f"# {name}"), code(RUNTIME), code(f"%%sql totals\n{query}"),
                          code(f"output('mart.{name}', totals)"))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NB_ASSETS, *args], cwd=cwd, capture_output=True, text=True, timeout=BOUND_S,
                          env={**os.environ, "NB_ASSETS_WAREHOUSE": ""})


def _failed_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["error"]


def _materialize(folder: Path, warehouse: str, limits: SandboxLimits) -> dg.ExecuteInProcessResult:
    assets = build_notebook_assets([NotebookAsset("slow.ipynb", limits=limits)], base_dir=folder)
    runner = NotebookResource(warehouse=warehouse, sandbox="local", records_dir=str(folder / "records"))
    return dg.materialize(assets, resources={RESOURCE_KEY: runner}, raise_on_error=False)


def _step_failure(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    return failure.step_failure_data.user_failure_data.description or ""


def _pg_still_running(dsn: str, marker: str) -> list[str]:
    """Queries of other sessions on the server whose text has `marker`: a cancel that never reached the
    engine leaves the count running there, since a count sends nothing back until it is done."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as con:
        rows = con.execute(
            "SELECT query FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE %s",
            (f"%{marker}%",),
        ).fetchall()
    return [r[0] for r in rows]


def _wait_gone(dsn: str, marker: str) -> list[str]:
    """Whatever still runs once the server had a generous while to end the cancelled backend."""
    ends = time.monotonic() + 30
    while (running := _pg_still_running(dsn, marker)) and time.monotonic() < ends:
        time.sleep(0.2)
    return running


# --- DuckDB -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "limit"), [
    (("--timeout", "6"), "(prefetch_timeout 300 s, cut to what was left of the run's timeout_s 6 s)"),
    (("--prefetch-timeout", "3"), "(prefetch_timeout 3 s)"),
])
def test_cli_cuts_a_slow_duckdb_prefetch_at_its_deadline(tmp_path: Path, warehouse: Path, flags: tuple[str, ...], limit: str) -> None:
    nb = _slow_notebook(tmp_path, DUCK_SLOW)
    before = warehouse_snapshot(warehouse)
    proc = _cli("run", str(nb), "--warehouse", str(warehouse), "--sandbox", "local", *flags, "--json", cwd=tmp_path)
    error = _failed_json(proc)
    assert error["kind"] == "stage-timeout" and error["cell"] == 3, error
    assert error["message"].startswith(f"{nb}: cell 3: SQL input 'totals': the prefetch did not finish within the deadline")
    assert limit in error["message"]
    assert "the query was cancelled in the warehouse and nothing was fetched" in error["message"]
    assert warehouse_snapshot(warehouse) == before


def test_dagster_cuts_a_slow_duckdb_prefetch_and_the_run_fails_with_the_reason(tmp_path: Path, warehouse: Path) -> None:
    _slow_notebook(tmp_path, DUCK_SLOW)
    before = warehouse_snapshot(warehouse)
    result = _materialize(tmp_path, str(warehouse), SandboxLimits(prefetch_timeout=3))
    description = _step_failure(result)
    assert "slow.ipynb: cell 3: SQL input 'totals': the prefetch did not finish within the deadline of 3 s (prefetch_timeout 3 s)" in description
    assert warehouse_snapshot(warehouse) == before
    # The manual's example of this message (docs/declaring-notebooks.md, "Limits") is this run's, word for word.
    page = (REPO / "docs" / "declaring-notebooks.md").read_text()
    documented = " ".join(page.split("```text\n", 1)[1].split("```", 1)[0].split())
    assert documented.replace("notebooks/slow.ipynb", str((tmp_path / "slow.ipynb").resolve())) in " ".join(description.split())
    kept = json.loads(next((tmp_path / "records").rglob("run.json")).read_text())
    assert kept["error"]["kind"] == "stage-timeout", kept["error"]


def test_a_duckdb_load_cut_midway_rolls_back_every_table(tmp_path: Path, warehouse: Path) -> None:
    from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse

    nb = str(tmp_path / "loader.ipynb")
    with duckdb.connect() as con:  # the outputs, as a sandbox leaves them: a small one, then a big one
        con.execute(f"COPY (SELECT 2 AS v) TO '{tmp_path / 'a.parquet'}' (FORMAT parquet)")
        con.execute(f"COPY (SELECT range AS id, random() AS x, hash(range) AS h FROM range(6000000)) "
                    f"TO '{tmp_path / 'big.parquet'}' (FORMAT parquet)")
    outputs = {"mart.a": tmp_path / "a.parquet", "mart.big": tmp_path / "big.parquet"}
    DuckDBWarehouse(warehouse).load(nb, {"mart.a": outputs["mart.a"]})  # mart.a is there before: the load replaces it
    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE mart.a SET v = 1")
    # How long this load takes here and now, on a copy: the deadline is a small part of it, so it falls
    # in the middle of the big table whatever the machine.
    scratch = tmp_path / "scratch.duckdb"
    shutil.copy(warehouse, scratch)
    started = time.monotonic()
    DuckDBWarehouse(scratch).load(nb, outputs)
    whole = time.monotonic() - started
    before = warehouse_snapshot(warehouse)
    assert before["mart.a"] == [(1,)] and "mart.big" not in before

    deadline = Deadline(whole / 8, stage="load", why="load_timeout (a test's)")
    with pytest.raises(StageTimeoutError) as err:
        DuckDBWarehouse(warehouse).load(nb, outputs, deadline=deadline)
    assert str(err.value).startswith(f"{nb}: loading mart.")
    assert "the transaction was rolled back, nothing loaded" in str(err.value)
    assert isinstance(err.value.__cause__.__cause__, duckdb.InterruptException)  # the engine was interrupted
    assert warehouse_snapshot(warehouse) == before
    # The file is whole and writable: the next load goes through.
    assert DuckDBWarehouse(warehouse).load(nb, {"mart.a": outputs["mart.a"]}) == {"mart.a": 1}


def test_a_duckdb_stage_waiting_for_another_process_lock_ends_at_its_deadline(tmp_path: Path, warehouse: Path) -> None:
    import sys

    from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse

    holder = subprocess.Popen(  # another process writing the file: DuckDB's lock is the file's, per process
        [sys.executable, "-c", f"import duckdb, sys; con = duckdb.connect({str(warehouse)!r}); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        request = PrefetchRequest("orders", "SELECT * FROM raw.orders", {}, 2, tmp_path / "orders.parquet")
        with pytest.raises(StageTimeoutError) as err:
            DuckDBWarehouse(warehouse).prefetch("nb.ipynb", [request], deadline=Deadline(2, stage="prefetch", why="prefetch_timeout 2 s"))
    finally:
        holder.communicate("", timeout=BOUND_S)
    assert str(err.value) == (f"nb.ipynb: waiting for the lock on {warehouse} (another process writes it): the prefetch did not "
                              "finish within the deadline of 2 s (prefetch_timeout 2 s); nothing was fetched")


def test_output_checks_inside_a_load_are_cut_at_their_own_deadline_and_the_load_goes_on(warehouse: Path) -> None:
    """The API output checks use (deadline.py): a sub-deadline of the load's, on the load's own connection."""
    load = RunBudget(600).stage("load", "load_timeout", 120, subs={"checks_timeout": 1})
    with duckdb.connect(str(warehouse)) as con, load.watching(con.interrupt, "nb.ipynb", "loading mart.x"):
        con.execute("BEGIN TRANSACTION")
        with pytest.raises(StageTimeoutError) as err, \
                load.sub("checks_timeout").watching(con.interrupt, "nb.ipynb", "checks of mart.x"):
            con.execute(DUCK_SLOW).fetchall()
        con.execute("ROLLBACK")
        assert con.execute("SELECT count(*) FROM raw.orders").fetchone() == (20,)  # the load's connection still answers
    assert str(err.value) == ("nb.ipynb: checks of mart.x: the output checks did not finish within the deadline of 1 s "
                              "(checks_timeout 1 s); the query was cancelled in the warehouse and the transaction was rolled back, "
                              "nothing loaded")
    assert not load.expired


# --- Postgres ---------------------------------------------------------------------------------


def test_postgres_prefetch_is_cancelled_by_the_host_not_by_the_servers_timeout(tmp_path: Path, pg_warehouse: str) -> None:
    from nb_assets.warehouse.postgres.warehouse import PostgresWarehouse

    request = PrefetchRequest("napping", "SELECT pg_sleep(600) IS NULL AS slept, order_id FROM raw.orders", {}, 4,
                              tmp_path / "napping.parquet")
    deadline = Deadline(2, stage="prefetch", why="prefetch_timeout 2 s")
    with pytest.raises(StageTimeoutError) as err:
        PostgresWarehouse(pg_warehouse, statement_timeout_s=3600).prefetch("nb.ipynb", [request], deadline=deadline)
    assert str(err.value) == ("nb.ipynb: cell 4: SQL input 'napping': the prefetch did not finish within the deadline of 2 s "
                              "(prefetch_timeout 2 s); the query was cancelled in the warehouse and nothing was fetched")
    assert err.value.cell == 4
    assert "canceling statement due to user request" in str(err.value.__cause__)  # the host's cancel, not statement_timeout
    assert _wait_gone(pg_warehouse, "pg_sleep(600)") == []


def test_cli_cuts_a_slow_postgres_prefetch_and_the_server_stops_the_query(tmp_path: Path, pg_warehouse: str) -> None:
    nb = _slow_notebook(tmp_path, PG_SLOW)
    before = pg_snapshot(pg_warehouse)
    proc = _cli("run", str(nb), "--warehouse", pg_warehouse, "--sandbox", "local", "--timeout", "6", "--json", cwd=tmp_path)
    error = _failed_json(proc)
    assert error["kind"] == "stage-timeout" and error["cell"] == 3, error
    assert error["message"].startswith(f"{nb}: cell 3: SQL input 'totals': the prefetch did not finish within the deadline")
    assert "cut to what was left of the run's timeout_s 6 s" in error["message"]
    assert _wait_gone(pg_warehouse, "generate_series(1, 100000) c") == []
    assert pg_snapshot(pg_warehouse) == before


def test_dagster_cuts_a_slow_postgres_prefetch(tmp_path: Path, pg_warehouse: str) -> None:
    _slow_notebook(tmp_path, PG_SLOW)
    before = pg_snapshot(pg_warehouse)
    result = _materialize(tmp_path, pg_warehouse, SandboxLimits(prefetch_timeout=3))
    description = _step_failure(result)
    assert "slow.ipynb: cell 3: SQL input 'totals': the prefetch did not finish within the deadline of 3 s (prefetch_timeout 3 s)" in description
    assert _wait_gone(pg_warehouse, "generate_series(1, 100000) c") == []
    assert pg_snapshot(pg_warehouse) == before


class _IndexBuilder:
    """Another session holding `table` as CREATE INDEX does (SHARE): a load of that table waits for it, in place or
    swapping. A reader does not hold a load back: a load replaces a table's rows in place (warehouse/postgres/load.py)."""

    def __init__(self, dsn: str, table: str) -> None:
        import psycopg

        self.con = psycopg.connect(dsn)
        self.con.execute(f"LOCK TABLE {table} IN SHARE MODE")

    def close(self) -> None:
        self.con.rollback()
        self.con.close()


def test_a_postgres_load_cut_midway_rolls_back_every_table(tmp_path: Path, pg_warehouse: str) -> None:
    import pandas as pd

    from nb_assets.warehouse.postgres.warehouse import PostgresWarehouse

    files = {}
    for table, value in (("mart.a", 1), ("mart.b", 1), ("mart.a2", 2), ("mart.b2", 2)):
        files[table] = tmp_path / f"{table}.parquet"
        pd.DataFrame({"v": [value]}).to_parquet(files[table])
    wh = PostgresWarehouse(pg_warehouse)
    wh.load("nb", {"mart.a": files["mart.a"], "mart.b": files["mart.b"]})
    before = pg_snapshot(pg_warehouse)
    holder = _IndexBuilder(pg_warehouse, "mart.b")  # mart.a is written; mart.b waits for the index build: cut there
    try:
        deadline = Deadline(3, stage="load", why="load_timeout 3 s")
        with pytest.raises(StageTimeoutError) as err:
            wh.load("nb", {"mart.a": files["mart.a2"], "mart.b": files["mart.b2"]}, deadline=deadline)
    finally:
        holder.close()
    assert str(err.value) == ("nb: loading mart.b: the load did not finish within the deadline of 3 s (load_timeout 3 s); "
                              "the query was cancelled in the warehouse and the transaction was rolled back, nothing loaded")
    assert "canceling statement due to user request" in str(err.value.__cause__)
    assert pg_snapshot(pg_warehouse) == before  # mart.a as it was, no staging table left


def test_cli_cuts_a_postgres_load_that_waits_and_changes_nothing(tmp_path: Path, pg_warehouse: str) -> None:
    nb = write_notebook(tmp_path / "orders_copy.ipynb", code(RUNTIME), code("%%sql rows\nSELECT * FROM raw.orders"),
                        code("output('mart.orders_copy', rows)"))
    first = _cli("run", str(nb), "--warehouse", pg_warehouse, "--sandbox", "local", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    import psycopg

    with psycopg.connect(pg_warehouse, autocommit=True) as con:
        con.execute("INSERT INTO raw.orders VALUES (99, 1, 1.0, DATE '2026-11-09')")  # the next run has more to load
    before = pg_snapshot(pg_warehouse)
    holder = _IndexBuilder(pg_warehouse, "mart.orders_copy")
    try:
        proc = _cli("run", str(nb), "--warehouse", pg_warehouse, "--sandbox", "local", "--load-timeout", "3", "--json", cwd=tmp_path)
    finally:
        holder.close()
    error = _failed_json(proc)
    assert error["kind"] == "stage-timeout", error
    assert error["message"] == (f"{nb}: loading mart.orders_copy: the load did not finish within the deadline of 3 s (load_timeout 3 s); "
                                "the query was cancelled in the warehouse and the transaction was rolled back, nothing loaded")
    assert pg_snapshot(pg_warehouse) == before


def test_a_share_lock_really_holds_a_load_back(pg_warehouse: str, tmp_path: Path) -> None:
    """The load tests above stand on this: without a deadline, a load waits for a SHARE lock until it goes."""
    import pandas as pd

    from nb_assets.warehouse.postgres.warehouse import PostgresWarehouse

    path = tmp_path / "b.parquet"
    pd.DataFrame({"v": [1]}).to_parquet(path)
    wh = PostgresWarehouse(pg_warehouse)
    wh.load("nb", {"mart.b": path})
    holder = _IndexBuilder(pg_warehouse, "mart.b")
    done = threading.Event()
    loader = threading.Thread(target=lambda: (wh.load("nb", {"mart.b": path}), done.set()), daemon=True)
    loader.start()
    try:
        assert not done.wait(3), "the load did not wait for the SHARE lock"
    finally:
        holder.close()
    assert done.wait(BOUND_S), "the load did not go through once the lock was gone"
