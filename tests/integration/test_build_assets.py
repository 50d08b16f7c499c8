"""Declaring notebooks: findings, allowances and the policy gate, through real Dagster."""

from __future__ import annotations

import json

import re
from pathlib import Path

import dagster as dg
import pytest

from nb_assets import NotebookAsset, NotebookResource, NotebookTranslator, Reclassify, build_notebook_assets
from nb_assets.defs.asset_defaults import AssetProps
from nb_assets.defs.build import RESOURCE_KEY
from nb_assets.errors import DeclarationError
from support.notebook_factory import RUNTIME, code, md, write_notebook
from support.warehouses import warehouse_snapshot

POLICY = """\
zones:
  finance: {mode: enforce}
  pii: {mode: enforce}
  web: {mode: log}
purposes:
  reporting: [finance]
  analytics: [finance, pii]
tables:
  raw.orders: [finance]
  raw.customers: [pii]
  raw.events: [web]
"""


def _etl(tmp_path: Path, name: str, reads: str, writes: str) -> Path:
    return write_notebook(
        tmp_path / f"{name}.ipynb",
        md(f"# {name}"),
        code(RUNTIME),
        code(f"%%sql rows\nSELECT * FROM {reads}"),
        code(f"output('{writes}', rows)"),
    )


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def test_every_finding_of_every_notebook_is_listed_at_once(tmp_path: Path) -> None:
    write_notebook(tmp_path / "a.ipynb", code(RUNTIME), code("import requests"), code("import subprocess"))
    write_notebook(tmp_path / "b.ipynb", code(RUNTIME), code("eval('1')"))
    with pytest.raises(DeclarationError) as err:
        build_notebook_assets([NotebookAsset("a.ipynb"), NotebookAsset("b.ipynb")], base_dir=tmp_path)
    message = str(err.value)
    assert message.startswith("3 problem(s)")
    assert "a.ipynb (cell 2, line 1): [network-access]" in message
    assert "a.ipynb (cell 3, line 1): [shell-process]" in message
    assert "b.ipynb (cell 2, line 1): [dynamic-code]" in message


def test_an_allowance_with_a_reason_lets_a_notebook_be_declared(tmp_path: Path) -> None:
    write_notebook(tmp_path / "a.ipynb", code(RUNTIME), code("import multiprocessing\nimport subprocess"))
    assets = build_notebook_assets(
        [NotebookAsset("a.ipynb", allow={"shell-process": "runs a vetted local binary"})], base_dir=tmp_path
    )
    spec = next(s for a in assets if isinstance(a, dg.AssetsDefinition) for s in a.specs)
    assert spec.metadata["notebook/allowances"].value == {"shell-process": "runs a vetted local binary"}


def test_two_writers_of_one_table_are_refused(tmp_path: Path) -> None:
    _etl(tmp_path, "one", "raw.orders", "mart.x")
    _etl(tmp_path, "two", "raw.orders", "mart.x")
    with pytest.raises(DeclarationError, match="writes mart.x, which .*one.ipynb writes too"):
        build_notebook_assets([NotebookAsset("one.ipynb"), NotebookAsset("two.ipynb")], base_dir=tmp_path)


def test_zones_propagate_through_three_levels_into_asset_tags(tmp_path: Path, policy: Path) -> None:
    _etl(tmp_path, "l1", "raw.orders", "mart.l1")
    write_notebook(
        tmp_path / "l2.ipynb", code(RUNTIME),
        code("%%sql rows\nSELECT * FROM mart.l1 JOIN raw.customers USING (customer_id)"), code("output('mart.l2', rows)"),
    )
    _etl(tmp_path, "l3", "mart.l2", "mart.l3")
    _etl(tmp_path, "l3b", "mart.l2", "mart.l3b")
    assets = build_notebook_assets(
        [
            NotebookAsset("l1.ipynb", purpose="reporting"),
            NotebookAsset("l2.ipynb", purpose="analytics"),
            NotebookAsset("l3.ipynb", purpose="analytics"),
            NotebookAsset("l3b.ipynb", purpose="analytics",
                          reclassify={"mart.l3b": Reclassify(("finance",), "aggregated: no customer rows")}),
        ],
        base_dir=tmp_path, policy=policy,
    )
    tags = {s.key.to_user_string(): s.tags for a in assets if isinstance(a, dg.AssetsDefinition) for s in a.specs}
    assert {k for k in tags["mart/l3"] if k.startswith("zone/")} == {"zone/finance", "zone/pii"}
    assert {k for k in tags["mart/l3b"] if k.startswith("zone/")} == {"zone/finance"}
    assert tags["mart/l1"]["purpose"] == "reporting"


def test_an_enforced_violation_cannot_be_declared(tmp_path: Path, policy: Path) -> None:
    _etl(tmp_path, "peek", "raw.customers", "mart.peek")
    with pytest.raises(DeclarationError) as err:
        build_notebook_assets([NotebookAsset("peek.ipynb", purpose="reporting")], base_dir=tmp_path, policy=policy)
    assert "peek" in str(err.value) and "pii" in str(err.value) and "reporting" in str(err.value)


