"""`nb-assets deploy up --sources DIR`: the folder of declared file sources the deployment mounts
read-only, from the command line to the settings and the mounts the code server and every run
worker get; a folder that is not there is refused before anything is built or started. No stack
is started here (tests/e2e/test_deploy.py covers the mount in a running deployment)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from nb_assets.cli.deploy import add_deploy_command, deploy_settings
from nb_assets.cli.main import EXIT_USAGE, main
from nb_assets.deploy import stack
from nb_assets.deploy.config import SOURCES_IN_IMAGE, dagster_yaml
from nb_assets.errors import DeclarationError


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nb-assets")
    add_deploy_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["deploy", "up", *argv])


def test_sources_names_the_folder_mounted_read_only_in_the_code_server_and_every_run_worker(tmp_path: Path) -> None:
    drops = tmp_path / "shared" / "partner_drops"
    drops.mkdir(parents=True)
    settings = deploy_settings(_parse("--state", str(tmp_path / "state"), "--sources", str(drops)))
    assert settings.sources == str(drops) and settings.sources_mount == SOURCES_IN_IMAGE == "/opt/project/sources"
    assert settings.mounts()[str(drops)] == {"bind": "/opt/project/sources", "mode": "ro"}
    launcher = yaml.safe_load(dagster_yaml(settings))["run_launcher"]["config"]
    assert launcher["container_kwargs"]["volumes"][str(drops)] == {"bind": "/opt/project/sources", "mode": "ro"}


def test_a_relative_folder_is_the_current_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "drops").mkdir()
    monkeypatch.chdir(tmp_path)
    settings = deploy_settings(_parse("--state", "state", "--sources", "drops"))
    assert settings.sources == str(tmp_path / "drops") and settings.state_dir == tmp_path / "state"


def test_without_it_nothing_is_chosen_yet_and_nothing_is_mounted_there(tmp_path: Path) -> None:
    settings = deploy_settings(_parse("--state", str(tmp_path / "state")))
    assert settings.sources == ""  # `deploy up` then takes the project's own sources/, if it has one (stack.up)
    assert SOURCES_IN_IMAGE not in [m["bind"] for m in settings.mounts().values()]


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_folder_that_is_not_there_is_refused_before_anything_starts(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    given = tmp_path / "no_such_folder"
    if kind == "file":
        given = tmp_path / "rates.csv"
        given.write_text("currency,rate\nEUR,1.0\n")

    def started(*args: object, **kwargs: object) -> None:  # a tripwire: this test must never start a deployment
        raise AssertionError("deploy up started a deployment with a --sources folder that is not there")

    monkeypatch.setattr(stack, "up", started)
    state = tmp_path / "state"
    with pytest.raises(DeclarationError):
        deploy_settings(_parse("--state", str(state), "--sources", str(given)))
    code = main(["deploy", "up", "--state", str(state), "--project", str(tmp_path), "--sources", str(given)])
    said = capsys.readouterr().err
    what = "does not exist" if kind == "missing" else "is a file, not a folder"
    assert code == EXIT_USAGE
    assert said.startswith(f"nb-assets deploy: --sources {given}: {given} {what}; give the folder that holds the "
                           "project's declared file sources (mounted read-only at /opt/project/sources)")
    assert not state.exists()  # no state folder, no deploy.json: nothing was started or written
