"""Where does a table's data flow? Answered from declarations, nothing runs.

Pure: works on parsed NotebookSpecs and propagated labels; no Dagster.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nb_assets.spec import NotebookSpec

Direction = Literal["downstream", "upstream"]


@dataclass(frozen=True)
class LineageNotebook:
    spec: NotebookSpec
    purpose: str | None


@dataclass(frozen=True)
class Hop:
    """One notebook on the way, `depth` notebooks away from the asked table."""

    notebook: LineageNotebook
    depth: int
    via: str  # the table that led here


def trace(table: str, notebooks: Sequence[LineageNotebook], direction: Direction = "downstream") -> list[Hop]:
    """Breadth-first over the notebook graph; each notebook is visited once."""
    table = table.lower()
    readers: dict[str, list[LineageNotebook]] = {}
    writers: dict[str, list[LineageNotebook]] = {}
    for nb in notebooks:
        for t in nb.spec.input_tables:
            readers.setdefault(t, []).append(nb)
        for t in nb.spec.output_tables:
            writers.setdefault(t, []).append(nb)
    step = readers if direction == "downstream" else writers
    hops: list[Hop] = []
    seen: set[str] = set()
    queue: deque[tuple[str, int]] = deque([(table, 1)])
    while queue:
        current, depth = queue.popleft()
        for nb in step.get(current, []):
            if nb.spec.name in seen:
                continue
            seen.add(nb.spec.name)
            hops.append(Hop(nb, depth, current))
            nexts = nb.spec.output_tables if direction == "downstream" else nb.spec.input_tables
            queue.extend((t, depth + 1) for t in nexts)
    return hops


def lineage_report(
    table: str,
    notebooks: Sequence[LineageNotebook],
    labels: Mapping[str, frozenset[str]],
    direction: Direction = "downstream",
) -> dict[str, Any]:
    """The `nb-assets lineage --json` document."""

    def zones(t: str) -> list[str]:
        return sorted(labels.get(t, ()))

    hops = []
    for hop in trace(table, notebooks, direction):
        spec = hop.notebook.spec
        hops.append({
            "notebook": spec.name,
            "path": spec.path,
            "purpose": hop.notebook.purpose,
            "depth": hop.depth,
            "via": hop.via,
            "reads": [
                {
                    "table": t,
                    "labels": zones(t),
                    "columns": sorted({c for i in spec.inputs for tt, c in i.columns if tt == t}),
                }
                for t in spec.input_tables
            ],
            "writes": [{"table": t, "labels": zones(t)} for t in spec.output_tables],
        })
    known = {t for nb in notebooks for t in (*nb.spec.input_tables, *nb.spec.output_tables)}
    return {
        "table": table.lower(),
        "known": table.lower() in known,
        "labels": zones(table.lower()),
        "direction": direction,
        "notebooks": hops,
    }


def format_report(report: Mapping[str, Any]) -> str:
    arrow = "→" if report["direction"] == "downstream" else "←"
    lines = [f"{report['table']} [{', '.join(report['labels']) or 'no labels'}] ({report['direction']})"]
    if not report["notebooks"]:
        lines.append("  (no notebook " + ("reads" if report["direction"] == "downstream" else "writes") + " it)")
    for hop in report["notebooks"]:
        indent = "  " * hop["depth"]
        lines.append(f"{indent}{arrow} {hop['notebook']} (purpose: {hop['purpose'] or '-'}) via {hop['via']}")
        for r in hop["reads"]:
            cols = f" columns: {', '.join(r['columns'])}" if r["columns"] else ""
            lines.append(f"{indent}    reads  {r['table']} [{', '.join(r['labels'])}]{cols}")
        for w in hop["writes"]:
            lines.append(f"{indent}    writes {w['table']} [{', '.join(w['labels'])}]")
    return "\n".join(lines)
