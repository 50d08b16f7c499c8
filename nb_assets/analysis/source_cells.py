"""`%%source <var> <source>` cells: a declared source read into a DataFrame.

The host fetched the source before the run (nb_assets.sources); the cell only
names it, so what the notebook reads is known statically, like a `%%sql` input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from nb_assets.spec import Cell, Finding, SourceRead

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
                "sources=[...] in definitions.py (or under `sources:` in declarations.yaml)"
                + (f"; declared: {', '.join(sorted(known))}" if known else ""),
                cell, 1,
            )
