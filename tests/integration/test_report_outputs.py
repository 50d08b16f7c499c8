"""A report's executed notebook is its artifact: charts, tables and Markdown
must come out of every sandbox exactly as Jupyter shows them.

Each sandbox runs one report through the real pipeline (prefetch, papermill,
record with HTML); the same notebook run by plain papermill on the host, as
Jupyter would run it, is the reference for what each cell should show.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nb_assets.runs.pipeline import NotebookRun, run_pipeline
from nb_assets.inbox.runner import authored_cells
from nb_assets.analysis.parser import parse_notebook
from nb_assets.runs.record import keep_record
from nb_assets.sandbox.base import SandboxLimits
from nb_assets.sandbox.local import LocalSandbox
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
from support.notebook_factory import RUNTIME, code, md, write_notebook

CHART_CELLS = {
    "plt.show()": 4,
    "a figure as the cell's value": 5,
    "pandas .plot()": 6,
}
MARKDOWN_CELL, TABLE_CELL = 7, 8


def _report(tmp_path: Path) -> Path:
    return write_notebook(
        tmp_path / "orders_report.ipynb",
        md("# Orders report"),
        code(RUNTIME),
        code("%%sql orders\nSELECT order_id, customer_id, amount FROM raw.orders ORDER BY order_id"),
        code("import matplotlib.pyplot as plt\nplt.plot(orders['order_id'], orders['amount'])\nplt.title('amount by order')\nplt.show()"),
        code("fig, ax = plt.subplots()\nax.bar(orders['customer_id'], orders['amount'])\nfig"),
        code("orders.groupby('customer_id')['amount'].sum().plot(kind='bar', title='per customer')"),
        code("from IPython.display import Markdown, display\ndisplay(Markdown('## Totals\\n\\nAll orders: **' + str(len(orders)) + '**'))"),
        code("orders.head(3)"),
    )


def _run_and_record(path: Path, warehouse: Path, tmp_path: Path, sandbox) -> tuple[NotebookRun, dict[str, Path]]:
    run = run_pipeline(
        parse_notebook(path), warehouse=DuckDBWarehouse(warehouse), sandbox=sandbox, run_dir=tmp_path / "run",
        limits=SandboxLimits(timeout_s=180),
    )
    assert run.status == "success", run.error
    return run, keep_record(run, html=True)


def _shown(executed: Path) -> dict[int, list[tuple[str, tuple[str, ...]]]]:
    """What each authored cell shows: (output type, MIME types) per output."""
    cells = json.loads(executed.read_text())["cells"]
    return {
        number: [(o["output_type"], tuple(sorted(o.get("data", {})))) for o in cell.get("outputs", [])]
        for number, cell in authored_cells(cells)
        if cell["cell_type"] == "code"
    }


@pytest.fixture(scope="module")
def jupyter_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[tuple[str, tuple[str, ...]]]]:
    """The report run as Jupyter runs it: papermill, the host's kernel, its default backend."""
    import duckdb
    import papermill

    tmp = tmp_path_factory.mktemp("jupyter")
    warehouse = tmp / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:  # the same rows as the `warehouse` fixture
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.orders AS SELECT range AS order_id, range % 3 AS customer_id, "
                    "(range * 1.5)::DOUBLE AS amount FROM range(20)")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MPLBACKEND", raising=False)  # as in a fresh Jupyter: ipykernel picks the inline backend
        env.delenv("NB_ASSETS_MODE", raising=False)
        env.setenv("NB_ASSETS_WAREHOUSE", str(warehouse))  # interactive %%sql reads this warehouse
        papermill.execute_notebook(str(_report(tmp)), str(tmp / "executed.ipynb"), kernel_name="python3",
                                   progress_bar=False, cwd=str(tmp))
    return _shown(tmp / "executed.ipynb")


def _assert_like_jupyter(run: NotebookRun, record: dict[str, Path], reference: dict) -> None:
    shown = _shown(run.executed_notebook)
    for how, number in CHART_CELLS.items():
        assert any("image/png" in mimes for _, mimes in shown[number]), f"no chart from {how}: {shown[number]}"
    assert ("display_data", ("text/markdown", "text/plain")) in shown[MARKDOWN_CELL]
    assert ("execute_result", ("text/html", "text/plain")) in shown[TABLE_CELL]
    assert shown == reference  # cell by cell, the same outputs as in Jupyter

    html = record["html"].read_text(encoding="utf-8")
    images = len(re.findall(r'<img [^>]*src="data:image/png;base64,', html))
    assert images == sum(mimes.count("image/png") for outputs in shown.values() for _, mimes in outputs)
    assert '<table border="1" class="dataframe">' in html
    assert "<h2" in html and "<strong>20</strong>" in html  # the Markdown output, rendered


def test_local_sandbox_report_keeps_charts_tables_and_markdown(warehouse: Path, tmp_path: Path, jupyter_reference) -> None:
    run, record = _run_and_record(_report(tmp_path), warehouse, tmp_path, LocalSandbox())
    _assert_like_jupyter(run, record, jupyter_reference)


@pytest.mark.docker
def test_docker_sandbox_report_keeps_charts_tables_and_markdown(
    warehouse: Path, tmp_path: Path, jupyter_reference, docker_image: str
) -> None:
    from nb_assets.sandbox.container import DockerSandbox

    run, record = _run_and_record(_report(tmp_path), warehouse, tmp_path, DockerSandbox(image=docker_image))
    assert run.sandbox["kind"] == "docker"
    _assert_like_jupyter(run, record, jupyter_reference)
