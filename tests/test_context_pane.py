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
