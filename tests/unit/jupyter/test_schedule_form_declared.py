"""A declared notebook's Schedule form, without a kernel: it opens filled in from the declaration
(declarations.yaml read through definitions.py, or a dg project's defs.yaml), says where that is,
and its buttons run `nb-assets schedule --update`, with the fields the form has no box for passed
as declared (a flag left out would clear them). Real ipywidgets, real files, the project's readers."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from nb_assets.jupyter.form_project import form_project
from nb_assets.jupyter.schedule_form import ScheduleForm
from nb_assets.jupyter.schedule_runner import FormFields, schedule_argv
from nb_assets.project.starter import write_starter
from support.paths import REPO

DEFINITIONS = ("from pathlib import Path\nfrom nb_assets import load_declarations_yaml\n"
               "BASE_DIR = Path(__file__).parent\nPOLICY = BASE_DIR / 'policy.yaml'\n"
               "NOTEBOOKS = [*load_declarations_yaml(BASE_DIR / 'declarations.yaml')]\n")
ENTRY = """\
notebooks:
  - path: notebooks/x.ipynb
    owners: [a@example.com, team:data-eng]
    params: {limit: 100}
    purpose: marketing
    group: kpis
    cron: 0 6 * * 1
    on_inputs_landed: true
    outputs: {mart.top_orders: mart.top_orders_v2}
    partitions: {start: '2026-01-01', column: day}
    freshness: 26h
"""


@pytest.fixture
def declared(tmp_path: Path) -> Path:
    """A definitions.py project whose declarations.yaml declares notebooks/x.ipynb (the starter)."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "policy.yaml", root / "policy.yaml")
    (root / "definitions.py").write_text(DEFINITIONS)
    (root / "declarations.yaml").write_text("# reviewed\n" + ENTRY)
    write_starter(root / "notebooks" / "x.ipynb")
    return root


def test_a_declared_notebooks_form_opens_filled_in_from_its_declaration(declared: Path) -> None:
    form = ScheduleForm(declared / "notebooks" / "x.ipynb")
    assert (form.owners.value, form.trigger.value, form.cron.value, form.timezone.value) == \
        ("a@example.com, team:data-eng", "both", "0 6 * * 1", "")  # no timezone declared: none sent
    assert (form.purpose.value, form.daily_from.value, form.freshness.value) == ("marketing", "2026-01-01", "26h")
    assert form.params["limit"].value == "100"
    header = form.header.value
    assert "Scheduled: <code>notebooks/x.ipynb</code></b> is declared in <code>declarations.yaml:3</code>" in header, header
    assert "--update" in header and "reschedule/NAME" in header and "a field left empty clears it" in header
    assert form.buttons["schedule"].description == "Update schedule"
    # The declared parameter is sent although it is the notebook's default: the update keeps it declared; the
    # group, the output's table and the partition column, which the form has no box for, are sent as declared.
    assert form.fields().flags() == [
        "--owner", "a@example.com", "--owner", "team:data-eng", "--cron", "0 6 * * 1", "--on-inputs-landed",
        "--param", "limit=100", "--purpose", "marketing", "--daily-from", "2026-01-01", "--freshness", "26h",
        "--group", "kpis", "--output", "mart.top_orders=mart.top_orders_v2", "--partition-column", "day"]

    form.cron.value = "0 7 * * 1"  # typed over the declaration: kept for the next %nb_schedule ...
    assert ScheduleForm(declared / "notebooks" / "x.ipynb").cron.value == "0 7 * * 1"
    (declared / "declarations.yaml").write_text(ENTRY.replace("0 6 * * 1", "30 5 * * 1"))  # ... until it changes
    again = ScheduleForm(declared / "notebooks" / "x.ipynb")
    assert again.cron.value == "30 5 * * 1" and "declarations.yaml:2" in again.header.value


