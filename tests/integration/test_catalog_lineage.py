"""Seeing through views and table macros, against real DuckDB catalogs.

Each scenario checks what a user sees: the findings, the asset deps, the zone
labels, `nb-assets lineage`, and the run's verdict (through real Dagster and
a real kernel where the run goes ahead).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from support.warehouses import warehouse_snapshot
from nb_assets import NotebookAsset, NotebookResource, build_notebook_assets
from nb_assets.defs.build import RESOURCE_KEY
from nb_assets.sql.see_through import Catalog, see_through, view_query
from nb_assets.cli.main import main as nb_assets_main
from nb_assets.project.declare import declare_notebooks
from nb_assets.errors import DeclarationError
from nb_assets.analysis.parser import parse_notebook
from nb_assets.warehouse.backends import open_catalog
from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from support.polling import read_line

POLICY = """\
zones:
  public:  {mode: enforce}
  pii:     {mode: enforce}
  finance: {mode: enforce}
purposes:
  finance_reporting:  [finance, public]
  marketing:          [pii, public]
  customer_analytics: [finance, pii, public]
tables:
  raw.customers: [pii]
  raw.orders:    [finance]
default_labels: [public]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A warehouse with a pii and a finance table, a `shared` schema, and the policy above."""
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw; CREATE SCHEMA shared")
        con.execute("CREATE TABLE raw.customers AS SELECT range AS id, 'name ' || range AS name, "
                    "'c' || range || '@example.invalid' AS email FROM range(5)")
        con.execute("CREATE TABLE raw.orders AS SELECT range AS order_id, range % 5 AS customer_id, "
                    "range * 2.5 AS amount FROM range(6)")
    (tmp_path / "policy.yaml").write_text(POLICY)
    return tmp_path


def sql(project: Path, statement: str) -> None:
    with duckdb.connect(str(project / "warehouse.duckdb")) as con:
        con.execute(statement)


def copy_notebook(project: Path, query: str, name: str = "copy") -> Path:
    """`%%sql rows <query>` written out as mart.<name>."""
    return write_notebook(
        project / f"{name}.ipynb", md(f"# {name}"), code(RUNTIME),
        code(f"%%sql rows\n{query}"), code(f"output('mart.{name}', rows)"),
    )


def declare(project: Path, purpose: str, name: str = "copy", **kwargs) -> list:
    return build_notebook_assets(
        [NotebookAsset(f"{name}.ipynb", purpose=purpose)], base_dir=project,
        policy=project / "policy.yaml", warehouse=project / "warehouse.duckdb", **kwargs,
    )


def deps_and_zones(assets: list) -> tuple[set[str], set[str]]:
    spec = next(s for a in assets if isinstance(a, dg.AssetsDefinition) for s in a.specs)
    deps = {d.asset_key.to_user_string() for d in spec.deps}
    return deps, {k.removeprefix("zone/") for k in spec.tags if k.startswith("zone/")}


def materialize(assets: list, project: Path) -> dg.ExecuteInProcessResult:
    runner = NotebookResource(warehouse=str(project / "warehouse.duckdb"), sandbox="local",
                              records_dir=str(project / "records"))
    return dg.materialize(assets, resources={RESOURCE_KEY: runner}, raise_on_error=False)


def failure_of(result: dg.ExecuteInProcessResult) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    return failure.step_failure_data.user_failure_data.description


def fetched_files(project: Path) -> list[Path]:
    return list((project / "records").rglob("*.parquet")) if (project / "records").exists() else []


def write_definitions(project: Path, purpose: str, name: str = "copy", warehouse: bool = True) -> Path:
    """A definitions file as `nb-assets lineage` and `run --definitions` read it (no Dagster objects)."""
    definitions = project / "definitions.py"
    definitions.write_text(
        "from pathlib import Path\nfrom nb_assets import NotebookAsset\n"
        "BASE_DIR = Path(__file__).parent\nPOLICY = BASE_DIR / 'policy.yaml'\n"
        + ("WAREHOUSE = BASE_DIR / 'warehouse.duckdb'\n" if warehouse else "")
        + f"NOTEBOOKS = [NotebookAsset('{name}.ipynb', purpose='{purpose}')]\n"
    )
    return definitions


def lineage(project: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert nb_assets_main(["lineage", *args, "--definitions", str(project / "definitions.py")]) == 0
    return capsys.readouterr().out


# --- a view over a pii table --------------------------------------------------


def test_a_view_over_a_pii_table_carries_pii_and_depends_on_the_table(project: Path, capsys) -> None:
    sql(project, "CREATE VIEW shared.people AS SELECT * FROM raw.customers")
    copy_notebook(project, "SELECT * FROM shared.people")
    # The reproduction: default_labels [public] no longer labels the view.
    with pytest.raises(DeclarationError) as refused:
        declare(project, "finance_reporting")
    message = str(refused.value)
    assert ("may not read zone 'pii' (view shared.people, which reads raw.customers carrying 'pii': "
            "shared.people → raw.customers)") in message

    assets = declare(project, "marketing")
    assert deps_and_zones(assets) == ({"raw/customers"}, {"pii"})
    assert not parse_notebook(project / "copy.ipynb").findings

    write_definitions(project, "marketing")
    out = lineage(project, capsys, "raw.customers", "--downstream")
    assert "→ copy (purpose: marketing) via raw.customers → shared.people (view)" in out
    assert "reads  shared.people [pii] (view over raw.customers [pii])" in out
    assert "writes mart.copy [pii]" in out

    result = materialize(assets, project)
    assert result.success
    meta = result.asset_materializations_for_node("copy")[0].metadata
    assert meta["notebook/base_tables"].value == ["raw.customers"]
    assert meta["notebook/read_through"].value == {"shared.people": ["raw.customers"]}
    assert meta["policy/labels"].value["shared.people"] == ["pii"]
    assert len(warehouse_snapshot(project / "warehouse.duckdb")["mart.copy"]) == 5


def test_a_label_on_a_view_adds_zones_and_never_removes_them(project: Path) -> None:
    sql(project, "CREATE VIEW shared.people AS SELECT * FROM raw.customers")
    (project / "policy.yaml").write_text(POLICY.replace("  raw.orders:    [finance]\n",
                                                        "  raw.orders:    [finance]\n  shared.people: [public]\n"))
    copy_notebook(project, "SELECT * FROM shared.people")
    assert deps_and_zones(declare(project, "marketing"))[1] == {"pii", "public"}
    with pytest.raises(DeclarationError, match="may not read zone 'pii'"):
        declare(project, "finance_reporting")
    (project / "policy.yaml").write_text(POLICY.replace("  raw.orders:    [finance]\n",
                                                        "  raw.orders:    [finance]\n  shared.people: [finance]\n"))
    with pytest.raises(DeclarationError) as refused:  # a zone written on the view itself
        declare(project, "marketing")
    # the zone is the view's own, not from below
    assert "may not read zone 'finance' (view shared.people, labelled 'finance' in the policy)" in str(refused.value)


# --- a view of a view ------------------------------------------------------------


def test_a_view_of_a_view_resolves_to_the_base_table(project: Path, capsys) -> None:
    sql(project, "CREATE VIEW shared.people AS SELECT * FROM raw.customers")
    sql(project, "CREATE VIEW shared.names AS SELECT name FROM shared.people")
    copy_notebook(project, "SELECT * FROM shared.names")
    with pytest.raises(DeclarationError) as refused:
        declare(project, "finance_reporting")
    assert ": shared.names → shared.people → raw.customers)" in str(refused.value)

    assets = declare(project, "marketing")
    assert deps_and_zones(assets) == ({"raw/customers"}, {"pii"})
    write_definitions(project, "marketing")
    out = lineage(project, capsys, "raw.customers")
    assert "via raw.customers → shared.people (view) → shared.names (view)" in out
    out = lineage(project, capsys, "shared.people")  # a view is a node one can ask about too
    assert "→ copy (purpose: marketing) via shared.people → shared.names (view)" in out


# --- table macros -----------------------------------------------------------------


def test_a_table_macro_with_a_parameter_is_seen_through(project: Path, capsys) -> None:
    sql(project, "CREATE MACRO shared.first_customers(n) AS TABLE SELECT * FROM raw.customers WHERE id < n")
    write_notebook(
        project / "copy.ipynb", md("# copy"), code(RUNTIME), params("limit = 3"),
        code("%%sql rows\nSELECT * FROM shared.first_customers($limit)"), code("output('mart.copy', rows)"),
    )
    (warning,) = parse_notebook(project / "copy.ipynb").findings
    assert (warning.severity, warning.rule) == ("warning", "sql-table-function")
    assert "shared.first_customers() is not a table function known to read nothing" in warning.message

    with pytest.raises(DeclarationError) as refused:
        declare(project, "finance_reporting")
    assert "table macro shared.first_customers(), which reads raw.customers carrying 'pii'" in str(refused.value)

    assets = declare(project, "marketing")
    assert deps_and_zones(assets) == ({"raw/customers"}, {"pii"})
    declared = declare_notebooks([NotebookAsset("copy.ipynb")], project, project / "warehouse.duckdb")
    assert declared[0].spec.findings == ()  # the macro is known: the provisional warning is gone

    write_definitions(project, "marketing")
    out = lineage(project, capsys, "raw.customers")
    assert "via raw.customers → shared.first_customers() (macro)" in out

    result = materialize(assets, project)
    assert result.success
    assert len(warehouse_snapshot(project / "warehouse.duckdb")["mart.copy"]) == 3  # the parameter was bound
    meta = result.asset_materializations_for_node("copy")[0].metadata
    assert meta["notebook/read_through"].value == {"shared.first_customers()": ["raw.customers"]}


def test_a_macro_joining_two_labelled_tables_carries_both_zones(project: Path, capsys) -> None:
    sql(project, "CREATE MACRO shared.orders_by_customer() AS TABLE "
                 "SELECT c.name, o.amount FROM raw.orders o JOIN raw.customers c ON c.id = o.customer_id")
    copy_notebook(project, "SELECT name, sum(amount) AS total FROM shared.orders_by_customer() GROUP BY name")
    with pytest.raises(DeclarationError) as refused:
        declare(project, "finance_reporting")
    assert "(table macro shared.orders_by_customer(), which reads raw.customers carrying 'pii'" in str(refused.value)
    with pytest.raises(DeclarationError, match="may not read zone 'finance'"):
        declare(project, "marketing")

    assets = declare(project, "customer_analytics")
    assert deps_and_zones(assets) == ({"raw/customers", "raw/orders"}, {"finance", "pii"})
    write_definitions(project, "customer_analytics")
    for table in ("raw.orders", "raw.customers"):
        out = lineage(project, capsys, table)
        assert f"via {table} → shared.orders_by_customer() (macro)" in out
        assert "(macro over raw.customers [pii], raw.orders [finance])" in out
    # Refusals need no kernel; the run itself is the two cases above.
    assert warehouse_snapshot(project / "warehouse.duckdb").keys() == {"raw.customers", "raw.orders"}


# --- the catalog changes between declaration and run -------------------------------


def test_a_view_repointed_at_pii_after_declaration_is_refused_before_any_fetch(project: Path) -> None:
    sql(project, "CREATE VIEW shared.people AS SELECT order_id AS id FROM raw.orders")
    copy_notebook(project, "SELECT * FROM shared.people")
    assets = declare(project, "finance_reporting")
    assert deps_and_zones(assets) == ({"raw/orders"}, {"finance"})

    sql(project, "DROP VIEW shared.people")
    sql(project, "CREATE VIEW shared.people AS SELECT * FROM raw.customers")
    before = warehouse_snapshot(project / "warehouse.duckdb")
    result = materialize(assets, project)
    assert not result.success
    description = failure_of(result)
    assert "copy.ipynb: refused before any data was fetched" in description
    assert "may not read zone 'pii' (view shared.people, which reads raw.customers carrying 'pii'" in description
    # Nothing fetched: the only file kept is the refusal's own record, saying why.
    assert fetched_files(project) == []
    kept = [p for p in (project / "records").rglob("*") if p.is_file()]
    assert [p.name for p in kept] == ["run.json"] and '"status": "refused"' in kept[0].read_text()
    assert warehouse_snapshot(project / "warehouse.duckdb") == before


def test_a_locked_warehouse_at_load_is_said_in_one_line_and_the_gate_refuses(project: Path, caplog) -> None:
    """The issue's first reproduction, with the view unreadable while the definitions load."""
    sql(project, "CREATE VIEW shared.people AS SELECT * FROM raw.customers")
    copy_notebook(project, "SELECT * FROM shared.people")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('locked', flush=True); time.sleep(120)",
         str(project / "warehouse.duckdb")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert read_line(holder, "the lock holder to lock the warehouse").strip() == "locked"
        with caplog.at_level(logging.WARNING, logger="nb_assets"):
            assets = declare(project, "finance_reporting")  # the load does not fail
    finally:
        holder.kill()
        holder.wait()
    said = [r.getMessage() for r in caplog.records if r.name == "nb_assets"]
    assert len(said) == 1 and "\n" not in said[0]
    assert "cannot be opened" in said[0] and "seen through before each run" in said[0]
    assert deps_and_zones(assets) == ({"shared/people"}, {"public"})  # unresolved: the view looks like a table

    result = materialize(assets, project)
    assert not result.success
    description = failure_of(result)
    assert "refused before any data was fetched" in description
    assert "view shared.people, which reads raw.customers carrying 'pii'" in description
    assert fetched_files(project) == []


