"""Operating a running deployment: new passwords, and restarting one piece while the rest runs.

    nb-assets deploy rotate     new passwords for the deployment's logins (then down + up)

The restarts are what an operator does after a crash or an upgrade of one
piece; the fault tests (tests/e2e/test_deploy_faults.py) do them mid-queue.
"""

from __future__ import annotations

from pathlib import Path

from nb_assets.deploy.config import DAGSTER_LOGIN, OWNER_LOGIN, READER_LOGIN, DeploySettings
from nb_assets.deploy.secrets import load_secrets, save_secrets
from nb_assets.deploy.stack import BIN, DeployError, _spawn, _start_code_server, _stop_process, _wait_for_location
from nb_assets.locations import redact


def rotate(state_dir: Path) -> list[str]:
    """New passwords for every login the deployment made, set on their servers and kept in secrets.json;
    the processes get them at the next `deploy down` + `deploy up`. One line per login. The own cluster
    must be running (its superuser sets them); the reader of an existing warehouse is changed by that
    warehouse's login. A --storage/--warehouse password is the server admin's to rotate."""
    from nb_assets.deploy.secrets import GENERATED, new_password
    from nb_assets.warehouse.backends import set_login_password

    settings = DeploySettings.load(state_dir)
    own = settings.own_storage or settings.own_warehouse
    external_reader = settings.external_reader()
    if own and not (settings.postgres_dir / "data" / "postmaster.pid").exists():
        raise DeployError(f"no cluster of this deployment runs from {state_dir}: start it (deploy up), then rotate")
    if not own and not external_reader:
        raise DeployError(f"the deployment in {state_dir} made no login: rotate its --storage/--warehouse passwords on their servers")
    secrets = load_secrets(state_dir)
    logins = {"dagster": DAGSTER_LOGIN, "warehouse": OWNER_LOGIN, "reader": READER_LOGIN, "postgres": "postgres"}
    admin = settings.admin_url(secrets)
    done = []
    for key in GENERATED if own else ("reader",):
        fresh = new_password()
        if own:
            set_login_password(admin, logins[key], fresh)
            done.append(f"new password for {logins[key]}")
        if key == "reader" and external_reader:
            set_login_password(settings.warehouse_url(secrets), external_reader, fresh)
            done.append(f"new password for {external_reader} on {redact(settings.warehouse)}")
        if key == "postgres":
            admin = settings.admin_url({**secrets, "postgres": fresh})
        secrets[key] = fresh
        save_secrets(state_dir, secrets)  # after each change: the file holds what the servers have (up re-sets it)
    return done


def restart_webserver(settings: DeploySettings) -> int:
    """Stop dagster-webserver and start a new one (the UI's history is in Postgres); its pid, once it serves."""
    _stop_process(settings.pids.pop("webserver", None))
    settings.pids["webserver"] = _spawn(settings, "webserver", [
        str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(settings.webserver_port)])
    settings.save()
    _wait_for_location(settings)
    return settings.pids["webserver"]


def restart_code_server(settings: DeploySettings) -> None:
    """Remove the code server's container and start a new one of the same image; queued runs wait for it."""
    from nb_assets.sandbox.image import docker_client

    client = docker_client()
    for summary in client.api.containers(all=True, filters={"name": f"^/{settings.code_server_name}$"}):
        client.api.remove_container(summary["Id"], force=True)
    _start_code_server(settings, load_secrets(settings.state_dir))


def start_postgres(settings: DeploySettings) -> None:
    """Start the deployment's own cluster again (after a crash: Postgres recovers from its WAL)."""
    from nb_assets.deploy.pg_cluster import start_cluster

    start_cluster(settings.postgres_dir, settings.postgres_port, listen="127.0.0.1",
                  superuser_password=load_secrets(settings.state_dir)["postgres"])
