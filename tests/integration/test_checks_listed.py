"""Each output's declared checks, as `nb-assets check` and `%nb_context` list them: kind, columns, severity.

A small project on a real DuckDB file: `orders` declares one check in its notebook's `output(...)`, a warning
in the notebook, and one more on its declaration; `draft` is not declared and has its own. The CLI runs as a
user runs it (a fresh interpreter); the pane is gathered and rendered by the functions `%nb_context` calls.
The demo's `nb-assets check` output shown in docs/checks.md is the CLI's, word for word.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from support.cli import nb_assets
from support.notebook_factory import RUNTIME, code, write_notebook
from support.paths import REPO

DEFINITIONS = """\
from pathlib import Path

from nb_assets import NotebookAsset, notebook_definitions, row_count

BASE_DIR = Path(__file__).parent
defs = notebook_definitions(
    [NotebookAsset("notebooks/orders.ipynb", owners=["a@example.com"],
                   checks={"mart.orders_checked": [row_count(min=1, severity="warn")]})],
    warehouse=BASE_DIR / "warehouse.duckdb", base_dir=BASE_DIR, sandbox="local",
)
"""
ORDERS_CHECKS = ["unique(order_id) [error]", "accepted_values(status, ['paid', 'open']) [warn]", "row_count(min=1) [warn]"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.orders AS SELECT range AS order_id, 'paid' AS status FROM range(3)")
    (root / "definitions.py").write_text(DEFINITIONS)
    write_notebook(root / "notebooks" / "orders.ipynb", code(RUNTIME + "\nfrom nb_assets.notebook import accepted_values, unique"),
                   code("%%sql orders\nSELECT order_id, status FROM raw.orders"),
                   code("output('mart.orders_checked', orders, checks=[unique('order_id'), "
                        "accepted_values('status', ['paid', 'open'], severity='warn')])"))
    write_notebook(root / "notebooks" / "draft.ipynb", code(RUNTIME + "\nfrom nb_assets.notebook import not_null"),
                   code("%%sql orders\nSELECT order_id, status FROM raw.orders"),
                   code("output('mart.draft', orders, checks=[not_null(['order_id', 'status'])])"),
                   code("output('mart.draft_copy', orders)"))
    return root


def test_nb_assets_check_lists_each_outputs_checks_with_the_declarations(project: Path) -> None:
    text = nb_assets("check", "notebooks/orders.ipynb", "notebooks/draft.ipynb", cwd=project)
    assert text.returncode == 0, text.stdout + text.stderr
    assert f"  checks: mart.orders_checked: {'; '.join(ORDERS_CHECKS)}\n" in text.stdout, text.stdout
    assert "  checks: mart.draft: not_null(order_id, status) [error]\n" in text.stdout, text.stdout
    assert "mart.draft_copy:" not in text.stdout  # an output without checks has no line

    as_json = json.loads(nb_assets("check", "notebooks/orders.ipynb", "notebooks/draft.ipynb", "--json", cwd=project).stdout)
    orders, draft = as_json["notebooks"]
    assert [(c["name"], c["kind"], c["columns"], c["severity"], c["blocking"]) for c in orders["checks"]["mart.orders_checked"]] == [
        ("unique_order_id", "unique", ["order_id"], "error", True),
        ("accepted_values_status", "accepted_values", ["status"], "warn", False),
        ("row_count", "row_count", [], "warn", False),  # the declaration's, after the notebook's
    ]
    assert [c["check"] for c in draft["checks"]["mart.draft"]] == ["not_null(order_id, status)"]
    assert list(draft["checks"]) == ["mart.draft"]


def test_a_declarations_check_on_a_table_the_notebook_does_not_write_is_an_error_finding(project: Path) -> None:
    definitions = project / "definitions.py"
    definitions.write_text(definitions.read_text().replace('"mart.orders_checked": [row_count', '"mart.order_checked": [row_count'))
    proc = nb_assets("check", "notebooks/orders.ipynb", cwd=project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[declared-checks]" in proc.stdout and "checks: mart.order_checked is not an output of the notebook" in proc.stdout


def test_the_context_pane_lists_each_outputs_checks(project: Path) -> None:
    from nb_assets.jupyter.context_pane import notebook_context, render_html, render_text

    declared = notebook_context(project / "notebooks" / "orders.ipynb")
    assert declared.declared and declared.checks == {"mart.orders_checked": ORDERS_CHECKS}, declared.problem
    assert f"checks of mart.orders_checked: {'; '.join(ORDERS_CHECKS)}" in render_text(declared).splitlines()
    shown = html.unescape(render_html(declared))
    assert f"checks of mart.orders_checked</th><td style='text-align:left'>{'; '.join(ORDERS_CHECKS)}<" in shown

    draft = notebook_context(project / "notebooks" / "draft.ipynb")  # not declared: what the notebook itself says
    assert not draft.declared and draft.checks == {"mart.draft": ["not_null(order_id, status) [error]"]}
    assert "checks of mart.draft</th>" in html.unescape(render_html(draft))


def test_the_manuals_check_output_is_what_the_cli_prints_for_the_demo(tmp_path: Path) -> None:
    page = (REPO / "docs" / "checks.md").read_text()
    shown = page.split("## Seeing a notebook's checks")[1].split("```text\n")[1].split("```")[0]
    demo = tmp_path / "demo"  # a copy without a warehouse: nothing to warn about, the output is the parse's
    demo.mkdir()
    for name in ("definitions.py", "declarations.yaml", "policy.yaml"):
        shutil.copy(REPO / name, demo / name)
    for folder in ("notebooks", "sources"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, demo / folder)
    proc = nb_assets("check", "notebooks/clean_orders.ipynb", cwd=demo)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == shown
