"""nb_assets.NotebookComponent in a project `dg` made: the commands of docs/components.md, run.

A fresh project is made by `create-dagster project --no-uv-sync` (offline, in this environment, no
second virtualenv), then the page's commands run in it as written: scaffold a notebook component,
`dg check defs`, `dg list defs`, and `dg launch` into a real DuckDB warehouse in the local sandbox.
Broken copies of that project show what `dg check defs` refuses: a notebook that reaches the network
(the very findings `nb-assets check` prints), a purpose the policy forbids, and an attribute no
notebook has (dg's own schema error, naming the defs.yaml line). Last, the component and the Python
API build the same asset specs for the same declaration.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import nbformat
import pytest
import yaml

from support.dg_project import BIN, forgetting_package, run, shown
from support.paths import REPO

PAGE = REPO / "docs" / "components.md"
COMPONENT = "nb_assets.NotebookComponent"
pytestmark = pytest.mark.slow


def _page_blocks(language: str) -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)


def _page_commands() -> list[list[str]]:
    block = _page_blocks("bash")[0]  # the first project; test_components_multi.py runs the second block
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


class Made:
    """The project the page's commands made, and what each command printed."""

    def __init__(self, root: Path, done: dict[str, subprocess.CompletedProcess[str]]) -> None:
        self.root, self.done = root, done
        self.component = root / "src" / root.name / "defs" / "notebooks" / "weekly_kpis"

    def copy(self, where: Path) -> Path:
        """A copy to break: the page's project stays as the commands left it."""
        target = where / self.root.name
        shutil.copytree(self.root, target)
        return target


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    groups = importlib.metadata.entry_points(group="dagster_dg_cli.registry_modules")
    assert any(e.value == "nb_assets" for e in groups), (
        "nb_assets's dagster_dg_cli.registry_modules entry point is not installed: reinstall the package "
        "(make setup, or pip install -e .) so that dg finds NotebookComponent")
    top = tmp_path_factory.mktemp("dg")
    commands = _page_commands()
    assert commands[0][:2] == ["create-dagster", "project"], commands[0]
    root = top / commands[0][-1]
    cwd, done = top, {}
    for words in commands:
        if words[0] == "cd":
            cwd = cwd / words[1]
            continue
        if words[:2] == ["dg", "launch"]:
            continue  # needs the input landed: test_dg_launch_materializes_into_the_warehouse
        result = run(words, cwd, root)
        assert result.returncode == 0, shown(result)
        done[" ".join(words[:2])] = result
    return Made(root, done)


def test_dg_lists_the_component_with_its_documentation(made: Made) -> None:
    listed = run(["dg", "list", "components", "--json"], made.root, made.root)
    assert listed.returncode == 0, shown(listed)
    items = {i["key"]: i for i in json.loads(listed.stdout)["items"]}
    assert COMPONENT in items, sorted(items)
    from nb_assets import NotebookComponent

    assert items[COMPONENT]["summary"] == (NotebookComponent.__doc__ or "").splitlines()[0]


def test_the_scaffold_is_the_starter_notebook_and_the_pages_defs_yaml(made: Made) -> None:
    from nb_assets.project.starter import starter_notebook

    written = json.loads((made.component / "weekly_kpis.ipynb").read_text())
    assert written == starter_notebook("weekly_kpis")
    nbformat.validate(nbformat.reads(json.dumps(written), as_version=4))
    assert yaml.safe_load((made.component / "defs.yaml").read_text()) == yaml.safe_load(_page_blocks("yaml")[0])


def test_dg_check_defs_passes_and_list_defs_shows_the_upstream_table(made: Made) -> None:
    assert "All definitions loaded successfully" in made.done["dg check"].stdout + made.done["dg check"].stderr
    as_json = run(["dg", "list", "defs", "--json"], made.root, made.root)
    assert as_json.returncode == 0, shown(as_json)
    assets = {a["asset_key"]: a for a in json.loads(as_json.stdout)["assets"]}
    assert assets["mart/weekly_kpis"]["dependency_keys"] == ["raw/orders"]
    assert assets["mart/weekly_kpis"]["kinds"] == ["duckdb", "notebook"]
    assert "raw/orders" in assets  # the source table, upstream in the graph
    assert "mart/weekly_kpis" in made.done["dg list"].stdout and "raw/orders" in made.done["dg list"].stdout


