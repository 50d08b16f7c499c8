"""`nb-assets runs` and `nb-assets show` over real records: Dagster's and the CLI's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.failed_project import FailedProject, failed_project  # noqa: F401  (fixture)


def _cli(project: FailedProject, *args: str, dagster_home: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    if dagster_home:
        env["DAGSTER_HOME"] = str(project.instance_dir)
    return subprocess.run([sys.executable, "-m", "nb_assets.cli", *args], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def cli_run(failed_project: FailedProject) -> dict:
    """The same broken notebook, run once more from the CLI with another parameter."""
    done = _cli(failed_project, "run", "broken.ipynb", "--sandbox", "local", "--param", "ds=2026-12-01",
                "--warehouse", "warehouse.duckdb", "--json")
    assert done.returncode == 1, done.stderr
    return json.loads(done.stdout)


def test_runs_lists_dagster_and_cli_runs_newest_first(failed_project: FailedProject, cli_run: dict) -> None:
    done = _cli(failed_project, "runs", "broken.ipynb", "--json")
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    assert [(r["run_id"], r["source"], r["where"], r["status"]) for r in runs] == [
        (cli_run["run_id"], "cli", "cli", "failed"), (failed_project.broken_run, "dagster", "dagster dev", "failed"),
    ]
    dagster = runs[1]
    assert dagster["failed_cell"] == 5 and dagster["parameters"] == {"ds": "2026-11-20"}
    assert dagster["partition"] is None and dagster["duration_s"] > 0
    assert Path(dagster["record"]).is_relative_to(failed_project.instance_dir / "storage" / "nb_assets" / "broken")
    assert runs[0]["parameters"] == {"ds": "2026-12-01"}

    table = _cli(failed_project, "runs", "broken").stdout.splitlines()
    assert table[0].split() == ["RUN", "ID", "NOTEBOOK", "STATUS", "WHERE", "STARTED", "(UTC)", "DURATION", "PARTITION", "CELL",
                                "PARAMETERS", "RECORD"]
    assert table[1].startswith(cli_run["run_id"]) and " failed  cli " in table[1]
    assert table[2].startswith(failed_project.broken_run) and " broken " in table[2] and " failed  dagster dev " in table[2]
    assert "ds='2026-11-20'" in table[2]


def test_a_run_kept_by_the_deployment_says_so(failed_project: FailedProject, tmp_path: Path) -> None:
    """`make deploy` keeps DAGSTER_HOME in its state folder, next to deploy.json; any other instance is just "dagster"."""
    import shutil

    kept = failed_project.instance_dir / "storage" / "nb_assets" / "broken" / failed_project.broken_run
    for state, home in (("deploy_state", "dagster_home"), ("elsewhere", "home")):
        records = tmp_path / state / home / "storage" / "nb_assets"
        shutil.copytree(kept, records / "broken" / failed_project.broken_run)
    (tmp_path / "deploy_state" / "deploy.json").write_text("{}")
    for state, home, where in (("deploy_state", "dagster_home", "dagster deploy"), ("elsewhere", "home", "dagster")):
        done = _cli(failed_project, "runs", "broken", "--json", "--records", str(tmp_path / state / home / "storage" / "nb_assets"))
        assert [r["where"] for r in json.loads(done.stdout)["runs"]] == [where], done.stderr


def test_refused_runs_are_listed_with_the_reason(failed_project: FailedProject) -> None:
    [run] = json.loads(_cli(failed_project, "runs", "guarded.ipynb", "--json").stdout)["runs"]
    assert (run["run_id"], run["status"]) == (failed_project.refused_run, "refused")
    assert "may not read zone 'finance'" in run["error"]["message"]


def test_without_dagster_home_the_project_default_is_found(failed_project: FailedProject) -> None:
    # The project keeps its instance in ./.dagster_home, as `make dev` does.
    done = _cli(failed_project, "runs", "broken.ipynb", "--json", dagster_home=False)
    assert failed_project.broken_run in {r["run_id"] for r in json.loads(done.stdout)["runs"]}


def test_show_explains_a_run_by_a_short_id(failed_project: FailedProject, cli_run: dict) -> None:
    done = _cli(failed_project, "show", failed_project.broken_run[:8])
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith(f"run {failed_project.broken_run}: broken failed (dagster run)")
    assert "broken.ipynb, cell 5, line 2:\n  1 | total = len(rows)\n> 2 | missing = rows['currency']" in text
    assert "Traceback (colour codes stripped):" in text and text.count("KeyError: 'currency'") >= 2
    assert "rows                 mart.staged: 5 rows" in text
    assert '+# ---- injected parameters (papermill)\n+# Parameters\n+ds = "2026-11-20"' in text

    details = json.loads(_cli(failed_project, "show", cli_run["run_id"], "--json").stdout)
    assert details["failure"]["cell"] == 5 and details["failure"]["line"] == 2
    assert details["inputs"] == [{"name": "rows", "tables": ["mart.staged"], "rows": 5}]
    assert '+ds = "2026-12-01"' in details["diff"]


def test_show_names_what_it_could_not_find(failed_project: FailedProject) -> None:
    done = _cli(failed_project, "show", "no-such-run")
    assert done.returncode == 1 and "no run record with id 'no-such-run'" in done.stderr
