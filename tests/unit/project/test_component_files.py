"""A dg project's NotebookComponents read and written as YAML, without Dagster (project/component_files.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nb_assets import NotebookAsset
from nb_assets.errors import DeclarationError
from nb_assets.project.component_files import (
    component_files, component_yaml, find_dg_project, new_component_file, with_updated_component,
)

PYPROJECT = '[project]\nname = "weekly"\n\n[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "weekly"\n'
# What `dg scaffold defs nb_assets.NotebookComponent notebooks/weekly_kpis` writes, with a comment and a key of dg's own.
SCAFFOLDED = "# finance's\ntype: nb_assets.NotebookComponent\n\nattributes:\n  path: weekly_kpis.ipynb\n  cron: '0 5 * * *'  # early\n" \
             "\npost_processing:\n  assets: []\n"


def _project(tmp_path: Path, pyproject: str = PYPROJECT) -> Path:
    (tmp_path / "src" / "weekly" / "defs").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text(pyproject)
    return tmp_path


def test_the_project_and_its_defs_folder_are_found_from_any_folder_in_it(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "notebooks").mkdir()
    found = find_dg_project(root / "notebooks")
    assert found is not None and (found.root, found.defs_dir) == (root, root / "src" / "weekly" / "defs")
    (root / "pyproject.toml").write_text(PYPROJECT + 'defs_module = "weekly.components"\n')
    assert find_dg_project(root).defs_dir == root / "src" / "weekly" / "components"  # type: ignore[union-attr]
    (root / "dg.toml").write_text('directory_type = "project"\n[project]\nroot_module = "other"\n')  # dg reads dg.toml first
    assert find_dg_project(root).defs_dir == root / "src" / "other" / "defs"  # type: ignore[union-attr]


def test_a_folder_outside_any_dg_project_has_none(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "plain"\n')
    assert find_dg_project(tmp_path) is None


def test_components_are_read_with_paths_relative_to_the_project_and_their_lines(tmp_path: Path) -> None:
    root = _project(tmp_path)
    project = find_dg_project(root)
    assert project is not None
    folder = project.defs_dir / "notebooks" / "weekly_kpis"
    folder.mkdir(parents=True)
    (folder / "defs.yaml").write_text(SCAFFOLDED)
    (project.defs_dir / "other").mkdir()
    (project.defs_dir / "other" / "defs.yaml").write_text("type: dagster.DefsFolderComponent\nattributes: {}\n")
    (found,) = component_files(project)
    assert found.file == folder / "defs.yaml" and found.decl.declared_at == f"{folder / 'defs.yaml'}:5"
    assert (found.decl.path, found.decl.cron) == ("src/weekly/defs/notebooks/weekly_kpis/weekly_kpis.ipynb", "0 5 * * *")


def test_an_attribute_no_declaration_has_is_refused_naming_the_line(tmp_path: Path) -> None:
    root = _project(tmp_path)
    project = find_dg_project(root)
    assert project is not None
    (project.defs_dir / "defs.yaml").write_text("type: nb_assets.NotebookComponent\nattributes:\n  path: a.ipynb\n  cronn: x\n")
    with pytest.raises(DeclarationError, match=rf"^{project.defs_dir / 'defs.yaml'}:4: unknown key 'cronn'"):
        component_files(project)


def test_update_rewrites_the_attributes_and_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    root = _project(tmp_path)
    file = root / "src" / "weekly" / "defs" / "notebooks" / "weekly_kpis" / "defs.yaml"
    decl = NotebookAsset("src/weekly/defs/notebooks/weekly_kpis/weekly_kpis.ipynb", owners=("a@example.com",), cron="0 6 * * *")
    assert with_updated_component(SCAFFOLDED, file, decl, root) == SCAFFOLDED.replace(
        "  cron: '0 5 * * *'  # early\n", "  owners: [a@example.com]\n  cron: 0 6 * * *\n")
    with pytest.raises(DeclarationError, match="declares no nb_assets.NotebookComponent for other.ipynb"):
        with_updated_component(SCAFFOLDED, file, NotebookAsset("other.ipynb"), root)


def test_a_new_component_goes_beside_a_notebook_in_the_defs_folder_else_in_its_own_folder(tmp_path: Path) -> None:
    root = _project(tmp_path)
    project = find_dg_project(root)
    assert project is not None
    outside = new_component_file(project, root / "notebooks" / "kpis.ipynb", "kpis")
    assert outside == project.defs_dir / "notebooks" / "kpis" / "defs.yaml"
    assert component_yaml(NotebookAsset("notebooks/kpis.ipynb"), outside, root) == (
        "type: nb_assets.NotebookComponent\n\nattributes:\n  path: ../../../../../notebooks/kpis.ipynb\n")
    inside = project.defs_dir / "reports" / "kpis.ipynb"
    assert new_component_file(project, inside, "kpis") == project.defs_dir / "reports" / "defs.yaml"
    (project.defs_dir / "reports").mkdir()
    (project.defs_dir / "reports" / "defs.yaml").write_text("type: dagster.DefsFolderComponent\n")
    with pytest.raises(DeclarationError, match=r"reports/defs.yaml exists already and does not declare kpis.ipynb"):
        new_component_file(project, inside, "kpis")


def test_the_demos_dg_toml_leaves_it_a_definitions_py_project() -> None:
    """The repository's dg.toml lets `dg dev` serve the demo, whose defs module is definitions.py itself:
    `nb-assets schedule` there must keep appending to declarations.yaml, not write component files."""
    repo = Path(__file__).resolve().parents[3]
    assert (repo / "dg.toml").is_file() and (repo / "definitions.py").is_file()
    assert find_dg_project(repo) is None
    assert find_dg_project(repo / "notebooks") is None


def test_the_cli_reads_the_projects_settings_component_and_the_environment_overrides_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`schedule` and `migrate` use the warehouse and policy the components will: NotebookProjectSettings'."""
    from nb_assets.project.component_files import project_settings

    root = _project(tmp_path)
    for name in ("NB_ASSETS_WAREHOUSE", "NB_ASSETS_POLICY", "NB_ASSETS_SANDBOX"):
        monkeypatch.delenv(name, raising=False)
    project = find_dg_project(root)
    assert project is not None
    assert project_settings(project) == (str(root / "warehouse.duckdb"), None, "auto")
    (root / "conf").mkdir()
    (root / "conf" / "policy.yaml").write_text("zones: {}\n")
    settings = project.defs_dir / "project" / "defs.yaml"
    settings.parent.mkdir()
    settings.write_text("type: nb_assets.NotebookProjectSettings\nattributes:\n  warehouse: data/wh.duckdb\n"
                        "  policy: conf/policy.yaml\n  sandbox: local\n")
    assert project_settings(project) == (str(root / "data" / "wh.duckdb"), root / "conf" / "policy.yaml", "local")
    monkeypatch.setenv("NB_ASSETS_WAREHOUSE", "postgresql://u@127.0.0.1/wh")
    assert project_settings(project)[0] == "postgresql://u@127.0.0.1/wh"