def test_a_declared_purpose_the_policy_no_longer_offers_is_shown_and_sent_not_dropped(declared: Path) -> None:
    """Dropped to "(none)", an update would send no --purpose and clear it: it stays, marked, for Check to refuse."""
    yaml_file = declared / "declarations.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("purpose: marketing", "purpose: retired_purpose"))
    form = ScheduleForm(declared / "notebooks" / "x.ipynb")
    assert form.purpose.value == "retired_purpose"
    assert ("retired_purpose (not in the policy)", "retired_purpose") in list(form.purpose.options)
    assert form.fields().purpose == "retired_purpose"


def test_a_notebook_not_declared_opens_as_before(declared: Path) -> None:
    notebook = write_starter(declared / "notebooks" / "y.ipynb")
    form = ScheduleForm(notebook)
    assert (form.owners.value, form.cron.value, form.timezone.value, form.freshness.value) == ("", "", "UTC", "")
    assert form.buttons["schedule"].description == "Schedule" and "Scheduled:" not in form.header.value
    assert "schedule/NAME" in form.header.value and "--update" not in form.header.value


def test_the_buttons_update_a_declared_notebook_and_give_a_dg_project_no_definitions() -> None:
    nb = Path("/p/notebooks/x.ipynb")
    flags = FormFields(owners=["a"], cron="0 6 * * *")
    base = [sys.executable, "-m", "nb_assets.cli", "schedule", str(nb), "--owner", "a", "--cron", "0 6 * * *"]
    assert schedule_argv(nb, Path("/p"), "schedule", flags, update=True) == \
        [*base, "--definitions", "/p/definitions.py", "--update", "--git"]
    assert schedule_argv(nb, Path("/p"), "check", flags, dg=True, update=True) == [*base, "--update", "--until", "check"]


def test_in_a_dg_project_the_form_reads_its_components(tmp_path: Path) -> None:
    """A project dg made (pyproject.toml's [tool.dg]): the form's project is its root, not the dg-made
    definitions.py in its package, and a notebook's declaration is its NotebookComponent's defs.yaml."""
    root = tmp_path / "weekly"
    (root / "src" / "weekly" / "defs" / "notebooks" / "x").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "weekly"\n')
    (root / "src" / "weekly" / "definitions.py").write_text("")
    notebook = write_starter(root / "src" / "weekly" / "defs" / "notebooks" / "x" / "x.ipynb")
    not_yet = ScheduleForm(notebook)
    assert not_yet.project is not None and not_yet.project.root == root and not_yet.project.definitions is None
    assert "as a component, in <code>src/weekly/defs/notebooks/x/defs.yaml</code>" in not_yet.header.value
    component = notebook.parent / "defs.yaml"
    component.write_text("type: nb_assets.NotebookComponent\n\nattributes:\n  path: x.ipynb\n  owners: [a@example.com]\n"
                         "  cron: 0 6 * * 1\n  timezone: Europe/Berlin\n")
    form = ScheduleForm(notebook)
    assert (form.owners.value, form.cron.value, form.timezone.value) == ("a@example.com", "0 6 * * 1", "Europe/Berlin")
    assert "declared in <code>src/weekly/defs/notebooks/x/defs.yaml:4</code>" in form.header.value, form.header.value
    assert form_project(notebook) == form.project


def test_a_malformed_dg_configuration_is_said_in_the_form(tmp_path: Path) -> None:
    (tmp_path / "dg.toml").write_text("directory_type = [\n")
    form = ScheduleForm(write_starter(tmp_path / "notebooks" / "x.ipynb"))
    assert "dg.toml: malformed TOML" in form.status.value and form.project is None


def test_an_instance_value_with_spaces_goes_back_whole(declared: Path) -> None:
    """Prefilled as `us region='North America'`, the line reaches --instance as one K=V word, not two."""
    yaml_file = declared / "declarations.yaml"
    yaml_file.write_text(yaml_file.read_text().replace(
        "    freshness: 26h\n", "    freshness: 26h\n    instances:\n      us: {region: North America}\n"))
    form = ScheduleForm(declared / "notebooks" / "x.ipynb")
    assert form.instances.value == "us 'region=North America'"
    flags = form.fields().flags()
    at = flags.index("--instance")
    assert flags[at:at + 3] == ["--instance", "us", "region=North America"]
