"""`%%source <var> <source>` cells: a declared source read into a DataFrame.

The host fetched the source before the run (nb_assets.sources); the cell only
names it, so what the notebook reads is known statically, like a `%%sql` input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from nb_assets.locations import nearest_project
from nb_assets.spec import Cell, Finding, SourceRead
from nb_assets.sql.source_calls import hinted_location, placed_hint

SOURCE_MAGIC = "%%source"
SOURCE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def is_source_cell(cell: Cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(SOURCE_MAGIC + " ") or (
        cell.cell_type == "code" and cell.source.strip() == SOURCE_MAGIC
    )


def source_reads(cells: Sequence[Cell], findings: list[Finding], taken: set[str]) -> Iterator[SourceRead]:
    """Each `%%source` cell; a malformed one, or one reusing a variable of another input, is a finding.
    `taken`: the variable names `%%sql` inputs bind (updated)."""
    for cell in filter(is_source_cell, cells):
        first_line, _, rest = cell.source.lstrip().partition("\n")
        words = first_line[len(SOURCE_MAGIC):].split()
        if len(words) != 2 or not words[0].isidentifier() or not SOURCE_NAME.match(words[1]):
            findings.append(Finding(
                "source-cell", "error",
                f"`%%source` takes a variable and a declared source's name, e.g. `%%source rates partner_rates`; got {first_line!r}",
                cell.number, 1,
            ))
            continue
        if rest.strip():
            findings.append(Finding(
                "source-cell", "error", "a `%%source` cell holds only its first line; put code in the next cell", cell.number, 2,
            ))
        var, name = words
        if var in taken:
            findings.append(Finding("duplicate-input", "error", f"input {var!r} is defined twice; give each input its own name", cell.number, 1))
            continue
        taken.add(var)
        yield SourceRead(var, name, cell.number)


def unknown_source_findings(reads: Sequence[SourceRead], sql_sources: Sequence[tuple[str, int]], declared: Sequence[str]) -> Iterator[Finding]:
    """A source the notebook reads that the project does not declare: name the registry and what to add."""
    known = set(declared)
    for name, cell in [*((r.source, r.cell) for r in reads), *sql_sources]:
        if name not in known:
            yield Finding(
                "unknown-source", "error",
                f"source {name!r} is not declared; add `Source({name!r}, url=... or path=..., zones=[...])` to "
                "sources=[...] in definitions.py (or under `sources:` in declarations.yaml, loaded with load_sources_yaml)"
                + (f"; declared: {', '.join(sorted(known))}" if known else ""),
                cell, 1,
            )


def placed_source_hints(findings: Sequence[Finding], notebook: str | Path) -> list[Finding]:
    """The findings with each hint to declare a file the notebook reads literally naming the file as a
    Source does: relative to the project (the nearest folder at or above the notebook holding a
    definitions.py), not to the notebook's folder the kernel reads it from."""
    if not any(hinted_location(f.message) for f in findings):
        return list(findings)
    folder = Path(notebook).resolve().parent
    root = nearest_project(folder)
    return [replace(f, message=placed_hint(f.message, folder.as_posix(), root.as_posix() if root else None)) for f in findings]
