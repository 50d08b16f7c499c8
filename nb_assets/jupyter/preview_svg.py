"""The Preview as a drawing: upstream tables and sources → notebook → its tables → their readers.

Plain inline SVG (no script, no external file, nothing fetched when opened),
from the preview `nb-assets schedule --preview-json` writes. Every name is
escaped: table and notebook names come from the project. A declared source the
notebook reads (`%%source` cells, `source('name')` in SQL) arrives among its reads
as `source.<name>`; it is drawn as a source, with its zones, not as a table.
"""

from __future__ import annotations

from html import escape
from typing import Any

from nb_assets.sources.model import is_relation

_W, _H, _GAP, _COL = 210, 34, 12, 250


def _box(x: int, y: int, text: str, sub: str, kind: str) -> str:
    fill = {"table": "#eef4ff", "source": "#e8f6ec", "notebook": "#fff4e0", "reader": "#f0f0f0"}[kind]
    rx = 4 if kind in ("table", "source") else 12
    label = escape(text if len(text) <= 30 else text[:29] + "…")
    parts = [f'<g class="nb-preview-{kind}">',
             f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="{rx}" fill="{fill}" stroke="#557"/>',
             f'<text x="{x + 8}" y="{y + 15}" font-size="12" font-family="sans-serif">{label}</text>']
    if sub:
        parts.append(f'<text x="{x + 8}" y="{y + 28}" font-size="10" fill="#666" font-family="sans-serif">{escape(sub)}</text>')
    return "".join([*parts, "</g>"])


def _read_box(y: int, read: dict[str, Any]) -> str:
    """An upstream node: a declared source (its name, "declared source" and its zones) or a table."""
    zones = ", ".join(read["zones"])
    if is_relation(read["table"]) and not read.get("writer"):
        return _box(0, y, read["table"].partition(".")[2], "declared source" + (f" · {zones}" if zones else ""), "source")
    return _box(0, y, read["table"], zones + (f" · by {read['writer']}" if read.get("writer") else ""), "table")


def _edge(x1: int, y1: int, x2: int, y2: int) -> str:
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#889" marker-end="url(#nb-arrow)"/>'


def preview_svg(preview: dict[str, Any]) -> str:
    """One row of columns per notebook (one per instance): reads, notebook, writes, read by."""
    body: list[str] = []
    top = 10
    for notebook in preview.get("notebooks", []):
        reads, writes, readers = notebook["reads"], notebook["writes"] or [{"table": "(report)", "zones": []}], notebook["read_by"]
        rows = max(len(reads), len(writes), len(readers), 1)
        height = rows * (_H + _GAP)
        mid = top + (height - _H) // 2
        name = notebook["name"] + (f" [{notebook['instance']}]" if notebook.get("instance") else "")
        body.append(_box(_COL, mid, name, "notebook", "notebook"))
        for i, table in enumerate(reads):
            y = top + i * (_H + _GAP)
            body += [_read_box(y, table), _edge(_W, y + _H // 2, _COL, mid + _H // 2)]
        for i, table in enumerate(writes):
            y = top + i * (_H + _GAP)
            body += [_box(2 * _COL, y, table["table"], ", ".join(table["zones"]), "table"),
                     _edge(_COL + _W, mid + _H // 2, 2 * _COL, y + _H // 2)]
        for i, reader in enumerate(readers):
            y = top + i * (_H + _GAP)
            body.append(_box(3 * _COL, y, reader["notebook"], f"reads {reader['table']}", "reader"))
        top += height + 2 * _GAP
    width = 4 * _COL if any(n["read_by"] for n in preview.get("notebooks", [])) else 3 * _COL
    marker = ('<defs><marker id="nb-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
              'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#889"/></marker></defs>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="nb-preview" width="{width}" height="{top}" '
            f'role="img" aria-label="preview">{marker}{"".join(body)}</svg>')
