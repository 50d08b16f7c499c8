"""A kept record is safe to open: the executed notebook is rebuilt from an allowlist.

The sandbox has no network, but what it writes is opened later, in a browser,
by people and services that do: the HTML rendering, Jupyter, and Dagster's own
`/notebook?path=...` page, which renders the kept `.ipynb` in the webserver's
origin (with the user's access to its GraphQL API). A notebook that displays
`<img src="http://.../?d=<customer emails>">` or a `Javascript(...)` output
would turn its record into a way around the sandbox. So the host rebuilds the
executed notebook before it is kept, and keeps only:

- code cells' source (always shown as text), and their outputs: streams and
  errors (text), and per output only these MIME types: text/plain,
  application/json, image/png|jpeg|gif (checked base64), image/svg+xml
  (rebuilt from an SVG allowlist), text/html (rebuilt from an HTML allowlist:
  formatting, tables, data:-URL images) and text/markdown (as Markdown cells);
  JavaScript, widget views, LaTeX and any other type are dropped, each counted;
- Markdown cells as written when their text cannot make a link, an image,
  markup or a math command in any Markdown dialect; otherwise their rendering,
  rebuilt from the HTML allowlist, as one line of HTML (attachments inlined
  as data: URLs). Raw cells through the HTML allowlist;
- the metadata renderers need (kernel, language, papermill's, cell tags), and
  nothing else: no widget state, no output `filenames` (an image's URL).

HTML kept from outputs and Markdown sits in `<div class="tex2jax_ignore">`, so
MathJax (loaded by Dagster's page) typesets no notebook-supplied command.

The record is sanitized as it is written, and no raw copy is kept: a raw copy
on disk is an exfiltration channel waiting for someone to open it, and the
data itself is in the warehouse. What was neutralized is counted per kind and
said in run.json. Pure: no Dagster, no Docker, no files.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from typing import Any

from nb_assets.runs.record_safety_html import clean_html, clean_svg, data_image

OUTPUT_TYPES = {"text/plain", "application/json", "image/png", "image/jpeg", "image/gif", "image/svg+xml", "text/html", "text/markdown"}
SCRIPT_TYPES = {"application/javascript", "text/javascript", "application/x-javascript", "application/ecmascript"}
ATTACHMENT_TYPES = {"image/png", "image/jpeg", "image/gif"}
_CELL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# What could make a link, an image, markup or a math command in some Markdown dialect (CommonMark,
# GFM, mistune, marked): markup, escapes and TeX commands, link and image syntax, autolinks, fences.
_MARKDOWN_HAZARD = re.compile(r"<|\\|\]\s*[(\[:]|//|www\.|```|~~~|@\{", re.IGNORECASE)
IGNORE_MATH = "tex2jax_ignore"


class UnreadableNotebook(ValueError):
    """The sandbox's executed notebook is not a notebook this module can rebuild."""


def sanitize_notebook(text: str) -> tuple[dict[str, Any], Counter[str]]:
    """The executed notebook, rebuilt from the allowlist, and a count of what was neutralized by kind."""
    try:
        source = json.loads(text)
    except ValueError as exc:
        raise UnreadableNotebook(f"not JSON: {exc}") from None
    if not isinstance(source, dict) or source.get("nbformat") != 4 or not isinstance(source.get("cells"), list):
        raise UnreadableNotebook("not a version 4 notebook with a list of cells")
    found: Counter[str] = Counter()
    metadata = _dict(source.get("metadata"))
    if "widgets" in metadata:
        found["widget"] += 1
    ids: set[str] = set()
    cells = [c for c in (_cell(cell, ids, found) for cell in source["cells"]) if c is not None]
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            **{k: _strings(metadata[k]) for k in ("kernelspec", "language_info") if isinstance(metadata.get(k), dict)},
            **({"papermill": metadata["papermill"]} if isinstance(metadata.get("papermill"), dict) else {}),
        },
        "cells": cells,
    }
    return notebook, found


def placeholder_notebook(reason: str) -> dict[str, Any]:
    """What is kept instead of an executed notebook that cannot be rebuilt: one cell saying why."""
    said = re.sub(r"[^\w .,:;()'=-]", "?", reason)[:300]  # plain words: nothing Markdown could make live
    text = f"**nb-assets:** the executed notebook the sandbox returned was not kept: it could not be read safely ({said})."
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": [{"cell_type": "markdown", "id": "nb-assets-not-kept", "metadata": {}, "source": text}]}


