"""Several nb_assets.NotebookComponents in one dg project, with the project's settings in YAML.

One project, made once for the module by `create-dagster project` and scaffolded by the commands of
docs/components.md ("Several notebooks in one project"):

    orders_clean   (starter)                      raw.orders         → mart.orders_clean
    orders_kpis    (starter, --json-params table) mart.orders_clean  → mart.orders_kpis
    report         (--json-params from: an existing notebook outside defs/)
                                                  mart.orders_kpis   → mart.orders_report
    project        nb_assets.NotebookProjectSettings: policy, sandbox, notifications (a loopback SMTP
                   server), a declared source, a file drop

`dg check defs` loads it; `dg list defs` shows every notebook with its upstream, one resource and one
of each sensor, and the zone of raw.orders (policy.yaml) reaches the report two notebooks down. A
notebook and its reader materialize through `dg launch`; a failed run mails its owner over the YAML's
channel; a bad setting names its defs.yaml line.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml

from support.dg_project import BIN, forgetting_package, run, shown
from support.loopback_servers import SmtpSink, smtp_server
from support.paths import REPO

# One worker for the module: its tests share the project the fixture makes (tests/conftest.py's ONE_WORKER shape).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dg-multi")]

PAGE = REPO / "docs" / "components.md"
OWNER = "ops@example.com"  # the page's commands give it
POLICY = """\
zones:
  finance: {mode: enforce}
purposes:
  finance_reporting: [finance]
default_purpose: finance_reporting
tables:
  raw.orders: [finance]
"""
SETTINGS = """\
type: nb_assets.NotebookProjectSettings

attributes:
  policy: policy.yaml
  sandbox: local
  notifications:
    email: {{host: 127.0.0.1, port: {port}, security: plain, sender: nb-assets@example.com}}
    interval_s: 1
  sources:
    - name: sales_regions
      path: sources/regions/
      format: csv
      zones: [public]
  file_drops:
    - {{table: raw.orders, folder: landing/orders}}
"""
ORDERS = "CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT * FROM (VALUES (1, 10.5), (2, 20.0)) AS t(id, amount)"


@dataclass(frozen=True)
class Project:
    root: Path
    smtp: SmtpSink
    listed: dict[str, Any]  # `dg list defs --json`
    checked: str  # what `dg check defs` printed

    @property
    def defs(self) -> Path:
        return self.root / "src" / self.root.name / "defs"

    def copy(self, where: Path) -> Path:
        target = where / self.root.name
        shutil.copytree(self.root, target)
        return target


def _page_commands() -> list[list[str]]:
    """The page's second bash block: several notebooks and the settings, scaffolded in one project."""
    blocks = re.findall(r"^```bash\n(.*?)^```$", PAGE.read_text(encoding="utf-8"), re.M | re.S)
    return [shlex.split(line) for line in blocks[1].splitlines() if line.strip()]


def _ok(words: list[str], cwd: Path, root: Path, timeout: int = 240) -> str:
    done = run(words, cwd, root, timeout)
    assert done.returncode == 0, shown(done)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    from nb_assets.project.starter import write_starter

    top = tmp_path_factory.mktemp("dg_multi")
    root = top / "shop"
    with smtp_server() as smtp:
        _ok([str(BIN / "create-dagster"), "project", "--no-uv-sync", "shop"], top, root)
        write_starter(root / "existing" / "orders_report.ipynb", table="mart.orders_kpis")  # a notebook written before
        commands = _page_commands()
        assert [" ".join(c) for c in commands if c[:2] != ["dg", "scaffold"]] == ["dg check defs", "dg list defs"]
        for words in commands[:-1]:  # the scaffolds and the check, as the page runs them; listed below, as JSON
            _ok(words, root, root)  # the settings as scaffolded (no attributes: every default) must pass the check
        (root / "src" / "shop" / "defs" / "project" / "defs.yaml").write_text(SETTINGS.format(port=smtp.port))
        (root / "policy.yaml").write_text(POLICY)
        for folder in ("landing/orders", "sources/regions"):
            (root / folder).mkdir(parents=True)
        checked = _ok(["dg", "check", "defs"], root, root)
        listed = json.loads(run(["dg", "list", "defs", "--json"], root, root).stdout)
        yield Project(root, smtp, listed, checked)


def test_dg_check_defs_loads_three_notebooks_and_the_settings(project: Project) -> None:
    assert "All definitions loaded successfully" in project.checked


