"""Three public notebooks written for jupysql and DuckDB go from refused to scheduled.

The notebooks (tests/fixtures/public_notebooks/<name>/, with their licence and
SOURCE) are Ploomber's SQL course as published: `%pip install jupysql`, a helper
that downloads the data, `%reload_ext sql`, `%sql duckdb:///bank.duck.db`, a
`CREATE TABLE ... FROM read_csv_auto(...)` cell, then bare `%%sql` queries,
`--save` snippets and writes. Before this work `check` refused every `%%sql`
cell for its syntax (findings_before.txt beside each). Now `check` refuses them
only for what really stands in the way, naming the edit; `nb-assets adopt --write`
makes those edits; the tables the notebooks read are seeded into a real DuckDB
warehouse (the course's data is a download; the columns are the course's);
then `check` passes and `nb-assets run` executes each in a real kernel in the
sandbox, prefetching every jupysql query.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from nb_assets.analysis.parser import parse_notebook
from support.cli import nb_assets
from support.paths import REPO

FIXTURES = REPO / "tests" / "fixtures" / "public_notebooks"
NOTEBOOKS = {
    "making_your_first_query": "making-your-first-query.ipynb",
    "aggregate_functions": "aggregate-functions-in-sql.ipynb",
    "ctes": "ctes.ipynb",
}


def _seed(path: Path) -> Path:
    """The two tables the course's notebooks create from its downloads, with the course's columns."""
    with duckdb.connect(str(path)) as con:
        con.execute("""CREATE TABLE main.bank AS SELECT 20 + (i % 50) AS age,
            ['admin.','blue-collar','management','services','technician','unemployed'][1 + i % 6] AS job,
            ['married','single','divorced'][1 + i % 3] AS marital,
            ['primary','secondary','tertiary','unknown'][1 + i % 4] AS education,
            CASE WHEN i % 7 = 0 THEN 'yes' ELSE 'no' END AS "default", (i * 37) % 5000 - 500 AS balance,
            CASE WHEN i % 2 = 0 THEN 'yes' ELSE 'no' END AS housing, CASE WHEN i % 5 = 0 THEN 'yes' ELSE 'no' END AS loan,
            ['jan','feb','mar','apr','may'][1 + i % 5] AS month, 60 + (i * 13) % 900 AS duration, 1 + i % 4 AS campaign
            FROM range(200) t(i)""")
        con.execute("CREATE SCHEMA s1")
        con.execute("""CREATE TABLE s1.district AS SELECT i AS district_id, 'district ' || i AS district_name,
            ['north','south','east'][1 + i % 3] AS region, 1000 * i AS no_of_inhabitants, 8000 + 100 * i AS average_salary,
            1000 * i AS no_of_committed_crimes_96, (i % 7)::DOUBLE AS unemployment_rate_96 FROM range(1, 20) t(i)""")
    return path


def _check(notebook: Path) -> dict:
    result = nb_assets("check", "--json", str(notebook), cwd=notebook.parent)
    return json.loads(result.stdout)["notebooks"][0] | {"exit": result.returncode}


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / NOTEBOOKS[name]
    shutil.copyfile(FIXTURES / name / NOTEBOOKS[name], target)
    return target


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_the_fixture_is_kept_with_its_licence_and_source(name: str) -> None:
    folder = FIXTURES / name
    assert "Apache License" in (folder / "LICENSE").read_text()
    source = (folder / "SOURCE").read_text()
    assert "github.com/ploomber/sql" in source and "Commit: 27381cd4d98adf422876d81bbd741a6658a8779b" in source
    before = (folder / "findings_before.txt").read_text()
    assert "[sql-input-name] `%%sql` needs one variable name" in before  # refused for jupysql's syntax alone


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_check_names_what_stands_in_the_way_never_the_jupysql_syntax(tmp_path: Path, name: str) -> None:
    report = _check(_copy(tmp_path, name))
    assert report["exit"] == 1
    rules = {f["rule"] for f in report["findings"] if f["severity"] == "error"}
    assert "sql-input-name" not in rules
    assert {"missing-runtime", "shell-process", "sql-not-read-only"} <= rules
    runtime = next(f for f in report["findings"] if f["rule"] == "missing-runtime")
    assert "%load_ext sql" in runtime["message"] and "%load_ext nb_assets.notebook" in runtime["message"]
    assert "main.bank" in {t for i in report["inputs"] for t in i["tables"]}  # the queries are read: lineage sees the table


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_adopted_and_seeded_each_notebook_checks_clean_and_runs(tmp_path: Path, name: str) -> None:
    notebook = _copy(tmp_path, name)
    shown = nb_assets("adopt", str(notebook), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "-%reload_ext sql" in shown.stdout and "+%load_ext nb_assets.notebook" in shown.stdout
    assert notebook.read_bytes() == (FIXTURES / name / NOTEBOOKS[name]).read_bytes()  # nothing written without --write

    written = nb_assets("adopt", str(notebook), "--write", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    report = _check(notebook)
    assert report["exit"] == 0, report["findings"]
    assert not [f for f in report["findings"] if f["severity"] == "error"]
    again = nb_assets("adopt", str(notebook), cwd=tmp_path)
    assert "nothing to change" in again.stdout  # adopting is idempotent

    warehouse = _seed(tmp_path / "warehouse.duckdb")
    run = nb_assets("run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local",
                    "--records", str(tmp_path / "records"), "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    executed = json.loads(Path(json.loads(run.stdout)["executed_notebook"]).read_text())
    shown_tables = [
        c for c in executed["cells"]
        if c["cell_type"] == "code" and c["source"] and "".join(c["source"]).startswith("%%sql")
        and any("text/plain" in o.get("data", {}) for o in c["outputs"])
    ]
    assert len(shown_tables) == len(report["inputs"])  # every query ran, from its prefetched file, and was shown


def test_a_saved_snippet_reads_through_to_the_warehouse_table(tmp_path: Path) -> None:
    """ctes.ipynb's `--save avg_balance_by_job`, read by a later `SELECT * FROM avg_balance_by_job`."""
    notebook = _copy(tmp_path, "ctes")
    nb_assets("adopt", str(notebook), "--write", cwd=tmp_path)
    spec = parse_notebook(notebook)
    reader = next(i for i in spec.inputs if i.query.rstrip().endswith("FROM avg_balance_by_job"))
    assert reader.tables == ("main.bank",)
    assert reader.query.startswith("WITH avg_balance_by_job AS (")


def test_a_jupysql_result_variable_is_loaded_as_an_output_in_docker(tmp_path: Path, docker_image: str) -> None:
    """The author's one edit after adopt: keep a `%%sql name <<` result as a table. Run in the Docker sandbox."""
    notebook = _copy(tmp_path, "making_your_first_query")
    nb_assets("adopt", str(notebook), "--write", cwd=tmp_path)
    document = json.loads(notebook.read_text())
    document["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "id": "jobs0001",
                              "source": "%%sql by_job <<\nSELECT job, count(*) AS customers FROM bank GROUP BY job ORDER BY job"})
    document["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "id": "jobs0002",
                              "source": "from nb_assets.notebook import output\n\noutput(\"mart.bank_jobs\", by_job)"})
    notebook.write_text(json.dumps(document))
    assert _check(notebook)["exit"] == 0
    warehouse = _seed(tmp_path / "warehouse.duckdb")
    run = nb_assets("run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "docker",
                    "--records", str(tmp_path / "records"), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("SELECT job, customers FROM mart.bank_jobs ORDER BY job").fetchall()
        expected = con.execute("SELECT job, count(*) FROM main.bank GROUP BY job ORDER BY job").fetchall()
    assert rows == expected and len(rows) == 6