def test_a_network_call_fails_dg_check_defs_with_the_findings_of_nb_assets_check(made: Made, tmp_path: Path) -> None:
    project = made.copy(tmp_path)
    notebook = project / made.component.relative_to(made.root) / "weekly_kpis.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.insert(4, nbformat.v4.new_code_cell('import urllib.request\nrates = urllib.request.urlopen("http://example.invalid/rates").read()'))
    nbformat.write(nb, notebook)

    checked = run([str(BIN / "nb-assets"), "check", str(notebook)], project, project)
    findings = re.findall(r"error: (cell \d+, line \d+): (\[[\w-]+\] .*)", checked.stdout)
    assert checked.returncode != 0 and findings, shown(checked)
    assert any("[network-access]" in f for _, f in findings), findings

    refused = run(["dg", "check", "defs"], project, project)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0, shown(refused)
    for where, finding in findings:
        # the defs.yaml line of the declaration, the notebook, its cell and line, the rule and the fix
        assert re.search(rf"defs\.yaml:\d+: {re.escape(f'{notebook} ({where}): {finding}')}", said), shown(refused)


def test_a_purpose_the_policy_forbids_fails_dg_check_defs(made: Made, tmp_path: Path) -> None:
    project = made.copy(tmp_path)
    (project / "policy.yaml").write_text(
        "zones:\n  public: {mode: enforce}\n  finance: {mode: enforce}\n"
        "purposes:\n  marketing: [public]\ntables:\n  raw.orders: [finance]\n")
    defs_yaml = project / made.component.relative_to(made.root) / "defs.yaml"
    defs_yaml.write_text(defs_yaml.read_text() + "  purpose: marketing\n")

    from nb_assets.errors import DeclarationError
    from nb_assets.project.declaration import NotebookAsset
    from nb_assets.project.declare import apply_policy, declare_notebooks

    decl = NotebookAsset(defs_yaml.parent / "weekly_kpis.ipynb", purpose="marketing")
    with pytest.raises(DeclarationError) as expected:  # what every nb_assets load refuses
        apply_policy(declare_notebooks([decl], defs_yaml.parent), project / "policy.yaml")
    refused = run(["dg", "check", "defs"], project, project)
    assert refused.returncode != 0, shown(refused)
    lines = [line.removeprefix("- ") for line in str(expected.value).splitlines()[1:]]
    assert lines and all(line in refused.stdout + refused.stderr for line in lines), (lines, shown(refused))


def test_an_unknown_trigger_fails_with_dgs_schema_error_naming_the_line(made: Made, tmp_path: Path) -> None:
    project = made.copy(tmp_path)
    defs_yaml = project / made.component.relative_to(made.root) / "defs.yaml"
    text = defs_yaml.read_text() + "  on_files_landed: true\n"
    defs_yaml.write_text(text)
    line = text.splitlines().index("  on_files_landed: true") + 1

    refused = run(["dg", "check", "defs"], project, project)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0, shown(refused)
    assert f"defs.yaml:{line}" in said and "on_files_landed" in said and "not allowed" in said, shown(refused)


def test_dg_launch_materializes_into_the_warehouse(made: Made, tmp_path: Path) -> None:
    project = made.copy(tmp_path)
    (sql,) = _page_blocks("sql")
    with duckdb.connect(str(project / "warehouse.duckdb")) as con:  # the page's landing, as a loader would
        con.execute(sql)
    (launch,) = [words for words in _page_commands() if words[:2] == ["dg", "launch"]]

    ran = run(launch, project, project, timeout=600)
    assert ran.returncode == 0 and "RUN_SUCCESS" in ran.stdout + ran.stderr, shown(ran)  # the run's own events
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT id, amount FROM mart.weekly_kpis ORDER BY id").fetchall()
    assert rows == [(1, 10.5), (2, 20.0), (3, 7.25)]


# --- one declaration model: the component and the Python API build the same specs ------------------------


