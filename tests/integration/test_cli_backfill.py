"""`nb-assets backfill`, `run --partition/--instance` and `land --partition` on a small real project."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from support.warehouses import warehouse_snapshot
from nb_assets.cli.main import main
from support.notebook_factory import RUNTIME, code, md, params, write_notebook

DEFINITIONS = """
from pathlib import Path
from nb_assets import DailyPartitions, NotebookAsset, notebook_definitions
BASE_DIR = Path(__file__).parent
defs = notebook_definitions(
    [NotebookAsset("daily.ipynb", partitions=DailyPartitions(start="2026-01-01"), sandbox="local"),
     NotebookAsset("regional.ipynb", instances={"emea": {"region": "EMEA"}, "apac": {"region": "APAC"}}, sandbox="local")],
    warehouse=BASE_DIR / "warehouse.duckdb", base_dir=BASE_DIR)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """raw.events (day d has d rows), mart.daily_events holding every day with n = -1; day 2 always fails."""
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE SCHEMA mart")
        con.execute("CREATE TABLE raw.events AS SELECT DATE '2026-01-01' + d::INTEGER AS event_date, r AS id FROM range(5) t(d), range(5) u(r) WHERE r <= d")
        con.execute("CREATE TABLE raw.sales AS SELECT 'EMEA' AS region, 1.5 AS amount UNION ALL SELECT 'APAC', 2.5")
        con.execute("CREATE TABLE mart.daily_events AS SELECT DATE '2026-01-01' + d::INTEGER AS ds, -1::BIGINT AS n FROM range(5) t(d)")
    write_notebook(
        tmp_path / "daily.ipynb", md("# Daily"), code(RUNTIME), params('ds = "2026-01-01"'),
        code("%%sql ev\nSELECT event_date, id FROM raw.events WHERE event_date = CAST($ds AS DATE)"),
        code("assert ds != '2026-01-02', 'day two is broken'\nout = ev.assign(ds=ev.event_date).groupby('ds', as_index=False).size().rename(columns={'size': 'n'})"),
        code("output('mart.daily_events', out)"),
    )
    write_notebook(
        tmp_path / "regional.ipynb", md("# Regional"), code(RUNTIME), params('region = "ALL"'),
        code("%%sql sales\nSELECT * FROM raw.sales WHERE region = $region"), code("output('mart.sales', sales)"),
    )
    (tmp_path / "definitions.py").write_text(DEFINITIONS)
    return tmp_path


def _days(project: Path) -> dict[str, int]:
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        return {d.isoformat(): n for d, n in con.execute("SELECT ds, n FROM mart.daily_events ORDER BY ds").fetchall()}


def _cli(project: Path, *args: str) -> int:
    return main([*args, "--definitions", str(project / "definitions.py"), "--records", str(project / "records")])


