"""`%%source` cells and `source('x')` in SQL inputs: what the parser sees, and what it refuses."""

from __future__ import annotations

from pathlib import Path

from nb_assets.analysis.parser import parse_notebook
from nb_assets.sql.source_calls import fetched_relation, replace_source_calls
from support.notebook_factory import RUNTIME, code, params, write_notebook


def _rules(spec) -> set[str]:
    return {f.rule for f in spec.errors}


def test_a_source_cell_and_a_source_in_sql_are_inputs_lineage_sees(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "fx.ipynb", code(RUNTIME), params("ds = '2026-11-01'"),
        code("%%source rates partner_rates"),
        code("%%sql orders\nSELECT o.*, d.region FROM raw.orders o JOIN source('orders_drop') d USING (order_id) WHERE ds = $ds"),
        code("output('mart.fx', rates)"),
    )
    spec = parse_notebook(path)
    assert not spec.errors, spec.errors
    assert [(r.var, r.source, r.cell) for r in spec.source_reads] == [("rates", "partner_rates", 3)]
    assert spec.inputs[0].tables == ("raw.orders", "source.orders_drop")
    assert spec.sources == ("partner_rates", "orders_drop")
    assert set(spec.input_tables) == {"raw.orders", "source.orders_drop", "source.partner_rates"}


def test_the_prefetch_compiles_source_calls_to_the_fetched_copy() -> None:
    sql = "SELECT * FROM source('orders_drop') d JOIN raw.x USING (id) -- source('not_me') in a comment"
    assert replace_source_calls(sql, fetched_relation) == (
        f"SELECT * FROM {fetched_relation('orders_drop')} d JOIN raw.x USING (id) -- source('not_me') in a comment"
    )


def test_malformed_source_cells_and_calls_name_the_cell(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "bad.ipynb", code(RUNTIME),
        code("%%source rates"),
        code("%%source 2x partner_rates"),
        code("%%sql q\nSELECT * FROM source(lower('x'))"),
    )
    spec = parse_notebook(path)
    found = {(f.rule, f.cell) for f in spec.errors}
    assert ("source-cell", 2) in found and ("source-cell", 3) in found and ("source-call", 4) in found


def test_a_source_cell_needs_the_runtime_first(tmp_path: Path) -> None:
    spec = parse_notebook(write_notebook(tmp_path / "nort.ipynb", code("%%source rates partner_rates")))
    assert [f.message for f in spec.errors if f.rule == "missing-runtime"] == [
        "add `%load_ext nb_assets.notebook` in a cell before the first %%source cell"
    ]


def test_a_literal_file_or_url_is_refused_with_the_declaration_to_add(tmp_path: Path) -> None:
    (tmp_path / "definitions.py").write_text("", encoding="utf-8")  # the project: the notebook sits at its root
    path = write_notebook(
        tmp_path / "lit.ipynb", code(RUNTIME),
        code("%%sql penguins\nSELECT * FROM 'data/penguins.csv'"),
        code("import pandas as pd\nfx = pd.read_csv('https://rates.example.invalid/v1/fx.csv')"),
    )
    messages = {f.cell: f.message for f in parse_notebook(path).errors}
    assert "Source('penguins', path='data/penguins.csv', zones=[...])" in messages[2]
    assert "source('penguins')" in messages[2] and "source registry" in messages[2]
    assert "Source('fx', url='https://rates.example.invalid/v1/fx.csv', zones=[...])" in messages[3]
    assert "%%source df fx" in messages[3]


def _project_notebook(tmp_path: Path, *, project: bool) -> Path:
    if project:
        (tmp_path / "definitions.py").write_text("", encoding="utf-8")
    return write_notebook(
        tmp_path / "notebooks" / "x.ipynb", code(RUNTIME),
        code("import pandas as pd\neurope = pd.read_csv('../sources/sales_regions/europe.csv')"),
        code("%%sql rows\nSELECT * FROM '../sources/x.csv'"),
    )


def test_a_relative_file_read_from_a_notebook_folder_is_suggested_relative_to_the_project(tmp_path: Path) -> None:
    """The kernel reads `../sources/x.csv` from notebooks/; a Source's path is the project's: sources/x.csv."""
    messages = {f.cell: f.message for f in parse_notebook(_project_notebook(tmp_path, project=True)).errors}
    assert "Source('europe', path='sources/sales_regions/europe.csv', zones=[...])" in messages[2], messages[2]
    assert "Source('x', path='sources/x.csv', zones=[...])" in messages[3], messages[3]
    assert "a path relative to the project" in messages[2]


def test_without_a_project_the_hint_says_the_path_is_the_projects_not_the_notebooks(tmp_path: Path) -> None:
    messages = {f.cell: f.message for f in parse_notebook(_project_notebook(tmp_path, project=False)).errors}
    assert "Source('europe', path=..., zones=[...])` with its path relative to the project, not to the notebook" in messages[2]
    assert "path='../" not in messages[2] + messages[3], messages


def test_an_absolute_path_or_url_is_suggested_as_written(tmp_path: Path) -> None:
    (tmp_path / "definitions.py").write_text("", encoding="utf-8")
    path = write_notebook(
        tmp_path / "notebooks" / "abs.ipynb", code(RUNTIME),
        code("import pandas as pd\na = pd.read_parquet('/data/drop/a.parquet')\nb = pd.read_json('https://x.example.invalid/b.json')"),
    )
    (message_a, message_b) = [f.message for f in parse_notebook(path).errors]
    assert "Source('a', path='/data/drop/a.parquet', zones=[...])" in message_a
    assert "Source('b', url='https://x.example.invalid/b.json', zones=[...])" in message_b
