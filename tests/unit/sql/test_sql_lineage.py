"""Golden fixtures for nb_assets.sql.lineage: tests/support/fixtures/sql/NAME.sql + NAME.expected.json."""

from __future__ import annotations

import json

import pytest

from nb_assets.sql.lineage import QueryLineage, SqlProblem, analyze_query, reads_nothing
from support import paths

FIXTURES = paths.FIXTURES / "sql"
CASES = sorted(p.name.removesuffix(".sql") for p in FIXTURES.glob("*.sql"))


def load(name: str) -> tuple[str, dict]:
    sql = (FIXTURES / f"{name}.sql").read_text()
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    return sql, expected


def test_enough_fixtures() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    sql, expected = load(name)
    result = analyze_query(sql)
    assert list(result.tables) == expected["tables"]
    assert list(result.params) == expected["params"]
    assert [p.rule for p in result.problems] == expected["problems"]
    if "columns" in expected:
        assert [list(c) for c in result.columns] == expected["columns"]
    # Table functions not known to read nothing wait for the warehouse's catalog (catalog_lineage).
    if "table_calls" in expected:
        assert sorted(c.name for c in result.calls if c.in_from and not reads_nothing(c)) == expected["table_calls"]
    if "scalar_calls" in expected:
        assert sorted(c.name for c in result.calls if not c.in_from) == expected["scalar_calls"]
    for problem in result.problems:
        assert problem.message


def cases_with(predicate) -> list[str]:
    return [name for name in CASES if predicate(load(name)[1]["problems"])]


# DuckDB calls these a SELECT; we are stricter on purpose.
STRICTER_THAN_DUCKDB = {"data_modifying_cte", "describe"}


@pytest.mark.parametrize("name", cases_with(lambda problems: not problems))
def test_duckdb_sees_one_select_with_the_same_params(name: str) -> None:
    duckdb = pytest.importorskip("duckdb")
    sql, expected = load(name)
    (statement,) = duckdb.connect().extract_statements(sql)
    assert statement.type == duckdb.StatementType.SELECT
    assert statement.named_parameters == set(expected["params"])


@pytest.mark.parametrize("name", cases_with(lambda problems: "sql-not-read-only" in problems))
def test_duckdb_agrees_not_read_only(name: str) -> None:
    duckdb = pytest.importorskip("duckdb")
    sql, _ = load(name)
    types = [s.type for s in duckdb.connect().extract_statements(sql)]
    assert (types == [duckdb.StatementType.SELECT]) == (name in STRICTER_THAN_DUCKDB)


def test_problems_carry_positions() -> None:
    result = analyze_query("SELECT *\nFROM raw.orders o\nJOIN read_csv('x.csv') r ON true\n")
    assert result.problems == (
        SqlProblem("sql-external-read", result.problems[0].message, line=3, column=6),
    )
    (syntax,) = analyze_query("SELECT *\nFROM raw.orders WHERE (a =").problems
    assert (syntax.rule, syntax.line) == ("sql-syntax", 2)
    (positional,) = analyze_query("SELECT * FROM t\nWHERE ds = $1").problems
    assert (positional.line, positional.column) == (2, 12)
    assert "$ds" in positional.message


def test_two_statements_point_at_the_second() -> None:
    (problem,) = analyze_query("SELECT 1;\n  DROP TABLE t").problems
    assert (problem.rule, problem.line, problem.column) == ("sql-not-read-only", 2, 3)


def test_columns_through_aliases_and_joins() -> None:
    result = analyze_query(
        "SELECT o.id, sum(o.amount) AS amount, c.name\n"
        "FROM raw.orders o JOIN raw.customers c ON o.customer_id = c.id\n"
        "WHERE o.ds = $ds GROUP BY o.id, c.name ORDER BY amount"
    )
    assert result.columns == (
        ("raw.customers", "id"),
        ("raw.customers", "name"),
        ("raw.orders", "amount"),
        ("raw.orders", "customer_id"),
        ("raw.orders", "ds"),
        ("raw.orders", "id"),
    )


def test_columns_skip_projection_aliases_and_stars() -> None:
    result = analyze_query("SELECT amount * 2 AS doubled, ds FROM raw.orders ORDER BY doubled")
    assert result.columns == (("raw.orders", "amount"), ("raw.orders", "ds"))
    assert analyze_query("SELECT * FROM raw.orders").columns == ()


def test_columns_unattributed_when_ambiguous() -> None:
    # Two tables and no schema: an unqualified column could come from either.
    result = analyze_query("SELECT a, b.y FROM raw.one, raw.two AS b")
    assert result.columns == (("raw.two", "y"),)


@pytest.mark.parametrize("bad", ["", ";", "SELECT 'open", "/* open", "\x00", "SELECT " * 2000, "(((("])
def test_never_raises(bad: str) -> None:
    result = analyze_query(bad)
    assert isinstance(result, QueryLineage)
    assert result.problems


def test_columns_match_aliases_whatever_their_case() -> None:
    result = analyze_query("SELECT O.amount, c.Name FROM raw.orders O JOIN raw.customers C ON C.id = o.cid")
    assert result.columns == (
        ("raw.customers", "id"), ("raw.customers", "name"), ("raw.orders", "amount"), ("raw.orders", "cid"),
    )


def test_syntax_error_quotes_the_token_and_points_a_caret_at_it() -> None:
    (problem,) = analyze_query("SELECT order_id, amount\nFORM raw.orders\nWHERE amount > 0").problems
    assert (problem.rule, problem.line, problem.column) == ("sql-syntax", 2, 6)
    first, source, caret = problem.message.splitlines()
    assert first == (
        "invalid DuckDB SQL: Invalid expression / Unexpected token at 'raw' "
        "('FORM' was read as a name: did you mean FROM?)"
    )
    assert source == "    FORM raw.orders"
    assert caret == "         ^^^"


def test_syntax_error_caret_keeps_tabs_and_trims_long_lines() -> None:
    (problem,) = analyze_query("SELECT a\n\tFROM t WHERE (b =").problems
    first, source, caret = problem.message.splitlines()
    assert first.endswith(" at '='") and (problem.line, problem.column) == (2, 18)
    assert (source, caret) == ("    \tFROM t WHERE (b =", "    \t" + " " * 16 + "^")  # a tab stays a tab
    wide = "SELECT " + ", ".join(f"column_{i}" for i in range(40)) + " FORM t"
    (problem,) = analyze_query(wide).problems
    first, source, caret = problem.message.splitlines()
    assert first.endswith("at 't' ('FORM' was read as a name: did you mean FROM?)")
    assert source == "    …, column_36, column_37, column_38, column_39 FORM t"
    assert caret == " " * (len(source) - 1) + "^"


def test_a_plural_name_is_not_taken_for_a_misspelled_keyword() -> None:
    (problem,) = analyze_query("SELECT a orders b FROM t").problems
    assert "did you mean" not in problem.message and " at 'b'" in problem.message
