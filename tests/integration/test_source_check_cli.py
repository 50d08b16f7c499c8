"""`nb-assets check` and `nb-assets lineage` inside a project: declared sources and the
warehouse's table macros are resolved, as the load and the run gate resolve them."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from support.cli import nb_assets
from support.notebook_factory import RUNTIME, code, params, write_notebook

DEFINITIONS = """\
from pathlib import Path

from nb_assets import NotebookAsset, Source, load_sources_yaml, notebook_definitions

HERE = Path(__file__).parent
defs = notebook_definitions(
    [NotebookAsset("notebooks/people.ipynb", purpose="analytics")],
    warehouse=HERE / "warehouse.duckdb",
    base_dir=HERE,
    policy=HERE / "policy.yaml",
    sources=[Source("partner_rates", url="https://rates.example.invalid/v1/daily?date=$ds", zones=["public"])]
    + load_sources_yaml(HERE / "declarations.yaml"),
)
"""

DECLARATIONS = """\
sources:
  - name: regions
    path: drops/regions.csv
    zones: [internal]
"""

POLICY = """\
zones:
  pii: {mode: enforce}
  public: {mode: log}
  internal: {mode: log}
purposes:
  analytics: [pii, public, internal]
tables:
  raw.customers: [pii]
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "definitions.py").write_text(DEFINITIONS)
    (tmp_path / "declarations.yaml").write_text(DECLARATIONS)
    (tmp_path / "policy.yaml").write_text(POLICY)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw; CREATE SCHEMA shared")
        con.execute("CREATE TABLE raw.customers AS SELECT range AS id, 'c' || range AS name FROM range(5)")
        con.execute("CREATE MACRO shared.ppl() AS TABLE SELECT * FROM raw.customers")
    write_notebook(
        tmp_path / "notebooks" / "people.ipynb", code(RUNTIME), params("ds = '2026-11-01'"),
        code("%%sql people\nSELECT p.*, r.region FROM shared.ppl() p JOIN source('regions') r USING (id)"),
        code("%%source rates partner_rates"),
        code("output('mart.people', people)"),
    )
    return tmp_path


def test_check_in_a_project_sees_through_macros_and_resolves_declared_sources(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = nb_assets("check", "--json", str(project / "notebooks" / "people.ipynb"), cwd=project)
    (report,) = json.loads(done.stdout)["notebooks"]
    assert sorted(report["reads"]) == ["raw.customers", "source.partner_rates", "source.regions"], done.stdout
    assert report["sources"] == {"regions": "drops/regions.csv", "partner_rates": "https://rates.example.invalid/v1/daily?date=$ds"}
    assert not [f for f in report["findings"] if f["rule"] in ("sql-table-function", "unknown-source")]
    text = nb_assets("check", str(project / "notebooks" / "people.ipynb"), cwd=project).stdout
    assert "reads:  source.regions, raw.customers, source.partner_rates" in text  # shared.ppl() is raw.customers


def test_check_names_the_registry_for_an_undeclared_source(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "declarations.yaml").write_text("sources: []\n")
    done = nb_assets("check", str(project / "notebooks" / "people.ipynb"), cwd=project)
    assert done.returncode == 1
    assert "[unknown-source]" in done.stdout and "reads source 'regions', which the project does not declare" in done.stdout


def test_lineage_shows_a_source_and_its_zones_upstream(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = nb_assets("lineage", "mart.people", "--upstream", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    (hop,) = json.loads(done.stdout)["notebooks"]
    reads = {r["table"]: r["labels"] for r in hop["reads"]}
    assert reads["source.partner_rates"] == ["public"] and reads["source.regions"] == ["internal"]
    assert sorted(l for w in hop["writes"] for l in w["labels"]) == ["internal", "pii", "public"]


def test_check_points_a_literal_read_of_a_declared_file_at_its_source(tmp_path: Path) -> None:
    """A notebook not declared yet reads, by a literal path, the file the project declares as `regions`:
    check tells it to read that source, not to declare the file again."""
    project = _project(tmp_path)
    notebook = write_notebook(
        project / "notebooks" / "draft.ipynb", code(RUNTIME), params("ds = '2026-11-01'"),
        code("import pandas as pd\nregions = pd.read_csv('../drops/regions.csv')"),
        code("output('mart.draft', regions)"),
    )
    done = nb_assets("check", str(notebook), cwd=project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "through the declared source 'regions' instead" in done.stdout and "%%source df regions" in done.stdout, done.stdout