def test_a_missing_warehouse_at_load_leaves_unknown_functions_to_the_gate(project: Path, caplog) -> None:
    copy_notebook(project, "SELECT * FROM duckdb_settings()")
    with caplog.at_level(logging.WARNING, logger="nb_assets"):
        assets = build_notebook_assets([NotebookAsset("copy.ipynb", purpose="finance_reporting")], base_dir=project,
                                       policy=project / "policy.yaml", warehouse=project / "absent.duckdb")
    assert any("absent.duckdb does not exist" in r.getMessage() for r in caplog.records)
    result = materialize(assets, project)
    assert not result.success
    description = failure_of(result)
    assert "refused before any data was fetched" in description
    assert "[sql-table-function]" in description and "duckdb_settings() is neither" in description
    assert fetched_files(project) == []


# --- table functions: an allow-list ------------------------------------------------


def test_an_allowed_table_function_reads_nothing_and_runs(project: Path, capsys) -> None:
    copy_notebook(project, "SELECT range AS n FROM range(4)")
    assert parse_notebook(project / "copy.ipynb").findings == ()
    assets = declare(project, "finance_reporting")
    assert deps_and_zones(assets) == (set(), set())
    write_definitions(project, "finance_reporting")
    (hop,) = json.loads(lineage(project, capsys, "mart.copy", "--upstream", "--json"))["notebooks"]
    assert hop["reads"] == [] and hop["writes"] == [{"table": "mart.copy", "labels": []}]
    result = materialize(assets, project)
    assert result.success
    assert warehouse_snapshot(project / "warehouse.duckdb")["mart.copy"] == [(0,), (1,), (2,), (3,)]


