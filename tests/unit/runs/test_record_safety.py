"""The record's allowlist, vector by vector (no sandbox, no browser: tests/e2e/test_browser_ui.py opens
real records in Chromium). Each test feeds what a hostile notebook's kernel would write into its
executed notebook and checks what is kept: nothing that loads a URL or runs script, and still the
charts, tables and text a report is for."""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from nb_assets.runs.record import keep_safe_notebook, render_html
from nb_assets.runs.record_safety import placeholder_notebook, sanitize_notebook
from nb_assets.runs.record_safety_html import clean_html, clean_svg, css_is_inert, unsafe_parts
from support.hostile_record import inert_problems

BAIT = "http://127.0.0.1:9/"
PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a0e0a2b10000000049454e44ae426082")).decode()


def _notebook(*cells: dict, metadata: dict | None = None) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata or {}, "cells": list(cells)})


def _code(*outputs: dict, source: str = "x") -> dict:
    return {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": 1, "source": source, "outputs": list(outputs)}


def _display(data: dict, metadata: dict | None = None) -> dict:
    return {"output_type": "display_data", "data": data, "metadata": metadata or {}}


def _outputs(*outputs: dict) -> tuple[list[dict], dict]:
    notebook, found = sanitize_notebook(_notebook(_code(*outputs)))
    nbformat.validate(nbformat.from_dict(notebook))
    return notebook["cells"][0]["outputs"], dict(found)


def _markdown(source: str, attachments: dict | None = None) -> tuple[str, dict]:
    cell = {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": source}
    if attachments:
        cell["attachments"] = attachments
    notebook, found = sanitize_notebook(_notebook(cell))
    return notebook["cells"][0]["source"], dict(found)


def test_script_tags_and_event_handlers_are_removed_from_html_outputs() -> None:
    html = f'<p onclick="x()">a</p><script>fetch("{BAIT}js")</script><img src=x onerror="fetch(1)"><div onmouseover=y>b</div>'
    (output,), found = _outputs(_display({"text/html": html, "text/plain": "t"}))
    kept = output["data"]["text/html"]
    assert "script" not in kept and "fetch" not in kept and "on" not in kept.replace("tex2jax", "")
    assert "<p>a</p>" in kept and "b</div>" in kept
    assert found["script"] == 1 and found["event-handler"] == 3


def test_javascript_and_widget_outputs_are_dropped_and_said() -> None:
    outputs, found = _outputs(
        _display({"application/javascript": f"fetch('{BAIT}')"}),
        _display({"application/vnd.jupyter.widget-view+json": {"model_id": "m"}, "text/plain": "Slider()"}),
        _display({"text/vnd.mermaid": "graph TD; A-->B", "text/latex": "$\\href{x}{y}$", "application/pdf": "JVBE"}),
    )
    assert outputs[0]["data"] == {"text/plain": "[nb-assets: removed from the record: application/javascript]"}
    assert outputs[1]["data"] == {"text/plain": "Slider()"}
    assert set(outputs[2]["data"]) == {"text/plain"}
    assert found == {"script": 1, "widget": 1, "output": 3}


def test_frames_base_meta_links_and_forms_are_removed() -> None:
    html = (f'<iframe src="{BAIT}"></iframe><object data="{BAIT}"></object><embed src="{BAIT}"><base href="{BAIT}">'
            f'<meta http-equiv="refresh" content="0;url={BAIT}"><link rel=stylesheet href="{BAIT}"><form action="{BAIT}"><input></form>ok')
    found: Counter[str] = Counter()
    kept = clean_html(html, found)
    assert kept == "ok", kept
    assert found["frame"] == 3 and found["meta"] == 3 and found["url"] >= 4


def test_css_that_could_load_is_removed_and_plain_css_kept() -> None:
    found: Counter[str] = Counter()
    kept = clean_html(
        f'<style>@import url({BAIT}a.css)</style><div style="background: url({BAIT}b.png)">x</div>'
        '<table><tr style="text-align: right;"><td style="color: rgb(1, 2, 3); position: fixed">1</td></tr></table>', found)
    assert BAIT not in kept and "@import" not in kept and "position" not in kept
    assert '<tr style="text-align:right"><td style="color:rgb(1, 2, 3)">1</td>' in kept, kept
    assert found["css"] == 2
    for loads in (f"background:url({BAIT})", "background:URL(//x)", "x: image-set('a.png' 1x)", "@import 'a'",
                  "background: u\\72 l(x)", "cursor: url(#x), url(http://x)"):
        assert not css_is_inert(loads), loads
    for inert in ("text-align: right", "fill: url(#p1); stroke: rgba(0,0,0,.5)", "*{stroke-linejoin: round}",
                  "transform: translate(1px, 2px) scale(2)"):
        assert css_is_inert(inert), inert


def test_only_data_image_urls_survive() -> None:
    found: Counter[str] = Counter()
    kept = clean_html(
        f'<img src="{BAIT}a.png"><img src="//127.0.0.1:9/b.png"><img src="c.png"><img src="javascript:x">'
        f'<img src="data:text/html;base64,PHA+"><img src="data:image/png;base64,{PNG}" width="10" height="5">'
        f'<a href="{BAIT}">link text</a><a href="javascript:alert(1)">js</a>', found)
    assert kept.count("<img") == 6 and kept.count("src=") == 1, kept
    assert f'src="data:image/png;base64,{PNG}"' in kept and 'width="10"' in kept
    assert "href" not in kept and "link text" in kept and "js" in kept
    assert found["url"] == 7


def test_svg_charts_keep_their_shapes_and_lose_scripts_foreign_objects_and_external_references() -> None:
    svg = (
        '<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">'
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="40" height="40" onload="x()">'
        '<defs><style type="text/css">*{stroke-linejoin: round}</style><clipPath id="p1"><rect width="9" height="9"/></clipPath>'
        '<path id="m1" d="M 0 0 L 1 1"/></defs><script>fetch(1)</script><style>@import url(http://x/a.css)</style>'
        f'<foreignObject><img xmlns="http://www.w3.org/1999/xhtml" src="{BAIT}"/></foreignObject>'
        f'<image href="{BAIT}i.png"/><image xlink:href="data:image/png;base64,{PNG}"/><use xlink:href="{BAIT}s.svg#x"/>'
        '<use xlink:href="#m1" x="1" style="fill: #c00"/><g clip-path="url(#p1)"><rect fill="url(http://x/f)" width="3"/></g>'
        '<a href="javascript:x()"><rect width="1"/></a><set attributeName="href" to="javascript:x()"/></svg>'
    )
    found: Counter[str] = Counter()
    kept = clean_svg(svg, found)
    assert kept is not None
    for gone in ("onload", "script", "fetch", "foreignObject", BAIT, "@import", "http://x", "javascript", "<set"):
        assert gone not in kept, gone
    for stays in ('clip-path="url(#p1)"', 'xlink:href="#m1"', "stroke-linejoin", 'd="M 0 0 L 1 1"', f"base64,{PNG}"):
        assert stays in kept, stays
    assert found["script"] == 1 and found["frame"] == 1 and found["event-handler"] == 1 and found["url"] >= 2
    hidden = clean_svg('<svg xmlns="http://www.w3.org/2000/svg"><style type="text/css"><title/>@import url(http://x/a.css)</style></svg>', found)
    assert hidden is not None and "@import" not in hidden  # text after a child element is the stylesheet's too
    assert clean_svg('<!DOCTYPE x [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>', found) is None
    assert clean_svg("<html/>", found) is None and clean_svg("not xml", found) is None


def test_image_outputs_keep_checked_base64_and_sizes_and_lose_filenames() -> None:
    outputs, found = _outputs(
        _display({"image/png": PNG + "\n", "text/plain": "<Figure>"}, {"image/png": {"width": 600, "height": "1 onerror=x"}}),
        _display({"image/png": '"><script>x()</script>', "text/plain": "bad"}),
        _display({"image/jpeg": PNG}, {"filenames": {"image/jpeg": f"{BAIT}f.jpg"}}),
    )
    assert outputs[0]["data"]["image/png"] == PNG and outputs[0]["metadata"] == {"image/png": {"width": 600}}
    assert outputs[1]["data"] == {"text/plain": "bad"}
    assert outputs[2]["metadata"] == {} and found == {"output": 1, "url": 1}


def test_plain_markdown_is_kept_as_written() -> None:
    for source in ("# Clean orders\n\nTurns the raw feed into *one* row per order.\n\n- a\n- b",
                   "Revenue is in `USD`; $x^2$ and 3 > 2 | a table? no."):
        kept, found = _markdown(source)
        assert kept == source and found == {}


@pytest.mark.parametrize("source", [
    f"![x]({BAIT}a.png)",
    f"[docs](javascript:fetch('{BAIT}'))",
    f'<img src="{BAIT}b.png" onerror="fetch(1)">',
    f"![ref][t]\n\n[t]: {BAIT}c.png",
    f"<{BAIT}auto>",
    f"see www.example.invalid or //127.0.0.1:9/x",
    f"$\\style{{background: url({BAIT}m.png)}}{{x}}$",
    "```mermaid\ngraph TD; A-->B\n```",
])
def test_live_markdown_becomes_one_line_of_clean_html_that_math_skips(source: str) -> None:
    kept, found = _markdown(source)
    assert "\n" not in kept and kept.startswith('<div class="tex2jax_ignore">'), kept
    rendered = nbformat_render_markdown(kept)
    assert "href=" not in rendered and "src=" not in rendered and "onerror" not in rendered, rendered
    assert 'class="mermaid"' not in rendered and "<script" not in rendered
    assert found["markdown-as-html"] == 1


def nbformat_render_markdown(source: str) -> str:
    """How nbconvert (our HTML and Dagster's page) renders a kept Markdown cell."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(source)


def test_a_kept_markdown_cell_renders_back_to_the_same_html() -> None:
    kept, _ = _markdown(f"Intro\n\n```\ncode with ![x]({BAIT}) inside\n\n\nand blank lines\n```\n\n<b>bold</b>")
    rendered = nbformat_render_markdown(kept)
    assert "<img" not in rendered and "<b>bold</b>" in rendered and "inside\n\n\nand" in rendered.replace("&#10;", "\n")


def test_markdown_attachments_are_inlined_as_data_images() -> None:
    kept, found = _markdown("![chart](attachment:c.png) ![gone](attachment:s.svg)",
                            {"c.png": {"image/png": PNG}, "s.svg": {"image/svg+xml": "PHN2Zz4="}})
    assert f'src="data:image/png;base64,{PNG}"' in kept and found["output"] == 1


def test_raw_cells_and_metadata_are_cleaned() -> None:
    notebook, found = sanitize_notebook(_notebook(
        {"cell_type": "raw", "id": "r1", "metadata": {"raw_mimetype": "text/html"}, "source": f"<script>fetch('{BAIT}')</script>raw"},
        {"cell_type": "code", "id": "bad id\" onload=\"x", "metadata": {"tags": ["parameters", "a\" b"], "jupyter": {"x": 1}},
         "execution_count": "7", "source": "1", "outputs": []},
        {"cell_type": "unknown"},
        metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {}}, "title": "<script>",
                  "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    ))
    nbformat.validate(nbformat.from_dict(notebook))
    raw, code = notebook["cells"]
    assert "script" not in raw["source"] and "raw" in raw["source"] and raw["metadata"] == {}
    assert code["id"] != "bad id\" onload=\"x" and code["metadata"] == {"tags": ["parameters"]} and code["execution_count"] is None
    assert set(notebook["metadata"]) == {"kernelspec"}
    assert found["script"] == 1 and found["widget"] == 1 and found["cell"] == 1


def test_keep_safe_notebook_replaces_garbage_and_links_with_a_notebook_saying_why(tmp_path: Path) -> None:
    garbage = tmp_path / "executed.ipynb"
    garbage.write_text("[1, 2]")
    notebook, facts = keep_safe_notebook(garbage)
    assert facts["sanitized"] is False and "version 4" in facts["error"]
    kept = nbformat.read(str(garbage), as_version=4)
    assert "was not kept" in kept.cells[0].source
    decoy = tmp_path / "decoy.txt"
    decoy.write_text("decoy")
    link = tmp_path / "link" / "executed.ipynb"
    link.parent.mkdir()
    os.symlink(decoy, link)
    _, facts = keep_safe_notebook(link)
    assert not link.is_symlink() and decoy.read_text() == "decoy" and "regular file" in facts["error"]
    assert placeholder_notebook("<script>x</script>](http://x)")["cells"][0]["source"].count("<") == 0


def test_the_html_rendering_has_a_policy_no_scripts_and_still_charts_and_tables() -> None:
    table = '<div><style scoped>.dataframe td {color: red}</style><table border="1" class="dataframe"><thead><tr style="text-align: right;"><th></th><th>email</th></tr></thead><tbody><tr><th>0</th><td>a@example.com</td></tr></tbody></table></div>'
    notebook, _ = sanitize_notebook(_notebook(
        {"cell_type": "markdown", "id": "m", "metadata": {}, "source": f"# Report\n\n![x]({BAIT})"},
        _code(_display({"image/png": PNG, "text/plain": "<Figure>"}),
              {"output_type": "execute_result", "execution_count": 1, "data": {"text/html": table, "text/plain": "df"}, "metadata": {}},
              _display({"application/javascript": "x()"}))))
    html = render_html(notebook)
    assert unsafe_parts(html) == []
    assert "<script" not in html and "http-equiv=\"Content-Security-Policy\"" in html and "default-src 'none'" in html
    assert f"data:image/png;base64,{PNG}" in html and '<table border="1" class="dataframe">' in html and "a@example.com" in html
    assert BAIT not in html


def test_the_last_check_refuses_a_rendering_that_could_load_or_run() -> None:
    for live in ("<script>x()</script>", f'<img src="{BAIT}">', '<p onclick="x()">', "<iframe></iframe>",
                 '<meta http-equiv="refresh" content="0">', f"<style>@import url({BAIT})</style>", f'<a href="{BAIT}">x</a>'):
        assert unsafe_parts(f"<html><body>{live}</body></html>"), live
    assert unsafe_parts('<a href="#x">x</a><img src="data:image/png;base64,AAAA"><style>a{background:url(data:image/png;base64,AA)}</style>') == []


def test_a_sanitized_hostile_notebook_is_inert_in_dagsters_own_rendering(tmp_path: Path) -> None:
    """The kept .ipynb is what Dagster's /notebook page renders, with nbconvert's default exporter."""
    from support import hostile_record

    cells = [
        {"cell_type": "markdown", "id": "m", "metadata": {}, "source": hostile_record.HOSTILE_MARKDOWN.format(bait=BAIT.rstrip("/"))},
        _code(_display({"text/html": f'<img src="{BAIT}a"><script>fetch("{BAIT}")</script>'}),
              _display({"application/javascript": f'fetch("{BAIT}")'}),
              _display({"image/svg+xml": f'<svg xmlns="http://www.w3.org/2000/svg"><image href="{BAIT}x"/></svg>'})),
    ]
    raw = tmp_path / "raw.ipynb"
    raw.write_text(_notebook(*cells))
    assert inert_problems(raw)  # the check sees the attack before sanitizing
    kept = tmp_path / "executed.ipynb"
    kept.write_text(_notebook(*cells))
    keep_safe_notebook(kept)
    assert inert_problems(kept) == []
