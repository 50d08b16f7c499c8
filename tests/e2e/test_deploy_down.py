"""`nb-assets deploy down` (make deploy-stop) says what it stopped and removed, or that nothing runs.

The full deployment is tests/e2e/test_deploy.py (minutes); here, a state folder as `deploy up`
leaves it, with a live process in the daemon's place and a real container of the
deployment: `down` stops and removes exactly those, and says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nb_assets.deploy.config import DEPLOY_LABEL, DeploySettings
from nb_assets.sandbox.janitor import CLAIM_BY_LABEL, OFFERED_PREFIX, POOL_LABEL, SANDBOX_LABEL, SPARE_LABEL


def _down(state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nb_assets.cli", "deploy", "down", "--state", str(state), *extra],
                          capture_output=True, text=True, timeout=300)


def test_down_with_nothing_running_says_so(tmp_path: Path) -> None:
    done = _down(tmp_path / ".deploy")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"nothing to stop: no deployment runs from {tmp_path / '.deploy'}\n"


@pytest.mark.docker
def test_down_names_each_piece_it_stopped_and_removed(tmp_path: Path, docker_image: str) -> None:
    from nb_assets.sandbox.image import docker_client

    state = tmp_path / ".deploy"
    settings = DeploySettings(state_dir=state)
    # Stands in for dagster-daemon: down stops a process group whose command line names dagster.
    daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "dagster-daemon"], start_new_session=True)
    client = docker_client()
    container = client.containers.create(docker_image, ["true"], name=settings.code_server_name,
                                         labels={DEPLOY_LABEL: settings.label}, network_mode="none")
    # Stands in for a spare a run worker left for the next (its pool is the deployment).
    spare_name = f"{OFFERED_PREFIX}{tmp_path.name[-12:].lower()}"
    # Claimable for an hour: a janitor of another run meanwhile (the suite runs in parallel) leaves it alone.
    spare = client.containers.create(docker_image, ["true"], name=spare_name, network_mode="none",
                                     labels={SANDBOX_LABEL: "1", SPARE_LABEL: "k", POOL_LABEL: settings.label,
                                             CLAIM_BY_LABEL: f"{time.time() + 3600:.0f}"})
    try:
        settings.pids["daemon"] = daemon.pid
        settings.save()
        done = _down(state)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            f"stopped dagster-daemon (pid {daemon.pid})",
            f"removed code server container(s): {settings.code_server_name} (created)",
            f"removed sandbox container(s): {spare_name} (created)",
        ]
        assert daemon.wait(30) is not None
        assert not client.api.containers(all=True, filters={"id": container.id})
        assert not client.api.containers(all=True, filters={"id": spare.id})
        assert json.loads((state / "deploy.json").read_text())["pids"] == {}

        assert _down(state).stdout == f"nothing to stop: no deployment runs from {state}\n"
        purged = _down(state, "--purge")
        assert purged.stdout == f"removed {state} (runs, records, both databases)\n" and not state.exists()
    finally:
        if daemon.poll() is None:
            daemon.kill()
        for made in (container, spare):
            for leftover in client.api.containers(all=True, filters={"id": made.id}):
                client.api.remove_container(leftover["Id"], force=True)
