"""`$name` parameters of a `%%sql` query -> the positional placeholders a driver binds.

Pure (sqlglot only). The query is parsed, never searched and replaced as text,
so a `$name` inside a string literal, a comment or a dollar-quoted string is
left alone, and the value always travels as a bound parameter, not as SQL.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp


class ParamTranslationError(ValueError):
    """The query could not be parsed, or uses a parameter form that cannot be bound by name."""


def to_positional(query: str, read: str, write: str = "postgres") -> tuple[str, tuple[str, ...]]:
    """The query in `write`'s dialect with `$1, $2, ...`, and the name bound to each position.

    A name used twice is one position, so it is bound once."""
    try:
        tree = sqlglot.parse_one(query, read=read)
    except sqlglot.errors.SqlglotError as exc:
        raise ParamTranslationError(f"cannot read the query: {exc}") from exc
    order: dict[str, int] = {}

    def replace(node: exp.Expr) -> exp.Expr:
        name = _param_name(node)
        if name is None:
            return node
        if name.isdigit() or not name.isidentifier():
            raise ParamTranslationError(f"positional parameter ${name}: bind notebook parameters by name, e.g. $ds")
        position = order.setdefault(name, len(order) + 1)
        return exp.Parameter(this=exp.Literal.number(position))

    translated = tree.transform(replace)
    return translated.sql(dialect=write), tuple(order)


def _param_name(node: exp.Expr) -> str | None:
    # DuckDB's parser reads `$ds` as Placeholder(this="ds"); Postgres's as Parameter(Var ds).
    if isinstance(node, exp.Placeholder):
        if not node.this:
            raise ParamTranslationError("`?` parameter: bind notebook parameters by name, e.g. $ds")
        return str(node.this)
    if isinstance(node, exp.Parameter) and not isinstance(node.parent, exp.Parameter):
        return node.this.name if isinstance(node.this, (exp.Var, exp.Literal, exp.Identifier)) else None
    return None