def test_a_backfill_runs_each_day_continues_past_a_failed_one_and_lists_it(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code_ = _cli(project, "backfill", str(project / "daily.ipynb"), "--from", "2026-01-01", "--to", "2026-01-03")
    out, err = capsys.readouterr()
    assert code_ == 1
    assert "2026-01-01: success, loaded mart.daily_events (1 rows)" in out
    assert "2026-01-03: success, loaded mart.daily_events (1 rows)" in out
    assert "2026-01-02: failed" in err and "day two is broken" in err
    assert err.strip().endswith("1 of 3 day(s) failed: 2026-01-02")
    assert _days(project) == {"2026-01-01": 1, "2026-01-02": -1, "2026-01-03": 3, "2026-01-04": -1, "2026-01-05": -1}


@pytest.mark.parametrize(
    ("first", "last", "needle"),
    [
        ("2026-13-01", "2026-01-03", "partition key '2026-13-01' is not a date"),
        ("2026-01-03", "2026-01-01", "the range ends (2026-01-01) before it starts (2026-01-03)"),
        ("2025-12-30", "2026-01-01", "daily.ipynb --from: 2025-12-30 is not one of the partitions' days (2026-01-01 to yesterday"),
        ("2026-01-01", "2999-01-01", "daily.ipynb --to: 2999-01-01 is not one of the partitions' days (2026-01-01 to yesterday"),
    ],
)
def test_a_bad_range_runs_nothing(project: Path, capsys: pytest.CaptureFixture[str], first: str, last: str, needle: str) -> None:
    before = warehouse_snapshot(project / "warehouse.duckdb")
    assert _cli(project, "backfill", str(project / "daily.ipynb"), "--from", first, "--to", last) == 2
    assert needle in capsys.readouterr().err
    assert warehouse_snapshot(project / "warehouse.duckdb") == before
    assert not (project / "records").exists()


def test_run_needs_a_partition_for_a_partitioned_notebook_and_replaces_only_that_day(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(project, "run", str(project / "daily.ipynb")) == 1
    assert "daily.ipynb is partitioned daily: pass --partition YYYY-MM-DD" in capsys.readouterr().err
    assert _cli(project, "run", str(project / "daily.ipynb"), "--partition", "yesterday") == 1
    assert "partition key 'yesterday' is not a date" in capsys.readouterr().err
    for outside in ("2025-12-31", "2999-01-01"):  # before the first day, and a day that has not ended
        before = warehouse_snapshot(project / "warehouse.duckdb")
        assert _cli(project, "run", str(project / "daily.ipynb"), "--partition", outside) == 1
        assert f"daily.ipynb --partition: {outside} is not one of the partitions' days" in capsys.readouterr().err
        assert warehouse_snapshot(project / "warehouse.duckdb") == before
    assert _cli(project, "run", str(project / "daily.ipynb"), "--partition", "2026-01-04") == 0
    assert _days(project)["2026-01-04"] == 4 and _days(project)["2026-01-05"] == -1


@pytest.mark.parametrize(("notebook", "needle"), [
    ("daily.ipynb", "daily.ipynb is daily-partitioned in"),
    ("regional.ipynb", "regional.ipynb is declared with instances (emea, apac) in"),
])
def test_run_without_definitions_refuses_a_notebook_its_project_declares_by_day_or_instance(
    project: Path, capsys: pytest.CaptureFixture[str], notebook: str, needle: str
) -> None:
    """Run ad hoc, the daily notebook's output would replace every day's rows of mart.daily_events."""
    before = warehouse_snapshot(project / "warehouse.duckdb")
    assert main(["run", str(project / notebook), "--warehouse", str(project / "warehouse.duckdb"), "--records", str(project / "records")]) == 1
    assert needle in capsys.readouterr().err
    assert warehouse_snapshot(project / "warehouse.duckdb") == before


def test_run_picks_an_instance(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(project, "run", str(project / "regional.ipynb")) == 1
    assert "declared with instances (emea, apac); pick one with --instance" in capsys.readouterr().err
    assert _cli(project, "run", str(project / "regional.ipynb"), "--instance", "apac") == 0
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT region FROM mart.sales_apac").fetchall() == [("APAC",)]
    capsys.readouterr()
    # The notebook's runs, asked for by the notebook: its instances' runs, each named.
    assert main(["runs", str(project / "regional.ipynb"), "--records", str(project / "records")]) == 0
    listed = capsys.readouterr().out
    assert "regional_apac" in listed and "success" in listed


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--partition", "yesterday"), "raw.events --partition: partition key 'yesterday' is not a date"),
        (("--partition", "2026-02-30"), "partition key '2026-02-30' is not a date"),
        (("--partition", "2025-12-31"), "raw.events --partition: 2025-12-31 is not one of the partitions' days (2026-01-01 to yesterday"),
        (("--partition", "2999-01-01"), "raw.events --partition: 2999-01-01 is not one of the partitions' days"),
        ((), "raw.events feeds daily-partitioned notebooks only; say which day landed with --partition"),
    ],
)
def test_a_landing_whose_partition_is_not_a_day_changes_nothing(project: Path, capsys: pytest.CaptureFixture[str], args, needle: str) -> None:
    before = warehouse_snapshot(project / "warehouse.duckdb")
    assert main(["land", "raw.events", *args, "--definitions", str(project / "definitions.py")]) == 2
    assert needle in capsys.readouterr().err
    assert warehouse_snapshot(project / "warehouse.duckdb") == before


def test_a_landing_for_a_day_is_recorded(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["land", "raw.events", "--partition", "2026-01-03", "--definitions", str(project / "definitions.py")]) == 0
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute('SELECT "table", partition FROM nb_assets.landings').fetchall() == [("raw.events", "2026-01-03")]


def test_run_definitions_refuses_what_dagster_refuses_a_daily_notebook_waiting_on_an_undaily_input(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """raw.events is also read by an unpartitioned notebook, so its landings are not a day's data."""
    write_notebook(project / "all_events.ipynb", md("# All"), code(RUNTIME), code("%%sql ev\nSELECT count(*) AS n FROM raw.events"))
    (project / "definitions.py").write_text(DEFINITIONS.replace(
        'partitions=DailyPartitions(start="2026-01-01"), sandbox="local")',
        'partitions=DailyPartitions(start="2026-01-01"), sandbox="local", on_inputs_landed=True),\n'
        '     NotebookAsset("all_events.ipynb", sandbox="local")',
    ))
    before = warehouse_snapshot(project / "warehouse.duckdb")
    assert _cli(project, "run", str(project / "daily.ipynb"), "--partition", "2026-01-04") == 1
    assert "on_inputs_landed=True on a daily-partitioned notebook needs daily inputs, but raw.events is not partitioned" in capsys.readouterr().err
    assert warehouse_snapshot(project / "warehouse.duckdb") == before