def test_an_unknown_table_function_is_an_error_naming_it(project: Path, capsys) -> None:
    copy_notebook(project, "SELECT name, value FROM duckdb_settings()")
    (warning,) = parse_notebook(project / "copy.ipynb").findings
    assert warning.severity == "warning" and "duckdb_settings()" in warning.message
    with pytest.raises(DeclarationError) as refused:
        declare(project, "finance_reporting")
    message = str(refused.value)
    assert "copy.ipynb (cell 3, line 2): [sql-table-function]" in message
    assert "duckdb_settings() is neither a table function known to read nothing" in message
    assert f"nor a table macro in {project / 'warehouse.duckdb'}" in message
    # `nb-assets check` has no warehouse: it flags the call and leaves the verdict to the catalog.
    capsys.readouterr()
    assert nb_assets_main(["check", str(project / "copy.ipynb")]) == 0
    assert "warning: cell 3, line 2: [sql-table-function] SQL input 'rows': duckdb_settings()" in capsys.readouterr().out


def test_a_macro_named_like_an_allowed_function_is_seen_through(project: Path) -> None:
    """DuckDB lets a macro in main shadow a built-in: `range` is only safe when nothing shadows it."""
    sql(project, "CREATE MACRO range(n) AS TABLE SELECT * FROM raw.customers")
    copy_notebook(project, "SELECT * FROM range(3)")
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        assert len(con.sql("SELECT * FROM range(3)").fetchall()) == 5  # DuckDB reads the macro
    with pytest.raises(DeclarationError) as refused:
        declare(project, "finance_reporting")
    assert "table macro main.range(), which reads raw.customers carrying 'pii'" in str(refused.value)


