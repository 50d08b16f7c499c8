"""One DuckDB file, many hands at once: four `nb-assets run`s, a Dagster run of the whole demo graph
(multiprocess executor), and an interactive `%%sql` session reading all the while.

Everything must complete or fail clearly, no load may be lost and the file
must stay sound. Every wait is bounded: the processes by their timeouts, the
warehouse's write lock by the host's lock wait, the interactive reads by theirs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from jupyter_client.manager import start_new_kernel

from support.notebook_factory import RUNTIME, code, md, write_notebook
from support.paths import REPO
from support.dagster_runs import explain_run, explain_runs

pytestmark = pytest.mark.slow

RUN_TIMEOUT_S = 900
DEMO_TABLES = ("mart.orders_clean", "mart.customer_revenue", "mart.daily_traffic", "mart.regional_revenue_emea", "mart.regional_revenue_apac")

# Runs inside a real kernel in interactive mode: the runtime's %%sql, read-only, again and again.
READER_CELL = """
import json, time
from pathlib import Path
%load_ext nb_assets.notebook
ip = get_ipython()
reads, errors = [], []
deadline = time.monotonic() + {budget}
while not Path({stop!r}).exists() and time.monotonic() < deadline:
    try:
        ip.run_cell_magic("sql", "n", "SELECT count(*) AS n FROM raw.orders")
        reads.append(int(ip.user_ns["n"]["n"][0]))
    except Exception as exc:
        errors.append(f"{{type(exc).__name__}}: {{exc}}")
    time.sleep(0.05)
Path({results!r}).write_text(json.dumps({{"reads": reads, "errors": errors}}))
"""


def _seed(path: Path) -> None:
    spec = importlib.util.spec_from_file_location("seed_demo", REPO / "scripts" / "seed_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.seed(path, scale=1, seed=42)


def _writer(tmp_path: Path, i: int) -> Path:
    return write_notebook(
        tmp_path / f"writer_{i}.ipynb",
        md(f"# Writer {i}"),
        code(RUNTIME),
        code("%%sql orders\nSELECT order_id FROM raw.orders"),
        code(f"import pandas as pd\nsummary = pd.DataFrame({{'writer': [{i}], 'orders': [len(orders)]}})"),
        code(f"output('mart.writer_{i}', summary)"),
    )


def test_runs_a_graph_and_an_interactive_reader_share_one_warehouse(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    _seed(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        orders = con.execute("SELECT count(*) FROM raw.orders").fetchone()[0]
    env = {**os.environ, "NB_ASSETS_WAREHOUSE": str(warehouse), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    stop, results = tmp_path / "stop-reading", tmp_path / "reads.json"

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env)
    try:
        reader = kc.execute(READER_CELL.format(budget=RUN_TIMEOUT_S, stop=str(stop), results=str(results)))
        graph = subprocess.Popen(
            # Every notebook but the daily-partitioned one: a run covers one partition or none.
            [sys.executable, "-m", "dagster", "asset", "materialize", "-f", "definitions.py", "--select", '* and not key:"mart/daily_orders"'],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "nb_assets.cli", "run", str(_writer(tmp_path, i)), "--warehouse", str(warehouse),
                 "--records", str(tmp_path / "records"), "--json"],
                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for i in range(4)
        ]
        outcomes = [p.communicate(timeout=RUN_TIMEOUT_S) for p in runs]
        graph_log, _ = graph.communicate(timeout=RUN_TIMEOUT_S)
        stop.touch()
        reply = kc.get_shell_msg(timeout=120)
        while reply["parent_header"].get("msg_id") != reader:
            reply = kc.get_shell_msg(timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        stop.touch()
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    for i, (proc, (stdout, stderr)) in enumerate(zip(runs, outcomes)):
        assert proc.returncode == 0, f"writer {i}: {stdout}{stderr[-2000:]}"
        assert json.loads(stdout)["outputs"] == [{"table": f"mart.writer_{i}", "rows": 1}]
    if graph.returncode != 0:  # the run's own failure events say why, not only the command's last lines
        import dagster as dg

        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            why = explain_runs(instance, [r.run_id for r in instance.get_runs()])
        pytest.fail(f"the Dagster run of the graph failed:\n{why}\n{graph_log[-4000:]}")

    import dagster as dg

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS, explain_run(instance, run.run_id)
        engine = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
        assert any("multiprocess executor" in (r.event_log_entry.message or "") for r in engine)
        materialized = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        # the six tables (two of them instances of one notebook, one read from declared sources) and the report
        assert len(materialized) == 7, [r.event_log_entry.dagster_event.asset_key for r in materialized]

    reads = json.loads(results.read_text())
    assert reads["errors"] == [] and len(reads["reads"]) > 0
    assert set(reads["reads"]) == {orders}  # every read saw the whole, unchanged source table

    # The file is sound: it opens for writing, checkpoints, and every table reads in full.
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CHECKPOINT")
        for i in range(4):
            assert con.execute(f"SELECT writer, orders FROM mart.writer_{i}").fetchall() == [(i, orders)]
        for table in DEMO_TABLES:
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0
        completed = con.execute("SELECT count(*) FROM mart.orders_clean WHERE status = 'completed'").fetchone()[0]
        assert con.execute("SELECT sum(orders) FROM mart.customer_revenue").fetchone()[0] == completed
