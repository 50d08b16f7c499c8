"""The parts of %nb_schedule that need no kernel: the form's fields as `nb-assets schedule`
flags, the command each button runs, and the preview drawing (escaped, nothing fetched)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nb_assets.jupyter.preview_svg import preview_svg
from nb_assets.jupyter.schedule_runner import FormFields, schedule_argv


def test_fields_become_the_commands_flags() -> None:
    fields = FormFields(owners=["a@example.com", " team:x "], trigger="both", cron="0 6 * * *", timezone="Europe/Berlin",
                        params={"ds": "2026-11-20"}, purpose="finance_reporting", instances="emea region=EMEA\n\napac region=APAC",
                        daily_from="")
    assert fields.flags() == ["--owner", "a@example.com", "--owner", "team:x", "--cron", "0 6 * * *", "--timezone",
                              "Europe/Berlin", "--on-inputs-landed", "--param", "ds=2026-11-20", "--purpose",
                              "finance_reporting", "--instance", "emea", "region=EMEA", "--instance", "apac", "region=APAC"]
    # "when inputs land" drops the cron the form may still hold
    assert "--cron" not in FormFields(owners=["a"], trigger="inputs", cron="0 6 * * *").flags()


def test_each_button_runs_the_schedule_command_one_step_further() -> None:
    nb, project, fields = Path("/p/notebooks/x.ipynb"), Path("/p"), FormFields(owners=["a"], cron="0 6 * * *")
    base = [sys.executable, "-m", "nb_assets.cli", "schedule", str(nb), "--owner", "a", "--cron", "0 6 * * *",
            "--definitions", "/p/definitions.py"]
    assert schedule_argv(nb, project, "check", fields) == [*base, "--until", "check"]
    assert schedule_argv(nb, project, "preview", fields, Path("/t/p.json")) == [*base, "--until", "preview",
                                                                                 "--preview-json", "/t/p.json"]
    assert schedule_argv(nb, project, "trial", fields) == base  # the dry run
    assert schedule_argv(nb, project, "schedule", fields) == [*base, "--git"]
    facts = Path("/tmp/trials.json")
    assert schedule_argv(nb, project, "trial", fields, trials_json=facts) == [*base, "--trials-json", str(facts)]
    assert schedule_argv(nb, project, "check", fields, trials_json=facts)[-2:] == ["--until", "check"]


def test_the_preview_drawing_escapes_names_and_loads_nothing() -> None:
    svg = preview_svg({"notebooks": [{
        "name": "x<script>", "path": "n.ipynb", "instance": None,
        "reads": [{"table": "raw.orders", "zones": ["finance"], "writer": None}],
        "writes": [{"table": "mart.x", "zones": ["finance"]}],
        "read_by": [{"notebook": "report", "table": "mart.x"}]}]})
    assert "<script" not in svg and "x&lt;script&gt;" in svg
    assert "raw.orders" in svg and "mart.x" in svg and "reads mart.x" in svg
    assert "href" not in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_a_refusal_keeps_only_what_the_findings_do_not_say_and_no_line_of_an_entry_not_written(tmp_path: Path) -> None:
    from nb_assets.jupyter.schedule_results import unseen_problems
    from nb_assets.spec import Finding

    declarations = tmp_path / "declarations.yaml"
    declarations.write_text("notebooks:\n  - path: notebooks/old.ipynb\n    owners: [a@example.com]\n")
    network = Finding("network-access", "error", "urllib.request.urlopen: network access", cell=5, line=2)
    refusal = (f"3 problem(s) in declared notebooks:\n"
               f"- {declarations}:4: /p/notebooks/net.ipynb (cell 5, line 2): [network-access] urllib.request.urlopen: network access\n"
               f"- {declarations}:4: /p/notebooks/net.ipynb: owner 'b@example.com' is reached by no channel\n"
               f"- {declarations}:2: /p/notebooks/old.ipynb: parameter 'x' is not in its parameters cell")
    assert unseen_problems(refusal, [network], declarations) == (
        "With it declared as the form fills it in, the project has 2 problem(s) besides the findings above:\n"
        "- /p/notebooks/net.ipynb: owner 'b@example.com' is reached by no channel\n"
        f"- {declarations}:2: /p/notebooks/old.ipynb: parameter 'x' is not in its parameters cell")  # a real line stays
    only = f"1 problem(s) in declared notebooks:\n- {declarations}:4: /p/notebooks/net.ipynb (cell 5, line 2): [network-access] urllib.request.urlopen: network access"
    assert unseen_problems(only, [network], declarations) == ""  # said once, by the findings table
    assert unseen_problems(only, [], declarations).startswith("With it declared as the form fills it in, the project has 1 problem(s):\n- /p/")

    typo = Finding("no-such-table", "warning", "SQL input 'rows': no such table raw.order (did you mean raw.orders?) in x", cell=4)
    said = unseen_problems("notebook net: no such table raw.order (did you mean raw.orders?)", [typo], declarations)
    assert said.startswith("the warehouse has no table raw.order (the no-such-table warning above)"), said
    other = Finding("no-such-table", "warning", "SQL input 'rows': no such table raw.orders_x in x", cell=4)
    assert unseen_problems("notebook net: no such table raw.order", [other], declarations) == "notebook net: no such table raw.order"


def test_the_trials_are_read_from_the_commands_trials_json() -> None:
    from nb_assets.jupyter.schedule_results import TrialFacts

    written = json.loads(json.dumps([  # as cli/schedule_workflow.trials_json writes them
        {"label": "notebooks/x.ipynb (instance 'emea')", "status": "success", "failure": None, "duration_s": 2.31,
         "sandbox": "local", "inputs": [["rows", 1200]], "outputs": [["mart.x_emea", 5, ["id (int64)", "amount (double)"]]],
         "record": ".nb_assets/schedule/x/run/emea/record", "executed": ".nb_assets/schedule/x/run/emea/record/executed.html",
         "run_id": "trial-x-20261207T120000"},
        {"label": "notebooks/x.ipynb (instance 'apac')", "status": "failed", "failure": "refused: no such source",
         "duration_s": 0.0, "sandbox": "local", "inputs": [], "outputs": [], "record": None, "executed": None, "run_id": None},
    ]))
    emea, apac = (TrialFacts.from_json(t) for t in written)
    assert (emea.label, emea.status, emea.duration_s, emea.sandbox) == ("notebooks/x.ipynb (instance 'emea')", "success", 2.31, "local")
    assert emea.inputs == [("rows", 1200)] and emea.outputs == [("mart.x_emea", 5, ["id (int64)", "amount (double)"])]
    assert emea.executed == ".nb_assets/schedule/x/run/emea/record/executed.html" and emea.run_id == "trial-x-20261207T120000"
    assert (apac.status, apac.failure, apac.record, apac.executed) == ("failed", "refused: no such source", None, None)