# --- the second reproduction, end to end through the CLI -----------------------


def test_a_macro_over_pii_is_refused_by_nb_assets_run_before_any_fetch(project: Path, capsys) -> None:
    copy_notebook(project, "SELECT * FROM shared.ppl()", name="people_copy")
    definitions = write_definitions(project, "finance_reporting", name="people_copy", warehouse=False)
    # Declared while the macro did not exist yet; created before the run.
    sql(project, "CREATE MACRO shared.ppl() AS TABLE SELECT * FROM raw.customers")
    before = warehouse_snapshot(project / "warehouse.duckdb")
    capsys.readouterr()
    code_ = nb_assets_main(["run", str(project / "people_copy.ipynb"), "--warehouse", str(project / "warehouse.duckdb"),
                            "--definitions", str(definitions), "--sandbox", "local",
                            "--records", str(project / "records"), "--json"])
    assert code_ == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["kind"] == "policy-refused"
    assert "refused before any data was fetched" in error["message"]
    assert "table macro shared.ppl(), which reads raw.customers carrying 'pii'" in error["message"]
    assert fetched_files(project) == []
    assert warehouse_snapshot(project / "warehouse.duckdb") == before


# --- the resolution itself, against DuckDB's own binding ---------------------------------


def test_names_bind_as_duckdb_binds_them(project: Path) -> None:
    """A view's bare names bind in its own schema first; a macro's in main; checked against DuckDB."""
    sql(project, "CREATE TABLE shared.customers AS SELECT 'shared' AS src")
    sql(project, "CREATE TABLE main.customers AS SELECT 'main' AS src")
    sql(project, "CREATE VIEW shared.v AS SELECT * FROM customers")
    sql(project, "CREATE MACRO shared.m() AS TABLE SELECT * FROM customers")
    sql(project, "CREATE TABLE main.events AS SELECT 'main' AS src")
    sql(project, "CREATE VIEW shared.e AS SELECT * FROM events")  # no shared.events: falls back to main
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT src FROM shared.v").fetchall() == [("shared",)]
        assert con.execute("SELECT src FROM shared.m()").fetchall() == [("main",)]
        assert con.execute("SELECT src FROM shared.e").fetchall() == [("main",)]
    catalog = open_catalog(project / "warehouse.duckdb")
    assert isinstance(catalog, Catalog)
    for query, base in [("SELECT * FROM shared.v", "shared.customers"), ("SELECT * FROM shared.m()", "main.customers"),
                        ("SELECT * FROM shared.e", "main.events")]:
        spec = see_through(parse_notebook(copy_notebook(project, query)), catalog)
        assert spec.input_tables == (base,), query


