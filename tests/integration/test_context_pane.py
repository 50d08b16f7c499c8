"""`%nb_context` in a real kernel, in a project whose instance holds a failed run."""

from __future__ import annotations

import html
import json
import os
from dataclasses import replace
from pathlib import Path

import papermill
import pytest

from support.failed_project import FailedProject, failed_project  # noqa: F401  (fixture)
from support.notebook_factory import code, write_notebook


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
    assert "<td>cell 5 (`total = len(rows)`)</td></tr>" in text  # the failed cell by its first line too
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
    from support.notebook_factory import RUNTIME, params

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
    # The cell is named with its first line: JupyterLab's prompt numbers do not count markdown cells.
    assert "error: draft (cell 4 (`import requests`), line 1): [network-access]" in text
    assert "error: draft writes mart.broken, but notebook broken writes it: write a table of its own" in text
    assert (f"Fix its error findings (nb-assets check drafts/draft.ipynb) and make it write tables of its own, then schedule it "
            f"from {failed_project.root}:<br><code>nb-assets schedule drafts/draft.ipynb --owner YOU@EXAMPLE.COM") in text
    assert "nb-assets schedule drafts/draft.ipynb" in plain


def test_a_missing_notebook_is_no_such_notebook_and_nothing_else(failed_project: FailedProject) -> None:
    """`broken` has runs; a missing file of that name must not show them, nor anything but the message."""
    from nb_assets.jupyter.context_pane import notebook_context, render_html

    missing = failed_project.root / "sub" / "broken.ipynb"
    context = notebook_context(missing)
    assert context.problem == f"no such notebook: {missing}"
    assert context.runs == [], [r.run_id for r in context.runs]
    shown = html.unescape(render_html(context))
    assert "no such notebook" in shown and "not declared" not in shown and "nb-assets schedule" not in shown
    assert "runs" not in shown.lower() and failed_project.broken_run[:8] not in shown, shown


# --- a small project whose notebooks live in a subfolder, as the README lays a project out ----------

SMALL_POLICY = """\
zones:
  pii: {mode: enforce}
  finance: {mode: enforce}
  public: {mode: enforce}
purposes:
  reporting: [finance, public]
  customer_analytics: [finance, pii, public]
tables:
  raw.customers: [pii]
  raw.orders: [finance]
  raw.web_events: [public]
"""

SMALL_DEFINITIONS = """\
from pathlib import Path

from nb_assets import NotebookAsset, notebook_definitions

BASE_DIR = Path(__file__).parent
defs = notebook_definitions(
    [NotebookAsset("notebooks/clean.ipynb", owners=["a@example.com"], purpose="reporting")],
    warehouse=BASE_DIR / "warehouse.duckdb", base_dir=BASE_DIR, policy=BASE_DIR / "policy.yaml", sandbox="local",
)
"""


@pytest.fixture
def small_project(tmp_path: Path) -> Path:
    """raw.customers [pii], raw.orders [finance], raw.web_events [public]; `clean` (declared)
    reads raw.orders and writes mart.orders_clean, which has not run yet."""
    import duckdb

    from support.notebook_factory import RUNTIME

    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw; CREATE SCHEMA mart")
        con.execute("CREATE TABLE raw.customers AS SELECT range AS id, 'c' || range || '@example.com' AS email FROM range(3)")
        con.execute("CREATE TABLE raw.orders AS SELECT range AS id, range % 3 AS customer_id, range * 2.5 AS amount FROM range(5)")
        con.execute("CREATE TABLE raw.web_events AS SELECT range AS id FROM range(4)")
    (root / "policy.yaml").write_text(SMALL_POLICY)
    (root / "definitions.py").write_text(SMALL_DEFINITIONS)
    write_notebook(root / "notebooks" / "clean.ipynb", code(RUNTIME),
                   code("%%sql orders\nSELECT * FROM raw.orders"), code("output('mart.orders_clean', orders)"))
    return root


def _run_in_jupyter(notebook: Path) -> list[list[dict]]:
    """Every cell's outputs, executed by a real kernel started in the notebook's own folder, as
    Jupyter (and nbconvert, papermill) start it; no front end tells this kernel the notebook's path."""
    import nbclient
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120, allow_errors=True,
                            resources={"metadata": {"path": str(notebook.parent)}}).execute()
    return [[dict(o) for o in cell.get("outputs", [])] for cell in nb.cells]


