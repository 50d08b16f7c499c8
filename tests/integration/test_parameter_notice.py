"""Owners hear about a run their parameters broke (issue 26: a promise no test proved).

Dagster's run config checks each parameter's type before a run exists (defs/run_config.py): a wrong type never
starts. A list parameter takes any list, so a run config with the wrong element type starts a run that nb_assets
fails before the notebook runs (its SQL input cannot bind the value). The owner must hear about that run, naming
the parameters it got and what failed: a real run in a real instance, the real failure sensor, real SMTP.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from support.loopback_servers import smtp_server
from support.notebook_factory import RUNTIME, code, params, write_notebook
from support.warehouses import warehouse_snapshot
from nb_assets import NotebookAsset, NotebookResource, Notifications, SmtpChannel, notebook_definitions
from nb_assets.defs.build import RESOURCE_KEY
from nb_assets.defs.failure_sensor import SENSOR_NAME


@pytest.fixture
def project(tmp_path: Path) -> Path:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT range AS order_id FROM range(5)")
    write_notebook(tmp_path / "picked.ipynb", code(RUNTIME), params("ids = [1, 2]"),
                   code("%%sql rows\nSELECT * FROM raw.orders WHERE list_contains($ids, order_id)"),
                   code("output('mart.picked', rows)"))
    return tmp_path


def definitions(project: Path, smtp_port: int) -> dg.Definitions:
    notifications = Notifications(email=SmtpChannel("127.0.0.1", smtp_port, security="plain", sender="nb-assets@example.com"),
                                  ui_base_url="http://dagster.example.invalid:3000", interval_s=1,
                                  ledger_dir=str(project / "ledger"))
    return notebook_definitions([NotebookAsset("picked.ipynb", owners=["picker@example.com"])],
                                warehouse=project / "warehouse.duckdb", base_dir=project, sandbox="local",
                                notifications=notifications)


def test_a_run_broken_by_its_parameters_is_told_to_its_owner(project: Path) -> None:
    home = project / "dagster_home"
    home.mkdir()
    before = warehouse_snapshot(project / "warehouse.duckdb")
    with smtp_server() as smtp, dg.instance_for_test(temp_dir=str(home)) as instance:
        defs = definitions(project, smtp.port)
        assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
        resource = NotebookResource(warehouse=str(project / "warehouse.duckdb"), sandbox="local",
                                    records_dir=str(project / "records"))
        result = dg.materialize(assets, instance=instance, resources={RESOURCE_KEY: resource}, raise_on_error=False,
                                run_config={"ops": {"picked": {"config": {"ids": ["seven", "eight"]}}}})
        assert not result.success
        sensor = defs.resolve_sensor_def(SENSOR_NAME)
        tick = sensor(dg.build_sensor_context(instance=instance, cursor=None))
        assert isinstance(tick, dg.SensorResult)
        assert "1 new failed run(s) queued" in tick.skip_reason.skip_message, tick.skip_reason.skip_message
        [mail] = smtp.to("picker@example.com")
    assert mail.message["X-NB-Assets-Run"] == result.run_id
    assert mail.subject.startswith("[nb-assets] picked failed:"), mail.subject
    assert "SQL input 'rows' failed" in mail.body, mail.body
    assert "ids=['seven', 'eight']" in mail.body, mail.body  # the parameters the run got
    assert warehouse_snapshot(project / "warehouse.duckdb") == before