def _materialize(assets, warehouse: Path, tmp_path: Path) -> dg.ExecuteInProcessResult:
    runner = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp_path / "records"))
    return dg.materialize(assets, resources={RESOURCE_KEY: runner}, raise_on_error=False)


def test_a_log_mode_violation_runs_and_is_recorded(tmp_path: Path, policy: Path, warehouse: Path) -> None:
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE raw.events AS SELECT 1 AS id")
    _etl(tmp_path, "clicks", "raw.events", "mart.clicks")
    assets = build_notebook_assets([NotebookAsset("clicks.ipynb", purpose="reporting")], base_dir=tmp_path, policy=policy)
    result = _materialize(assets, warehouse, tmp_path)
    assert result.success
    meta = result.asset_materializations_for_node("clicks")[0].metadata
    assert any("web" in v for v in meta["policy/violations"].value)
    assert meta["policy/labels"].value["mart.clicks"] == ["web"]
    # The record says where the run loaded and which file ran, as an `nb-assets run` record does.
    kept = json.loads(next((tmp_path / "records").rglob("run.json")).read_text())
    assert (kept["source"], kept["warehouse"], kept["notebook_file"]) == ("dagster", str(warehouse), str((tmp_path / "clicks.ipynb").resolve()))


def test_policy_changed_after_loading_refuses_the_run_before_any_fetch(tmp_path: Path, policy: Path, warehouse: Path) -> None:
    _etl(tmp_path, "totals", "raw.orders", "mart.totals")
    assets = build_notebook_assets([NotebookAsset("totals.ipynb", purpose="reporting")], base_dir=tmp_path, policy=policy)
    policy.write_text(POLICY.replace("reporting: [finance]", "reporting: []"))
    before = warehouse_snapshot(warehouse)
    result = _materialize(assets, warehouse, tmp_path)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    description = failure.step_failure_data.user_failure_data.description
    assert "totals.ipynb: refused before any data was fetched" in description
    assert "may not read zone 'finance'" in description
    # Nothing fetched, as test_catalog_lineage checks it: the records folder exists (so "no Parquet in it" is not
    # vacuous) and holds one file, the refusal's own record saying why; no run folder was made; the warehouse is as
    # it was.
    kept = [p for p in (tmp_path / "records").rglob("*") if p.is_file()]
    assert [p.name for p in kept] == ["run.json"], kept
    assert '"status": "refused"' in kept[0].read_text()
    assert warehouse_snapshot(warehouse) == before


def test_the_run_time_gate_tells_an_upstream_output_from_a_source_table(tmp_path: Path, policy: Path, warehouse: Path) -> None:
    _etl(tmp_path, "people", "raw.customers", "mart.people")
    _etl(tmp_path, "summary", "mart.people", "mart.summary")
    declared = [NotebookAsset(f"{n}.ipynb", purpose="analytics") for n in ("people", "summary")]
    assets = build_notebook_assets(declared, base_dir=tmp_path, policy=policy)
    policy.write_text(POLICY.replace("analytics: [finance, pii]", "analytics: [finance]"))
    summary = next(a for a in assets if isinstance(a, dg.AssetsDefinition) and a.node_def.name == "summary")
    result = _materialize([summary], warehouse, tmp_path)
    failure = next(e for e in result.all_events if e.is_step_failure)
    description = failure.step_failure_data.user_failure_data.description
    assert "(input mart.people, written by notebook people)" in description
    assert "in the declaration of notebook people:" in description and "from nb_assets import Reclassify" in description


def test_selecting_one_output_runs_the_notebook_and_loads_only_that_output(tmp_path: Path, warehouse: Path) -> None:
    from support.warehouses import warehouse_snapshot

    write_notebook(
        tmp_path / "split.ipynb",
        md("# Split orders by size"),
        code(RUNTIME),
        code("%%sql orders\nSELECT * FROM raw.orders"),
        code("output('mart.big_orders', orders[orders.amount >= 15])\noutput('mart.small_orders', orders[orders.amount < 15])"),
    )
    assets = build_notebook_assets([NotebookAsset("split.ipynb")], base_dir=tmp_path)
    runner = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp_path / "records"))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(assets, selection=["mart/big_orders"], resources={RESOURCE_KEY: runner}, instance=instance)
    assert result.success
    (materialized,) = result.get_asset_materialization_events()
    assert materialized.asset_key == dg.AssetKey(["mart", "big_orders"])
    assert materialized.materialization.metadata["notebook/not_loaded"].value == ["mart.small_orders"]
    tables = warehouse_snapshot(warehouse)
    assert len(tables["mart.big_orders"]) == 10 and "mart.small_orders" not in tables
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any(
        "selected mart.big_orders only: the notebook runs whole; mart.small_orders is computed but not loaded" in m
        for m in logs
    )
    whole = dg.materialize(assets, resources={RESOURCE_KEY: runner})  # no selection: every output, as before
    assert {e.asset_key.path[1] for e in whole.get_asset_materialization_events()} == {"big_orders", "small_orders"}
    assert len(warehouse_snapshot(warehouse)["mart.small_orders"]) == 10


