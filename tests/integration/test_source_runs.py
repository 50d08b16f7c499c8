"""Declared sources in real runs: fetched by the host before the sandbox (a real kernel through
papermill in LocalSandbox), drawn in the Dagster graph with their zones, and under the policy."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nb_assets import NotebookAsset, NotebookResource, Source, build_notebook_assets, load_sources_yaml
from nb_assets.analysis.parser import parse_notebook
from nb_assets.defs.build import RESOURCE_KEY
from nb_assets.errors import DeclarationError, SourceFetchError
from nb_assets.runs.pipeline import run_pipeline
from nb_assets.sandbox.local import LocalSandbox
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from support.source_servers import data_server
from support.warehouses import warehouse_snapshot

POLICY = """\
zones:
  finance: {mode: enforce}
  pii: {mode: enforce}
  public: {mode: log}
purposes:
  finance_reporting: [finance, public]
  analytics: [finance, pii, public]
tables:
  raw.orders: [finance]
"""


@pytest.fixture(scope="module")
def server():
    with data_server() as running:
        yield running


def _fx_notebook(tmp_path: Path) -> Path:
    """Reads an HTTP source in a %%source cell and joins a folder source with a warehouse table in SQL."""
    return write_notebook(
        tmp_path / "fx_orders.ipynb",
        md("# Orders in euros"),
        code(RUNTIME),
        params("ds = '2026-11-01'"),
        code("%%source rates partner_rates"),
        code("%%sql orders\nSELECT o.order_id, o.amount, r.region FROM raw.orders o "
             "JOIN source('regions') r USING (order_id) ORDER BY o.order_id"),
        code("usd = float(rates.loc[rates.currency == 'USD', 'rate'].iloc[0])\n"
             "orders['amount_usd'] = orders.amount * usd\noutput('mart.orders_usd', orders)"),
    )


def _sources(server, tmp_path: Path, rates_path: str = "/v1/rates?date=$ds") -> list[Source]:
    drop = tmp_path / "drops" / "2026-11-01"
    drop.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"order_id": [1, 2, 3], "region": ["north", "south", "east"]}), drop / "regions.parquet")
    return [
        Source("partner_rates", url=server.url(rates_path), format="json", zones=["public"], allow_private=True),
        Source("regions", path="drops/$ds/", zones=["public"]),
    ]


def test_a_run_reads_an_http_source_and_joins_a_folder_source_in_sql(server, warehouse: Path, tmp_path: Path) -> None:
    spec = parse_notebook(_fx_notebook(tmp_path))
    run = run_pipeline(spec, warehouse=DuckDBWarehouse(warehouse), sandbox=LocalSandbox(), run_dir=tmp_path / "run",
                       sources=_sources(server, tmp_path), base_dir=tmp_path)
    assert run.status == "success", run.error
    rows = warehouse_snapshot(warehouse)["mart.orders_usd"]
    assert [(r[0], r[2], round(r[3], 2)) for r in rows] == [(1, "north", 1.62), (2, "south", 3.24), (3, "east", 4.86)]
    assert run.sources["partner_rates"]["rows"] == 3 and run.sources["partner_rates"]["version"] == '"rates-v1"'
    assert run.sources["regions"]["location"] == str(tmp_path / "drops" / "2026-11-01")
    assert server.requests[-1]["path"] == "/v1/rates?date=2026-11-01"


def test_a_failing_fetch_stops_the_run_before_the_sandbox_and_changes_nothing(server, warehouse: Path, tmp_path: Path) -> None:
    spec = parse_notebook(_fx_notebook(tmp_path))
    before = warehouse_snapshot(warehouse)
    run = run_pipeline(spec, warehouse=DuckDBWarehouse(warehouse), sandbox=LocalSandbox(), run_dir=tmp_path / "run",
                       sources=_sources(server, tmp_path, "/v1/gone"), base_dir=tmp_path)
    assert run.status == "failed" and isinstance(run.error, SourceFetchError)
    assert "fx_orders.ipynb: stopped before the sandbox, nothing changed: source 'partner_rates' at http://127.0.0.1:" in str(run.error)
    assert "/v1/gone: HTTP 404" in str(run.error)
    assert warehouse_snapshot(warehouse) == before
    assert not run.executed_notebook.exists()  # the sandbox never started


def test_an_undeclared_source_is_refused_at_load_naming_the_cell_and_the_registry(tmp_path: Path) -> None:
    _fx_notebook(tmp_path)
    with pytest.raises(DeclarationError) as refused:
        build_notebook_assets([NotebookAsset("fx_orders.ipynb")], base_dir=tmp_path,
                              sources=[Source("regions", path="drops/$ds/")])
    assert "cell 4: reads source 'partner_rates', which the project does not declare" in str(refused.value)
    assert "Source('partner_rates', url=... or path=..., zones=[...])" in str(refused.value)


def test_sources_are_external_assets_with_kind_location_and_zones(server, tmp_path: Path) -> None:
    _fx_notebook(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    assets = build_notebook_assets([NotebookAsset("fx_orders.ipynb", purpose="finance_reporting")], base_dir=tmp_path,
                                   policy=policy, sources=_sources(server, tmp_path))
    specs = {s.key: s for a in assets for s in ([a] if isinstance(a, dg.AssetSpec) else a.specs)}
    rates = specs[dg.AssetKey(["source", "partner_rates"])]
    assert rates.group_name == "sources" and rates.kinds == {"https"}
    assert rates.tags.get("zone/public") is not None
    assert rates.metadata["source/location"].value == server.url("/v1/rates?date=$ds")
    assert specs[dg.AssetKey(["source", "regions"])].kinds == {"file"}
    notebook = specs[dg.AssetKey(["mart", "orders_usd"])]
    assert {d.asset_key for d in notebook.deps} == {
        dg.AssetKey(["raw", "orders"]), dg.AssetKey(["source", "partner_rates"]), dg.AssetKey(["source", "regions"])
    }
    assert "zone/public" in notebook.tags and "zone/finance" in notebook.tags  # zones propagate from the sources


def test_a_materialization_records_each_fetch_and_observes_the_source(server, warehouse: Path, tmp_path: Path) -> None:
    _fx_notebook(tmp_path)
    assets = build_notebook_assets([NotebookAsset("fx_orders.ipynb")], base_dir=tmp_path, sources=_sources(server, tmp_path))
    runner = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp_path / "records"))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(assets, resources={RESOURCE_KEY: runner}, instance=instance)
    assert result.success
    meta = result.asset_materializations_for_node("fx_orders")[0].metadata
    assert meta["notebook/sources"].value["partner_rates"]["rows"] == 3
    observed = instance.fetch_observations(dg.AssetKey(["source", "partner_rates"]), limit=1).records[0]
    event = observed.asset_observation
    assert event.tags["dagster/data_version"] == meta["notebook/sources"].value["partner_rates"]["content_hash"]
    assert event.metadata["source/bytes"].value > 0


PII_YAML = """\
sources:
  - name: crm_accounts
    path: accounts.csv
    zones: [{zone}]
