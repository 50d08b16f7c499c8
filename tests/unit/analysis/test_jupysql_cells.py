"""jupysql's forms, read by the shared parser (inbox/jupysql.py) and by the host (analysis/jupysql_cells.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nb_assets.analysis.parser import parse_notebook
from nb_assets.inbox.jupysql import Session, bind_placeholders, compose, read_magic
from support.notebook_factory import RUNTIME, code, params, write_notebook


@pytest.mark.parametrize(("line", "body", "expected"), [
    ("", "SELECT 1", dict(query="SELECT 1")),
    (" top <<", "SELECT 1", dict(target="top", query="SELECT 1")),
    ("top<<", "SELECT 1", dict(target="top", query="SELECT 1")),
    (" --save rich --no-execute", "SELECT 1", dict(save="rich", execute=False)),
    (" --save=rich", "SELECT 1", dict(save="rich", execute=True)),
    (" --with a --with b", "SELECT 1", dict(with_=("a", "b"))),
    (" duckdb:///bank.duck.db", "", dict(connection="duckdb:///bank.duck.db", query="")),
    (" SELECT * FROM t", "", dict(query="SELECT * FROM t")),
    (" x << SELECT 1", "", dict(target="x", query="SELECT 1")),
    (" --interact n -l", "SELECT 1", dict(ignored=("--interact", "-l"))),
    (" -- a comment", "SELECT 1", dict(query="-- a comment\nSELECT 1")),
])
def test_read_magic_reads_each_form(line: str, body: str, expected: dict) -> None:
    magic = read_magic(line, body)
    for key, value in expected.items():
        assert getattr(magic, key) == value, key


def test_a_snippet_name_that_is_not_an_identifier_is_a_problem_never_sql() -> None:
    magic = read_magic(" --save x);DROP", "SELECT 1")
    assert magic.save is None and "plain identifier" in magic.problems[0]


def test_options_that_write_or_read_files_are_refused_by_name() -> None:
    magic = read_magic(" --persist df")
    assert [option for option, _ in magic.refused] == ["--persist"]
    assert "output(" in magic.refused[0][1]


@pytest.mark.parametrize(("query", "bound", "names"), [
    ("SELECT * FROM t WHERE job = '{{job}}'", "SELECT * FROM t WHERE job = $job", ("job",)),
    ("SELECT * FROM t LIMIT {{ n }}", "SELECT * FROM t LIMIT $n", ("n",)),
    ("SELECT * FROM t WHERE a = {a} AND b = {{a}}", "SELECT * FROM t WHERE a = $a AND b = $a", ("a",)),
    ("SELECT {'k': 1} AS s", "SELECT {'k': 1} AS s", ()),  # a DuckDB struct literal is no placeholder
])
def test_placeholders_become_bound_values(query: str, bound: str, names: tuple[str, ...]) -> None:
    assert bind_placeholders(query)[:2] == (bound, names)


def test_a_placeholder_inside_a_longer_string_is_refused_not_left_as_text() -> None:
    query, _, problems = bind_placeholders("SELECT * FROM t WHERE name LIKE '%{{who}}%' AND note = '{x}'")
    assert problems and "inside a longer string" in problems[0]
    assert query.endswith("note = '{x}'")  # a literal's braces are the literal's


def test_jinja_blocks_are_refused_not_spliced() -> None:
    _, _, problems = bind_placeholders("{% for j in jobs %}SELECT 1{% endfor %}")
    assert problems and "cannot be bound as a value" in problems[0]


def test_compose_puts_snippets_first_as_ctes_and_merges_an_existing_with() -> None:
    snippets = {"rich": "SELECT * FROM raw.orders WHERE amount > 10;", "richest": "SELECT * FROM rich WHERE amount > 20"}
    assert compose("SELECT * FROM raw.orders", snippets) == "SELECT * FROM raw.orders"
    composed = compose("WITH RECURSIVE x AS (SELECT 1) SELECT * FROM richest, x", snippets)
    assert composed.startswith("WITH RECURSIVE rich AS (\nSELECT * FROM raw.orders WHERE amount > 10\n),\nrichest AS (")
    assert composed.endswith("x AS (SELECT 1) SELECT * FROM richest, x")
    assert compose("SELECT 'rich' AS word, t.rich FROM raw.t AS t", snippets) == "SELECT 'rich' AS word, t.rich FROM raw.t AS t"
    assert compose("SELECT 1", snippets, with_=("rich",)).startswith("WITH rich AS (")


def test_the_runtime_session_saves_binds_composes_and_assigns() -> None:
    seen: list[str] = []
    namespace: dict = {}
    session = Session()
    fetch = lambda target, query: seen.append(query) or f"rows of {target}"  # noqa: E731
    assert session.run(" --save rich --no-execute", "SELECT * FROM raw.orders WHERE amount > {{low}}", namespace, fetch) is None
    assert seen == []
    assert session.run(" top <<", "SELECT count(*) FROM rich", namespace, fetch) is None
    assert namespace["top"] == "rows of top"
    assert seen[-1] == "WITH rich AS (\nSELECT * FROM raw.orders WHERE amount > $low\n)\nSELECT count(*) FROM rich"
    assert session.run(" duckdb://", None, namespace, fetch) is None  # a connection line: the warehouse stands in
    with pytest.raises(RuntimeError, match="output"):
        session.run(" --persist df", None, namespace, fetch)


def test_the_host_reads_every_form_as_an_input_with_lineage(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "j.ipynb",
        code(RUNTIME + "\n%config SqlMagic.displaylimit = 3\n%sql duckdb:///local.db"),
        params("low = 10.0"),
        code("%%sql\nSELECT * FROM raw.orders"),
        code("%%sql --save rich --no-execute\nSELECT * FROM raw.orders WHERE amount > {{low}}"),
        code("%%sql top <<\nSELECT count(*) AS n FROM rich"),
        code("n = %sql SELECT count(*) FROM raw.customers WHERE id > {{low}}\nprint(n)"),
    )
    spec = parse_notebook(path)
    assert [(i.name, i.tables, i.params) for i in spec.inputs] == [
        ("sql_cell3", ("raw.orders",), ()),
        ("top", ("raw.orders",), ("low",)),
        ("sql_cell6", ("raw.customers",), ("low",)),
    ]
    assert not [f for f in spec.findings if f.severity == "error"], spec.findings
    warnings = {f.rule: f for f in spec.findings}
    assert warnings["jupysql-connection"].cell == 1 and warnings["jupysql-connection"].line == 4


@pytest.mark.parametrize(("source", "rule", "words"), [
    ("%load_ext sql\n%sql duckdb://", "missing-runtime", "replace it with `%load_ext nb_assets.notebook`"),
    (RUNTIME + "\n%sql postgresql://me:secret@db.example.invalid/x", "jupysql-connection", "this project's warehouse is duckdb"),
    (RUNTIME + "\n%sqlcmd tables", "jupysql-unsupported", "%sqlcmd is jupysql's own tool"),
    (RUNTIME + "\n%sql --persist df", "jupysql-unsupported", "output("),
    (RUNTIME + "\nfor job in ['a', 'b']:\n    n = %sql SELECT count(*) FROM raw.t WHERE job = '{{job}}'",
     "jupysql-unsupported", "run one query above the block"),
])
def test_what_stands_in_the_way_is_an_error_naming_the_edit(tmp_path: Path, source: str, rule: str, words: str) -> None:
    path = write_notebook(tmp_path / "j.ipynb", code(source), code("%%sql\nSELECT * FROM raw.orders"))
    found = [f for f in parse_notebook(path).findings if f.rule == rule]
    assert found and found[0].severity == "error" and words in found[0].message
    assert all("secret" not in f.message for f in parse_notebook(path).findings)  # a password is never repeated


def test_a_placeholder_where_a_name_stands_is_refused_by_the_sql_parser(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "j.ipynb", code(RUNTIME), params("order = 'DESC'"),
                          code("%%sql\nSELECT * FROM raw.orders ORDER BY amount {{order}}"))
    errors = [f for f in parse_notebook(path).findings if f.severity == "error"]
    assert errors and errors[0].cell == 3


def test_on_a_postgres_warehouse_a_postgres_connection_line_is_mapped_and_a_duckdb_one_refused(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "j.ipynb", code(RUNTIME + "\n%sql postgresql://db.example.invalid/shop\n%sql duckdb://"),
                          code("%%sql\nSELECT * FROM raw.orders"))
    found = [(f.severity, f.line) for f in parse_notebook(path, dialect="postgres").findings if f.rule == "jupysql-connection"]
    assert found == [("warning", 3), ("error", 4)]
