"""Run config generated from the parameters cell: Dagster checks overrides before the run starts."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from nb_assets import NotebookAsset, NotebookResource, build_notebook_assets
from nb_assets.defs.build import RESOURCE_KEY
from support.notebook_factory import RUNTIME, code, md, params, write_notebook


@pytest.fixture
def assets(tmp_path: Path):
    write_notebook(
        tmp_path / "big_orders.ipynb",
        md("# Big orders"),
        code(RUNTIME),
        params('min_amount = 0.0\nlabel = "all"\nlimit = 100'),
        code("%%sql orders\nSELECT order_id, amount FROM raw.orders WHERE amount >= $min_amount LIMIT $limit"),
        code("orders['label'] = label"),
        code("output('mart.big_orders', orders)"),
    )
    return build_notebook_assets([NotebookAsset("big_orders.ipynb", params={"label": "declared"})], base_dir=tmp_path)


def _run(assets, warehouse: Path, tmp_path: Path, config) -> dg.ExecuteInProcessResult:
    runner = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp_path / "records"))
    return dg.materialize(assets, resources={RESOURCE_KEY: runner}, run_config=config)


def test_an_override_reaches_the_notebook_and_the_rest_stay_declared(assets, warehouse: Path, tmp_path: Path) -> None:
    result = _run(assets, warehouse, tmp_path, {"ops": {"big_orders": {"config": {"min_amount": 20, "limit": 3}}}})
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("SELECT amount, label FROM mart.big_orders ORDER BY amount").fetchall()
    assert len(rows) == 3 and all(a >= 20 for a, _ in rows) and {l for _, l in rows} == {"declared"}


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"min_amont": 5.0}, 'unexpected config entry "min_amont"'),
        ({"limit": "many"}, 'root:ops:big_orders:config:limit. Value "many"'),
        ({"label": 7}, "root:ops:big_orders:config:label"),
    ],
)
def test_unknown_names_and_wrong_types_are_refused_before_the_run(assets, warehouse: Path, tmp_path: Path, config, needle: str) -> None:
    with pytest.raises(dg.DagsterInvalidConfigError) as err:
        _run(assets, warehouse, tmp_path, {"ops": {"big_orders": {"config": config}}})
    assert needle in str(err.value)
    assert not (tmp_path / "records").exists()  # nothing ran


def test_the_schema_lists_every_parameter_with_its_type(assets) -> None:
    (notebook,) = [a for a in assets if isinstance(a, dg.AssetsDefinition)]
    fields = notebook.op.config_schema.config_type.fields
    assert set(fields) == {"min_amount", "label", "limit"}
    assert all(not f.is_required for f in fields.values())