"""


def test_a_pii_source_is_refused_for_finance_reporting_at_load_and_at_the_gate(warehouse: Path, tmp_path: Path) -> None:
    (tmp_path / "accounts.csv").write_text("account_id,name\n1,Ada\n")
    write_notebook(tmp_path / "accounts.ipynb", code(RUNTIME), code("%%source accounts crm_accounts"),
                   code("output('mart.accounts', accounts)"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    declarations = tmp_path / "declarations.yaml"
    declarations.write_text(PII_YAML.format(zone="pii"))
    with pytest.raises(DeclarationError, match=r"accounts.*finance_reporting.*may not read zone 'pii'|may not read zone 'pii'"):
        build_notebook_assets([NotebookAsset("accounts.ipynb", purpose="finance_reporting")], base_dir=tmp_path,
                              policy=policy, sources=load_sources_yaml(declarations))
    # Loaded while the source said `finance`; its zone changes to pii before the run: the gate re-checks.
    declarations.write_text(PII_YAML.format(zone="finance"))
    assets = build_notebook_assets([NotebookAsset("accounts.ipynb", purpose="finance_reporting")], base_dir=tmp_path,
                                   policy=policy, sources=load_sources_yaml(declarations))
    declarations.write_text(PII_YAML.format(zone="pii"))
    runner = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp_path / "records"))
    result = dg.materialize(assets, resources={RESOURCE_KEY: runner}, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    description = failure.step_failure_data.user_failure_data.description
    assert "refused before any data was fetched" in description and "'pii'" in description
    assert "mart.accounts" not in warehouse_snapshot(warehouse)
    assert not list((tmp_path / "records").rglob("source__*.parquet"))


INTERACTIVE_DEFINITIONS = """\
from pathlib import Path

from nb_assets import NotebookAsset, Source, notebook_definitions

HERE = Path(__file__).parent
defs = notebook_definitions(
    [NotebookAsset("fx.ipynb")], warehouse=HERE / "warehouse.duckdb", base_dir=HERE,
    sources=[Source("partner_rates", url={url!r}, format="json", zones=["public"], allow_private=True)],
)
"""


def test_interactively_a_source_cell_fetches_through_the_projects_own_code(server, tmp_path: Path) -> None:
    import os

    import papermill

    (tmp_path / "definitions.py").write_text(INTERACTIVE_DEFINITIONS.format(url=server.url("/v1/rates?date=$ds")))
    path = write_notebook(
        tmp_path / "fx.ipynb", code(RUNTIME), params("ds = '2026-11-02'"),
        code("%%source rates partner_rates"),
        code("assert list(rates.currency) == ['EUR', 'USD', 'GBP'], rates"),
    )
    saved = os.environ.pop("NB_ASSETS_MODE", None)
    try:
        papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                                   cwd=str(tmp_path))
    finally:
        if saved is not None:
            os.environ["NB_ASSETS_MODE"] = saved
    assert server.requests[-1]["path"] == "/v1/rates?date=2026-11-02"  # bound from the notebook's own variable
