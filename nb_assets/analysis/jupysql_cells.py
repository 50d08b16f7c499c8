"""A notebook written for jupysql, read by the host: its SQL forms become inputs, the rest findings.

parser.py keeps nb_assets' own `%%sql name` cells; every other `%%sql` cell and
every `%sql` line is read here with jupysql's forms (inbox/jupysql.py, shared
with the runtime in the box so both sides compose and bind the same text).
Each query that runs becomes a `Form` the parser analyses like any SQL input;
connection lines, display options and jupysql's other magics become findings
that say which edit makes the notebook schedulable (`nb-assets adopt` makes them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from nb_assets.inbox.jupysql import Magic, bind_placeholders, compose, read_magic
from nb_assets.spec import Cell, Finding

JUPYSQL_FORM = "jupysql-form"
JUPYSQL_CONNECTION = "jupysql-connection"
JUPYSQL_UNSUPPORTED = "jupysql-unsupported"
ADOPT = "`nb-assets adopt NOTEBOOK --write` makes this edit"

# `%sql ...` alone on a line, or `name = %sql ...` (IPython's own line-magic forms).
_LINE_MAGIC = re.compile(r"^(?P<indent>\s*)(?:(?P<var>[A-Za-z_]\w*)\s*=\s*)?%sql(?:\s+(?P<rest>.*))?$")
_OTHER_MAGIC = re.compile(r"^\s*(?:[A-Za-z_]\w*\s*=\s*)?%(?P<name>sqlcmd|sqlplot|sqlrender)\b")
_LOADS_JUPYSQL = re.compile(r"^\s*%(?:re)?load_ext\s+sql\s*$", re.MULTILINE)
_CONFIG = re.compile(r"^\s*%config\s+SqlMagic\b", re.MULTILINE)


@dataclass(frozen=True)
class Form:
    """One query a jupysql form runs: the parser analyses it as an SQL input."""

    name: str  # the `name <<` target, or sql_cell<N>[_<k>] for a displayed result
    query: str  # bound ($var) and composed with the snippets it reads
    cell: int
    line: int  # the cell's line the query text starts on (1-based)


def is_own_form(cell: Cell) -> bool:
    """nb_assets' own `%%sql name`: exactly one identifier on the magic line."""
    return cell.source.lstrip().partition("\n")[0][len("%%sql"):].strip().isidentifier()


def jupysql_forms(cells: Sequence[Cell], dialect: str, findings: list[Finding]) -> Iterator[Form]:
    """Every query jupysql would run, in notebook order; what stands in the way goes to `findings`."""
    snippets: dict[str, str] = {}
    for cell in cells:
        if cell.cell_type != "code":
            continue
        text = cell.source.lstrip()
        if text.startswith("%%sql") and text.partition("\n")[0].split()[0] == "%%sql":
            if is_own_form(cell):
                continue
            first, _, body = text.partition("\n")
            offset = cell.source[: len(cell.source) - len(text)].count("\n")
            magic = read_magic(first[len("%%sql"):], body)
            yield from _form(magic, cell, offset + 2 if body.strip() else offset + 1, f"sql_cell{cell.number}",
                             snippets, dialect, findings)
            continue
        count = 0
        for number, line in enumerate(cell.source.splitlines(), start=1):
            other = _OTHER_MAGIC.match(line)
            if other:
                findings.append(Finding(
                    JUPYSQL_UNSUPPORTED, "error",
                    f"%{other.group('name')} is jupysql's own tool and does not run in a scheduled notebook; "
                    f"remove the line, or write the query in a %%sql cell ({ADOPT})", cell.number, number,
                ))
                continue
            match = _LINE_MAGIC.match(line)
            if match is None:
                continue
            if match.group("indent"):
                findings.append(Finding(
                    JUPYSQL_UNSUPPORTED, "error",
                    "`%sql` inside a block (a loop, a function) runs a different query each time, which the host cannot "
                    "prefetch: run one query above the block (a %%sql cell) and filter its DataFrame in pandas",
                    cell.number, number,
                ))
                continue
            count += 1
            name = f"sql_cell{cell.number}" + (f"_{count}" if count > 1 else "")
            yield from _form(read_magic(match.group("rest") or ""), cell, number, name, snippets, dialect, findings)


def _form(magic: Magic, cell: Cell, line: int, name: str, snippets: dict[str, str], dialect: str,
          findings: list[Finding]) -> Iterator[Form]:
    if magic.connection:
        findings.append(connection_finding(magic.connection, dialect, cell.number, line))
    for option in magic.ignored:
        findings.append(Finding(
            JUPYSQL_FORM, "warning", f"%sql option {option} only changes how jupysql shows a result; a scheduled run ignores it",
            cell.number, line,
        ))
    for option, why in magic.refused:
        findings.append(Finding(JUPYSQL_UNSUPPORTED, "error", f"%sql {option} {why}", cell.number, line))
    for problem in magic.problems:
        findings.append(Finding(JUPYSQL_FORM, "error", f"%sql: {problem}", cell.number, line))
    if not magic.query.strip() or magic.refused:
        return
    query, _, problems = bind_placeholders(magic.query)
    for problem in problems:
        findings.append(Finding(JUPYSQL_UNSUPPORTED, "error", f"SQL in cell {cell.number}: {problem}", cell.number, line))
    if problems:
        return
    if magic.save:
        snippets[magic.save] = query
    if not magic.execute:
        return
    others = {k: v for k, v in snippets.items() if k != magic.save}
    yield Form(magic.target or name, compose(query, others, magic.with_), cell.number, line)


def connection_finding(url: str, dialect: str, cell: int, line: int) -> Finding:
    """A jupysql connection line, mapped to the project's warehouse where it is the same kind of database."""
    shown = re.sub(r"//[^@/]*@", "//***@", url)  # never repeat a password into a report
    scheme = url.partition(":")[0].lower().partition("+")[0]
    kind = {"duckdb": "duckdb", "postgresql": "postgres", "postgres": "postgres"}.get(scheme)
    if kind == dialect:
        return Finding(
            JUPYSQL_CONNECTION, "warning",
            f"`%sql {shown}`: a scheduled run reads the project's warehouse instead, so the tables the queries name "
            f"must be there (seed them or `nb-assets land` them); the line may stay for Jupyter ({ADOPT})",
            cell, line,
        )
    return Finding(
        JUPYSQL_CONNECTION, "error",
        f"`%sql {shown}` connects to a {scheme} database, but this project's warehouse is {dialect}: scheduled "
        f"notebooks read only the warehouse and declared sources; remove the line and read those tables from "
        f"the warehouse, or declare them as a source ({ADOPT} for the line)",
        cell, line,
    )


def runtime_hint(cells: Sequence[Cell]) -> str | None:
    """Where a notebook loads jupysql instead of the runtime: the edit that fixes it."""
    for cell in cells:
        if cell.cell_type == "code" and _LOADS_JUPYSQL.search(cell.source):
            return (
                f"cell {cell.number} loads jupysql (`%load_ext sql`), which scheduled runs do not have: replace it with "
                f"`%load_ext nb_assets.notebook`, which reads jupysql's %%sql forms ({ADOPT})"
            )
    return None


def config_lines(cells: Sequence[Cell]) -> Iterator[Finding]:
    """`%config SqlMagic...` sets jupysql's display; the runtime accepts it and changes nothing."""
    for cell in cells:
        if cell.cell_type == "code" and _CONFIG.search(cell.source):
            yield Finding(JUPYSQL_FORM, "warning", "`%config SqlMagic...` only sets how jupysql shows results; a scheduled run ignores it", cell.number)
