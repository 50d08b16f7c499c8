"""`output("mart.x", df, checks=[unique("id"), ...])` → OutputChecks, read from the source, never run.

Like the output's name, each check's arguments must be literals: the parser evaluates them with
`ast.literal_eval` and calls the very constructor the notebook imports (inbox/checks.py), so what
the host runs is what the author wrote, and a wrong argument is a finding naming the cell before
anything runs. A `sql(...)` check passes the same SQL checks as a `%%sql` input cell (one read-only
query, no hostile SQL), and may not call a table function at all: a function in FROM reads a file,
a URL or another database, and a check reads warehouse tables only.

Pure: no Dagster, no driver.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

from nb_assets.inbox.checks import CONSTRUCTORS, OutputCheck, check_list
from nb_assets.spec import Cell, Finding

RULE = "output-checks"
SQL_RULE = "output-check-sql"


def checks_of_call(node: ast.Call, table: str, cell: Cell, findings: list[Finding], dialect: str = "duckdb") -> tuple[OutputCheck, ...]:
    """The checks of one `output(...)` call (its `checks=` keyword, or a third argument); findings for any not literal."""
    given = [k.value for k in node.keywords if k.arg == "checks"] + node.args[2:3]
    if not given:
        return ()
    value = given[0]
    if not isinstance(value, (ast.List, ast.Tuple)):
        findings.append(Finding(
            RULE, "error", f"output {table}: checks= must be a literal list of checks, e.g. checks=[unique(\"id\")], "
            "so the host knows them before the run", cell.number, value.lineno,
        ))
        return ()
    checks: list[OutputCheck] = []
    for item in value.elts:
        check = _check_of(item, table, cell, findings)
        if check is not None:
            checks.append(check)
    try:
        found = check_list(table, checks)
    except ValueError as exc:
        findings.append(Finding(RULE, "error", str(exc), cell.number, value.lineno))
        return ()
    for check in found:
        findings.extend(sql_check_findings(table, check, dialect, cell.number, value.lineno))
    return found


def _check_of(node: ast.expr, table: str, cell: Cell, findings: list[Finding]) -> OutputCheck | None:
    kind = _called_name(node)
    if kind is None or kind not in CONSTRUCTORS:
        findings.append(Finding(
            RULE, "error", f"output {table}: each check must be a call of one of {', '.join(CONSTRUCTORS)}; got "
            f"`{_source(node)}`", cell.number, node.lineno,
        ))
        return None
    assert isinstance(node, ast.Call)
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg is not None}
        if any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
            raise ValueError("no * or ** arguments")
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        findings.append(Finding(
            RULE, "error", f"output {table}: {kind}(...) needs literal arguments (strings, numbers, lists), "
            f"so the check is known before the run; got `{_source(node)}`", cell.number, node.lineno,
        ))
        return None
    try:
        return CONSTRUCTORS[kind](*args, **kwargs)  # type: ignore[operator]
    except (ValueError, TypeError) as exc:
        findings.append(Finding(RULE, "error", f"output {table}: {exc}", cell.number, node.lineno))
        return None


def _called_name(node: ast.expr) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _source(node: ast.expr) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 80 else text[:79] + "…"


def sql_check_findings(table: str, check: OutputCheck, dialect: str, cell: int | None = None, line: int | None = None) -> Iterator[Finding]:
    """A `sql` check's query, judged as a `%%sql` input is, and refused for any table function."""
    if check.kind != "sql" or check.query is None:
        return
    from nb_assets.sql.lineage import analyze_query

    lineage = analyze_query(check.query, dialect=dialect)
    what = f"output {table}: check {check.name}"
    for problem in lineage.problems:
        yield Finding(SQL_RULE, "error", f"{what}: {problem.message}", cell, line)
    for call in lineage.calls:
        if call.in_from:
            yield Finding(
                SQL_RULE, "error", f"{what}: calls the table function {call.name}(); a check reads warehouse tables only "
                "(no files, URLs or other databases)", cell, line,
            )
    if lineage.params:
        yield Finding(SQL_RULE, "error", f"{what}: binds ${lineage.params[0]}; a check takes no parameters", cell, line)


def check_tables(checks: Iterable[OutputCheck], dialect: str = "duckdb") -> tuple[str, ...]:
    """The warehouse tables checks read besides their own output: relationships' targets, sql's tables."""
    found: dict[str, None] = {}
    for check in checks:
        if check.ref_table:
            found.setdefault(check.ref_table, None)
        if check.kind == "sql" and check.query:
            from nb_assets.sql.lineage import analyze_query  # sqlglot: only where a sql check is declared

            for name in analyze_query(check.query, dialect=dialect).tables:
                found.setdefault(name, None)
    return tuple(found)
