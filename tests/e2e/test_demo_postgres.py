"""The demo project, unchanged, on a Postgres warehouse chosen by NB_ASSETS_WAREHOUSE: real Dagster
materialization, the same asset graph and lineage as on DuckDB, and the same data."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import psycopg
import pytest

from support.paths import REPO
from support.warehouses import new_pg_database
from support.dagster_runs import materialize_ok
from nb_assets import NotebookResource
from nb_assets.defs.build import RESOURCE_KEY

pytestmark = pytest.mark.slow


def _module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _definitions(warehouse: str) -> dg.Definitions:
    previous = os.environ.get("NB_ASSETS_WAREHOUSE")
    os.environ["NB_ASSETS_WAREHOUSE"] = warehouse  # definitions.py reads it, as a deployment would
    try:
        return _module("demo_definitions", REPO / "definitions.py").defs
    finally:
        os.environ.pop("NB_ASSETS_WAREHOUSE") if previous is None else os.environ.__setitem__("NB_ASSETS_WAREHOUSE", previous)


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory, pg_cluster: Any) -> dict[str, tuple[dg.Definitions, str]]:
    """The demo seeded (same seed) into a DuckDB file and into a Postgres database, and its definitions on each."""
    seed_demo = _module("seed_demo", REPO / "scripts" / "seed_demo.py")
    duck = str(tmp_path_factory.mktemp("demo-duckdb") / "warehouse.duckdb")
    pg = new_pg_database(pg_cluster)
    for warehouse in (duck, pg):
        seed_demo.seed(warehouse, scale=1, seed=42)
    return {"duckdb": (_definitions(duck), duck), "postgres": (_definitions(pg), pg)}


def _graph(defs: dg.Definitions) -> dict[str, tuple[set[str], dict[str, str], str | None]]:
    """Each asset: its upstream keys, its tags, its group."""
    return {
        s.key.to_user_string(): ({d.asset_key.to_user_string() for d in s.deps}, dict(s.tags), s.group_name)
        for s in defs.resolve_all_asset_specs()
    }


def test_the_asset_graph_and_its_lineage_are_the_same_on_both_warehouses(demos) -> None:
    on_duckdb, on_postgres = _graph(demos["duckdb"][0]), _graph(demos["postgres"][0])
    strip = lambda g: {k: (deps, {t: v for t, v in tags.items() if not t.startswith("dagster/kind/")}, group)  # noqa: E731
                       for k, (deps, tags, group) in g.items()}
    assert strip(on_postgres) == strip(on_duckdb)
    assert on_postgres["mart/customer_revenue"][0] == {"mart/orders_clean", "raw/customers"}
    specs = {s.key.to_user_string(): s for s in demos["postgres"][0].resolve_all_asset_specs()}
    assert specs["mart/customer_revenue"].kinds == {"notebook", "postgres"} and specs["raw/orders"].kinds == {"postgres"}
    columns = specs["mart/customer_revenue"].metadata["notebook/columns_read"].value
    assert {"customer_id", "country", "segment"} <= set(columns["raw.customers"])


def _counts_duckdb(path: str, queries: dict[str, str]) -> dict[str, Any]:
    with duckdb.connect(path, read_only=True) as con:
        return {k: con.execute(q).fetchone()[0] for k, q in queries.items()}


def _counts_postgres(dsn: str, queries: dict[str, str]) -> dict[str, Any]:
    with psycopg.connect(dsn) as con:
        return {k: con.execute(q).fetchone()[0] for k, q in queries.items()}


FACTS = {
    "clean orders": "SELECT count(*) FROM mart.orders_clean",
    "revenue": "SELECT round(CAST(sum(revenue) AS NUMERIC), 2) FROM mart.customer_revenue",
    "customers": "SELECT count(*) FROM mart.customer_revenue",
    "traffic rows": "SELECT count(*) FROM mart.daily_traffic",
    "emea rows": "SELECT count(*) FROM mart.regional_revenue_emea",
    "apac currencies": "SELECT string_agg(DISTINCT currency, ',' ORDER BY currency) FROM mart.regional_revenue_apac",
    "day orders": "SELECT sum(orders) FROM mart.daily_orders",
}


def test_the_demo_materializes_on_postgres_as_on_duckdb(demos, tmp_path: Path) -> None:
    facts = {}
    for kind, (defs, warehouse) in demos.items():
        runner = NotebookResource(warehouse=warehouse, sandbox="local", records_dir=str(tmp_path / kind))
        whole = [a for a in defs.assets if not (isinstance(a, dg.AssetsDefinition) and a.partitions_def)]
        result = materialize_ok(whole, resources={RESOURCE_KEY: runner})
        daily = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.partitions_def)
        for day in ("2026-11-19", "2026-11-20", "2026-11-19"):  # the second 11-19 replaces its day's rows
            materialize_ok([daily], resources={RESOURCE_KEY: runner}, partition_key=day)
        facts[kind] = (_counts_postgres if kind == "postgres" else _counts_duckdb)(warehouse, FACTS)
    assert facts["postgres"] == facts["duckdb"]
    assert facts["postgres"]["clean orders"] > 0 and facts["postgres"]["apac currencies"] == "AUD,JPY"
