"""jupysql's forms of `%%sql` and `%sql`, read alike on both sides of the sandbox wall.

Standard library only: the host's parser (analysis/jupysql_cells.py) and the
notebook runtime in the box (notebook.py) both call `read_magic`, `bind_placeholders`
and `compose`, so the query the host prefetches and the query the cell runs are
the same text, and their fingerprints (contract.query_fingerprint) agree.

The forms (jupysql's documentation, "magic %sql"/"%%sql"):

    %%sql                          a query whose result is displayed
    %%sql name <<                  the result saved to a variable
    %%sql --save name [--no-execute]   a snippet later queries read as a table
    %%sql --with a --with b        snippets named explicitly (older jupysql)
    %sql duckdb:///file.db         a connection line
    %sql SELECT ...                a one-line query (also `x = %sql SELECT ...`)
    {{var}}                        a notebook variable, rendered into the text

Snippets compose as CTEs (`WITH name AS (...) query`), exactly as jupysql
renders them, so the lineage parser sees through them to the warehouse tables.
`{{var}}` is bound as a value (`$var`), never spliced, and only where a value
may stand; jinja blocks (`{% ... %}`) cannot be bound and are refused by name.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

# Options that only change how a result is shown, or which jupysql reads from
# its own config: a scheduled run ignores them, and `check` names them.
DISPLAY_OPTIONS = {
    "-l": 0, "--connections": 0, "-n": 0, "--no-index": 0, "-N": 0, "--section": 1, "-s": 1,
    "--interact": 1, "--alias": 1, "-A": 1, "-c": 1, "--creator": 1, "-a": 1, "--connection_arguments": 1,
}
# Options that write to the database or read a file: a scheduled notebook
# writes only through output(), and reads only declared inputs.
REFUSED_OPTIONS = {
    "-p": "writes a DataFrame into the database; write tables with output(\"schema.table\", df)",
    "--persist": "writes a DataFrame into the database; write tables with output(\"schema.table\", df)",
    "-P": "replaces a table from a DataFrame; write tables with output(\"schema.table\", df)",
    "--persist-replace": "replaces a table from a DataFrame; write tables with output(\"schema.table\", df)",
    "--append": "appends a DataFrame to a table; write tables with output(\"schema.table\", df)",
    "-f": "reads the query from a file; put the query in the cell",
    "--file": "reads the query from a file; put the query in the cell",
    "-x": "closes a connection; remove the line",
    "--close": "closes a connection; remove the line",
}
CONNECTION = re.compile(r"^[A-Za-z][A-Za-z0-9+._-]*://\S*$")
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*<<\s*")


@dataclass(frozen=True)
class Magic:
    """One `%%sql` cell or `%sql` line, as jupysql reads it."""

    query: str  # the SQL text, placeholders not yet bound
    target: str | None = None  # `name <<`: the variable the result goes to
    save: str | None = None  # `--save name`
    execute: bool = True  # False with --no-execute
    with_: tuple[str, ...] = ()  # `--with name`
    connection: str | None = None  # a URL on the magic line
    ignored: tuple[str, ...] = ()  # display-only options, named
    refused: tuple[tuple[str, str], ...] = ()  # (option, why) that a scheduled run cannot honour
    problems: tuple[str, ...] = field(default=())  # what could not be read

    @property
    def is_connection_only(self) -> bool:
        return self.connection is not None and not self.query.strip()


def read_magic(line: str, body: str = "") -> Magic:
    """Read the text after `%%sql` (line) and the cell's body, or the text after `%sql` (line only).

    A single identifier on a cell magic's line is nb_assets' own form (`%%sql name`): the
    caller decides that before calling this; here every token is read as jupysql would.
    """
    rest = line.strip()
    target = save = connection = None
    execute = True
    with_: list[str] = []
    ignored: list[str] = []
    refused: list[tuple[str, str]] = []
    problems: list[str] = []
    while rest:
        match = _ASSIGN.match(rest)
        if match:
            target, rest = match.group(1), rest[match.end():]
            continue
        token, _, tail = rest.partition(" ")
        if token.startswith("-"):
            option, _, inline = token.partition("=")
            if option == "--save" or option == "--with":
                value, tail = (inline, tail) if inline else _word(tail)
                if not value:
                    problems.append(f"{option} needs a snippet name")
                elif not value.isidentifier():  # it becomes a CTE's name in the composed SQL
                    problems.append(f"{option} {value!r}: a snippet name must be a plain identifier (letters, digits, _)")
                elif option == "--save":
                    save = value
                else:
                    with_.append(value)
            elif option == "--no-execute":
                execute = False
            elif option in REFUSED_OPTIONS:
                refused.append((option, REFUSED_OPTIONS[option]))
                if option in ("-x", "--close", "-f", "--file") and not inline:
                    _, tail = _word(tail)
            elif option in DISPLAY_OPTIONS:
                ignored.append(option)
                if DISPLAY_OPTIONS[option] and not inline:
                    _, tail = _word(tail)
            else:
                break  # not an option: the query starts here (e.g. `--` SQL comment)
            rest = tail.strip()
            continue
        if CONNECTION.match(token):
            connection, rest = token, tail.strip()
            continue
        break
    query = rest if not body.strip() else (rest + "\n" + body if rest else body)
    return Magic(query, target, save, execute, tuple(with_), connection, tuple(ignored), tuple(refused), tuple(problems))


def _word(text: str) -> tuple[str, str]:
    text = text.strip()
    try:
        words = shlex.split(text.partition(" ")[0]) if text else []
    except ValueError:
        words = [text.partition(" ")[0]]
    return (words[0] if words else ""), text.partition(" ")[2]


# `'{{ var }}'` (a quoted value) and `{{ var }}`; `{var}` is the older ipython-sql form.
_QUOTED = re.compile(r"""(['"])\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\1""")
_DOUBLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SINGLE = re.compile(r"(?<![{$\w])\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
_STRING = re.compile(r"('(?:[^']|'')*')")
_JINJA_BLOCK = re.compile(r"\{%.*?%\}|\{\{(?!\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}).*?\}\}", re.DOTALL)


def bind_placeholders(query: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """`{{var}}` / `'{{var}}'` / `{var}` → `$var`: (query, names bound, problems).

    A placeholder becomes a bound value; where it stood for a name or a keyword
    (`FROM {{table}}`, `ORDER BY age {{order}}`) the SQL no longer parses with
    `$var` there, and the host's lineage says so, naming the cell.
    """
    problems = tuple(
        f"jinja template {m.group(0)[:40]!r} cannot be bound as a value; write the SQL it renders to"
        for m in _JINJA_BLOCK.finditer(query)
    )
    names: list[str] = []

    def bound(match: re.Match[str]) -> str:
        name = match.group(match.lastindex or 1)
        if name not in names:
            names.append(name)
        return f"${name}"

    parts = _STRING.split(_QUOTED.sub(bound, query))  # odd indexes: the string literals left
    inside = [p for p in parts[1::2] if _DOUBLE.search(p)]
    if inside:
        # jupysql would render the value into the text; a bound value cannot stand inside a literal
        problems += tuple(
            f"{p[:40]!r}: a placeholder inside a longer string cannot be bound as a value; "
            f"build the string in SQL, e.g. '%' || $name || '%'" for p in inside
        )
    text = "".join(p if i % 2 else _SINGLE.sub(bound, _DOUBLE.sub(bound, p)) for i, p in enumerate(parts))
    return text, tuple(names), problems


_WITH = re.compile(r"^\s*with(\s+recursive)?\b", re.IGNORECASE)


def compose(query: str, snippets: dict[str, str], with_: tuple[str, ...] = ()) -> str:
    """The query with every saved snippet it reads (by name, or named by --with) as a CTE.

    Snippets read by other snippets come first, as jupysql orders them; a query
    that reads no snippet comes back unchanged.
    """
    order: list[str] = []

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in order or name in stack:
            return
        for other in _referenced(snippets[name], snippets, exclude=name):
            visit(other, (*stack, name))
        order.append(name)

    for name in (*[w for w in with_ if w in snippets], *_referenced(query, snippets)):
        visit(name, ())
    if not order:
        return query
    ctes = ",\n".join(f"{name} AS (\n{_strip(snippets[name])}\n)" for name in order)
    head = _WITH.match(query)
    if head:
        recursive = " RECURSIVE" if head.group(1) else ""
        return f"WITH{recursive} {ctes},\n{query[head.end():].lstrip()}"
    return f"WITH {ctes}\n{query.strip()}"


def _strip(query: str) -> str:
    return query.strip().rstrip(";").strip()


def _referenced(query: str, snippets: dict[str, str], exclude: str | None = None) -> list[str]:
    """Snippet names the query reads as a table name (not after a `.`, not in a string)."""
    text = re.sub(r"'(?:[^']|'')*'", "''", query)  # string literals never name a table
    text = re.sub(r"--[^\n]*", "", text)
    return [
        name for name in snippets
        if name != exclude and re.search(rf"(?<![.\w$]){re.escape(name)}(?![\w.])", text, re.IGNORECASE)
    ]


class Session:
    """The runtime's side in one kernel: the snippets saved so far, and how each form runs.

    `fetch(target, query)` returns the DataFrame for a composed, bound query: the
    prefetched file in a scheduled run, the warehouse in Jupyter (notebook.py).
    """

    def __init__(self) -> None:
        self.snippets: dict[str, str] = {}

    def run(self, line: str, body: str | None, namespace: MutableMapping[str, Any],
            fetch: Callable[[str | None, str], Any]) -> Any:
        magic = read_magic(line, body or "")
        for option, why in magic.refused:
            raise RuntimeError(f"%sql {option} {why}")
        if magic.problems:
            raise ValueError(f"%sql: {magic.problems[0]}")
        if not magic.query.strip():
            return None  # a connection line or display options: the project's warehouse stands in
        query, _, problems = bind_placeholders(magic.query)
        if problems:
            raise ValueError(f"%sql: {problems[0]}")
        if magic.save:
            self.snippets[magic.save] = query
        if not magic.execute:
            return None
        others = {k: v for k, v in self.snippets.items() if k != magic.save}
        result = fetch(magic.target, compose(query, others, magic.with_))
        if magic.target:
            namespace[magic.target] = result
            return None
        return result  # displayed, as jupysql displays its result