def _cell(cell: Any, ids: set[str], found: Counter[str]) -> dict[str, Any] | None:
    if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
        found["cell"] += 1
        return None
    kind = cell["cell_type"]
    source = _text(cell.get("source"))
    cell_id = cell.get("id") if isinstance(cell.get("id"), str) and _CELL_ID.fullmatch(cell["id"]) else None
    if cell_id is None or cell_id in ids:
        cell_id = uuid.uuid4().hex[:12]
    ids.add(cell_id)
    metadata = _cell_metadata(_dict(cell.get("metadata")))
    kept: dict[str, Any] = {"cell_type": kind, "id": cell_id, "metadata": metadata}
    if kind == "code":
        count = cell.get("execution_count")
        kept["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None
        outputs = cell.get("outputs")
        kept["outputs"] = [o for o in (_output(o, found) for o in (outputs if isinstance(outputs, list) else [])) if o]
        kept["source"] = source
    elif kind == "markdown":
        kept["source"] = safe_markdown(source, _attachments(cell.get("attachments"), found), found)
    else:
        kept["source"] = _ignoring_math(clean_html(source, found))
    return kept


def _cell_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    tags = metadata.get("tags")
    if isinstance(tags, list):
        kept["tags"] = [t for t in tags if isinstance(t, str) and _CELL_ID.fullmatch(t)]
    for key in ("papermill", "execution"):
        if isinstance(metadata.get(key), dict):
            kept[key] = metadata[key]
    return kept


def _output(output: Any, found: Counter[str]) -> dict[str, Any] | None:
    if not isinstance(output, dict):
        return None
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
        return {"output_type": "stream", "name": name, "text": _text(output.get("text"))}
    if kind == "error":
        traceback = output.get("traceback")
        return {"output_type": "error", "ename": _text(output.get("ename")), "evalue": _text(output.get("evalue")),
                "traceback": [_text(line) for line in traceback] if isinstance(traceback, list) else []}
    if kind not in ("display_data", "execute_result"):
        found["output"] += 1
        return None
    data = _bundle(_dict(output.get("data")), found)
    kept: dict[str, Any] = {"output_type": kind, "data": data, "metadata": _output_metadata(_dict(output.get("metadata")), found)}
    if kind == "execute_result":
        count = output.get("execution_count")
        kept["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) else None
    return kept


def _bundle(data: dict[str, Any], found: Counter[str]) -> dict[str, Any]:
    """One output's MIME bundle through the allowlist; a bundle left empty says what was removed."""
    kept: dict[str, Any] = {}
    for mime, value in data.items():
        if mime not in OUTPUT_TYPES:
            found["script" if mime in SCRIPT_TYPES else "widget" if "jupyter.widget" in mime else "output"] += 1
            continue
        if mime == "application/json":
            kept[mime] = value
            continue
        text = _text(value)
        if mime == "text/plain":
            kept[mime] = text
        elif mime == "text/html":
            kept[mime] = _ignoring_math(clean_html(text, found))
        elif mime == "text/markdown":
            kept[mime] = safe_markdown(text, {}, found)
        elif mime == "image/svg+xml":
            svg = clean_svg(text, found)
            if svg is not None:
                kept[mime] = svg
        else:
            image = data_image(f"data:{mime};base64,{text}")
            if image is not None:
                kept[mime] = image.split(",", 1)[1]
            else:
                found["output"] += 1
    if not kept:
        removed = ", ".join(sorted(data)) or "nothing"
        kept["text/plain"] = f"[nb-assets: removed from the record: {removed}]"
    return kept


def _output_metadata(metadata: dict[str, Any], found: Counter[str]) -> dict[str, Any]:
    """Image sizes and backgrounds only; `filenames` (an image's URL) and all else are dropped."""
    if "filenames" in metadata:
        found["url"] += 1
    kept: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in ("width", "height") and isinstance(value, (int, float)) and not isinstance(value, bool):
            kept[key] = value
        elif key.startswith("image/") and isinstance(value, dict):
            sizes = {k: v for k, v in value.items()
                     if (k in ("width", "height") and isinstance(v, (int, float)) and not isinstance(v, bool))
                     or (k == "unconfined" and isinstance(v, bool)) or (k == "needs_background" and v in ("light", "dark"))}
            if sizes:
                kept[key] = sizes
    return kept


def _attachments(attachments: Any, found: Counter[str]) -> dict[str, dict[str, str]]:
    """A Markdown cell's attached images, base64-checked; inlined as data: URLs when rendered."""
    kept: dict[str, dict[str, str]] = {}
    for name, bundle in _dict(attachments).items():
        for mime, value in _dict(bundle).items():
            image = data_image(f"data:{mime};base64,{_text(value)}") if mime in ATTACHMENT_TYPES else None
            if image is None:
                found["output"] += 1
            else:
                kept.setdefault(str(name), {})[mime] = image.split(",", 1)[1]
        kept.setdefault(str(name), {"image/png": ""})  # a removed one shows as an empty image, not as an error
    return kept


def safe_markdown(source: str, attachments: dict[str, dict[str, str]], found: Counter[str]) -> str:
    """Markdown kept as written when no dialect can make it live; else its rendering, cleaned, as one
    line of HTML (a Markdown renderer passes an HTML block through untouched until a blank line)."""
    if not _MARKDOWN_HAZARD.search(source):
        return source
    try:
        from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

        rendered = MarkdownWithMath(renderer=IPythonRenderer(
            escape=False, attachments=attachments, exclude_anchor_links=True)).render(source)
    except Exception:  # noqa: BLE001 - e.g. a missing attachment: show the text, render nothing
        from html import escape

        rendered = f"<pre>{escape(source)}</pre>"
    found["markdown-as-html"] += 1  # not a threat: counted so a changed cell is explained
    cleaned = clean_html(rendered, found)
    return _ignoring_math(cleaned).replace("\r", "").replace("\n", "&#10;")


def _ignoring_math(html: str) -> str:
    return f'<div class="{IGNORE_MATH}">{html}</div>'


def _text(value: Any) -> str:
    """nbformat's multiline string: a string or a list of strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: dict[str, Any]) -> dict[str, str]:
    return {str(k): v for k, v in value.items() if isinstance(v, str) and len(v) < 200}
