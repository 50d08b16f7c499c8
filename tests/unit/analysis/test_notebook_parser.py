from __future__ import annotations

from pathlib import Path

import pytest

from nb_assets.errors import NotebookParseError
from nb_assets.analysis.parser import parse_notebook
from nb_assets.spec import notebook_name
from support.notebook_factory import RUNTIME, code, md, params, write_notebook


def rules(spec) -> list[str]:
    return [f.rule for f in spec.findings]


def test_reads_the_whole_contract(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "Daily Revenue.ipynb",
        md("# Daily revenue\nRevenue per day."),
        code(RUNTIME),
        params('ds = "2026-11-01"\nmin_amount: float = 1.5\nregions = ["eu", "us"]\nverbose = False'),
        code("%%sql orders\nWITH o AS (SELECT * FROM Raw.Orders WHERE order_date = CAST($ds AS DATE))\nSELECT * FROM o"),
        code("%%sql customers\nSELECT * FROM customers"),
        code("daily = orders.groupby('order_date').amount.sum().reset_index()\noutput('mart.daily_revenue', daily)"),
        code("output(\"mart.big_orders\", orders[orders.amount > min_amount])"),
    )
    spec = parse_notebook(path)
    assert spec.name == "daily_revenue"
    assert spec.description == "# Daily revenue\nRevenue per day."
    assert [(p.name, p.type, p.default) for p in spec.parameters] == [
        ("ds", "str", "2026-11-01"), ("min_amount", "float", 1.5), ("regions", "list", ["eu", "us"]), ("verbose", "bool", False),
    ]
    assert [(i.name, i.tables, i.params, i.cell) for i in spec.inputs] == [
        ("orders", ("raw.orders",), ("ds",), 4),
        ("customers", ("main.customers",), (), 5),
    ]
    assert spec.output_tables == ("mart.daily_revenue", "mart.big_orders")
    assert [(o.cell, o.line) for o in spec.outputs] == [(6, 2), (7, 1)]
    assert spec.findings == ()


