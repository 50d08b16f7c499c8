"""Tables an output check reads are inputs for the policy: the purpose must allow them, and their
zones go with the output (its checks' failing rows travel in its metadata). Real parser, real
policy file, real Dagster definitions; the tables stay out of the asset's upstream dependencies."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from nb_assets import NotebookAsset, build_notebook_assets
from nb_assets.errors import DeclarationError
from support.notebook_factory import RUNTIME, code, write_notebook

POLICY = """
zones:
  public: {mode: enforce}
  pii: {mode: enforce}
purposes:
  analytics: [public]
  support: [public, pii]
tables:
  raw.orders: [public]
  raw.customers: [pii]
"""


def _project(tmp_path: Path, check: str) -> Path:
    write_notebook(
        tmp_path / "orders.ipynb", code(RUNTIME + "\nfrom nb_assets.notebook import sql, relationships, unique"),
        code("%%sql o\nSELECT order_id, customer_id FROM raw.orders"),
        code(f'output("mart.orders", o, checks=[unique("order_id"), {check}])'),
    )
    (tmp_path / "policy.yaml").write_text(POLICY)
    return tmp_path / "policy.yaml"


@pytest.mark.parametrize("check", [
    'relationships("customer_id", to="raw.customers.customer_id")',
    'sql("SELECT o.* FROM mart.orders o JOIN raw.customers c USING (customer_id) WHERE c.email IS NULL")',
])
def test_a_check_reading_a_zone_the_purpose_may_not_read_is_refused(tmp_path: Path, check: str) -> None:
    policy = _project(tmp_path, check)
    with pytest.raises(DeclarationError, match=r"raw\.customers.*pii|pii.*raw\.customers"):
        build_notebook_assets([NotebookAsset("orders.ipynb", purpose="analytics")], base_dir=tmp_path, policy=policy)


def test_a_check_reading_an_allowed_table_is_its_checks_dep_not_the_assets(tmp_path: Path) -> None:
    policy = _project(tmp_path, 'relationships("customer_id", to="raw.customers.customer_id")')
    [orders, *_] = build_notebook_assets([NotebookAsset("orders.ipynb", purpose="support")], base_dir=tmp_path, policy=policy)
    assert isinstance(orders, dg.AssetsDefinition)
    key = dg.AssetKey(["mart", "orders"])
    assert set(orders.asset_deps[key]) == {dg.AssetKey(["raw", "orders"])}  # the notebook's data depends on raw.orders only
    spec = next(s for s in orders.check_specs if s.name == "relationships_customer_id")
    assert [d.asset_key for d in spec.additional_deps] == [dg.AssetKey(["raw", "customers"])]
    assert spec.blocking
    # The output carries the zone of what its checks read: their failing rows travel with it.
    assert orders.specs_by_key[key].tags.get("zone/pii") is not None


def test_definitions_resolve_with_a_check_reading_a_table_no_notebook_reads(tmp_path: Path, warehouse: Path) -> None:
    from nb_assets import notebook_definitions

    policy = _project(tmp_path, 'relationships("customer_id", to="raw.customers.customer_id")')
    defs = notebook_definitions([NotebookAsset("orders.ipynb", purpose="support")], warehouse=warehouse, base_dir=tmp_path, policy=policy)
    graph = defs.resolve_asset_graph()
    check_key = dg.AssetCheckKey(dg.AssetKey(["mart", "orders"]), "relationships_customer_id")
    assert check_key in graph.asset_check_keys