def test_list_defs_shows_each_notebook_its_upstream_and_one_of_each_shared_piece(project: Project) -> None:
    assets = {a["asset_key"]: a for a in project.listed["assets"]}
    assert sorted(assets) == ["mart/orders_clean", "mart/orders_kpis", "mart/orders_report", "raw/orders"]
    assert assets["mart/orders_clean"]["dependency_keys"] == ["raw/orders"]
    assert assets["mart/orders_kpis"]["dependency_keys"] == ["mart/orders_clean"]  # one notebook reads another's output
    assert assets["mart/orders_report"]["dependency_keys"] == ["mart/orders_kpis"]
    # raw.orders is finance (policy.yaml): its zone flows through both readers to the report, two components away
    for key in assets:
        assert {"key": "zone/finance", "value": ""} in assets[key]["tags"], (key, assets[key]["tags"])
    assert [r["name"] for r in project.listed["resources"]] == ["nb_resource"]
    sensors = [s["name"] for s in project.listed["sensors"]]
    assert sorted(sensors) == ["nb_assets_failure_notifications", "nb_assets_file_drop_raw_orders", "nb_assets_landings"]


def test_the_scaffold_wraps_an_existing_notebook_with_its_parameters(project: Project) -> None:
    from nb_assets import parse_notebook

    existing = project.root / "existing" / "orders_report.ipynb"
    folder = project.defs / "notebooks" / "report"
    assert (folder / "orders_report.ipynb").read_bytes() == existing.read_bytes()  # copied in, as it was
    attributes = yaml.safe_load((folder / "defs.yaml").read_text())["attributes"]
    expected = {p.name: p.default for p in parse_notebook(existing).parameters}
    assert expected and attributes == {"path": "orders_report.ipynb", "params": expected, "owners": [OWNER]}


def test_dg_launch_materializes_a_notebook_and_its_reader(project: Project, tmp_path: Path) -> None:
    root = project.copy(tmp_path)
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute(ORDERS)
    selection = 'key:"mart/orders_clean" or key:"mart/orders_kpis"'
    launched = run(["dg", "launch", "--assets", selection], root, root, timeout=600)
    assert launched.returncode == 0 and "RUN_SUCCESS" in launched.stdout + launched.stderr, shown(launched)
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        for table in ("mart.orders_clean", "mart.orders_kpis"):
            assert con.execute(f"SELECT id, amount FROM {table} ORDER BY id").fetchall() == [(1, 10.5), (2, 20.0)], table


def test_a_failed_run_mails_its_owner_over_the_channel_the_yaml_declares(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nb_assets.defs.failure_sensor import SENSOR_NAME

    root = project.copy(tmp_path)  # no warehouse: mart.orders_clean cannot be read, the run fails before a kernel starts
    for name in ("NB_ASSETS_WAREHOUSE", "NB_ASSETS_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NB_ASSETS_SANDBOX", "local")
    monkeypatch.syspath_prepend(str(root / "src"))
    (tmp_path / "home").mkdir()
    with forgetting_package(root.name), dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        defs = dg.load_from_defs_folder(path_within_project=root)
        failed = dg.materialize(list(defs.assets or ()), instance=instance, resources=defs.resources,
                                selection=["mart/orders_kpis"], raise_on_error=False)
        assert not failed.success
        sensor = next(s for s in defs.sensors or () if s.name == SENSOR_NAME)
        before = len(project.smtp.to(OWNER))
        sensor(dg.build_sensor_context(instance=instance, cursor=None))
    mails = project.smtp.to(OWNER)[before:]
    assert len(mails) == 1 and "orders_kpis" in mails[0].subject, [m.subject for m in mails]
    assert failed.run_id in mails[0].body


def test_a_bad_project_setting_names_its_defs_yaml_line(project: Project, tmp_path: Path) -> None:
    root = project.copy(tmp_path)
    settings = root / "src" / root.name / "defs" / "project" / "defs.yaml"
    text = settings.read_text().replace("sender: nb-assets@example.com}", "sender: nb-assets@example.com, username_env: SMTP_USER}")
    settings.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "username_env" in t)

    refused = run(["dg", "check", "defs"], root, root)
    assert refused.returncode != 0, shown(refused)
    assert f"{settings}:{line}: SmtpChannel needs both username_env and password_env" in refused.stdout + refused.stderr, shown(refused)
