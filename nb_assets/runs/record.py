"""The record of a run: executed notebook, HTML rendering, verdict; kept read-only.

One folder per run (Dagster: under the instance's storage, by run id), so a
record is never overwritten. The executed notebook is rebuilt from an allowlist
as it is kept (record_safety: nothing in it may run script or load a URL when
opened) and the HTML is rendered from that. No Dagster import: `nb-assets run`
uses it too.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nb_assets.errors import error_json
from nb_assets.runs.pipeline import NotebookRun
from nb_assets.sandbox.base import RECORD_MB
from nb_assets.spec import NotebookSpec


def keep_record(run: NotebookRun, extra: Mapping[str, Any] | None = None, *, html: bool = True) -> dict[str, Path]:
    """Make the executed notebook safe to open, write run.json (and an HTML rendering), then make
    the record read-only. The record is sanitized as it is written and no raw copy is kept
    (see record_safety: why); run.json says what was neutralized, under "record_safety"."""
    record = run.folder.record_dir
    files = {"executed": run.executed_notebook, "html": record / "executed.html", "run": record / "run.json"}
    extra = dict(extra or {})
    notebook = None
    if run.executed_notebook.exists() or run.executed_notebook.is_symlink():
        notebook, extra["record_safety"] = keep_safe_notebook(run.executed_notebook)
    if html and notebook is not None:
        try:
            replace_file(files["html"], render_html(notebook, title=f"{run.spec.name} (executed)"))
        except Exception as exc:  # noqa: BLE001 - the record stays without HTML; run.json says why
            extra["html_error"] = f"{type(exc).__name__}: {exc}"[:500]
    replace_file(files["run"], json.dumps(run_summary(run, extra), indent=2, default=str))
    read_only = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    for path in record.iterdir():
        if not path.is_symlink():  # chmod would follow a link out of the record
            os.chmod(path, read_only)
    os.chmod(record, read_only | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)  # nothing can be added later
    return {k: v for k, v in files.items() if v.exists()}


def keep_safe_notebook(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replace the sandbox's executed notebook by its allowlisted rebuild; one that cannot be read
    (garbage, a link, over the record's limit) by a notebook saying so. Returns what is kept and
    what run.json says about it."""
    import nbformat

    from nb_assets.runs.record_safety import placeholder_notebook, sanitize_notebook

    try:
        if path.is_symlink() or not path.is_file():
            raise ValueError("not a regular file")
        if path.stat().st_size > RECORD_MB << 20:  # sandboxes bound it; never load more
            raise ValueError(f"over the record's limit of {RECORD_MB} MB")
        notebook, found = sanitize_notebook(path.read_text(encoding="utf-8"))
        node = nbformat.from_dict(notebook)
        nbformat.validate(node)
        facts: dict[str, Any] = {"sanitized": True, "neutralized": dict(sorted(found.items()))}
    except Exception as exc:  # noqa: BLE001 - the sandbox wrote this file: it may be anything
        reason = f"{type(exc).__name__}: {exc}"[:300]
        notebook = placeholder_notebook(reason)
        node = nbformat.from_dict(notebook)
        facts = {"sanitized": False, "error": reason}
    # Validated above (the placeholder is valid as built): v4's writer, which nbformat.writes
    # ends in, without nbformat.writes' second validation (~0.1 s on a 12 MB notebook).
    replace_file(path, nbformat.v4.writes(node))
    return notebook, facts


def replace_file(path: Path, text: str) -> None:
    """Write beside `path`, then rename over it: a link planted at `path` is replaced, never followed."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".nb-assets-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


_exporter: Any = None  # one HTMLExporter per process: its Jinja templates compile once
_exporter_lock = threading.Lock()
_warmed = False
# A notebook with a code cell and an output, rendered once to compile the templates and load the lexer.
_WARM_NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5, "metadata": {"language_info": {"name": "python"}},
    "cells": [{"cell_type": "code", "id": "warm", "metadata": {}, "execution_count": 1, "source": "x = 1",
               "outputs": [{"output_type": "stream", "name": "stdout", "text": "1"}]}],
}


def prewarm_html() -> None:
    """While the sandbox runs, in a background thread: import nbconvert (~0.4 s) and
    render a one-cell notebook (templates, lexer: ~0.3 s); the run's own rendering is then quick."""
    if not _warmed:  # a step forked from a preloaded server is warm already
        threading.Thread(target=warm_html, daemon=True, name="nb-assets-prewarm").start()