def test_same_content_gives_same_hash_and_cached_spec(tmp_path: Path) -> None:
    a = write_notebook(tmp_path / "a.ipynb", code(RUNTIME))
    assert parse_notebook(a) is parse_notebook(a)
    write_notebook(a, code(RUNTIME), code("x = 1"))
    assert len(parse_notebook(a).cells) == 2  # edited file is parsed again


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "invalid JSON"),
        (b'{"cells": [], "nbformat": 3}', "nbformat 3"),
        (b'{"hello": "world"}', "no 'cells' list"),
        (b'[1, 2]', "no 'cells' list"),
        (b'{"cells": [{"cell_type": "image"}], "nbformat": 4}', "cell 1"),
    ],
)
def test_malformed_notebook_is_a_clear_error_naming_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    with pytest.raises(NotebookParseError) as err:
        parse_notebook(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(NotebookParseError, match="cannot read"):
        parse_notebook(tmp_path / "nope.ipynb")


def test_findings_name_the_cell(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "bad.ipynb",
        code(RUNTIME),
        params("n = 1\nm = compute()\nk = {[1]: 2}\ns = {1, 2}"),
        code("%%sql orders\nSELECT * FROM raw.orders WHERE x = $missing"),
        code("%%sql orders\nSELECT 1"),
        code("%%sql totals\nSELECT FROM WHERE"),
        code("name = 'mart.x'\noutput(name, orders)"),
        code("output('not_qualified', orders)\noutput('Mart.Capitals', orders)"),
        code("%%sql --persist orders"),
    )
    spec = parse_notebook(path)
    by_rule = {f.rule: f for f in spec.findings}
    assert [(f.cell, f.line) for f in spec.findings if f.rule == "parameters-cell"] == [(2, 2), (2, 3), (2, 4)]
    assert by_rule["unknown-sql-param"].cell == 3
    assert by_rule["duplicate-input"].cell == 4
    assert by_rule["sql-syntax"].cell == 5
    assert by_rule["output-name-literal"].cell == 6 and by_rule["output-name-literal"].line == 2
    assert [(f.cell, f.line) for f in spec.findings if f.rule == "output-name"] == [(7, 1), (7, 2)]
    assert by_rule["jupysql-unsupported"].cell == 8  # a bare %%sql is jupysql's form; writing is not
    assert all(f.severity == "error" for f in spec.findings)


def test_sql_cells_need_the_runtime_loaded_first(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "n.ipynb", code("%%sql o\nSELECT * FROM raw.orders"), code(RUNTIME))
    assert "missing-runtime" in rules(parse_notebook(path))


def test_reading_and_writing_one_table_is_refused(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "n.ipynb", code(RUNTIME), code("%%sql o\nSELECT * FROM mart.x"), code("output('mart.x', o)")
    )
    assert "reads-own-output" in rules(parse_notebook(path))


def test_write_sql_is_an_error_finding(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "n.ipynb", code(RUNTIME), code("%%sql o\nDELETE FROM raw.orders"))
    assert "sql-not-read-only" in rules(parse_notebook(path))


def test_notebook_names_are_dagster_safe() -> None:
    assert notebook_name("notebooks/Daily Revenue (v2).ipynb") == "daily_revenue_v2"
    assert notebook_name("2026-report.ipynb") == "nb_2026_report"


def test_disk_cache_is_reused_and_a_corrupt_entry_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nb_assets.analysis import parser as module

    monkeypatch.setenv("NB_ASSETS_CACHE", str(tmp_path / "cache"))
    path = write_notebook(tmp_path / "c.ipynb", code(RUNTIME), code("%%sql o\nSELECT * FROM raw.orders"))
    first = parse_notebook(path)
    cache = module.spec_cache_file(str(path), first.content_hash)
    assert cache.exists()
    module._parse_cached.cache_clear()  # as in a new process
    assert parse_notebook(path) == first
    cache.write_bytes(b"not a pickle")
    module._parse_cached.cache_clear()
    assert parse_notebook(path) == first


def test_the_disk_cache_is_really_read_and_only_when_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses
    import os
    import pickle

    from nb_assets.analysis import parser as module

    monkeypatch.setenv("NB_ASSETS_CACHE", str(tmp_path / "cache"))
    path = write_notebook(tmp_path / "m.ipynb", code(RUNTIME))
    spec = parse_notebook(path)
    cache = module.spec_cache_file(str(path), spec.content_hash)
    cache.write_bytes(pickle.dumps(dataclasses.replace(spec, description="from the cache")))
    module._parse_cached.cache_clear()
    assert parse_notebook(path).description == "from the cache"
    os.chmod(cache, 0o666)  # writable by anyone: no longer trusted, parsed afresh
    module._parse_cached.cache_clear()
    assert parse_notebook(path).description is None


def _param_finding(tmp_path: Path, *cells) -> str:
    spec = parse_notebook(write_notebook(tmp_path / "p.ipynb", *cells))
    [finding] = [f for f in spec.findings if f.rule == "unknown-sql-param"]
    return finding.message


def test_a_parameter_in_an_untagged_cell_is_reported_as_a_missing_tag(tmp_path: Path) -> None:
    message = _param_finding(
        tmp_path,
        code(RUNTIME),
        code('ds = "2026-11-25"'),  # meant as the parameters cell, but the tag is missing
        code("%%sql orders\nSELECT * FROM raw.orders WHERE order_date <= CAST($ds AS DATE)"),
    )
    assert "ds is assigned in cell 2, which is not tagged `parameters`" in message
    assert "add the tag `parameters` to cell 2" in message
    assert "not a notebook parameter" not in message


def test_a_parameter_assigned_outside_the_tagged_cell_is_to_be_moved_there(tmp_path: Path) -> None:
    message = _param_finding(
        tmp_path,
        code(RUNTIME),
        params("days = 7"),
        code("import datetime\nds = str(datetime.date.today())"),
        code("%%sql orders\nSELECT * FROM raw.orders WHERE order_date <= CAST($ds AS DATE)"),
    )
    assert "ds is assigned in cell 3, not in the parameters cell (cell 2)" in message
    assert "move `ds = ...` into cell 2" in message


def test_a_name_assigned_nowhere_is_still_an_unknown_parameter(tmp_path: Path) -> None:
    message = _param_finding(
        tmp_path, code(RUNTIME), params("days = 7"), code("%%sql orders\nSELECT * FROM raw.orders WHERE x = $missing"),
    )
    assert message == "SQL input 'orders' binds $missing, which is not a notebook parameter; add it to the parameters cell"
