"""The parts of %nb_schedule that need no kernel: the form's fields as `nb-assets schedule`
flags, the command each button runs, and the preview drawing (escaped, nothing fetched)."""

from __future__ import annotations

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


def test_the_preview_drawing_escapes_names_and_loads_nothing() -> None:
    svg = preview_svg({"notebooks": [{
        "name": "x<script>", "path": "n.ipynb", "instance": None,
        "reads": [{"table": "raw.orders", "zones": ["finance"], "writer": None}],
        "writes": [{"table": "mart.x", "zones": ["finance"]}],
        "read_by": [{"notebook": "report", "table": "mart.x"}]}]})
    assert "<script" not in svg and "x&lt;script&gt;" in svg
    assert "raw.orders" in svg and "mart.x" in svg and "reads mart.x" in svg
    assert "href" not in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")
