"""The demo project with a broken notebook: owners are told, and `%nb_context` shows why.

A copy of the demo (definitions.py, policy.yaml, notebooks/) whose
clean_orders notebook expects a column the feed does not have.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import nbformat
import papermill
import pytest

from support.failed_project import load_module
from support.loopback_servers import free_port, smtp_server, webhook_server
from support.paths import REPO
from nb_assets.defs.failure_sensor import SENSOR_NAME
from support.notebook_factory import code, write_notebook

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class BrokenDemo:
    root: Path
    instance: dg.DagsterInstance
    run_id: str
    smtp_port: int
    webhook_port: int
    sensor: dg.SensorDefinition


@pytest.fixture(scope="module")
def broken_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenDemo]:
    from nb_assets import NotebookResource
    from nb_assets.defs.build import RESOURCE_KEY

    root = tmp_path_factory.mktemp("demo")
    shutil.copy(REPO / "definitions.py", root)
    shutil.copy(REPO / "policy.yaml", root)
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    notebook = nbformat.read(root / "notebooks" / "clean_orders.ipynb", as_version=4)
    cell = notebook.cells[5]
    assert 'orders["currency"].isin' in cell.source
    cell.source = cell.source.replace('orders["currency"].isin', 'orders["currency_code"].isin')
    nbformat.write(notebook, root / "notebooks" / "clean_orders.ipynb")
    seed = load_module(REPO / "scripts" / "seed_demo.py", "seed_demo_for_failure")
    seed.seed(root / "warehouse.duckdb", scale=1, seed=42)

    smtp_port, webhook_port = free_port(), free_port()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NB_ASSETS_SMTP_HOST", "127.0.0.1")
        env.setenv("NB_ASSETS_SMTP_PORT", str(smtp_port))
        env.setenv("NB_ASSETS_DATA_ENG_WEBHOOK", f"http://127.0.0.1:{webhook_port}/hook")
        env.delenv("NB_ASSETS_WAREHOUSE", raising=False)
        module = load_module(root / "definitions.py", "broken_demo_definitions")
        resource = NotebookResource(warehouse=str(root / "warehouse.duckdb"), sandbox="local")
        (root / ".dagster_home").mkdir()
        with dg.instance_for_test(temp_dir=str(root / ".dagster_home")) as instance:
            result = dg.materialize(list(module.defs.assets), instance=instance, resources={RESOURCE_KEY: resource},
                                    selection=["mart/orders_clean"], raise_on_error=False)
            assert not result.success
            sensor = next(s for s in module.defs.sensors if s.name == SENSOR_NAME)
            yield BrokenDemo(root, instance, result.run_id, smtp_port, webhook_port, sensor)


def test_owners_are_mailed_and_the_webhook_gets_it_once_it_is_back(
    broken_demo: BrokenDemo, capfd: pytest.CaptureFixture[str],
) -> None:
    demo = broken_demo

    def tick(cursor: str | None) -> dg.SensorResult:
        return demo.sensor(dg.build_sensor_context(instance=demo.instance, cursor=cursor))

    with smtp_server(port=demo.smtp_port) as smtp:
        first = tick(None)
        [mail] = smtp.mails
        assert mail.recipients == ["data-eng@example.com"]
        assert mail.subject == "[nb-assets] clean_orders failed: cell 6 raised KeyError: 'currency_code'"
        assert '> 13 |     & orders["currency_code"].isin(USD_PER_UNIT.keys())' in mail.body
        assert re.search(rf"^Run: +http://localhost:3000/runs/{demo.run_id}$", mail.body, re.MULTILINE)
        assert "channel team:data-eng is down" in capfd.readouterr().err
        assert "1 waiting" in first.skip_reason.skip_message
        with webhook_server(port=demo.webhook_port) as hook:
            second = tick(first.cursor)
            tick(second.cursor)
        [post] = hook.received
        assert post["text"] == "clean_orders failed: cell 6 raised KeyError: 'currency_code'"
        assert len(smtp.mails) == 1


def test_nb_context_in_the_demo_shows_the_last_failure(
    broken_demo: BrokenDemo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    demo = broken_demo
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("JPY_SESSION_NAME", str(demo.root / "notebooks" / "clean_orders.ipynb"))
    scratch = write_notebook(tmp_path / "pane.ipynb", code("%load_ext nb_assets.notebook"), code("%nb_context"))
    executed = tmp_path / "pane.out.ipynb"
    papermill.execute_notebook(str(scratch), str(executed), cwd=str(demo.root / "notebooks"), progress_bar=False,
                               kernel_name="python3")
    [shown] = [o for o in json.loads(executed.read_text())["cells"][1]["outputs"] if o["output_type"] == "display_data"]
    text = html.unescape("".join(shown["data"]["text/html"]))
    assert ">data-eng@example.com, team:data-eng<" in text and ">when all inputs have landed<" in text
    assert ">raw.orders [finance]<" in text and ">customer_revenue, regional_revenue_emea, regional_revenue_apac, fx_revenue, revenue_report<" in text  # zone, downstream
    failure = text[text.index("<h4>Last failure"):]
    assert demo.run_id in failure
    assert 'clean_orders.ipynb, cell 6, line 13</div>' in failure
    assert "KeyError: 'currency_code'</pre>" in failure
    assert f"href='../.dagster_home/storage/nb_assets/clean_orders/{demo.run_id}/record/executed.html'" in failure