def test_a_scalar_macro_with_a_subquery_is_seen_through(project: Path) -> None:
    sql(project, "CREATE MACRO shared.emails() AS (SELECT string_agg(email) FROM raw.customers)")
    sql(project, "CREATE MACRO shared.double(x) AS x * 2")
    copy_notebook(project, "SELECT shared.emails() AS e, shared.double(amount) AS d FROM raw.orders")
    spec = see_through(parse_notebook(project / "copy.ipynb"), open_catalog(project / "warehouse.duckdb"))
    assert set(spec.input_tables) == {"raw.customers", "raw.orders"}
    assert dict(spec.seen_through.through) == {"shared.emails()": ("raw.customers",)}  # double() reads nothing


@pytest.mark.parametrize(
    ("statements", "problem"),
    [
        (["CREATE VIEW shared.hidden AS SELECT * FROM read_parquet('{data}')"], "reads outside the warehouse"),
        (["CREATE VIEW shared.loop AS SELECT 1 AS x", "CREATE VIEW shared.back AS SELECT * FROM shared.loop",
          "CREATE OR REPLACE VIEW shared.hidden AS SELECT * FROM shared.back",
          "CREATE OR REPLACE VIEW shared.loop AS SELECT * FROM shared.hidden"],  # DuckDB accepts the loop
         "reads itself"),
        (["CREATE MACRO shared.any_table(t) AS TABLE SELECT * FROM query_table(t)",
          "CREATE VIEW shared.hidden AS SELECT * FROM shared.any_table('raw.customers')"], "query_table() reads outside"),
    ],
)
def test_a_view_that_cannot_be_seen_through_is_an_error(project: Path, statements: list[str], problem: str) -> None:
    data = project / "data.parquet"
    sql(project, f"COPY (SELECT 1 AS x) TO '{data}' (FORMAT parquet)")
    for statement in statements:
        sql(project, statement.format(data=data))
    copy_notebook(project, "SELECT * FROM shared.hidden")
    with pytest.raises(DeclarationError) as refused:
        declare(project, "customer_analytics")
    assert "[sql-catalog]" in str(refused.value) and problem in str(refused.value)