def _python_declarations() -> dict[str, Any]:
    """The same declarations as the YAML below, written with the Python API by hand."""
    from nb_assets import DailyPartitions, NotebookAsset, SandboxLimits, row_count

    return {
        "page": NotebookAsset(
            "weekly_kpis.ipynb", owners=["analytics@example.com"], group="kpis", cron="0 6 * * 1",
            timezone="Europe/Amsterdam", on_inputs_landed=True, purpose="finance_reporting", params={"limit": 500},
            limits=SandboxLimits(timeout_s=300, memory_mb=1024), checks={"mart.weekly_kpis": [row_count(min=1)]},
        ),
        "partitioned": NotebookAsset(
            "weekly_kpis.ipynb", owners=["team:analytics"], tags={"tier": "gold"}, key_prefix=["kpis"],
            cron="30 6 * * *", partitions=DailyPartitions(start="2026-10-01"), purpose="finance_reporting",
        ),
    }


PARTITIONED_YAML = """\
type: nb_assets.NotebookComponent

attributes:
  path: weekly_kpis.ipynb
  owners: ["team:analytics"]
  tags: {tier: gold}
  key_prefix: [kpis]
  cron: "30 6 * * *"
  partitions: {start: "2026-10-01"}
  purpose: finance_reporting
"""


@pytest.fixture
def fresh_modules(made: Made) -> Iterator[None]:
    """Loading a project imports its package: forget it afterwards, so the next copy loads its own."""
    with forgetting_package(made.root.name):
        yield


@pytest.mark.parametrize("case", ["page", "partitioned"])
def test_the_component_and_the_python_api_build_the_same_asset_specs(
    case: str, made: Made, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_modules: None,
) -> None:
    import dagster as dg

    from nb_assets import notebook_definitions

    project = made.copy(tmp_path)
    folder = project / made.component.relative_to(made.root)
    (project / "policy.yaml").write_text(
        "zones:\n  finance: {mode: enforce}\npurposes:\n  finance_reporting: [finance]\ntables:\n  raw.orders: [finance]\n")
    if case == "page":
        (folder / "defs.yaml").write_text(_page_blocks("yaml")[1])
    else:
        (folder / "defs.yaml").write_text(PARTITIONED_YAML)
        nb = nbformat.read(folder / "weekly_kpis.ipynb", as_version=4)
        nb.cells[2].source = 'ds = "2026-10-01"\nlimit = 100'  # the parameters cell: a partition's day
        nb.cells[4].source = 'rows["ds"] = ds\noutput("mart.weekly_kpis", rows)'
        nbformat.write(nb, folder / "weekly_kpis.ipynb")
    warehouse = str(project / "warehouse.duckdb")
    for name, value in (("NB_ASSETS_WAREHOUSE", warehouse), ("NB_ASSETS_POLICY", str(project / "policy.yaml")),
                        ("NB_ASSETS_SANDBOX", "local")):
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(project / "src"))

    component = dg.load_from_defs_folder(path_within_project=project)
    python = notebook_definitions([_python_declarations()[case]], warehouse=warehouse, base_dir=folder,
                                  policy=project / "policy.yaml", sandbox="local")

    def specs(defs: dg.Definitions) -> dict[dg.AssetKey, tuple[Any, ...]]:
        return {s.key: (sorted(d.asset_key.to_user_string() for d in s.deps), s.tags, s.automation_condition,
                        s.partitions_def, s.code_version, s.owners, s.group_name, s.kinds)
                for s in defs.resolve_all_asset_specs()}

    built, expected = specs(component), specs(python)
    assert set(built) == set(expected) and len(built) == 2
    for key in expected:
        assert built[key] == expected[key], key
    notebook = built[dg.AssetKey(["mart", "weekly_kpis"])]  # key_prefix prefixes reports only: outputs are keyed by table
    assert notebook[0] == ["raw/orders"] and notebook[2] is not None and notebook[4]  # deps, a trigger, a code version
    assert (notebook[3] is not None) == (case == "partitioned")


def test_the_entry_point_names_the_package_that_exports_the_component() -> None:
    import importlib
    import tomllib

    import dagster as dg

    points = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["dagster_dg_cli.registry_modules"]
    assert points == {"nb_assets": "nb_assets"}  # so dg names it nb_assets.NotebookComponent
    component = importlib.import_module(points["nb_assets"]).NotebookComponent
    assert issubclass(component, (dg.Component)) and issubclass(component, dg.Resolvable)
    assert "NotebookComponent" in dir(importlib.import_module("nb_assets"))  # dg finds it by dir()