def warm_html() -> None:
    """What prewarm_html does, in this thread (a forkserver's preload calls it before forking)."""
    global _warmed
    try:
        import nbformat

        import nb_assets.runs.record_safety  # noqa: F401 - and the sanitizer (nh3, mistune)

        exporter = _html_exporter()
        with _exporter_lock:
            exporter.from_notebook_node(nbformat.from_dict(_WARM_NOTEBOOK))
        _warmed = True
    except Exception:  # noqa: BLE001 - only a head start; render_html reports real failures
        pass


# The HTML rendering loads nothing and runs nothing: nbconvert's lab template without its
# scripts (require.js, MathJax, mermaid and widgets, all from a CDN), and a policy that allows no script
# and no network, only the data: images and inline styles the rendering itself is made of.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; base-uri 'none'; form-action 'none'"
)
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head -%}
<meta http-equiv="Content-Security-Policy" content="CSP">
{{ super() }}
{%- endblock html_head -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
""".replace("CSP", CONTENT_SECURITY_POLICY)


def _html_exporter() -> Any:
    global _exporter
    with _exporter_lock:  # the prewarm thread and render_html may ask at once: build it once
        if _exporter is None:
            import jinja2
            import nbconvert  # imported late: it is slow to import and only needed here

            _exporter = nbconvert.HTMLExporter(
                extra_loaders=[jinja2.DictLoader({"nb_assets_record.html.j2": _TEMPLATE})],
                template_file="nb_assets_record.html.j2",
            )
        return _exporter


def render_html(notebook: Mapping[str, Any], title: str = "executed notebook") -> str:
    """The HTML rendering of a notebook record_safety rebuilt; refused (ValueError) if anything in
    it could still run script or load a URL."""
    import nbformat

    from nb_assets.runs.record_safety_html import unsafe_parts

    exporter = _html_exporter()
    with _exporter_lock:  # one rendering at a time per exporter (the prewarm may still be rendering)
        body, _ = exporter.from_notebook_node(nbformat.from_dict(notebook), resources={"metadata": {"name": title}})
    problems = unsafe_parts(body)
    if problems:
        raise ValueError(f"the rendering is not safe to open: {', '.join(problems[:5])}")
    return body


def seen_through_facts(spec: NotebookSpec) -> dict[str, Any]:
    """What the run read once views and macros were seen through (on the prefetch's connection)."""
    seen = spec.seen_through
    if seen is None:
        return {}
    return {
        "notebook/base_tables": list(seen.base_tables),
        "notebook/read_through": {name: list(reads) for name, reads in seen.through},
    }


def run_summary(run: NotebookRun, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The machine-readable verdict, shared by run.json and `nb-assets run --json`."""
    error = error_json(run.error) if run.error is not None else None
    return {
        "notebook": run.spec.path,
        "status": run.status,
        "error": error,
        "parameters": run.parameters,
        "inputs": [
            {"name": i.name, "tables": list(i.tables), "rows": run.input_rows.get(i.name)} for i in run.spec.inputs
        ],
        "outputs": [{"table": t, "rows": rows} for t, rows in run.loaded_rows.items()],
        "sandbox": run.sandbox,
        "duration_s": round(run.duration_s, 3),
        "record": str(run.folder.record_dir),
        "executed_notebook": str(run.executed_notebook) if run.executed_notebook.exists() else None,  # none if the kernel never ran
        **dict(extra or {}),
    }
