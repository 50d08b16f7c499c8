"""`nb-assets deploy up` of a dg project: a components-style project deploys as the demo does.

A project `create-dagster project --no-uv-sync` makes (offline, in this environment), with one
`nb_assets.NotebookComponent` scaffolded by `dg` (the starter notebook reading raw.orders), is
deployed: its code image carries pyproject.toml and src/, the code server loads the module
`tiny.definitions`, the demo's seed fills the deployment's Postgres warehouse, and one run
launched through the webserver materializes the notebook's table there. The run worker loads
the code server's module pointer, so a success proves both loaded the project.

The project lives at a fixed path (one per user, behind a lock): its code image is labelled with
that path, so the next build of it replaces this one (deploy/code_image.py's prune) instead of
leaving a code image per test run.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from support.deployment import deployed, new_settings
from support.dg_project import run, shown
from support.paths import REPO
from nb_assets.deploy.config import code_target
from nb_assets.deploy.project_layout import project_layout
from nb_assets.errors import DeclarationError

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(3600)]  # a fresh machine builds the image

NAME = "tiny"
ASSET = ["mart", "orders_kpis"]
STARTER_LIMIT = 100  # the starter notebook's `limit` parameter: it writes that many of raw.orders' rows


@pytest.fixture(scope="module")
def dg_project() -> Iterator[Path]:
    """A fresh dg project with one scaffolded NotebookComponent, at this user's fixed path."""
    top = Path(tempfile.gettempdir()) / f"nb-assets-deploy-components-{os.getuid()}"
    top.mkdir(exist_ok=True)
    with (top / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session deploying the same path waits
        root = top / NAME
        shutil.rmtree(root, ignore_errors=True)
        made = run(["create-dagster", "project", "--no-uv-sync", NAME], top, root)
        assert made.returncode == 0, shown(made)
        scaffolded = run(["dg", "scaffold", "defs", "nb_assets.NotebookComponent", "notebooks/orders_kpis"], root, root)
        assert scaffolded.returncode == 0, shown(scaffolded)
        yield root


def test_a_dg_project_is_found_as_dg_finds_it(dg_project: Path, tmp_path: Path) -> None:
    layout = project_layout(dg_project)
    assert code_target(layout) == ["-m", f"{NAME}.definitions", "-d", "/opt/project/src"]
    files = {str(p) for p in layout.files()}
    assert {"pyproject.toml", f"src/{NAME}/definitions.py", f"src/{NAME}/defs/notebooks/orders_kpis/defs.yaml",
            f"src/{NAME}/defs/notebooks/orders_kpis/orders_kpis.ipynb"} <= files, sorted(files)
    # The demo's dg.toml (there for `dg dev`) names definitions.py itself: deployed as a definitions.py project.
    assert code_target(project_layout(REPO)) == ["-f", "/opt/project/definitions.py", "-d", "/opt/project"]
    # The policy file the project's settings name goes into the image too, wherever in the project it is.
    settled = tmp_path / "settled"
    shutil.copytree(dg_project, settled)
    (settled / "config").mkdir()
    (settled / "config" / "zones.yaml").write_text("zones: {}\n")
    (settled / "src" / NAME / "defs" / "project").mkdir()
    (settled / "src" / NAME / "defs" / "project" / "defs.yaml").write_text(
        "type: nb_assets.NotebookProjectSettings\nattributes:\n  policy: config/zones.yaml\n")
    assert Path("config/zones.yaml") in project_layout(settled).files()
    # A notebook that schedule --write or migrate left where it was (notebooks/), declared from the defs folder.
    (settled / "notebooks").mkdir()
    shutil.copy(dg_project / "src" / NAME / "defs" / "notebooks" / "orders_kpis" / "orders_kpis.ipynb",
                settled / "notebooks" / "kept.ipynb")
    (settled / "src" / NAME / "defs" / "kept").mkdir()
    kept_yaml = settled / "src" / NAME / "defs" / "kept" / "defs.yaml"
    kept_yaml.write_text("type: nb_assets.NotebookComponent\nattributes:\n  path: ../../../../notebooks/kept.ipynb\n")
    layout = project_layout(settled)
    assert Path("notebooks/kept.ipynb") in layout.files() and settled / "notebooks" / "kept.ipynb" in layout.notebooks()
    kept_yaml.write_text("type: nb_assets.NotebookComponent\nattributes:\n  path: ../../../../../elsewhere.ipynb\n")
    with pytest.raises(DeclarationError, match=rf"{kept_yaml}: its notebook .*elsewhere.ipynb is outside the project"):
        project_layout(settled).files()
    broken = tmp_path / "broken"
    shutil.copytree(dg_project, broken)
    shutil.rmtree(broken / "src" / NAME)
    with pytest.raises(DeclarationError, match=rf"{broken / 'pyproject.toml'}: the code location module {NAME}.definitions"):
        project_layout(broken)


def test_deploy_up_serves_a_dg_project_and_runs_its_notebook(dg_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # This project's code image reads its Python through the image: copying its trees into volumes (what
    # test_deploy proves for the demo's) would only add ~30-60 s to the suite here.
    monkeypatch.setenv("NB_ASSETS_USR_VOLUME", "0")
    with deployed(new_settings(), project=dg_project) as deployment:
        saved = json.loads((deployment.settings.state_dir / "deploy.json").read_text())
        assert saved["code_target"] == ["-m", f"{NAME}.definitions", "-d", "/opt/project/src"]
        assert saved["reader_schemas"] == ["raw"]  # read from the notebook beside its defs.yaml
        run_id = deployment.launch([ASSET])
        status = deployment.wait_until_finished([run_id])[run_id]
        assert status == dg.DagsterRunStatus.SUCCESS, deployment.story()
        assert deployment.rows("mart.orders_kpis") == STARTER_LIMIT, deployment.story()
