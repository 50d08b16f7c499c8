"""`nb-assets migrate-to-components`: a definitions.py + declarations.yaml project's notebooks become
NotebookComponent defs.yaml files in the dg project around it, and what notebook_definitions(...) gave
them all becomes its one NotebookProjectSettings defs.yaml, which `dg` loads; what a component cannot
say is refused, naming the line, before anything is written. The repository's demo migrates whole.

One project made by `create-dagster project` for the module (about a minute); each test works on a copy.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from support.dg_project import BIN, run, shown
from support.paths import REPO

# One worker for the module: its tests copy the project the module fixture makes.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dg-migrate")]
# The demo as definitions.py reads it; dg.toml stays behind (it makes the demo a definitions.py project).
DEMO = ("definitions.py", "declarations.yaml", "policy.yaml", "notebooks", "sources")

DEFINITIONS = """from pathlib import Path

from nb_assets import load_declarations_yaml, notebook_definitions

BASE_DIR = Path(__file__).parent
defs = notebook_definitions(
    load_declarations_yaml(BASE_DIR / "declarations.yaml"),
    warehouse=str(BASE_DIR / "warehouse.duckdb"),
    base_dir=BASE_DIR,
)
"""
DECLARATIONS = """notebooks:
  - path: notebooks/weekly_kpis.ipynb
    owners: [a@example.com]
    cron: 0 6 * * 1
    limits: {timeout_s: 300}
    checks:
      mart.weekly_kpis:
        - row_count: {min: 1}
"""


def _migrate(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "nb_assets.cli", "migrate-to-components", *args], project, project, timeout=900)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project dg made, offline, as it made it: each test copies it."""
    top = tmp_path_factory.mktemp("dg_migrate")
    done = run([str(BIN / "create-dagster"), "project", "--no-uv-sync", "weekly"], top, top / "weekly")
    assert done.returncode == 0, shown(done)
    return top / "weekly"


@pytest.fixture
def project(made: Path, tmp_path: Path) -> Path:
    """The project dg made, holding a definitions.py project: its definitions, declarations, notebook, warehouse."""
    root = Path(shutil.copytree(made, tmp_path / made.name))
    from nb_assets.project.starter import write_starter

    write_starter(root / "notebooks" / "weekly_kpis.ipynb", table="raw.orders", output=None)
    (root / "definitions.py").write_text(DEFINITIONS)
    (root / "declarations.yaml").write_text(DECLARATIONS)
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT * FROM (VALUES (1, 10.5), (2, 20.0)) t(id, amount)")
    return root


def test_each_notebook_becomes_a_component_dg_loads(project: Path) -> None:
    done = _migrate(project)
    assert done.returncode == 0, shown(done)
    defs = project / "src" / "weekly" / "defs"
    component = defs / "notebooks" / "weekly_kpis" / "defs.yaml"
    assert "wrote src/weekly/defs/notebooks/weekly_kpis/defs.yaml" in done.stdout, done.stdout
    assert "still declares these notebooks" in done.stdout
    written = yaml.safe_load(component.read_text())
    assert written == {"type": "nb_assets.NotebookComponent", "attributes": {
        "path": "../../../../../notebooks/weekly_kpis.ipynb", "owners": ["a@example.com"], "cron": "0 6 * * 1",
        "limits": {"timeout_s": 300}, "checks": {"mart.weekly_kpis": [{"row_count": {"min": 1}}]}}}
    # The warehouse definitions.py named (absolute), as the settings name it: from the project's root.
    settings = yaml.safe_load((defs / "nb_assets_project" / "defs.yaml").read_text())
    assert settings == {"type": "nb_assets.NotebookProjectSettings", "attributes": {"warehouse": "warehouse.duckdb"}}
    listed = run(["dg", "list", "defs"], project, project)
    assert listed.returncode == 0 and "mart/weekly_kpis" in listed.stdout, shown(listed)
    assert (project / "declarations.yaml").read_text() == DECLARATIONS  # never rewritten: the user retires it
    again = _migrate(project)  # the settings say the same: only the notebook, declared already, is refused
    assert again.returncode == 2 and "1 thing(s)" in again.stderr, shown(again)
    assert f"{component}: declares notebooks/weekly_kpis.ipynb already" in again.stderr, shown(again)


