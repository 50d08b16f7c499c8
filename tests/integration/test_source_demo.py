"""The demo's declared sources: the partner's rates API served on loopback (as `make dev` serves it)
and a folder of CSV files, each feeding fx_revenue, drawn in the graph with their zones, and run."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import dagster as dg
import duckdb
import pytest

from nb_assets import NotebookResource
from nb_assets.defs.build import RESOURCE_KEY
from support.paths import REPO


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("demo_sources")
    warehouse = tmp / "warehouse.duckdb"
    _load("seed_demo", REPO / "scripts" / "seed_demo.py").seed(warehouse, scale=1, seed=42)
    serve = _load("serve_demo_sources", REPO / "scripts" / "serve_demo_sources.py")
    saved = {k: os.environ.get(k) for k in ("NB_ASSETS_WAREHOUSE", "NB_ASSETS_DEMO_RATES_URL")}
    with serve.serving() as url:
        os.environ.update(NB_ASSETS_WAREHOUSE=str(warehouse), NB_ASSETS_DEMO_RATES_URL=url)
        try:
            defs = _load("demo_definitions_sources", REPO / "definitions.py").defs
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        yield defs, warehouse, tmp, url


def test_the_demo_sources_are_in_the_graph_with_kinds_and_zones(demo) -> None:
    defs, _, _, url = demo
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    rates, regions = specs["source/partner_rates"], specs["source/sales_regions"]
    assert rates.group_name == regions.group_name == "sources"
    assert rates.kinds == {"https"} and regions.kinds == {"file"}
    assert "zone/public" in rates.tags and "zone/public" in regions.tags
    assert rates.metadata["source/location"].value == f"{url}?date=$ds"
    fx = specs["mart/revenue_eur_by_region"]
    assert {d.asset_key.to_user_string() for d in fx.deps} == {"mart/orders_clean", "source/partner_rates", "source/sales_regions"}
    assert {"zone/public", "zone/finance"} <= set(fx.tags)


def test_fx_revenue_runs_on_the_served_rates_and_the_folder(demo) -> None:
    defs, warehouse, tmp, _ = demo
    wanted = {"clean_orders", "fx_revenue"}
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.node_def.name in wanted]
    runner = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp / "records"))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(assets, resources={RESOURCE_KEY: runner}, instance=instance, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        regions = {r[0] for r in con.execute("SELECT DISTINCT sales_region FROM mart.revenue_eur_by_region").fetchall()}
        eur, usd = con.execute(
            "SELECT (SELECT sum(revenue_eur) FROM mart.revenue_eur_by_region), "
            "(SELECT sum(amount_usd) FROM mart.orders_clean WHERE status = 'completed' AND order_date <= DATE '2026-11-25')"
        ).fetchone()
    assert regions == {"Europe", "Americas", "Asia-Pacific"}
    assert 0.8 * usd < eur < 1.0 * usd  # a euro buys more than a dollar
    observed = instance.fetch_observations(dg.AssetKey(["source", "partner_rates"]), limit=1).records[0].asset_observation
    assert observed.metadata["source/kind"].text == "https" and observed.metadata["source/rows"].value == 7


def test_the_notebook_on_the_sources_page_is_the_demo_notebook_cell_by_cell() -> None:
    """docs/sources.md shows fx_revenue's code cells (the test above runs that notebook): they must be its cells."""
    import re

    import nbformat

    page = (REPO / "docs" / "sources.md").read_text()
    block = re.search(r"```text\n(# cell 1\n.*?)```", page, re.S)[1]
    shown = [" ".join(c.split()) for c in re.split(r"^# cell \d+.*\n", block, flags=re.M)[1:]]
    notebook = nbformat.read(REPO / "notebooks" / "fx_revenue.ipynb", as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert shown == [" ".join(c.source.split()) for c in code]
    assert "(tagged parameters)" in block and "parameters" in code[1].metadata.get("tags", [])