def test_settings_templates_are_rendered_as_dg_renders_them_and_two_settings_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nb_assets.project.component_files import project_settings

    root = _project(tmp_path)
    for name in ("NB_ASSETS_WAREHOUSE", "NB_ASSETS_POLICY", "NB_ASSETS_SANDBOX", "WH_FILE"):
        monkeypatch.delenv(name, raising=False)
    project = find_dg_project(root)
    assert project is not None
    settings = project.defs_dir / "project" / "defs.yaml"
    settings.parent.mkdir()
    settings.write_text("type: nb_assets.NotebookProjectSettings\nattributes:\n  warehouse: '{{ env.WH_FILE }}'\n")
    assert project_settings(project)[0] == str(root / "warehouse.duckdb")  # unset: not a file named '{{ env.WH_FILE }}'
    monkeypatch.setenv("WH_FILE", "data/wh.duckdb")
    assert project_settings(project)[0] == str(root / "data" / "wh.duckdb")
    second = project.defs_dir / "other" / "defs.yaml"
    second.parent.mkdir()
    second.write_text("type: nb_assets.NotebookProjectSettings\nattributes:\n  sandbox: local\n")
    with pytest.raises(DeclarationError, match="declared 2 times"):
        project_settings(project)


def test_the_cli_sees_the_settings_sources_notifications_and_drops_as_the_components_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """schedule's checks and trial read a dg project as the load does: a notebook reading a declared source is
    checked against that source (its zones), owners against the channels."""
    from nb_assets.project.component_files import component_declarations

    for name in ("NB_ASSETS_WAREHOUSE", "NB_ASSETS_POLICY", "NB_ASSETS_SANDBOX"):
        monkeypatch.delenv(name, raising=False)
    root = _project(tmp_path)
    project = find_dg_project(root)
    assert project is not None
    settings = project.defs_dir / "project" / "defs.yaml"
    settings.parent.mkdir()
    settings.write_text(
        "type: nb_assets.NotebookProjectSettings\nattributes:\n"
        "  notifications:\n    email: {host: smtp.example.com, port: 587, sender: nb@example.com}\n"
        "    webhooks: {ops: {url_env: OPS_HOOK}}\n"
        "  sources:\n    - {name: regions, path: sources/regions/, format: csv, zones: [public]}\n"
        "  file_drops:\n    - {table: raw.orders, folder: landing/orders, pattern: '*.csv'}\n")
    declared = component_declarations(project)
    assert declared.notifications.email.host == "smtp.example.com" and set(declared.notifications.webhooks) == {"ops"}
    [source] = declared.sources
    assert (source.name, source.zones, source.declared_at) == ("regions", ("public",), f"{settings}:7")
    assert [(d.table, str(d.folder)) for d in declared.file_drops] == [("raw.orders", "landing/orders")]
    settings.write_text(settings.read_text().replace("format: csv", "format: csv, colour: red"))
    with pytest.raises(DeclarationError, match=rf"{settings}:7: unknown key 'colour'"):
        component_declarations(project)
