"""A small real project whose Dagster instance holds one failed and one refused run.

    staging.ipynb   raw.orders  → mart.staged        (declared, never run)
    broken.ipynb    mart.staged → mart.broken        cell 5 raises KeyError: 'currency'
    guarded.ipynb   raw.orders  → mart.guarded       refused by a policy changed after loading
    summary.ipynb   mart.broken → (report)

The runs go through real `dagster.materialize` into a real on-disk instance
(records under its storage folder, where `dagster dev` keeps them); tests
share them because every run costs a kernel start.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import dagster as dg
import duckdb
import pytest

from support.notebook_factory import RUNTIME, code, md, params, write_notebook

POLICY = """\
zones:
  finance: {mode: enforce}
purposes:
  reporting: [finance]
tables:
  raw.orders: [finance]
"""

DEFINITIONS = '''\
import os
from pathlib import Path

from nb_assets import NotebookAsset, Notifications, SmtpChannel, WebhookChannel, notebook_definitions

BASE_DIR = Path(__file__).parent
POLICY = BASE_DIR / "policy.yaml"
NOTEBOOKS = [
    NotebookAsset("staging.ipynb", owners=["staging@example.com"], purpose="reporting"),
    NotebookAsset("broken.ipynb", owners=["a@example.com", "b@example.com", "team:data-eng"],
                  purpose="reporting", params={"ds": "2026-11-20"}, cron="0 6 * * *"),
    NotebookAsset("guarded.ipynb", owners=["c@example.com"], purpose="reporting"),
    NotebookAsset("summary.ipynb", owners=["d@example.com"], purpose="reporting"),
]


def notifications(smtp_port, webhook_url_env="NB_TEST_WEBHOOK_URL", **options):
    return Notifications(
        email=SmtpChannel("127.0.0.1", smtp_port, security="plain", sender="nb-assets@example.com"),
        webhooks={"data-eng": WebhookChannel(url_env=webhook_url_env)},
        ui_base_url="http://dagster.example.invalid:3000",
        **{"interval_s": 1, "backoff_s": 0.05, **options},
    )


defs = notebook_definitions(
    NOTEBOOKS, warehouse=BASE_DIR / "warehouse.duckdb", base_dir=BASE_DIR, policy=POLICY, sandbox="local",
    notifications=notifications(int(os.environ.get("NB_TEST_SMTP_PORT", "25")),
                                ledger_dir=os.environ.get("NB_TEST_LEDGER")),
)
'''


@dataclass(frozen=True)
class FailedProject:
    root: Path
    instance_dir: Path  # DAGSTER_HOME of the instance holding the runs
    instance: dg.DagsterInstance
    module: ModuleType  # definitions.py, loaded
    broken_run: str
    refused_run: str

    def definitions(self, notifications: object) -> dg.Definitions:
        from nb_assets import notebook_definitions

        m = self.module
        return notebook_definitions(m.NOTEBOOKS, warehouse=self.root / "warehouse.duckdb", base_dir=self.root,
                                    policy=m.POLICY, sandbox="local", notifications=notifications)


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_project(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw; CREATE SCHEMA mart")
        con.execute("CREATE TABLE raw.orders AS SELECT range AS order_id, range * 2.5 AS amount FROM range(5)")
        con.execute("CREATE TABLE mart.staged AS SELECT * FROM raw.orders")
    (root / "policy.yaml").write_text(POLICY)
    (root / "definitions.py").write_text(DEFINITIONS)
    write_notebook(root / "staging.ipynb", md("# Staging"), code(RUNTIME),
                   code("%%sql orders\nSELECT * FROM raw.orders"), code("output('mart.staged', orders)"))
    write_notebook(
        root / "broken.ipynb", md("# Broken\nFails on a column the feed no longer has."), code(RUNTIME),
        params('ds = "2026-01-01"'), code("%%sql rows\nSELECT * FROM mart.staged"),
        code("total = len(rows)\nmissing = rows['currency']\nprint(total)"),
        code("output('mart.broken', rows)"),
    )
    write_notebook(root / "guarded.ipynb", md("# Guarded"), code(RUNTIME),
                   code("%%sql orders\nSELECT * FROM raw.orders"), code("output('mart.guarded', orders)"))
    write_notebook(root / "summary.ipynb", md("# Summary"), code(RUNTIME),
                   code("%%sql broken\nSELECT count(*) AS n FROM mart.broken"), code("broken"))


@pytest.fixture(scope="session")
def failed_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FailedProject]:
    from nb_assets import NotebookResource
    from nb_assets.defs.build import RESOURCE_KEY

    root = tmp_path_factory.mktemp("failed_project")
    write_project(root)
    instance_dir = root / ".dagster_home"
    instance_dir.mkdir()
    module = load_module(root / "definitions.py", "failed_project_definitions")
    assets = list(module.defs.assets)
    resource = NotebookResource(warehouse=str(root / "warehouse.duckdb"), sandbox="local")
    with dg.instance_for_test(temp_dir=str(instance_dir)) as instance:
        broken = dg.materialize(assets, instance=instance, resources={RESOURCE_KEY: resource},
                                selection=["mart/broken"], raise_on_error=False)
        assert not broken.success
        # The policy changes after the definitions were loaded: the run is refused before any fetch.
        (root / "policy.yaml").write_text(POLICY.replace("reporting: [finance]", "reporting: []"))
        try:
            refused = dg.materialize(assets, instance=instance, resources={RESOURCE_KEY: resource},
                                     selection=["mart/guarded"], raise_on_error=False)
        finally:
            (root / "policy.yaml").write_text(POLICY)
        assert not refused.success
        yield FailedProject(root, instance_dir, instance, module, broken.run_id, refused.run_id)


def step_failure(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterEvent:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    assert len(records) == 1
    event = records[0].event_log_entry.dagster_event
    assert event is not None
    return event
