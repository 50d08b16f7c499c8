"""`nb-assets adopt`: each rewrite, the diff it shows, and --write (real notebook files, no kernel)."""

from __future__ import annotations

import json
from pathlib import Path

from nb_assets.adopt.notebook_edit import plan_adoption
from nb_assets.adopt.rewrites import rewrite_python, rewrite_sql, source_declaration
from nb_assets.analysis.parser import parse_notebook
from nb_assets.cli.main import main
from support.notebook_factory import code, md, write_notebook


def test_a_literal_read_csv_becomes_a_source_cell_and_a_declaration() -> None:
    edit = rewrite_python("import pandas as pd\nrates = pd.read_csv('https://rates.example.invalid/daily.csv')\nrates.head()", True)
    assert [c.source for c in edit.cells or []] == ["import pandas as pd", "%%source rates daily", "rates.head()"]
    assert edit.declarations == ['Source("daily", url="https://rates.example.invalid/daily.csv", format="csv", zones=[])']


def test_a_file_in_sql_becomes_a_declared_source() -> None:
    edit = rewrite_sql("%%sql\nSELECT species, count(*) FROM 'data/penguins.csv' GROUP BY species")
    assert edit.cells and edit.cells[0].source == "%%sql\nSELECT species, count(*) FROM source('penguins') GROUP BY species"
    assert edit.declarations == [source_declaration("data/penguins.csv")]
    call = rewrite_sql("%%sql top <<\nSELECT * FROM read_parquet('trips.parquet', hive_partitioning=true)")
    assert call.cells and "FROM source('trips')" in call.cells[0].source


def test_a_cell_that_writes_becomes_a_note_that_says_where_the_table_comes_from() -> None:
    edit = rewrite_sql("%%sql\nCREATE OR REPLACE TABLE bank AS\nFROM read_csv_auto('bank_cleaned.csv', header=True)")
    assert edit.cells and edit.cells[0].cell_type == "markdown" and "```sql\nCREATE OR REPLACE TABLE bank" in edit.cells[0].source
    assert any("nb-assets land main.bank --from bank_cleaned.csv" in n for n in edit.notes)


def test_jupysql_lines_and_installs_and_downloads_go() -> None:
    edit = rewrite_python("%pip install jupysql --quiet\n%load_ext sql\n%config SqlMagic.displaylimit = 3\n%sql duckdb://", False)
    assert [c.source for c in edit.cells or []] == ["%load_ext nb_assets.notebook"]
    download = rewrite_python("from urllib.request import urlretrieve\nurlretrieve('https://x.example.invalid/p.csv', 'p.csv')", True)
    assert download.cells == [] and download.declarations


def test_adopt_shows_a_diff_writes_only_with_write_and_then_checks_clean(tmp_path: Path, capsys) -> None:
    path = write_notebook(
        tmp_path / "plain.ipynb",
        md("# Penguins"),
        code("%pip install jupysql duckdb-engine"),
        code("%load_ext sql\n%sql duckdb://"),
        code("species = 'Adelie'"),
        code("%%sql counts <<\nSELECT island, count(*) AS n FROM raw.penguins WHERE species = '{{species}}' GROUP BY island"),
    )
    original = path.read_bytes()
    assert main(["adopt", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "-%pip install jupysql duckdb-engine" in shown and "+%load_ext nb_assets.notebook" in shown
    assert "+# %% [code] tags=parameters" in shown  # the cell assigning what the SQL binds is tagged
    assert path.read_bytes() == original
    assert main(["adopt", str(path), "--write"]) == 0
    spec = parse_notebook(path)
    assert not [f for f in spec.findings if f.severity == "error"], spec.findings
    assert [(p.name, p.default) for p in spec.parameters] == [("species", "Adelie")]
    assert [(i.name, i.tables, i.params) for i in spec.inputs] == [("counts", ("raw.penguins",), ("species",))]
    assert "".join(json.loads(path.read_text())["cells"][0]["source"]) == "# Penguins"  # untouched cells stay as they were
    assert plan_adoption(path).changed is False


def test_a_notebook_without_parameters_or_runtime_gets_both(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "n.ipynb", code("%%sql\nSELECT 1 AS one"))
    adoption = plan_adoption(path)
    sources = [(c["cell_type"], "".join(c["source"]), c["metadata"].get("tags", [])) for c in adoption.after]
    assert sources[0][2] == ["parameters"] and sources[1][1] == "%load_ext nb_assets.notebook"


def test_adopting_a_file_that_is_not_a_notebook_is_a_clear_error_naming_it(tmp_path: Path, capsys) -> None:
    path = tmp_path / "notes.ipynb"
    path.write_text("not json")
    assert main(["adopt", str(path)]) == 2
    assert f"{path}: not a notebook" in capsys.readouterr().err
    assert path.read_text() == "not json"


def test_a_proposed_source_path_is_the_projects_not_the_notebooks(tmp_path: Path) -> None:
    """The kernel reads ../data/penguins.csv from notebooks/; the Source's path is relative to the project."""
    (tmp_path / "definitions.py").write_text("", encoding="utf-8")
    path = write_notebook(tmp_path / "notebooks" / "p.ipynb",
                          code("%%sql\nSELECT species, count(*) FROM '../data/penguins.csv' GROUP BY species"))
    adoption = plan_adoption(path)
    assert adoption.declarations == [source_declaration("data/penguins.csv")], adoption.declarations
    assert "a path is relative to the project, not to the notebook" in adoption.diff()
