"""`nb-assets schedule --write` never writes a declaration the project would not load with.

Each kind of bad declaration is refused with the message the load gives, naming
the declarations.yaml line the entry would have had, and the file stays byte
for byte as it was. One case passes every Dagster-free rule and is refused only
by loading the project in Dagster (the last step, after the trial)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import nb_assets
from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from support.schedule_project import kpis_notebook as _kpis, project  # noqa: F401 - `project` is the fixture: a git copy of the demo

pytestmark = pytest.mark.slow


def _refused(project: Path, notebook: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Run `schedule --write`; it must refuse and leave declarations.yaml as it was."""
    declarations = project / "declarations.yaml"
    before = declarations.read_bytes()
    proc = nb_assets("schedule", str(notebook), "--write", *flags, cwd=project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert declarations.read_bytes() == before, proc.stdout + proc.stderr
    return proc


# Each: the flags (besides the notebook) and what the refusal says.
DEMO_CASES = {
    "owner not an e-mail address nor team:": (["--owner", "bob"], "owner 'bob' is neither an e-mail address nor team:<name>"),
    "team no channel reaches": (["--owner", "team:ghost"], "team:ghost: no notification channel reaches this owner"),
    "empty team name": (["--owner", "team:"], "owner 'team:' is neither an e-mail address nor team:<name>"),
    "cron of four fields": (["--owner", "a@example.com", "--cron", "0 6 * *"], "cron='0 6 * *' is not a cron schedule"),
    "cron on 30 February": (["--owner", "a@example.com", "--cron", "0 6 30 2 *"], "cron='0 6 30 2 *' is not a cron schedule"),
    "unknown time zone": (["--owner", "a@example.com", "--cron", "0 6 * * *", "--timezone", "Mars/Olympus"],
                          "timezone='Mars/Olympus' is not an IANA time zone"),
    "group Dagster refuses": (["--owner", "a@example.com", "--group", "order kpis"], "group='order kpis' is not a Dagster group name"),
    "partition column not a column": (["--owner", "a@example.com", "--daily-from", "2026-10-01", "--partition-column", "order day"],
                                      "DailyPartitions(column='order day') is not a column name"),
    "partitioned, waiting on unpartitioned input": (["--owner", "a@example.com", "--daily-from", "2026-10-01", "--on-inputs-landed"],
                                                    "needs daily inputs, but raw.orders is not partitioned"),
    "instance name": (["--owner", "a@example.com", "--instance", "EMEA", "ds=2026-11-20"], "instance name 'EMEA' must be lowercase"),
    "two instances, one table": (["--owner", "a@example.com", "--instance", "a", "ds=2026-11-20", "--instance", "b", "ds=2026-11-21",
                                  "--output", "mart.order_kpis=mart.order_kpis"], "one table, one writer"),
}


@pytest.mark.parametrize("case", DEMO_CASES)
def test_a_bad_declaration_never_reaches_the_file(project: Path, case: str) -> None:
    flags, said = DEMO_CASES[case]
    proc = _refused(project, _kpis(project), "--purpose", "finance_reporting", *flags)
    assert said in proc.stderr, proc.stderr
    assert f"- {project / 'declarations.yaml'}:4: " in proc.stderr  # the line the entry would have had
    assert "3/6 trial" not in proc.stdout and "Traceback" not in proc.stderr


def test_a_second_writer_of_a_table_never_reaches_the_file(project: Path) -> None:
    clobber = write_notebook(project / "notebooks" / "orders_again.ipynb", code(RUNTIME),
                             code("%%sql rows\nSELECT * FROM raw.orders"), code("output('mart.orders_clean', rows)"))
    proc = _refused(project, clobber, "--owner", "a@example.com", "--purpose", "finance_reporting")
    assert "writes mart.orders_clean, which" in proc.stderr and "clean_orders.ipynb writes too; one table, one writer" in proc.stderr


def test_a_notebook_named_like_a_reserved_word_never_reaches_the_file(project: Path) -> None:
    named = _kpis(project).rename(project / "notebooks" / "output.ipynb")
    proc = _refused(project, named, "--owner", "a@example.com", "--purpose", "finance_reporting")
    assert "'output' cannot name a Dagster asset" in proc.stderr and "rename the file" in proc.stderr


def test_an_existing_declaration_is_not_declared_twice_and_the_message_says_what_to_do(project: Path) -> None:
    proc = _refused(project, project / "notebooks" / "clean_orders.ipynb", "--owner", "a@example.com")
    assert "clean_orders.ipynb is already declared there" in proc.stderr and "edit that entry" in proc.stderr
    assert "definitions.py" in proc.stderr  # declared in the Python list: no YAML line to name


def test_an_email_owner_without_smtp_never_reaches_the_file(project: Path) -> None:
    """A project whose notifications have a webhook and no SMTP channel: e-mail owners are
    unreachable; a team owner with a webhook is fine, and Dagster loads the project with it."""
    (project / "definitions.py").write_text(
        "from pathlib import Path\n"
        "from nb_assets import Notifications, WebhookChannel, load_declarations_yaml, notebook_definitions\n"
        "BASE_DIR = Path(__file__).parent\n"
        "defs = notebook_definitions(\n"
        "    load_declarations_yaml(BASE_DIR / 'declarations.yaml'), warehouse=str(BASE_DIR / 'warehouse.duckdb'), base_dir=BASE_DIR,\n"
        "    notifications=Notifications(webhooks={'data-eng': WebhookChannel(url='http://127.0.0.1:9/')}),\n"
        ")\n"
    )
    notebook = _kpis(project)
    proc = _refused(project, notebook, "--owner", "a@example.com")
    assert "a@example.com: no notification channel reaches this owner" in proc.stderr
    assert "e-mail addresses need Notifications(email=SmtpChannel(...))" in proc.stderr
    assert f"{project / 'declarations.yaml'}:4: " in proc.stderr
    ok = nb_assets("schedule", str(notebook), "--owner", "team:data-eng", cwd=project)
    assert ok.returncode == 0 and "6/6 dry run" in ok.stdout, ok.stdout + ok.stderr


def test_a_rule_only_the_dagster_load_knows_is_refused_after_the_trial_with_the_loads_message(project: Path) -> None:
    """The definitions' own translator refuses notebooks without a group: no Dagster-free
    check knows that rule; loading the project in Dagster, the last step, does."""
    definitions = project / "definitions.py"
    text = definitions.read_text()
    definitions.write_text(
        text.replace("from nb_assets import (", "from nb_assets import (\n    NotebookTranslator,")
        .replace("defs = notebook_definitions(\n    [*NOTEBOOKS, *NOTEBOOKS_WITH_SOURCES],", "class HouseRules(NotebookTranslator):\n"
                 "    def get_tags(self, props):\n"
                 "        if props.notebook is not None and props.notebook.group is None and not props.notebook.instance:\n"
                 "            raise ValueError(f'house rule: {props.notebook.path} needs a group')\n"
                 "        return super().get_tags(props)\n\n\n"
                 "defs = notebook_definitions(\n    [*NOTEBOOKS, *NOTEBOOKS_WITH_SOURCES], translator=HouseRules(),")
    )
    assert "translator=HouseRules()" in definitions.read_text()
    proc = _refused(project, _kpis(project), "--owner", "a@example.com", "--purpose", "finance_reporting")
    assert "3/6 trial" in proc.stdout and "4/6 load" in proc.stdout, proc.stdout
    assert "Dagster would not load the project with this declaration; nothing declared" in proc.stderr
    assert "ValueError: house rule: notebooks/order_kpis.ipynb needs a group" in proc.stderr
    assert f"({definitions}:" in proc.stderr  # the line of the definitions file that raised
    plan = (project / "plans" / "order_kpis.md").read_text()
    assert "- **refused**; nothing was declared" in plan and "house rule" in plan

    # The same candidate file, loaded as Dagster loads it, gives the very message schedule gave.
    from nb_assets.project.declaration import NotebookAsset
    from nb_assets.project.declarations_yaml import with_declaration

    declarations = project / "declarations.yaml"
    candidate = with_declaration(declarations.read_text(), declarations, NotebookAsset(
        "notebooks/order_kpis.ipynb", owners=("a@example.com",), purpose="finance_reporting"))
    (project / "candidate.yaml").write_text(candidate)
    subprocess.run([sys.executable, "-m", "nb_assets.defs.load_check", str(definitions), "--declarations", str(declarations),
                    "--candidate", str(project / "candidate.yaml"), "--result", str(project / "verdict.json")],
                   cwd=project, check=True, capture_output=True, timeout=300)
    verdict = json.loads((project / "verdict.json").read_text())
    assert verdict["ok"] is False and verdict["error"] in proc.stderr


def test_a_declaration_the_load_refuses_is_refused_with_the_same_message(project: Path) -> None:
    """What schedule prints is what loading the project with the entry gives, line and all."""
    from nb_assets.project.declaration import NotebookAsset
    from nb_assets.project.declarations_yaml import with_declaration

    proc = _refused(project, _kpis(project), "--owner", "bob", "--owner", "team:ghost", "--purpose", "finance_reporting")
    declarations = project / "declarations.yaml"
    (project / "candidate.yaml").write_text(with_declaration(declarations.read_text(), declarations, NotebookAsset(
        "notebooks/order_kpis.ipynb", owners=("bob", "team:ghost"), purpose="finance_reporting")))
    subprocess.run([sys.executable, "-m", "nb_assets.defs.load_check", str(project / "definitions.py"), "--declarations",
                    str(declarations), "--candidate", str(project / "candidate.yaml"), "--result", str(project / "verdict.json")],
                   cwd=project, check=True, capture_output=True, timeout=300)
    error = json.loads((project / "verdict.json").read_text())["error"]
    assert error.startswith("2 problem(s) in declared notebooks:") and f"{declarations}:4: " in error
    assert proc.stderr.strip() == f"nb-assets schedule: {error}"


def test_a_trial_that_never_ran_the_notebook_prints_no_python_none(project: Path) -> None:
    """A query that fails in the warehouse stops the trial before the kernel starts: the
    output says nothing was executed, never `None`."""
    notebook = write_notebook(project / "notebooks" / "status_codes.ipynb", md("# Status codes"), code(RUNTIME),
                              code("%%sql codes\nSELECT CAST(status AS INTEGER) AS code FROM raw.orders"),
                              code("output('mart.status_codes', codes)"))
    proc = nb_assets("schedule", str(notebook), "--owner", "a@example.com", "--purpose", "finance_reporting", cwd=project)
    assert proc.returncode == 1 and "the trial run failed, nothing declared" in proc.stderr, proc.stdout + proc.stderr
    assert "nothing was executed: the run stopped before the notebook started" in proc.stdout, proc.stdout
    assert "None" not in proc.stdout
    assert "- nothing was executed" in (project / "plans" / "status_codes.md").read_text()


OFF_WARNING = ("warning: owner team:data-eng: its channel is off here (environment variable NB_ASSETS_DATA_ENG_WEBHOOK "
               "is not set): failure notices will not reach it until that is set")


def test_an_owner_whose_channel_is_off_here_is_declared_with_a_warning(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's data-eng webhook is configured but its variable is unset here: the load accepts
    the owner (production may set it), and schedule says its notices go nowhere until then."""
    monkeypatch.delenv("NB_ASSETS_DATA_ENG_WEBHOOK", raising=False)
    proc = nb_assets("schedule", str(_kpis(project)), "--owner", "team:data-eng", "--purpose", "finance_reporting",
                     "--write", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert OFF_WARNING in proc.stdout and proc.stdout.index(OFF_WARNING) < proc.stdout.index("2/6 preview"), proc.stdout
    assert "owners: ['team:data-eng']" in (project / "declarations.yaml").read_text()


def test_an_owner_is_silent_exactly_when_the_failure_sensor_finds_its_channel_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from nb_assets.project.declaration_checks import silent_owners
    from nb_assets.notify.channels import Notifications, SmtpChannel, WebhookChannel

    notifications = Notifications(email=SmtpChannel("localhost", username_env="NB_TEST_SMTP_USER", password_env="NB_TEST_SMTP_PASSWORD"),
                                  webhooks={"data-eng": WebhookChannel(url_env="NB_TEST_DATA_ENG_WEBHOOK")})
    for name in ("NB_TEST_SMTP_USER", "NB_TEST_SMTP_PASSWORD", "NB_TEST_DATA_ENG_WEBHOOK"):
        monkeypatch.delenv(name, raising=False)
    owners = ["team:data-eng", "a@example.com", "team:ghost", "bob"]  # unreachable and malformed owners are other checks'
    assert silent_owners(owners, notifications) == [
        "owner team:data-eng: its channel is off here (environment variable NB_TEST_DATA_ENG_WEBHOOK is not set): "
        "failure notices will not reach it until that is set",
        "owner a@example.com: its channel is off here (environment variable(s) NB_TEST_SMTP_USER, NB_TEST_SMTP_PASSWORD "
        "not set): failure notices will not reach it until that is set",
    ]
    assert set(notifications.off_channels()) == {"email", "team:data-eng"}  # what the sensor says at load
    monkeypatch.setenv("NB_TEST_DATA_ENG_WEBHOOK", "http://127.0.0.1:9/")
    monkeypatch.setenv("NB_TEST_SMTP_USER", "u")
    monkeypatch.setenv("NB_TEST_SMTP_PASSWORD", "p")
    assert silent_owners(owners, notifications) == [] and notifications.off_channels() == {}
    assert silent_owners(owners, None) == []
