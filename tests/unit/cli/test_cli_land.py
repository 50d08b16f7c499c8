"""`nb-assets land` on a small real project: what may land, what a bad file does, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from support.warehouses import warehouse_snapshot
from nb_assets.cli.main import main
from support.notebook_factory import RUNTIME, code, write_notebook

DEFINITIONS = """
from pathlib import Path
from nb_assets import NotebookAsset, notebook_definitions
BASE_DIR = Path(__file__).parent
defs = notebook_definitions([NotebookAsset("clean.ipynb", on_inputs_landed=True)],
                            warehouse=BASE_DIR / "warehouse.duckdb", base_dir=BASE_DIR)
"""


@pytest.fixture
def project(tmp_path: Path, warehouse: Path) -> Path:
    write_notebook(tmp_path / "clean.ipynb", code(RUNTIME), code("%%sql rows\nSELECT * FROM raw.orders"), code("output('mart.clean', rows)"))
    (tmp_path / "definitions.py").write_text(DEFINITIONS)
    return tmp_path / "definitions.py"


def _land(project: Path, *args: str) -> int:
    return main(["land", *args, "--definitions", str(project)])


def test_a_file_lands_and_the_landing_is_printed(project: Path, warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "new.csv").write_text("order_id,customer_id,amount,order_date\n100,1,2.5,2026-11-06\n")
    assert _land(project, "raw.orders", "--from", str(tmp_path / "new.csv"), "--partition", "2026-11-06", "--json") == 0
    landing = json.loads(capsys.readouterr().out)["landing"]
    assert (landing["id"], landing["table"], landing["rows"], landing["partition"]) == (1, "raw.orders", 1, "2026-11-06")
    assert _land(project, "RAW.ORDERS", "--source", "nightly export") == 0
    assert capsys.readouterr().out == "raw.orders landed (landing 2): recorded; no data loaded\n"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute('SELECT id, source FROM nb_assets.landings ORDER BY id').fetchall()[1] == (2, "nightly export")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("raw.order", "no notebook declared in {defs} reads raw.order, so its landing would trigger nothing; source tables: raw.orders"),
        ("mart.clean", "mart.clean is written by notebook clean; only source tables land"),
    ],
)
def test_a_landing_for_a_table_that_is_not_a_source_is_refused(
    project: Path, warehouse: Path, capsys: pytest.CaptureFixture[str], table: str, message: str
) -> None:
    before = warehouse_snapshot(warehouse)
    assert _land(project, table) == 1
    assert message.format(defs=project) in capsys.readouterr().err
    assert warehouse_snapshot(warehouse) == before


def test_a_bad_file_exits_1_and_changes_nothing(project: Path, warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.csv").write_text("order_id,customer_id,amount\n100,1,2.5\n")
    before = warehouse_snapshot(warehouse)
    assert _land(project, "raw.orders", "--from", str(tmp_path / "bad.csv")) == 1
    assert "its columns do not match raw.orders (missing order_date)" in capsys.readouterr().err
    assert warehouse_snapshot(warehouse) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["raw.orders", "--mode", "replace"], "--mode needs --from FILE"),
        (["raw.orders", "--from", "x.csv", "--mode", "replace", "--partition", "2026-11-06"], "replace would drop every partition"),
        (["raw.orders;drop", "--from", "x.csv"], "is not a table name"),
    ],
)
def test_usage_errors_exit_2(project: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert _land(project, *args) == 2
    assert message in capsys.readouterr().err


def test_a_missing_definitions_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["land", "raw.orders", "--definitions", str(tmp_path / "nope.py")]) == 2
    assert "definitions file not found" in capsys.readouterr().err


def test_landing_reads_the_project_without_loading_dagster(project: Path, tmp_path: Path) -> None:
    """A loader calls `nb-assets land` after every load: it reads the project, not the Dagster graph."""
    import subprocess
    import sys

    code_ = (
        "import sys; from nb_assets.cli.main import main; "
        f"assert main(['land', 'raw.orders', '--definitions', {str(project)!r}]) == 0; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'docker'}))"
    )
    out = subprocess.run([sys.executable, "-c", code_], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
