"""Where does a table's data flow? Answered from declarations, nothing runs.

Pure: works on parsed NotebookSpecs and propagated labels; no Dagster. A
notebook reads a table also through views and macros it names, when its spec
was seen through the warehouse catalog; each hop shows that path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nb_assets.spec import NotebookSpec, below

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
    through: tuple[str, ...] = ()  # the views and macros from `via` up to what the notebook's SQL names


def _through(spec: NotebookSpec) -> dict[str, tuple[str, ...]]:
    return dict(spec.seen_through.through) if spec.seen_through is not None else {}


def _reached(spec: NotebookSpec) -> tuple[str, ...]:
    """What the SQL names and every view, macro and table below it."""
    return below(_through(spec), spec.named_relations)


def _path_up(spec: NotebookSpec, table: str) -> tuple[str, ...]:
    """The views and macros between `table` and the name the notebook's SQL uses, nearest first."""
    through = _through(spec)
    paths: dict[str, tuple[str, ...]] = {name: () for name in spec.named_relations}
    queue = deque(spec.named_relations)
    while queue:
        name = queue.popleft()
        if name == table:
            return tuple(reversed(paths[name]))
        for read in through.get(name, ()):
            if read not in paths:
                paths[read] = (*paths[name], name)
                queue.append(read)
    return ()


def trace(table: str, notebooks: Sequence[LineageNotebook], direction: Direction = "downstream") -> list[Hop]:
    """Breadth-first over the notebook graph; each notebook is visited once."""
    table = table.lower()
    readers: dict[str, list[LineageNotebook]] = {}
    writers: dict[str, list[LineageNotebook]] = {}
    for nb in notebooks:
        for t in _reached(nb.spec):
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
            through = _path_up(nb.spec, current) if direction == "downstream" else ()
            hops.append(Hop(nb, depth, current, through))
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
            "through": [{"name": n, "kind": _kind(n, spec)} for n in hop.through],
            "reads": [_read(spec, t, zones) for t in spec.named_relations],
            "writes": [{"table": t, "labels": zones(t)} for t in spec.output_tables],
        })
    known = {t for nb in notebooks for t in (*_reached(nb.spec), *nb.spec.output_tables)}
    writers, readers = writers_and_readers(table, notebooks)
    return {
        "table": table.lower(),
        "known": table.lower() in known,
        "labels": zones(table.lower()),
        "direction": direction,
        "written_by": writers,
        "read_by": readers,
        "notebooks": hops,
    }


def writers_and_readers(table: str, notebooks: Sequence[LineageNotebook]) -> tuple[list[str], list[str]]:
    """The notebooks that write the table, and those that read it (directly or through a view or macro)."""
    table = table.lower()
    writers = [nb.spec.name for nb in notebooks if table in nb.spec.output_tables]
    readers = [nb.spec.name for nb in notebooks if table in _reached(nb.spec)]
    return writers, readers


def similar_tables(table: str, notebooks: Sequence[LineageNotebook]) -> list[str]:
    """Declared tables whose names are close to a table no notebook reads or writes (a typo?)."""
    import difflib

    known = sorted({t for nb in notebooks for t in (*_reached(nb.spec), *nb.spec.output_tables)})
    return difflib.get_close_matches(table.lower(), known, n=3, cutoff=0.75)


def _kind(name: str, spec: NotebookSpec) -> str:
    if name.endswith("()"):
        return "macro"
    return "view" if name in _through(spec) else "table"


def _read(spec: NotebookSpec, name: str, zones: Any) -> dict[str, Any]:
    """One relation the SQL names; a view or macro lists the tables behind it."""
    read: dict[str, Any] = {
        "table": name,
        "kind": _kind(name, spec),
        "labels": zones(name),
        "columns": sorted({c for i in spec.inputs for tt, c in i.columns if tt == name}),
    }
    if read["kind"] != "table":
        through = _through(spec)
        tables = [t for t in below(through, [name]) if t not in through]
        read["tables"] = [{"table": t, "labels": zones(t)} for t in tables]
    return read


def format_report(report: Mapping[str, Any]) -> str:
    arrow = "→" if report["direction"] == "downstream" else "←"
    lines = [f"{report['table']} [{', '.join(report['labels']) or 'no labels'}] ({report['direction']})"]
    if report.get("known", True):
        writers = ", ".join(report.get("written_by", ())) or "no notebook (a source table: it lands)"
        lines.append(f"  written by: {writers}")
        lines.append(f"  read by:    {', '.join(report.get('read_by', ())) or 'no notebook'}")
    else:
        lines.append("  no declared notebook reads or writes it")
    lines.extend(_columns_lines(report))
    if not report.get("known", True):
        return "\n".join(lines)
    if not report["notebooks"]:
        lines.append("  (no notebook " + ("reads" if report["direction"] == "downstream" else "writes") + " it)")
    for hop in report["notebooks"]:
        indent = "  " * hop["depth"]
        path = "".join(f" → {t['name']} ({t['kind']})" for t in hop["through"])
        lines.append(f"{indent}{arrow} {hop['notebook']} (purpose: {hop['purpose'] or '-'}) via {hop['via']}{path}")
        for r in hop["reads"]:
            cols = f" columns: {', '.join(r['columns'])}" if r["columns"] else ""
            below = ""
            if r["kind"] != "table":
                tables = ", ".join(f"{t['table']} [{', '.join(t['labels'])}]" for t in r["tables"]) or "no table"
                below = f" ({r['kind']} over {tables})"
            lines.append(f"{indent}    reads  {r['table']} [{', '.join(r['labels'])}]{below}{cols}")
        for w in hop["writes"]:
            lines.append(f"{indent}    writes {w['table']} [{', '.join(w['labels'])}]")
    return "\n".join(lines)


def _columns_lines(report: Mapping[str, Any]) -> list[str]:
    """The table's columns as the warehouse has them, or why they are not shown."""
    if "columns" not in report:
        return []
    columns = report["columns"]
    if not columns:
        return [f"  columns:    not shown: {report.get('columns_note') or 'no warehouse'}"]
    where = f" (in {report['warehouse']})" if report.get("warehouse") else ""
    width = max((len(c["name"]) for c in columns), default=0)
    return [f"  columns{where}:", *(f"    {c['name'].ljust(width)}  {c['type']}" for c in columns)]
