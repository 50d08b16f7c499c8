"""SQL text of a `%%sql` input cell -> the tables it reads, its parameters, problems.

Pure functions over sqlglot, in the warehouse's dialect (`duckdb`, the
default, or `postgres`: notebook_parser.dialect_of tells from the warehouse's location); no
Dagster, no DuckDB. The tables
become a notebook's upstream assets, so the rules err on the side of reporting
a table (or a problem) rather than missing one. Bad input never raises: every
issue comes back as a `SqlProblem` with a rule id and, when known, a position.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.tokens import Token, TokenType

from nb_assets.spec import SqlCall
from nb_assets.sql.columns import columns_read, table_name
from nb_assets.sql.source_calls import declare_hint
from nb_assets.sql.escape_hatches import SERVER_ACCESS, copy_program, escape_hatch, hatch_message, system_relation
from nb_assets.sql.syntax_hints import caret as _caret, misspelled_keyword as _misspelled_keyword

DIALECT = "duckdb"
DIALECTS = {"duckdb": "DuckDB", "postgres": "Postgres"}
SYNTAX = "sql-syntax"
NOT_READ_ONLY = "sql-not-read-only"
EXTERNAL_READ = "sql-external-read"
POSITIONAL_PARAM = "sql-positional-param"
TABLE_FUNCTION = "sql-table-function"

# The only table functions a query may call in FROM without the warehouse's
# catalog defining them: each builds rows from its arguments and reads no
# table, file, URL, setting or catalog. Every other name must be a table macro
# of the warehouse (then its body is seen through) or the query is refused.
TABLE_FUNCTIONS_READING_NOTHING = (
    "range", "generate_series", "unnest", "repeat", "repeat_row", "json_each", "json_tree",
)

_QUERY_START = {TokenType.SELECT, TokenType.WITH, TokenType.VALUES, TokenType.FROM, TokenType.L_PAREN}
_QUERY_ROOTS = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)
# Statements that only ever appear nested when someone smuggles a write into a query.
_WRITES = (exp.DML, exp.DDL, exp.Command, exp.Drop, exp.Alter)
# DuckDB table functions that reach files, URLs, other databases, or a table
# named at run time (query_table), which would hide lineage: refused with a
# clearer message than an unknown table function gets.
_EXTERNAL_NAMES = {"glob", "sniff_csv", "query", "query_table"}
_EXTERNAL_PREFIXES = ("read_", "parquet_", "iceberg_", "delta_", "sqlite_", "postgres_", "mysql_")
_EXTERNAL_SUFFIXES = ("_scan",)
# A quoted table name with these characters is a DuckDB replacement scan of a file.
_PATH_CHARS = set("./\\:*?")
# Where a function call is a table function rather than a scalar.
_TABLE_POSITIONS = (exp.Table, exp.Lateral, exp.From, exp.Join)


@dataclass(frozen=True)
class SqlProblem:
    rule: str
    message: str
    line: int | None = None  # 1-based, within the query text
    column: int | None = None


@dataclass(frozen=True)
class QueryLineage:
    tables: tuple[str, ...]  # "schema.table", lowercased, sorted, unique
    params: tuple[str, ...]  # `$name` placeholders, in order of first use
    columns: tuple[tuple[str, str], ...]  # (table, column) pairs read, best effort
    problems: tuple[SqlProblem, ...]
    # Calls the warehouse may define as macros: table functions not in
    # TABLE_FUNCTIONS_READING_NOTHING, and every scalar call (a scalar macro can
    # hold a subquery). Allowed table functions are listed too: a macro of the
    # same name in the warehouse's main schema would shadow them.
    calls: tuple[SqlCall, ...] = ()


@lru_cache(maxsize=4096)
def analyze_query(sql: str, default_schema: str = "main", dialect: str = DIALECT) -> QueryLineage:
    """`default_schema` qualifies bare table names (a view's body binds in the view's schema).

    Cached by text: the result is immutable, and queries repeat across
    notebooks and views (a notebook parsed again only re-reads its findings)."""
    try:
        return _analyze(sql, default_schema.lower(), dialect)
    except Exception as exc:  # noqa: BLE001 - a sqlglot bug must not crash notebook parsing
        return _failed(SqlProblem(SYNTAX, f"could not analyze the query ({type(exc).__name__}: {exc})"))


def reads_nothing(call: SqlCall) -> bool:
    """An allow-listed table function, called by its bare name (a qualified name is someone's macro)."""
    return call.in_from and "." not in call.name and call.name in TABLE_FUNCTIONS_READING_NOTHING


def call_to_resolve(name: str) -> str:
    """Why a table function waits for the catalog, before the catalog is seen."""
    return (
        f"{name}() is not a table function known to read nothing ({', '.join(TABLE_FUNCTIONS_READING_NOTHING)}); "
        "it may run only as a table macro of the warehouse, whose tables are then read through it "
        "(checked when the warehouse can be opened, and always before each run)"
    )


def _analyze(sql: str, default_schema: str, dialect: str) -> QueryLineage:
    try:
        tokens = sqlglot.tokenize(sql, read=dialect)
    except TokenError as exc:
        return _failed(SqlProblem(SYNTAX, f"cannot read the query: {exc} (an unclosed quote or comment?)"))
    statements = _split_statements(tokens)
    # Gate on tokens before parsing: comments and strings are already gone, and
    # sqlglot parses some statements oddly (CHECKPOINT as a column, EXPORT fails).
    gate = _statement_problems(sql, statements)
    if gate:
        return _failed(*gate)
    params, param_problems = _params(sql, tokens)
    try:
        tree = _parse_tokens(tokens, sql, dialect)
    except ParseError as exc:
        return QueryLineage((), params, (), (_syntax_problem(exc, sql, tokens, dialect), *param_problems))
    nodes = _Nodes(tree)
    writes = _tree_problems(tree, sql, nodes)
    if writes:  # no lineage for a statement that will never run
        return QueryLineage((), params, (), (*writes, *param_problems))
    scopes = _scopes(tree)
    tables = _tables(tree, sql, default_schema, nodes, scopes)
    problems = (*_external_reads(sql, nodes, dialect), *param_problems)
    columns = columns_read(scopes, set(tables), default_schema)
    return QueryLineage(tables, params, columns, problems, _calls(sql, nodes, dialect))


class _Nodes:
    """One breadth-first walk of the tree; `of(T)` is `tree.find_all(T)`, in the same order."""

    def __init__(self, tree: exp.Expr) -> None:
        self._all = list(tree.walk())

    def of(self, *types: type) -> list[exp.Expr]:
        return [n for n in self._all if isinstance(n, types)]


def _scopes(tree: exp.Expr) -> list[Scope] | None:
    """Walked once for tables and columns; None where scope cannot walk (e.g. PIVOT in FROM)."""
    try:
        return traverse_scope(tree)
    except Exception:  # noqa: BLE001 - the optimizer asserts on shapes it cannot scope
        return None


def _parse_tokens(tokens: list[Token], sql: str, dialect: str) -> exp.Expr:
    """parse_one without tokenizing the text a second time."""
    parsed = [e for e in Dialect.get_or_raise(dialect).parser().parse(tokens, sql) if e is not None]
    if len(parsed) != 1:
        raise ParseError(f"expected one statement, found {len(parsed)}")
    return parsed[0]


def _failed(*problems: SqlProblem) -> QueryLineage:
    return QueryLineage((), (), (), problems)


def _position(sql: str, offset: int | None) -> tuple[int | None, int | None]:
    if offset is None:
        return None, None
    line_start = sql.rfind("\n", 0, offset) + 1
    return sql.count("\n", 0, offset) + 1, offset - line_start + 1


def _problem_at(rule: str, message: str, sql: str, offset: int | None) -> SqlProblem:
    return SqlProblem(rule, message, *_position(sql, offset))


def _split_statements(tokens: list[Token]) -> list[list[Token]]:
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    return [s for s in statements if s]  # a trailing `;` leaves an empty one


def _statement_problems(sql: str, statements: list[list[Token]]) -> list[SqlProblem]:
    if not statements:
        return [SqlProblem(SYNTAX, "the %%sql cell has no query; write one SELECT below the %%sql line")]
    if len(statements) > 1:
        message = f"found {len(statements)} statements; a %%sql cell holds exactly one query (one cell per input)"
        return [_problem_at(NOT_READ_ONLY, message, sql, statements[1][0].start)]
    first = statements[0][0]
    if first.token_type in _QUERY_START:
        return []
    if copy_program([t.text.upper() for t in statements[0]]):
        message = "COPY ... PROGRAM runs a shell command on the database server; a %%sql cell holds one read-only query"
        return [_problem_at(SERVER_ACCESS, message, sql, first.start)]
    return [_not_query(sql, first.text.upper(), first.start)]


def _not_query(sql: str, what: str, offset: int | None) -> SqlProblem:
    return _problem_at(
        NOT_READ_ONLY,
        f"{what} is not allowed in a %%sql cell: it must be one read-only query "
        "(SELECT, WITH ... SELECT, FROM ..., VALUES). Write tables with output(...) and "
        "leave setup (ATTACH, INSTALL, SET, ...) to the host",
        sql,
        offset,
    )


def _tree_problems(tree: exp.Expr, sql: str, nodes: _Nodes) -> list[SqlProblem]:
    if not isinstance(tree, _QUERY_ROOTS):
        return [_not_query(sql, type(tree).__name__.upper(), _offset(tree))]
    problems = [
        _not_query(sql, f"{type(node).__name__.upper()} inside a query", _offset(node))
        for node in nodes.of(*_WRITES)
    ]
    problems += [_not_query(sql, "SELECT ... INTO", _offset(s)) for s in nodes.of(exp.Select) if s.args.get("into")]
    return problems


def _offset(node: exp.Expr) -> int | None:
    # Functions and identifiers carry their source span; most other nodes do not.
    for candidate in (node, *node.find_all(exp.Identifier)):
        if "start" in candidate.meta:
            return candidate.meta["start"]
    return None


def _syntax_problem(exc: ParseError, sql: str, tokens: list[Token], dialect: str) -> SqlProblem:
    """sqlglot's description, the offending token quoted, and its line with a caret under it."""
    first = exc.errors[0] if exc.errors else {}
    message = f"invalid {DIALECTS.get(dialect, dialect)} SQL: {first.get('description') or exc}"
    # sqlglot reports the line and the column where the offending token ends: find that token.
    at = next((i for i, t in enumerate(tokens) if (t.line, t.col) == (first.get("line"), first.get("col"))), None)
    if at is None:
        return SqlProblem(SYNTAX, message, first.get("line"))
    token = tokens[at]
    message += f" at {sql[token.start:token.end + 1]!r}"
    if at > 0 and (keyword := _misspelled_keyword(tokens[at - 1])):
        message += f" ({tokens[at - 1].text!r} was read as a name: did you mean {keyword}?)"
    return _problem_at(SYNTAX, f"{message}\n{_caret(sql, token.start, token.end + 1)}", sql, token.start)


def _params(sql: str, tokens: list[Token]) -> tuple[tuple[str, ...], list[SqlProblem]]:
    """`$name` in order of first use. sqlglot's DuckDB parser turns `$ds` into
    Placeholder(this="ds"), `$1` into Placeholder(this="1") and `?` into
    Placeholder(); tokens keep textual order and positions, so read those."""
    names: dict[str, None] = {}
    problems: list[SqlProblem] = []
    for previous, token in zip([None, *tokens], tokens):
        positional = token.token_type == TokenType.PLACEHOLDER
        if previous is not None and previous.token_type == TokenType.PARAMETER and previous.end + 1 == token.start:
            positional = token.token_type == TokenType.NUMBER
            if token.token_type == TokenType.IDENTIFIER or token.text.isidentifier():
                names.setdefault(token.text, None)
        if positional:
            start = token.start if token.token_type == TokenType.PLACEHOLDER else token.start - 1
            problems.append(
                _problem_at(
                    POSITIONAL_PARAM,
                    f"positional parameter {sql[start : token.end + 1]}: bind notebook "
                    "parameters by name, e.g. `WHERE ds = $ds`",
                    sql,
                    start,
                )
            )
    return tuple(names), problems


def _function_name(func: exp.Func) -> str:
    return (func.name if isinstance(func, exp.Anonymous) else func.sql_name()).lower()


def _is_external_function(func: exp.Func) -> bool:
    name = _function_name(func)
    return name in _EXTERNAL_NAMES or name.startswith(_EXTERNAL_PREFIXES) or name.endswith(_EXTERNAL_SUFFIXES)


def _is_file_ref(table: exp.Table, sql: str) -> bool:
    """`FROM 'x.parquet'` parses to the same quoted identifier as `FROM "x.parquet"`;
    the source text tells a string literal apart, and both scan a file in DuckDB."""
    ident = table.this
    if not isinstance(ident, exp.Identifier) or not ident.quoted:
        return False
    start = ident.meta.get("start")
    literal = start is not None and sql[start : start + 1] == "'"
    return literal or bool(_PATH_CHARS & set(ident.name))


def _is_stored_table(table: exp.Table, sql: str) -> bool:
    return isinstance(table.this, exp.Identifier) and not _is_file_ref(table, sql)


def _tables(tree: exp.Expr, sql: str, default_schema: str, nodes: _Nodes, scopes: list[Scope] | None) -> tuple[str, ...]:
    # without scopes (e.g. PIVOT in FROM), names alone below
    resolved = [s for scope in scopes or () for s in scope.sources.values()]
    stored = {id(t) for t in resolved if isinstance(t, exp.Table)}
    ctes = {cte.alias_or_name.lower() for cte in nodes.of(exp.CTE)}
    # Scope resolution handles CTE shadowing; anything scope did not see is kept
    # unless its bare name is some CTE's, so a gap in scope never hides a table.
    names = {
        table_name(t, default_schema)
        for t in nodes.of(exp.Table)
        if _is_stored_table(t, sql) and (id(t) in stored or t.db or t.name.lower() not in ctes)
    }
    return tuple(sorted(names))


def _literal_arg(node: exp.Func) -> str | None:
    """The first argument when it is a string literal (the file or URL a reader names)."""
    first = next(iter(node.expressions), None) if isinstance(node, exp.Anonymous) else node.this
    return first.name if isinstance(first, exp.Literal) and first.is_string else None


def _external_reads(sql: str, nodes: _Nodes, dialect: str) -> list[SqlProblem]:
    problems = []
    for node in nodes.of(exp.Func):
        name = _function_name(node)
        why = escape_hatch(name, dialect)
        if why is not None:
            problems.append(_problem_at(SERVER_ACCESS, hatch_message(name, why), sql, node.meta.get("start")))
            continue
        if isinstance(node.parent, (exp.Table, exp.Lateral)) and _is_external_function(node):
            problems.append(
                _problem_at(
                    EXTERNAL_READ,
                    f"{_function_name(node)}() reads outside the warehouse; input cells read "
                    f"warehouse tables and declared sources only — {declare_hint(_literal_arg(node))}",
                    sql,
                    node.meta.get("start"),
                )
            )
    for table in nodes.of(exp.Table):
        if isinstance(table.this, exp.Identifier) and system_relation(table.db or None, table.name, dialect):
            problems.append(
                _problem_at(
                    SERVER_ACCESS,
                    f"{table.sql(dialect=dialect)} is the database server's own catalog or settings, not a "
                    "warehouse table; a %%sql input may only read warehouse tables — refused",
                    sql,
                    table.this.meta.get("start"),
                )
            )
        if _is_file_ref(table, sql):
            problems.append(
                _problem_at(
                    EXTERNAL_READ,
                    f"FROM '{table.name}' reads a file; input cells read warehouse tables and declared "
                    f"sources only — {declare_hint(table.name)}",
                    sql,
                    table.this.meta.get("start"),
                )
            )
    return problems


def _calls(sql: str, nodes: _Nodes, dialect: str) -> tuple[SqlCall, ...]:
    """Every call a warehouse macro could stand behind, first position kept.

    External reads are left out (already refused). A dotted scalar call
    `x.f()` is listed as both `x.f` and `f`: DuckDB reads it as schema x's
    macro or as f(x), and either may be a macro."""
    found: dict[tuple[str, bool], SqlCall] = {}
    for func in nodes.of(exp.Func):
        in_from = isinstance(func.parent, _TABLE_POSITIONS)
        if (in_from and _is_external_function(func)) or escape_hatch(_function_name(func), dialect):
            continue  # already refused
        name = _called_name(func, sql)
        line, column = _position(sql, func.meta.get("start"))
        qualifier = _call_qualifier(func)
        names = [f"{qualifier}.{name}"] if qualifier else [name]
        if qualifier and not in_from:
            names.append(name)
        for n in names:
            found.setdefault((n, in_from), SqlCall(n, in_from, line, column))
    return tuple(found.values())


def _called_name(func: exp.Func, sql: str) -> str:
    """The name as written: sqlglot turns `range(3)` into GenerateSeries."""
    if isinstance(func, exp.Anonymous):
        return func.name.lower()
    start, end = func.meta.get("start"), func.meta.get("end")
    if start is not None and end is not None:
        return sql[start : end + 1].strip('"').lower()
    return _function_name(func)


def _call_qualifier(func: exp.Func) -> str | None:
    parent = func.parent
    if isinstance(parent, exp.Table) and parent.this is func:
        return parent.db.lower() or None
    if isinstance(parent, exp.Dot) and parent.expression is func:
        owner = parent.this
        if isinstance(owner, (exp.Identifier, exp.Column, exp.Dot)):
            return owner.name.lower() or None
    return None