@pytest.mark.parametrize(
    ("allow", "message"),
    [
        ({"shell-procss": "typo"}, "allow= names ['shell-procss'], which cannot be allowed"),
        ({"unknown-sql-param": "contract rules are not allowances"}, "allow= names ['unknown-sql-param']"),
        ({"shell-process": "  "}, "a.ipynb"),
    ],
)
def test_bad_allowances_are_refused_naming_the_notebook(tmp_path: Path, allow: dict, message: str) -> None:
    write_notebook(tmp_path / "a.ipynb", code(RUNTIME), code("import subprocess"))
    with pytest.raises(DeclarationError, match=re.escape(message)):
        build_notebook_assets([NotebookAsset("a.ipynb", allow=allow)], base_dir=tmp_path)


class _WarehousePrefixed(NotebookTranslator):
    """A team's convention: every table lives under a `warehouse` key prefix, notebooks own a group."""

    def get_asset_key(self, props: AssetProps) -> dg.AssetKey:
        return super().get_asset_key(props).with_prefix("warehouse")

    def get_group_name(self, props: AssetProps) -> str | None:
        return "etl" if props.notebook else "landing"


def test_a_subclassed_translator_moves_keys_edges_and_results_together(tmp_path: Path, warehouse: Path) -> None:
    _etl(tmp_path, "first", "raw.orders", "mart.first")
    _etl(tmp_path, "second", "mart.first", "mart.second")
    assets = build_notebook_assets(
        [NotebookAsset("first.ipynb"), NotebookAsset("second.ipynb", owners=["a@example.com"])],
        base_dir=tmp_path,
        translator=_WarehousePrefixed(),
    )
    resource = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp_path / "records"))
    defs = dg.Definitions(assets=assets, resources={RESOURCE_KEY: resource})
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert set(specs) == {"warehouse/raw/orders", "warehouse/mart/first", "warehouse/mart/second"}
    assert [d.asset_key for d in specs["warehouse/mart/second"].deps] == [dg.AssetKey(["warehouse", "mart", "first"])]
    assert specs["warehouse/mart/second"].owners == ["a@example.com"]
    assert specs["warehouse/raw/orders"].group_name == "landing"
    assert specs["warehouse/mart/first"].group_name == "etl"
    result = dg.materialize(assets, resources={RESOURCE_KEY: resource}, selection=["warehouse/mart/first", "warehouse/mart/second"])
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"warehouse/mart/first", "warehouse/mart/second"}


def test_the_readme_policy_example_is_what_declaring_the_demo_report_for_finance_says() -> None:
    import dataclasses

    from support.paths import REPO
    from nb_assets.project.definitions_file import load_declarations

    readme = (REPO / "docs" / "policy-zones.md").read_text()
    example = readme.split("declaring the demo's report for the finance purpose:\n\n```text\n", 1)[1].split("```", 1)[0]
    project = load_declarations(REPO / "definitions.py")
    notebooks = [dataclasses.replace(n, purpose="finance_reporting") if "revenue_report" in str(n.path) else n for n in project.notebooks]
    with pytest.raises(DeclarationError) as err:
        build_notebook_assets(notebooks, base_dir=project.base_dir, policy=project.policy, sources=project.sources)
    said = f"nb_assets.errors.DeclarationError: {err.value}".replace(f"{REPO}/", "")
    assert said == example.rstrip("\n")


def test_the_output_preview_is_a_markdown_table_each_value_one_escaped_line() -> None:
    from nb_assets.defs.materialize import PREVIEW_CHARS, markdown_table

    table = markdown_table(["id", "note"], [[1, 2, 3], ["a|b", "two\nlines", None]])
    assert table.splitlines() == [
        "| id | note |",
        "| --- | --- |",
        "| 1 | a\\|b |",
        "| 2 | two lines |",
        "| 3 |  |",
    ]
    [long_row] = markdown_table(["x"], [["y" * 1000]]).splitlines()[2:]
    assert len(long_row) == len("| ") + PREVIEW_CHARS + len(" |") and long_row.endswith("… |")


def test_preview_values_print_as_arrow_prints_them_nested_ones_as_python_does(tmp_path: Path) -> None:
    import duckdb
    import pyarrow.parquet as pq

    from nb_assets.defs.materialize import _as_text

    path = tmp_path / "odd.parquet"
    duckdb.sql(f"COPY (SELECT TIMESTAMP_NS '2026-01-01 00:00:00.123456789' AS ts, [1, 2] AS l, "
               f"{{'a': 1}} AS s, NULL::DATE AS d) TO '{path}'")
    batch = next(pq.ParquetFile(path).iter_batches(batch_size=10))
    assert [_as_text(c) for c in batch.columns] == [["2026-01-01 00:00:00.123456789"], ["[1, 2]"], ["{'a': 1}"], [None]]
