"""What the deployment writes down and what it only hands over: no password in dagster.yaml or
deploy.json, bare variable names for the run launcher, passwords in the processes' environment."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from nb_assets.deploy.config import DeploySettings, dagster_yaml
from nb_assets.deploy.reaper import _finished_at
from nb_assets.deploy.secrets import DAGSTER_PASSWORD_ENV, load_secrets
from nb_assets.deploy.stack import reader_schemas, scrub

REPO = next(p for p in Path(__file__).resolve().parents if (p / "definitions.py").is_file())


def test_dagster_yaml_names_the_password_and_holds_none(tmp_path: Path) -> None:
    settings = DeploySettings(state_dir=tmp_path, postgres_port=6000, secret_envs=["NB_ASSETS_SMTP_PASSWORD"])
    secrets = {**load_secrets(tmp_path), "env:NB_ASSETS_SMTP_PASSWORD": "smtp-secret-123456"}
    text = dagster_yaml(settings)
    config = yaml.safe_load(text)
    assert config["storage"]["postgres"]["postgres_db"] == {
        "username": "dagster", "password": {"env": DAGSTER_PASSWORD_ENV}, "hostname": "127.0.0.1",
        "db_name": "dagster", "port": 6000, "scheme": "postgresql+psycopg2"}
    env_vars = config["run_launcher"]["config"]["env_vars"]
    assert all("=" not in name for name in env_vars)  # values come from the daemon's environment
    assert {"NB_ASSETS_WAREHOUSE", "NB_ASSETS_READ_DSN", DAGSTER_PASSWORD_ENV, "NB_ASSETS_SMTP_PASSWORD"} <= set(env_vars)
    assert not [v for v in secrets.values() if v in text]
    env = settings.project_env(secrets)
    assert secrets["warehouse"] in env["NB_ASSETS_WAREHOUSE"] and secrets["reader"] in env["NB_ASSETS_READ_DSN"]
    assert env["NB_ASSETS_READ_DSN"].startswith("postgresql://nb_assets_reader:")
    assert env["NB_ASSETS_SMTP_PASSWORD"] == "smtp-secret-123456"
    assert secrets["postgres"] not in json.dumps(env)  # the superuser stays with `deploy up`


def test_urls_given_with_a_password_are_kept_without_it(tmp_path: Path) -> None:
    settings = DeploySettings(state_dir=tmp_path, storage="postgresql://dg:st0rage-pw@db.example.invalid:5432/runs",
                              warehouse="postgresql://etl:wareh0use-pw@wh.example.invalid/analytics")
    secrets: dict[str, str] = {}
    settings.take_passwords(secrets)
    settings.save()
    saved = (tmp_path / "deploy.json").read_text() + dagster_yaml(settings)
    assert "st0rage-pw" not in saved and "wareh0use-pw" not in saved
    assert secrets == {"storage_url": "st0rage-pw", "warehouse_url": "wareh0use-pw"}
    assert settings.storage_password(secrets) == "st0rage-pw"
    assert settings.project_env(secrets)["NB_ASSETS_WAREHOUSE"] == "postgresql://etl:wareh0use-pw@wh.example.invalid/analytics"
    # An existing warehouse gets a reader of its own database (roles.py), not the cluster-wide nb_assets_reader.
    assert settings.project_env({**secrets, "reader": "r3ader-pw"})["NB_ASSETS_READ_DSN"] == \
        "postgresql://nb_assets_reader_analytics:r3ader-pw@wh.example.invalid/analytics"
    storage = yaml.safe_load(dagster_yaml(settings))["storage"]["postgres"]["postgres_db"]
    assert (storage["hostname"], storage["port"], storage["db_name"], storage["username"]) == ("db.example.invalid", 5432, "runs", "dg")


def test_deploy_json_of_an_older_version_still_loads(tmp_path: Path) -> None:
    (tmp_path / "deploy.json").write_text(json.dumps({"state_dir": str(tmp_path), "webserver_port": 3001, "gone": 1}))
    assert DeploySettings.load(tmp_path).webserver_port == 3001


def test_messages_are_scrubbed_of_urls_passwords_and_secret_values() -> None:
    env = {"NB_ASSETS_DAGSTER_PG_PASSWORD": "very-secret-value", "NB_ASSETS_WAREHOUSE": "postgresql://o:pw-in-url-1@h/db"}
    said = scrub("failed at postgresql://o:pw-in-url-1@h/db with very-secret-value", env)
    assert "pw-in-url-1" not in said and "very-secret-value" not in said and "postgresql://o:***@h/db" in said


def test_the_reader_gets_the_schemas_the_demo_notebooks_read() -> None:
    assert reader_schemas(REPO) == ["mart", "raw"]


def test_docker_times_parse() -> None:
    assert _finished_at("0001-01-01T00:00:00Z") is None
    assert _finished_at("2026-12-07T09:00:01.500000000Z") == 1796634001.5


def test_run_workers_share_one_spare_per_run_slot_through_a_claims_folder_they_all_see(tmp_path: Path) -> None:
    settings = DeploySettings(state_dir=tmp_path, max_concurrent_runs=3)
    env = settings.project_env({})
    assert env["NB_ASSETS_SPARE_POOL"] == settings.label and env["NB_ASSETS_SPARES_PER_SETTINGS"] == "3"
    claims = Path(env["NB_ASSETS_SPARE_CLAIMS"])
    assert settings.dagster_home in claims.parents  # mounted at the same path in every run worker
    assert "NB_ASSETS_DOCKER_SPARES" not in env


def test_the_code_images_python_trees_are_mounted_read_only_in_every_container(tmp_path: Path) -> None:
    settings = DeploySettings(state_dir=tmp_path, python_trees={"nb-assets-usr-abc-site": "/usr/local/lib/python3.11"})
    assert settings.mounts()["nb-assets-usr-abc-site"] == {"bind": "/usr/local/lib/python3.11", "mode": "ro"}
    launcher = yaml.safe_load(dagster_yaml(settings))["run_launcher"]["config"]["container_kwargs"]
    assert launcher["volumes"]["nb-assets-usr-abc-site"]["mode"] == "ro"


def test_the_reaper_judges_a_sandbox_by_whoever_holds_it() -> None:
    from nb_assets.deploy.reaper import _owner_namespace
    from nb_assets.sandbox.janitor import MAKER_LABEL, OWNER_LABEL, SPARE_LABEL

    made_for_its_run = {OWNER_LABEL: "box+4026532000:17:900"}
    assert _owner_namespace(made_for_its_run, "nb-assets-x") == "4026532000"
    spare = {SPARE_LABEL: "k", MAKER_LABEL: "box+4026531111:9:500"}
    assert _owner_namespace(spare, "nb-assets-boot-ab12") == "4026531111"  # being made: its maker's
    assert _owner_namespace(spare, "nb-assets-spare-ab12") == ""  # offered: nobody's until its claim-by
    assert _owner_namespace(spare, "nb-assets-run-ab12.31-4026532222.777") == "4026532222"  # its claimer's
    assert _owner_namespace(spare, "nb-assets-run-ab12.31.777") == ""  # claimed without a namespace: its deadline
    assert _owner_namespace({OWNER_LABEL: "host-without-namespace:17:900"}, "x") == ""


def test_a_pool_claimers_namespace_is_read_by_the_janitor_and_looks_like_no_pid_to_an_older_one() -> None:
    from nb_assets.sandbox.janitor import MAKER_LABEL, claimed_by

    labels = {MAKER_LABEL: "box+4026531111:9:500"}
    assert claimed_by("nb-assets-run-ab12.31-4026532222.777", labels) == "box+4026532222:31:777"
    assert claimed_by("nb-assets-run-ab12.31.777", labels) == "box+4026531111:31:777"  # claimed where it was made
    assert claimed_by("nb-assets-run-ab12.31.777.4026532222", labels) is None
    # A janitor of before pools split the name in three and checked the pid: "31-4026532222" is none.
    assert len("ab12.31-4026532222.777".split(".")) == 3 and not "31-4026532222".isdigit()