@pytest.mark.parametrize(
    ("statement", "query"),
    [
        ("CREATE VIEW shared.people AS SELECT 1;", "SELECT 1"),
        ('CREATE VIEW shared."Odd As" (c1) AS SELECT 1 AS x;', "SELECT 1 AS x"),
        ("CREATE VIEW v(a, b) AS (SELECT 1, 2)", "(SELECT 1, 2)"),
        ("CREATE TABLE t AS SELECT 1", None),
    ],
)
def test_view_query_takes_the_query_after_the_top_level_as(statement: str, query: str | None) -> None:
    assert view_query(statement) == query


def test_every_allowed_table_function_runs_without_external_access() -> None:
    """The allow-list's promise, checked on the configuration prefetch uses."""
    from nb_assets.sql.lineage import TABLE_FUNCTIONS_READING_NOTHING

    calls = {"range": "range(2)", "generate_series": "generate_series(1, 2)", "unnest": "unnest([1, 2])",
             "repeat": "repeat(1, 2)", "repeat_row": "repeat_row(1, num_rows := 2)",
             "json_each": "json_each('[1, 2]')", "json_tree": "json_tree('[1, 2]')"}
    assert set(calls) == set(TABLE_FUNCTIONS_READING_NOTHING)
    with duckdb.connect(config={"enable_external_access": False, "lock_configuration": True}) as con:
        for call in calls.values():
            assert con.sql(f"SELECT * FROM {call}").fetchall()


def test_nb_assets_run_records_the_base_tables_it_read_through_a_view(project: Path) -> None:
    import json
    import subprocess
    import sys

    sql(project, "CREATE VIEW shared.people AS SELECT * FROM raw.customers")
    notebook = copy_notebook(project, "SELECT * FROM shared.people")
    proc = subprocess.run([sys.executable, "-m", "nb_assets.cli", "run", str(notebook), "--warehouse",
                           str(project / "warehouse.duckdb"), "--sandbox", "local", "--records", str(project / "runs"), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_json = json.loads((Path(json.loads(proc.stdout)["record"]) / "run.json").read_text())
    assert run_json["notebook/base_tables"] == ["raw.customers"]
    assert run_json["notebook/read_through"] == {"shared.people": ["raw.customers"]}
