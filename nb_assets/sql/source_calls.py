"""`source('<name>')` in a SQL input: a declared source read as a table.

Lineage sees it as the relation `source.<name>` (so the graph, the policy and
`nb-assets lineage` treat a source exactly like a source table); the prefetch
compiles it to the relation that holds the host's fetched copy. Token-level on
purpose: the call is replaced by a plain identifier before sqlglot parses, so
every other rule (read-only, escape hatches, parameters) judges the same query.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

SOURCE_SCHEMA = "source"
SOURCE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class SourceCall:
    name: str
    start: int  # offsets of `source('<name>')` in the query text
    end: int


def source_calls(sql: str, dialect: str = "duckdb") -> tuple[list[SourceCall], list[str]]:
    """Every `source('<name>')` in `sql`, and problems (a name that is not a literal source name)."""
    try:
        tokens = sqlglot.tokenize(sql, read=dialect)
    except TokenError:
        return [], []  # the lineage reports the syntax
    calls: list[SourceCall] = []
    problems: list[str] = []
    for i, token in enumerate(tokens[:-1]):
        if token.text.lower() != "source" or tokens[i + 1].token_type != TokenType.L_PAREN:
            continue
        if i > 0 and tokens[i - 1].token_type == TokenType.DOT:
            continue  # some_schema.source(...): somebody's macro
        arg = tokens[i + 2] if i + 2 < len(tokens) else None
        close = tokens[i + 3] if i + 3 < len(tokens) else None
        if arg is None or arg.token_type != TokenType.STRING or close is None or close.token_type != TokenType.R_PAREN:
            problems.append("source() takes one declared source's name as a string literal, e.g. source('partner_rates')")
            continue
        if not SOURCE_NAME.match(arg.text):
            problems.append(f"source({arg.text!r}): a source name is lowercase letters, digits and _")
            continue
        calls.append(SourceCall(arg.text, token.start, close.end + 1))
    return calls, problems


def replace_source_calls(sql: str, to: Callable[[str], str], dialect: str = "duckdb") -> str:
    """`sql` with each `source('<name>')` replaced by `to(name)` (an identifier or a qualified name)."""
    calls, _ = source_calls(sql, dialect)
    for call in reversed(calls):
        sql = sql[: call.start] + to(call.name) + sql[call.end :]
    return sql


def as_relations(sql: str, dialect: str = "duckdb") -> str:
    """What lineage analyzes: each call as the relation `source.<name>` (same line, so positions hold)."""
    return replace_source_calls(sql, lambda name: f"{SOURCE_SCHEMA}.{name}", dialect)


def fetched_relation(name: str) -> str:
    """The name the prefetch gives a source's fetched copy inside the warehouse session."""
    return f"nb_assets_source_{name}"


def suggested_name(location: str) -> str:
    """A source name for a file or URL someone wrote literally: `data/penguins.csv` → `penguins`."""
    tail = location.split("?")[0].rstrip("/").rsplit("/", 1)[-1].split(".")[0]
    name = re.sub(r"[^a-z0-9_]+", "_", tail.lower()).strip("_") or "data"
    return name if not name[0].isdigit() else f"s_{name}"


def declare_hint(location: str | None = None) -> str:
    """What to do instead of reading a file or URL directly: declare it in the source registry."""
    if location:
        name = suggested_name(location)
        where = "url" if location.lower().startswith(("http://", "https://")) else "path"
        return (
            f"declare it in the project's source registry, `Source({name!r}, {where}={location!r}, zones=[...])` "
            f"(sources=[...] in definitions.py, or `sources:` in declarations.yaml), and read it as "
            f"`source({name!r})` in SQL or with a `%%source df {name}` cell"
        )
    return (
        "declare the file or URL in the project's source registry (`Source('name', path=... or url=..., zones=[...])` "
        "in definitions.py, or `sources:` in declarations.yaml) and read it with a `%%source df name` cell "
        "or as `source('name')` in SQL"
    )