def test_what_a_component_cannot_say_is_refused_and_nothing_is_written(project: Path) -> None:
    # read_dsn=None is what the components use anyway, so it is carried; an interval of 30 s is not.
    (project / "definitions.py").write_text(DEFINITIONS.replace(
        "    base_dir=BASE_DIR,\n", "    base_dir=BASE_DIR,\n    sensor_interval_s=30,\n    read_dsn=None,\n"))
    refused = _migrate(project)
    assert refused.returncode == 2, shown(refused)
    assert "1 thing(s) a component cannot say yet; nothing written" in refused.stderr, shown(refused)
    assert f"{project / 'definitions.py'}:10: notebook_definitions(sensor_interval_s=...) has no component attribute" \
        in refused.stderr, shown(refused)
    defs = project / "src" / "weekly" / "defs"
    assert not (defs / "notebooks").exists() and not (defs / "nb_assets_project").exists()

    (project / "definitions.py").write_text(DEFINITIONS)
    other = defs / "settings" / "defs.yaml"  # a project has one NotebookProjectSettings: a different one is not merged
    other.parent.mkdir(parents=True)
    other.write_text("type: nb_assets.NotebookProjectSettings\nattributes:\n  sandbox: docker\n")
    refused = _migrate(project)
    assert refused.returncode == 2, shown(refused)
    assert f"{other}: declares nb_assets.NotebookProjectSettings already, other than definitions.py's" in refused.stderr
    assert not (defs / "notebooks").exists()

    plain = project.parent / "plain"
    plain.mkdir()
    (plain / "definitions.py").write_text(DEFINITIONS)
    refused = _migrate(project, str(plain))
    assert refused.returncode == 2 and "is not in a project dg made" in refused.stderr, shown(refused)


def _load_definitions(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`defs` of a definitions.py, built by Dagster as `dagster dev -f` builds it, in the environment the CLI had."""
    for name in ("NB_ASSETS_WAREHOUSE", "NB_ASSETS_POLICY", "NB_ASSETS_DEMO_RATES_URL", "NB_ASSETS_SENSOR_INTERVAL_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NB_ASSETS_SANDBOX", "local")
    spec = importlib.util.spec_from_file_location("nb_assets_migrated_demo", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.defs


def test_the_demo_migrates_and_dg_lists_what_its_definitions_py_builds(
    made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = Path(shutil.copytree(made, tmp_path / made.name))
    for name in DEMO:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, root / name)

    done = _migrate(root)
    assert done.returncode == 0, shown(done)
    # Seven notebooks, and the settings: notifications, two sources and a file drop, paths from the root,
    # the webhook's secret URL still named by its variable; the sandbox came from NB_ASSETS_SANDBOX.
    assert done.stdout.count("wrote src/weekly/defs/notebooks/") == 7, done.stdout
    assert "note: the sandbox came from NB_ASSETS_SANDBOX, which the components read too: not written" in done.stdout
    settings = yaml.safe_load((root / "src" / "weekly" / "defs" / "nb_assets_project" / "defs.yaml").read_text())
    assert settings["attributes"] == {
        "warehouse": "warehouse.duckdb", "policy": "policy.yaml",
        "notifications": {"email": {"host": "localhost", "port": 8025, "security": "plain", "sender": "nb-assets@example.com"},
                          "webhooks": {"data-eng": {"url_env": "NB_ASSETS_DATA_ENG_WEBHOOK"}},
                          "ui_base_url": "http://localhost:3000"},
        "sources": [{"name": "partner_rates", "path": "sources/partner_rates.json", "format": "json", "zones": ["public"]},
                    {"name": "sales_regions", "path": "sources/sales_regions/", "format": "csv", "zones": ["public"]}],
        "file_drops": [{"table": "raw.orders", "folder": "landing/orders"}],
    }
    page = (REPO / "docs" / "migrating-to-components.md").read_text()
    shown_on_page = [yaml.safe_load(b) for b in re.findall(r"^```yaml\n(.*?)^```$", page, re.M | re.S)]
    assert settings in shown_on_page  # the page shows what the demo migrates to

    listed = run(["dg", "list", "defs", "--json"], root, root)
    assert listed.returncode == 0, shown(listed)
    components = json.loads(listed.stdout)
    demo = _load_definitions(root / "definitions.py", monkeypatch)  # the copy: the demo's own, beside its notebooks
    assert (root / "definitions.py").read_text() == (REPO / "definitions.py").read_text()

    def drawn(key: str, deps: list[str], group: str | None) -> tuple[str, list[str], str | None]:
        return key, sorted(deps), group

    assert sorted(drawn(a["asset_key"], a["dependency_keys"], a["group_name"]) for a in components["assets"]) == sorted(
        drawn(s.key.to_user_string(), [d.asset_key.to_user_string() for d in s.deps], s.group_name)
        for s in demo.resolve_all_asset_specs())
    assert sorted(c["key"] for c in components["asset_checks"]) == sorted(
        f"{k.asset_key.to_user_string()}:{k.name}" for k in demo.resolve_asset_graph().asset_check_keys)
    assert sorted(s["name"] for s in components["sensors"]) == sorted(s.name for s in demo.sensors or ())


def test_the_arguments_carried_as_defaults_are_those_the_components_build_with() -> None:
    import inspect

    import dagster as dg

    from nb_assets.cli.migrate import COMPONENT_DEFAULTS, SETTINGS
    from nb_assets.defs.build import build_project

    parameters = inspect.signature(build_project).parameters
    assert set(parameters) == {"notebooks", *SETTINGS, *COMPONENT_DEFAULTS}  # each argument is carried or compared
    defaults = {name: parameters[name].default for name in COMPONENT_DEFAULTS}
    assert defaults == {**COMPONENT_DEFAULTS, "sensor_status": dg.DefaultSensorStatus.RUNNING}
    assert dg.DefaultSensorStatus.RUNNING.value == COMPONENT_DEFAULTS["sensor_status"]