def test_in_a_subfolder_a_project_relative_path_works_and_a_bare_magic_suggests_it(
    small_project: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from support.notebook_factory import RUNTIME

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)  # as under nbconvert, papermill or an older Jupyter
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("NB_ASSETS_WAREHOUSE", raising=False)
    notebook = write_notebook(
        small_project / "notebooks" / "top_customers.ipynb", code(RUNTIME),
        code("%nb_context notebooks/top_customers.ipynb"), code("%nb_context"), code("%nb_context notebooks/nope.ipynb"),
        code("%nb_context 'notebooks/top_customers.ipynb'"),
        code("%%sql customers\nSELECT * FROM raw.customers"), code("output('mart.top_customers', customers.head(2))"),
    )
    outputs = _run_in_jupyter(notebook)
    errors = [o for cell in outputs for o in cell if o["output_type"] == "error"]
    print(json.dumps(outputs, indent=1)[:6000])  # what the kernel showed, for a failing assertion

    # The README's form, relative to the project root, from the notebook's own folder.
    [pane] = [o for o in outputs[1] if o["output_type"] == "display_data"]
    text = html.unescape("".join(pane["data"]["text/html"]))
    assert f"<div style='color:#666'>{notebook}</div>" in text
    assert "not declared in" in text and "no such notebook" not in text
    # Zones propagate to what it writes, as `nb-assets schedule` previews them.
    assert ">raw.customers [pii]<" in text and ">mart.top_customers [pii]<" in text, text
    assert "--purpose customer_analytics" in text

    # No path known: the hint names the form that just worked, from here.
    bare = "".join(o.get("text", "") for o in outputs[2] if o["output_type"] == "stream")
    assert "UsageError: %nb_context cannot tell which notebook is open here" in bare, outputs[2]
    assert f"relative to the project root {small_project} (works anywhere inside it): " in bare
    listed = bare.rstrip().split("%nb_context notebooks/NOTEBOOK.ipynb (notebooks here: ", 1)[1]
    assert sorted(listed.removesuffix(")").split(", ")) == ["clean.ipynb", "top_customers.ipynb"], bare  # newest first

    # Not found: the message and every place tried, nothing else.
    missing = outputs[3]
    assert [o["output_type"] for o in missing] == ["stream"], missing
    assert missing[0]["text"].strip() == (f"UsageError: no such notebook: notebooks/nope.ipynb; tried "
                                          f"{small_project}/notebooks/notebooks/nope.ipynb, {small_project}/notebooks/nope.ipynb")
    assert [o["output_type"] for o in outputs[4]] == ["display_data"], outputs[4]  # quoted, as a shell would take it
    assert not errors, errors  # the usage errors are messages, not tracebacks; the notebook's own cells ran


