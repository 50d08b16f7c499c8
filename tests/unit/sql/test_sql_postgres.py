"""%%sql inputs read in the Postgres dialect: lineage, parameters, and Postgres's escape hatches refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from nb_assets.sql.see_through import Catalog, see_through
from nb_assets.locations import dialect_of
from nb_assets.analysis.parser import parse_notebook
from nb_assets.sql.escape_hatches import SERVER_ACCESS
from nb_assets.sql.lineage import analyze_query
from support.notebook_factory import RUNTIME, code, params, write_notebook


def test_the_dialect_follows_the_warehouse() -> None:
    assert dialect_of("postgresql://u@example.invalid/db") == "postgres"
    assert dialect_of("postgres://u@example.invalid/db") == "postgres"
    assert dialect_of("warehouse.duckdb") == dialect_of(None) == "duckdb"


def test_postgres_syntax_gives_tables_and_params() -> None:
    query = (
        "SELECT o.order_id, o.payload->>'sku' AS sku, c.name ILIKE 'a%' AS a, count(*) FILTER (WHERE o.amount > 0)\n"
        "FROM raw.orders o JOIN raw.customers c USING (customer_id)\n"
        "WHERE o.order_date = $ds::date AND o.currency = ANY($currencies) GROUP BY 1, 2, 3"
    )
    lineage = analyze_query(query, dialect="postgres")
    assert lineage.problems == ()
    assert lineage.tables == ("raw.customers", "raw.orders")
    assert lineage.params == ("ds", "currencies")


def test_a_postgres_syntax_error_says_postgres() -> None:
    (problem,) = analyze_query("SELECT FROM WHERE (", dialect="postgres").problems
    assert problem.message.startswith("invalid Postgres SQL")


HATCHES = [
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file() reads or lists the database server's own files"),
    ("SELECT pg_read_binary_file('/etc/passwd')", "pg_read_binary_file() reads or lists the database server's own files"),
    ("SELECT * FROM pg_ls_dir('.') AS f", "pg_ls_dir() reads or lists the database server's own files"),
    ("SELECT f FROM raw.orders, LATERAL pg_ls_waldir() f", "pg_ls_waldir() reads or lists"),
    ("SELECT (pg_stat_file('postgresql.conf')).size", "pg_stat_file() reads or lists"),
    ("SELECT * FROM pg_catalog.pg_read_file('pg_hba.conf') AS t", "pg_read_file() reads or lists"),
    ("SELECT lo_import('/etc/passwd')", "lo_import() moves server files or stored large objects"),
    ("SELECT lo_export(16385, '/tmp/x')", "lo_export() moves server files"),
    ("SELECT * FROM dblink('host=example.invalid', 'SELECT 1') AS t(a int)", "dblink() connects to another database server"),
    ("SELECT dblink_exec('host=example.invalid', 'DROP TABLE x')", "dblink_exec() connects to another database server"),
    ("SELECT * FROM postgres_fdw_get_connections()", "postgres_fdw_get_connections() connects to another database server"),
    ("SELECT pg_sleep(1) FROM generate_series(1, 1000000)", "pg_sleep() holds the connection asleep"),
    ("SELECT pg_sleep_for('1 hour')", "pg_sleep_for() holds the connection asleep"),
    ("SELECT query_to_xml('SELECT * FROM secret.t', true, false, '')", "query_to_xml() runs SQL given as a string"),
    ("SELECT set_config('role', 'postgres', false)", "set_config() changes settings"),
    ("SELECT * FROM pg_hba_file_rules", "pg_hba_file_rules is the database server's own catalog"),
    ("SELECT * FROM pg_catalog.pg_settings", "pg_catalog.pg_settings is the database server's own catalog"),
    ("SELECT * FROM information_schema.tables", "information_schema.tables is the database server's own catalog"),
    ("COPY (SELECT 1) TO PROGRAM 'id'", "COPY ... PROGRAM runs a shell command on the database server"),
    ("COPY raw.orders FROM PROGRAM 'curl example.invalid'", "COPY ... PROGRAM runs a shell command"),
]


@pytest.mark.parametrize(("query", "message"), HATCHES)
def test_each_escape_hatch_is_refused_naming_notebook_and_cell(tmp_path: Path, query: str, message: str) -> None:
    path = write_notebook(tmp_path / "hatch.ipynb", code(RUNTIME), params("ds = '2026-11-01'"), code(f"%%sql x\n{query}"))
    spec = parse_notebook(path, "postgres")
    refused = [f for f in spec.errors if f.rule == SERVER_ACCESS]
    assert refused, [f.describe(spec.path) for f in spec.errors]
    described = refused[0].describe(spec.path)
    assert described.startswith(f"{path} (cell 3") and message in described


def test_the_same_calls_mean_nothing_special_to_duckdb() -> None:
    # DuckDB has no pg_read_file: there the name is an unknown function the warehouse refuses; no Postgres finding.
    assert not [p for p in analyze_query("SELECT pg_sleep(1)").problems if p.rule == SERVER_ACCESS]


def test_a_foreign_table_behind_a_view_is_refused(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "f.ipynb", code(RUNTIME), code("%%sql x\nSELECT * FROM raw.remote_view"))
    catalog = Catalog(
        "postgresql://example.invalid/w",
        frozenset({"raw.remote_view", "raw.remote"}),
        {"raw.remote_view": "CREATE VIEW raw.remote_view AS SELECT a FROM raw.remote"},
        dialect="postgres",
        foreign=frozenset({"raw.remote"}),
    )
    spec = see_through(parse_notebook(path, "postgres"), catalog)
    (finding,) = [f for f in spec.errors if "foreign table" in f.message]
    assert finding.cell == 2 and "raw.remote is a foreign table" in finding.message and "postgres_fdw" in finding.message
