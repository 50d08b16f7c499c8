"""Parameterized instances: one notebook, several parameter sets, each its own assets — through real Dagster."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from nb_assets import NotebookAsset, NotebookResource, build_notebook_assets
from nb_assets.defs.build import RESOURCE_KEY, build_notebook_graph
from nb_assets.errors import DeclarationError
from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from support.warehouses import warehouse_snapshot

POLICY = """\
zones:
  finance: {mode: enforce}
  pii: {mode: enforce}
purposes:
  reporting: [finance]
tables:
  raw.orders: [finance]
"""


def _regional(tmp_path: Path) -> Path:
    return write_notebook(
        tmp_path / "regional.ipynb",
        md("# Regional revenue"),
        code(RUNTIME),
        params('region = "ALL"\nmin_amount = 0.0'),
        code("%%sql orders\nSELECT customer_id, amount FROM raw.orders WHERE amount >= $min_amount"),
        code("rev = orders.groupby('customer_id', as_index=False).amount.sum()\nrev['region'] = region"),
        code("output('mart.revenue', rev)"),
    )


def _report(tmp_path: Path) -> Path:
    return write_notebook(tmp_path / "summary.ipynb", md("# Summary"), code(RUNTIME), params('region = "ALL"'),
                          code("%%sql orders\nSELECT count(*) AS n FROM raw.orders"), code("print(region, orders.n[0])"))


INSTANCES = {"emea": {"region": "EMEA"}, "apac": {"region": "APAC", "min_amount": 10.0}}


def _keys(assets) -> set[str]:
    return {k.to_user_string() for a in assets if isinstance(a, dg.AssetsDefinition) for k in a.keys}


def test_each_instance_is_its_own_group_with_suffixed_tables_and_lineage(tmp_path: Path) -> None:
    _regional(tmp_path)
    graph = build_notebook_graph([NotebookAsset("regional.ipynb", instances=INSTANCES, group="revenue")], base_dir=tmp_path)
    notebooks = [a for a in graph.assets if isinstance(a, dg.AssetsDefinition)]
    assert {a.node_def.name for a in notebooks} == {"regional_emea", "regional_apac"}
    assert _keys(graph.assets) == {"mart/revenue_emea", "mart/revenue_apac"}
    groups = {k.to_user_string(): a.specs_by_key[k].group_name for a in notebooks for k in a.keys}
    assert groups == {"mart/revenue_emea": "revenue_emea", "mart/revenue_apac": "revenue_apac"}
    for a in notebooks:
        (spec,) = a.specs
        assert [d.asset_key for d in spec.deps] == [dg.AssetKey(["raw", "orders"])]
    assert set(graph.table_keys) == {"raw.orders", "mart.revenue_emea", "mart.revenue_apac"}


def test_an_output_template_names_the_tables_from_the_instance_parameters(tmp_path: Path) -> None:
    _regional(tmp_path)
    decl = NotebookAsset("regional.ipynb", instances=INSTANCES, outputs={"mart.revenue": "mart.revenue_by_{region}"})
    assert _keys(build_notebook_assets([decl], base_dir=tmp_path)) == {"mart/revenue_by_emea", "mart/revenue_by_apac"}


def test_a_report_notebook_gets_an_instance_suffixed_key(tmp_path: Path) -> None:
    _report(tmp_path)
    decl = NotebookAsset("summary.ipynb", instances={"emea": {"region": "EMEA"}, "apac": {"region": "APAC"}}, key_prefix=["reports"])
    assert _keys(build_notebook_assets([decl], base_dir=tmp_path)) == {"reports/summary_emea", "reports/summary_apac"}


def test_zone_labels_and_the_policy_apply_per_instance(tmp_path: Path) -> None:
    _regional(tmp_path)
    (tmp_path / "policy.yaml").write_text(POLICY)
    assets = build_notebook_assets(
        [NotebookAsset("regional.ipynb", instances=INSTANCES, purpose="reporting")], base_dir=tmp_path, policy=tmp_path / "policy.yaml"
    )
    tags = {k.to_user_string(): a.specs_by_key[k].tags for a in assets if isinstance(a, dg.AssetsDefinition) for k in a.keys}
    assert all(any("finance" in k or "finance" in v for k, v in t.items()) for t in tags.values()), tags


@pytest.mark.parametrize(
    ("instances", "needle"),
    [
        ({"emea": {"regon": "EMEA"}}, "regional.ipynb (instance 'emea'): unknown parameter 'regon'"),
        ({"apac": {"min_amount": "ten"}}, "regional.ipynb (instance 'apac'): parameter 'min_amount' expects float"),
        ({"EMEA!": {"region": "EMEA"}}, "instance name 'EMEA!'"),
    ],
)
def test_instance_parameters_the_notebook_does_not_declare_are_refused(tmp_path: Path, instances, needle: str) -> None:
    _regional(tmp_path)
    with pytest.raises(DeclarationError) as err:
        build_notebook_assets([NotebookAsset("regional.ipynb", instances=instances)], base_dir=tmp_path)
    assert needle in str(err.value)


def test_a_template_naming_an_unknown_parameter_or_two_instances_one_table_is_refused(tmp_path: Path) -> None:
    _regional(tmp_path)
    with pytest.raises(DeclarationError, match=r"instance 'emea'\): output template 'mart.revenue_\{country\}' names \['country'\]"):
        build_notebook_assets([NotebookAsset("regional.ipynb", instances=INSTANCES, outputs={"mart.revenue": "mart.revenue_{country}"})],
                              base_dir=tmp_path)
    same = {"a": {"region": "EU"}, "b": {"region": "EU"}}
    with pytest.raises(DeclarationError, match=r"instance 'b'\): writes mart.revenue_eu, which .*regional.ipynb \(instance 'a'\) writes too"):
        build_notebook_assets([NotebookAsset("regional.ipynb", instances=same, outputs={"mart.revenue": "mart.revenue_{region}"})],
                              base_dir=tmp_path)


def test_each_instance_runs_with_its_parameters_into_its_own_table(tmp_path: Path, warehouse: Path) -> None:
    _regional(tmp_path)
    assets = build_notebook_assets([NotebookAsset("regional.ipynb", instances=INSTANCES)], base_dir=tmp_path)
    runner = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp_path / "records"))
    result = dg.materialize(assets, resources={RESOURCE_KEY: runner})
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as con:
        emea = con.execute("SELECT DISTINCT region, count(*) FROM mart.revenue_emea GROUP BY ALL").fetchall()
        apac = con.execute("SELECT DISTINCT region, count(*) FROM mart.revenue_apac GROUP BY ALL").fetchall()
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'mart'").fetchall()}
    assert emea == [("EMEA", 3)]
    assert apac[0][0] == "APAC"
    assert tables == {"revenue_emea", "revenue_apac"}  # never the name the notebook writes under


def test_a_bad_instance_changes_nothing_in_the_warehouse(tmp_path: Path, warehouse: Path) -> None:
    _regional(tmp_path)
    before = warehouse_snapshot(warehouse)
    with pytest.raises(DeclarationError):
        build_notebook_assets([NotebookAsset("regional.ipynb", instances={"emea": {"regon": "EMEA"}})], base_dir=tmp_path, warehouse=warehouse)
    assert warehouse_snapshot(warehouse) == before