def test_the_hint_names_the_only_notebook_of_a_folder_and_a_project_relative_path_works_anywhere_inside(
    small_project: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nb_assets.jupyter.context_pane import NotebookNotFound, open_notebook_path

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    solo = write_notebook(small_project / "notebooks" / "deep" / "er" / "solo.ipynb", code("1"))
    with pytest.raises(NotebookNotFound) as hint:
        open_notebook_path(None, {}, cwd=solo.parent)
    assert str(hint.value).endswith(f"relative to the project root {small_project} (works anywhere inside it): "
                                    "%nb_context notebooks/deep/er/solo.ipynb")
    for here in (solo.parent, solo.parent.parent, small_project / "notebooks", small_project):
        assert open_notebook_path("notebooks/deep/er/solo.ipynb", {}, cwd=here) == solo
    assert open_notebook_path("solo.ipynb", {}, cwd=solo.parent) == solo  # from the notebook's own folder, as before
    # What a front end says is resolved the same way; when it points nowhere, naming the notebook is the way out.
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/deep/er/solo.ipynb")
    assert open_notebook_path(None, {}, cwd=solo.parent) == solo
    monkeypatch.setenv("JPY_SESSION_NAME", "gone.ipynb")
    with pytest.raises(NotebookNotFound) as hint:
        open_notebook_path(None, {}, cwd=solo.parent)
    assert str(hint.value).startswith(f"no such notebook: gone.ipynb (its name when its kernel started: renamed since?); "
                                      f"tried {solo.parent / 'gone.ipynb'}, ")
    assert str(hint.value).endswith("; or name it, relative to the project root "
                                    f"{small_project} (works anywhere inside it): %nb_context notebooks/deep/er/solo.ipynb")
    assert open_notebook_path("solo.ipynb", {}, cwd=solo.parent) == solo  # the argument comes first
    # Renamed on its first save: the notebook just saved is listed first, whatever its name.
    renamed = write_notebook(small_project / "notebooks" / "two" / "zz_renamed.ipynb", code("1"))
    older = write_notebook(renamed.parent / "aa_older.ipynb", code("1"))
    os.utime(older, (renamed.stat().st_mtime - 60,) * 2)
    monkeypatch.setenv("JPY_SESSION_NAME", "Untitled.ipynb")
    with pytest.raises(NotebookNotFound) as hint:
        open_notebook_path(None, {}, cwd=renamed.parent)
    assert str(hint.value).endswith("(notebooks here: zz_renamed.ipynb, aa_older.ipynb)"), str(hint.value)
    monkeypatch.delenv("JPY_SESSION_NAME")
    outside = small_project.parent / "loose"
    write_notebook(outside / "a.ipynb", code("1"))
    with pytest.raises(NotebookNotFound) as hint:  # no project: only the folder itself
        open_notebook_path("notebooks/a.ipynb", {}, cwd=outside)
    assert str(hint.value) == f"no such notebook: notebooks/a.ipynb; tried {outside / 'notebooks' / 'a.ipynb'}"
    with pytest.raises(NotebookNotFound) as hint:
        open_notebook_path(None, {}, cwd=outside)
    assert str(hint.value).endswith(f"name it, relative to this folder ({outside}) or absolute: %nb_context a.ipynb")


def _draft(small_project: Path, name: str, *cells: str) -> Path:
    from support.notebook_factory import RUNTIME

    return write_notebook(small_project / "notebooks" / f"{name}.ipynb", code(RUNTIME), *(code(c) for c in cells))


def test_an_undeclared_notebook_has_the_zones_schedule_previews(small_project: Path) -> None:
    """The pane's zones for a notebook not declared yet are those `nb-assets schedule` computes
    with it declared: from a labelled source (pii) and from a declared notebook's output (finance)."""
    from nb_assets.jupyter.context_pane import notebook_context, render_html, render_text
    from nb_assets.project.declaration import NotebookAsset
    from nb_assets.project.definitions_file import load_declarations
    from nb_assets.cli.schedule_workflow import check, preview_text

    draft = _draft(small_project, "spend", "%%sql customers\nSELECT * FROM raw.customers",
                   "%%sql orders\nSELECT * FROM mart.orders_clean", "output('mart.spend', customers)")
    context = notebook_context(draft)
    shown = {t["table"]: t["zones"] for t in (*context.inputs, *context.outputs)}
    assert shown == {"raw.customers": ["pii"], "mart.orders_clean": ["finance"], "mart.spend": ["finance", "pii"]}, shown
    assert context.purposes == ("customer_analytics",)
    assert "; purposes that may read it: customer_analytics\n" in render_text(context)

    project = load_declarations(small_project / "definitions.py")
    declared = replace(project, notebooks=[*project.notebooks,
                                           NotebookAsset("notebooks/spend.ipynb", owners=["b@example.com"], purpose="customer_analytics")])
    checked = check(declared, draft)
    assert checked.report is not None
    assert {t: sorted(checked.report.labels[t]) for t in shown} == shown, preview_text(checked)

    text = html.unescape(render_html(context))
    assert ">raw.customers [pii]; mart.orders_clean [finance]<" in text and ">mart.spend [finance, pii]<" in text
    # Not a typo: the declared notebook that writes it has not run yet.
    assert ("warning: spend (cell 3 (`%%sql orders`)): [no-such-table] SQL input 'orders': mart.orders_clean does not exist yet; "
            "notebook clean writes it") in context.findings


def test_a_misspelled_table_is_no_such_table_with_the_closest_name(small_project: Path) -> None:
    from nb_assets.jupyter.context_pane import notebook_context, render_html, render_text

    draft = _draft(small_project, "traffic", "%%sql events\nSELECT * FROM raw.web_event", "output('mart.traffic', events)")
    context = notebook_context(draft)
    # A warning, as `nb-assets check` says it (docs/notebook-contract.md); the next step still asks for the fix.
    finding = ("warning: traffic (cell 2 (`%%sql events`)): [no-such-table] SQL input 'events': "
               "no such table raw.web_event (did you mean raw.web_events?)")
    assert context.findings == [finding], context.findings  # once, not again as the policy's refusal
    assert "findings</th><td style='text-align:left'>1, below" in render_html(context)
    assert "mart.traffic [no zone]" not in render_text(context)  # unknown until the name is fixed, not "no zone"
    assert context.next_step is not None and context.next_step.startswith("Correct the table names the warehouse lacks, then"), context

    # A warehouse that cannot be opened: nothing to compare with, no such finding, the zones still shown.
    (small_project / "warehouse.duckdb").rename(small_project / "elsewhere.duckdb")
    fixed = _draft(small_project, "traffic", "%%sql events\nSELECT * FROM raw.web_events", "output('mart.traffic', events)")
    context = notebook_context(fixed)
    assert context.findings == [] and [o["zones"] for o in context.outputs] == [["public"]], context


def test_writing_a_source_table_or_reusing_a_name_is_said_and_the_zones_are_still_its_own(small_project: Path) -> None:
    from nb_assets.jupyter.context_pane import notebook_context

    clobber = _draft(small_project, "clobber", "%%sql orders\nSELECT * FROM raw.orders", "output('raw.customers', orders)")
    context = notebook_context(clobber)
    assert ("error: clobber writes raw.customers, but policy.yaml:9 labels it as a source table: write a table of its own"
            in [f.replace(str(small_project) + "/", "") for f in context.findings]), context.findings
    assert context.outputs == [{"table": "raw.customers", "zones": ["finance"]}]  # what it would write, not raw.customers' pii

    twin = write_notebook(small_project / "notebooks" / "sub" / "clean.ipynb", code("%%sql orders\nSELECT * FROM raw.web_events"),
                          code("output('mart.clean_twin', orders)"))
    context = notebook_context(twin)
    assert (f"error: clean: notebook name 'clean' is also used by {small_project / 'notebooks' / 'clean.ipynb'}; rename one file"
            in context.findings), context.findings
    assert context.outputs == [{"table": "mart.clean_twin", "zones": ["public"]}]


def test_only_a_notebook_run_when_its_inputs_land_waits_for_them_and_a_cron_says_its_next_run(
    small_project: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`clean` has never run and raw.orders never landed: only the triggers that wait for
    inputs say so; a cron says when it runs next, whatever landed."""
    from datetime import datetime, timedelta, timezone

    from nb_assets.jupyter.context_pane import notebook_context

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("NB_ASSETS_WAREHOUSE", raising=False)
    declared = 'NotebookAsset("notebooks/clean.ipynb", owners=["a@example.com"], purpose="reporting")'
    now = datetime.now(timezone.utc)
    six = now.replace(hour=6, minute=0, second=0, microsecond=0)
    tick = (six if six > now else six + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S UTC")
    for trigger, waits, then in (
        (', cron="0 6 * * *"', False, f"; next run on its cron: {tick}"),
        ("", False, None),  # on demand
        (", on_inputs_landed=True", True, None),
        (', cron="0 6 * * *", on_inputs_landed=True', True, f"; next cron tick: {tick}, then it runs once all its inputs have landed"),
    ):
        (small_project / "definitions.py").write_text(SMALL_DEFINITIONS.replace(declared, declared[:-1] + trigger + ")"))
        status = notebook_context(small_project / "notebooks" / "clean.ipynb").status
        assert status is not None and status.startswith("clean: never ran; no freshness rule"), (trigger, status)
        assert ("waiting for: input raw.orders: never landed" in status) is waits, (trigger, status)
        assert ("next run" in status or "next cron tick" in status) is (then is not None), (trigger, status)
        assert then is None or then in status, (trigger, status)


def test_a_notebook_not_declared_gets_checks_source_findings(small_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A literal read of a file a declared source holds points at that source, and a source the
    project does not declare is an error, in the words of `nb-assets check`."""
    import subprocess
    import sys

    from nb_assets.jupyter.context_pane import notebook_context

    monkeypatch.delenv("NB_ASSETS_WAREHOUSE", raising=False)
    (small_project / "definitions.py").write_text(
        SMALL_DEFINITIONS.replace("import NotebookAsset, notebook_definitions", "import NotebookAsset, Source, notebook_definitions")
        .replace('sandbox="local",', 'sandbox="local",\n    sources=[Source("regions", path="drops/regions.csv", zones=["public"])],'))
    (small_project / "drops").mkdir()
    (small_project / "drops" / "regions.csv").write_text("id,region\n1,EMEA\n")
    draft = _draft(small_project, "regional", "import pandas as pd\nregions = pd.read_csv('../drops/regions.csv')",
                   "%%source rates partner_rates", "output('mart.regional', regions)")
    context = notebook_context(draft)
    [hint] = [f for f in context.findings if "[direct-data-access]" in f]
    assert "read '../drops/regions.csv' through the declared source 'regions' instead" in hint, context.findings
    [unknown] = [f for f in context.findings if "reads source 'partner_rates'" in f]
    assert unknown.startswith("error: ") and "reads source 'partner_rates', which the project does not declare" in unknown

    done = subprocess.run([sys.executable, "-m", "nb_assets.cli", "check", "--json", str(draft)], cwd=small_project,
                          capture_output=True, text=True, timeout=300)
    [report] = json.loads(done.stdout)["notebooks"]
    said = {f["rule"]: f["message"] for f in report["findings"]}
    assert hint.endswith(f"[direct-data-access] {said['direct-data-access']}"), (hint, said)
    assert unknown.split("reads source", 1)[1] == said["unknown-source"].split("reads source", 1)[1], (unknown, said)
    assert context.next_step is not None and context.next_step.startswith("Fix its error findings"), context.next_step
