"""`%nb_context` in a real kernel, in a project whose instance holds a failed run."""

from __future__ import annotations

import html
import json
from pathlib import Path

import papermill
import pytest

from failed_project import FailedProject, failed_project  # noqa: F401  (fixture)
from notebook_factory import code, write_notebook


def _pane(project: FailedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_notebook: str, line: str = "") -> tuple[str, str]:
    """Run `%nb_context` in a kernel started in the project, as Jupyter would; return its text and HTML."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # found as the project's .dagster_home, like `make dev`
    monkeypatch.setenv("JPY_SESSION_NAME", str(project.root / open_notebook))  # what Jupyter Server tells kernels
    scratch = write_notebook(tmp_path / "pane.ipynb", code("%load_ext nb_assets.notebook"), code(f"%nb_context {line}".strip()))
    executed = tmp_path / "pane.out.ipynb"
    papermill.execute_notebook(str(scratch), str(executed), cwd=str(project.root), progress_bar=False, kernel_name="python3")
    outputs = json.loads(executed.read_text())["cells"][1]["outputs"]
    [shown] = [o for o in outputs if o["output_type"] == "display_data"]
    return "".join(shown["data"]["text/plain"]), html.unescape("".join(shown["data"]["text/html"]))


def test_the_pane_shows_the_declaration_lineage_runs_and_the_last_failure(
    failed_project: FailedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain, text = _pane(failed_project, tmp_path, monkeypatch, "broken.ipynb")
    assert plain.startswith(f"broken ({failed_project.root / 'broken.ipynb'})")
    for row in ("<th style='text-align:left;padding-right:1em'>owners</th><td style='text-align:left'>a@example.com, b@example.com, team:data-eng</td>",
                ">cron 0 6 * * *<", ">reporting<", ">ds='2026-11-20' (default '2026-01-01')<",
                ">mart.staged [finance]<", ">mart.broken [finance]<", ">staging<", ">summary<"):
        assert row in text
    # Every Dagster run links to the UI the project names; its status is shown.
    assert f"href='http://dagster.example.invalid:3000/runs/{failed_project.broken_run}'" in text
    assert f"<code>{failed_project.broken_run[:8]}</code></a></td><td style='color:#c33'>failed</td>" in text
    failure = text[text.index("<h4>Last failure"):]
    assert "broken.ipynb, cell 5, line 2</div><pre>  1 | total = len(rows)\n> 2 | missing = rows['currency']" in failure
    assert "<summary>traceback</summary>" in failure and "KeyError: 'currency'</pre>" in failure
    link = failure[failure.index("<a href='") + 9:]
    link = link[: link.index("'")]
    assert link.endswith("/record/executed.html") and (failed_project.root / link).is_file()


def test_a_refused_run_and_an_explicit_notebook(
    failed_project: FailedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, text = _pane(failed_project, tmp_path, monkeypatch, "broken.ipynb", line="guarded.ipynb")
    assert "<h3 style='margin:0.2em 0'>guarded</h3>" in text
    assert f"{failed_project.refused_run[:8]}</code></a></td><td style='color:#c63'>refused</td>" in text
    assert "may not read zone 'finance'" in text


def test_a_cli_runs_whole_id_and_where_each_run_happened(
    failed_project: FailedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CLI run's id is a time and a number: its first characters are only the date, so it is shown whole."""
    import shutil
    import subprocess
    import sys

    shutil.copy(failed_project.root / "warehouse.duckdb", tmp_path / "copy.duckdb")  # the shared project's stays as it is
    done = subprocess.run([sys.executable, "-m", "nb_assets.cli", "run", "staging.ipynb", "--sandbox", "local", "--json",
                           "--warehouse", str(tmp_path / "copy.duckdb")], cwd=failed_project.root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    plain, text = _pane(failed_project, tmp_path, monkeypatch, "staging.ipynb")
    assert f"<td><code>{run_id}</code></td><td style='color:#2a7'>success</td>" in text
    assert "<th>where</th>" in text and "</td><td>cli</td>" in text
    assert f"{run_id} success cli " in plain


def test_a_notebook_not_declared_shows_its_parse_and_how_to_schedule_it(
    failed_project: FailedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from notebook_factory import RUNTIME, params

    draft = failed_project.root / "drafts" / "draft.ipynb"
    write_notebook(draft, code(RUNTIME), params('ds = "2026-01-01"\nlimit = 10'),
                   code("%%sql rows\nSELECT * FROM mart.staged"), code("import requests"), code("output('mart.broken', rows)"))
    try:
        plain, text = _pane(failed_project, tmp_path, monkeypatch, "drafts/draft.ipynb")
    finally:
        shutil_rmtree = __import__("shutil").rmtree
        shutil_rmtree(draft.parent)
    assert f"not declared in {failed_project.root / 'definitions.py'}" in text
    for row in (">ds='2026-01-01', limit=10<", ">mart.staged [finance]<", ">mart.broken [finance]<"):
        assert row in text, text
    assert "error: draft (cell 4, line 1): [network-access]" in text
    assert "error: draft writes mart.broken, but notebook broken writes it: write a table of its own" in text
    assert (f"Fix its error findings (nb-assets check drafts/draft.ipynb) and make it write tables of its own, then schedule it "
            f"from {failed_project.root}:<br><code>nb-assets schedule drafts/draft.ipynb --owner YOU@EXAMPLE.COM") in text
    assert "nb-assets schedule drafts/draft.ipynb" in plain


def test_a_missing_notebook_is_no_such_notebook(failed_project: FailedProject) -> None:
    from nb_assets.context_pane import notebook_context, render_html

    context = notebook_context(failed_project.root / "brokn.ipynb")
    assert context.problem == f"no such notebook: {failed_project.root / 'brokn.ipynb'}"
    shown = html.unescape(render_html(context))
    assert "no such notebook" in shown and "not declared" not in shown and "nb-assets schedule" not in shown
