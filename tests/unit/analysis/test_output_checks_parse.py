"""Output checks are read from the source like output() is: literal arguments only, findings naming the cell."""

from __future__ import annotations

from pathlib import Path

import pytest

from nb_assets.analysis.parser import parse_notebook
from nb_assets.inbox.checks import accepted_values, freshness_column, not_null, relationships, row_count, sql, unique
from nb_assets.project.declaration_output_checks import check_as_yaml, checks_from_yaml, with_declared_checks
from support.notebook_factory import RUNTIME, code, write_notebook


def _spec(tmp_path: Path, call: str, dialect: str = "duckdb"):
    path = write_notebook(tmp_path / "nb.ipynb", code(RUNTIME + "\nfrom nb_assets.notebook import *"),
                          code("import pandas as pd\ndf = pd.DataFrame({'order_id': [1]})"), code(call))
    return parse_notebook(path, dialect)


def test_literal_checks_become_the_outputs_checks(tmp_path: Path) -> None:
    spec = _spec(tmp_path, 'output("mart.orders", df, checks=[unique("order_id"), not_null(["order_id", "c"]), '
                           'row_count(min=1, severity="warn"), relationships("c", to="mart.customers.customer_id")])')
    assert not spec.errors
    assert spec.output_checks["mart.orders"] == (
        unique("order_id"), not_null(["order_id", "c"]), row_count(min=1, severity="warn"),
        relationships("c", to="mart.customers.customer_id"),
    )


@pytest.mark.parametrize("call, message", [
    ('output("mart.o", df, checks=my_checks)', "checks= must be a literal list"),
    ('output("mart.o", df, checks=[unique(col)])', "needs literal arguments"),
    ('output("mart.o", df, checks=[unique_ish("a")])', "each check must be a call of one of"),
    ('output("mart.o", df, checks=[row_count()])', "row_count() needs min=, max= or both"),
    ('output("mart.o", df, checks=[unique("a"), unique("a")])', "two checks are named unique_a"),
    ('output("mart.o", df, checks=[unique("a", severity="fatal")])', "severity must be 'error' or 'warn'"),
])
def test_a_check_that_is_not_literal_or_not_valid_is_a_finding_naming_the_cell(tmp_path: Path, call: str, message: str) -> None:
    spec = _spec(tmp_path, call)
    [error] = [f for f in spec.errors if f.rule == "output-checks"]
    assert message in error.message and error.cell == 3


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
@pytest.mark.parametrize("query, rule_text", [
    ("COPY (SELECT * FROM mart.o) TO '/tmp/x.csv'", "read-only"),
    ("SELECT * FROM read_csv('/etc/passwd')", ""),
    ("SELECT * FROM '/tmp/decoy.parquet'", ""),
    ("DELETE FROM mart.o", ""),
])
def test_a_sql_check_that_writes_or_reads_a_file_is_refused_statically(tmp_path: Path, dialect: str, query: str, rule_text: str) -> None:
    spec = _spec(tmp_path, f'output("mart.o", df, checks=[sql("{query}")])', dialect)
    refused = [f for f in spec.errors if f.rule == "output-check-sql"]
    assert refused and all(f.cell == 3 and "output mart.o: check sql_" in f.message for f in refused)


def test_a_read_only_sql_check_passes(tmp_path: Path) -> None:
    spec = _spec(tmp_path, 'output("mart.o", df, checks=[sql("SELECT * FROM mart.o o JOIN raw.x r ON o.a = r.a WHERE r.b < 0")])')
    assert not spec.errors


def test_the_constructors_validate_like_the_parser() -> None:
    with pytest.raises(ValueError, match="to= must be"):
        relationships("c", to="customers")
    with pytest.raises(ValueError, match="max_age"):
        freshness_column("at", max_age="soon")
    assert freshness_column("at", max_age="26h").max_age_s == 26 * 3600
    assert accepted_values("s", ["a", 1, True]).describe() == "accepted_values(s, ['a', 1, True])"


def test_yaml_checks_are_the_same_model_and_round_trip() -> None:
    read = checks_from_yaml({"mart.o": [
        {"unique": "order_id"}, {"not_null": ["a", "b"]}, {"row_count": {"min": 1}},
        {"accepted_values": {"column": "s", "values": ["paid"], "severity": "warn"}},
        {"sql": {"query": "SELECT * FROM mart.o WHERE a < 0", "name": "no_negative"}},
    ]})
    assert read["mart.o"][:3] == (unique("order_id"), not_null(["a", "b"]), row_count(min=1))
    assert read["mart.o"][4] == sql("SELECT * FROM mart.o WHERE a < 0", name="no_negative")
    again = checks_from_yaml({"mart.o": [check_as_yaml(c) for c in read["mart.o"]]})
    assert again == read
    with pytest.raises(ValueError, match="each check is one key"):
        checks_from_yaml({"mart.o": [{"uniq": "a"}]})


def test_declared_checks_add_to_the_notebooks_and_name_unknown_tables(tmp_path: Path) -> None:
    spec = _spec(tmp_path, 'output("mart.o", df, checks=[unique("order_id")])')
    merged, problems = with_declared_checks(spec, {"mart.o": [row_count(min=1)]}, "nb.ipynb")
    assert not problems and merged.output_checks["mart.o"] == (unique("order_id"), row_count(min=1))
    _, problems = with_declared_checks(spec, {"mart.nope": [row_count(min=1)], "mart.o": [unique("order_id")]}, "nb.ipynb")
    assert any("mart.nope is not an output" in p for p in problems) and any("two checks are named" in p for p in problems)
    _, problems = with_declared_checks(spec, {"mart.o": [sql("COPY mart.o TO '/tmp/x'")]}, "nb.ipynb")
    assert problems


def test_interactive_output_validates_and_lists_the_checks_and_runs_nothing(monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    from nb_assets.notebook import output

    monkeypatch.setenv("NB_ASSETS_MODE", "interactive")
    output("mart.o", pd.DataFrame({"a": [1, 1]}), checks=[unique("a"), row_count(min=1, severity="warn")])
    shown = capsys.readouterr().out
    assert "checks, run by the load before it commits: unique(a), row_count(min=1) [warn]" in shown
    with pytest.raises(ValueError, match="must be a list of checks"):
        output("mart.o", pd.DataFrame({"a": [1]}), checks=["unique(a)"])


def test_with_instances_a_declared_check_applies_to_its_instances_table_only(tmp_path: Path) -> None:
    from nb_assets import NotebookAsset
    from nb_assets.project.declare import declare_notebooks

    write_notebook(tmp_path / "rev.ipynb", code(RUNTIME), code("import pandas as pd\ndf = pd.DataFrame({'a': [1]})"),
                   code('output("mart.revenue", df)'))
    decl = NotebookAsset("rev.ipynb", instances={"emea": {}, "apac": {}},
                         checks={"mart.revenue_emea": [sql("SELECT * FROM mart.revenue_emea WHERE a < 0")],
                                 "mart.revenue": [row_count(min=1)]})
    declared = {d.spec.name: d.spec.output_checks for d in declare_notebooks([decl], tmp_path)}
    assert declared == {
        "rev_emea": {"mart.revenue_emea": (sql("SELECT * FROM mart.revenue_emea WHERE a < 0"), row_count(min=1))},
        "rev_apac": {"mart.revenue_apac": (row_count(min=1),)},
    }
