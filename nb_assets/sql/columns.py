"""Which columns of which tables a query reads, and how a table reference is named.

Pure, over sqlglot's scopes (split from sql_lineage). Best effort: columns
feed the lineage report, never a security decision.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope


def table_name(table: exp.Table, default_schema: str = "main") -> str:
    # DuckDB folds even quoted identifiers; the catalog of db.schema.table is dropped.
    return f"{table.db or default_schema}.{table.name}".lower()



def columns_read(scopes: list[Scope] | None, tables: set[str], default_schema: str) -> tuple[tuple[str, str], ...]:
    """(table, column) pairs, best effort: without a schema, an unqualified column
    is only attributed when its scope reads exactly one table and nothing else.
    (sqlglot's qualify() would add nothing here without a schema, at 2/3 of the cost.)"""
    if scopes is None:
        return ()
    try:
        pairs = {pair for scope in scopes for pair in _scope_columns(scope, tables, default_schema)}
    except Exception:  # noqa: BLE001 - best effort; the optimizer asserts on shapes it cannot scope
        return ()
    return tuple(sorted(pairs))


# ORDER BY / GROUP BY / HAVING / QUALIFY may name a projection alias, not a column.
_ALIAS_CLAUSES = (exp.Order, exp.Group, exp.Having, exp.Qualify)


def _scope_columns(scope: Scope, tables: set[str], default_schema: str) -> set[tuple[str, str]]:
    sources = {  # without qualify() identifiers keep their case; DuckDB's aliases ignore it
        alias.lower(): table_name(s, default_schema)
        for alias, s in scope.sources.items()
        if isinstance(s, exp.Table) and isinstance(s.this, exp.Identifier) and table_name(s, default_schema) in tables
    }
    only = next(iter(sources.values())) if len(sources) == len(scope.sources) == 1 else None
    aliases = {
        s.alias.lower()
        for s in getattr(scope.expression, "selects", [])
        if isinstance(s, exp.Alias) and not (isinstance(s.this, exp.Column) and s.this.name == s.alias)
    }
    pairs = set()
    for column in scope.columns:
        if isinstance(column.this, exp.Star):
            continue
        if column.table:
            table = sources.get(column.table.lower())
        elif column.name.lower() in aliases and column.find_ancestor(*_ALIAS_CLAUSES):
            table = None
        else:
            table = only
        if table:
            pairs.add((table, column.name.lower()))
    return pairs
