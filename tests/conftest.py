from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Fixtures every tier uses; helpers are imported from `support` where they are used.
# support.skip_gate: a skipped test that needs Docker, PostgreSQL or a browser fails the run (NB_ASSETS_ALLOW_SKIPS).
pytest_plugins = ["support.warehouses", "support.sandboxes", "support.skip_gate"]

# `make test` runs on pytest-xdist workers (`-n`, `--dist loadgroup` in pyproject). Each test has its own tmp
# folder, free ports, DAGSTER_HOME or ephemeral instance, Postgres database (a cluster per worker) and Docker
# containers, so any test may run beside any other. These modules build something once for all their tests
# (a module- or session-scoped fixture of seconds to minutes): their tests run on one worker, one after another,
# so it is built once, as in a serial run. Keyed by path under tests/; the value names the xdist group.
ONE_WORKER = {
    "e2e/test_deploy.py": "deploy-stack",  # `deploy up`: code image, Postgres, code server, webserver, daemon
    "e2e/test_deploy_components.py": "deploy-stack",  # `deploy up` of a dg project: one run of its notebook
    "e2e/test_deploy_durable.py": "deploy-durable",  # a durable deployment: secrets, drops, backup, upgrade, restore
    "e2e/test_deploy_faults.py": "deploy-faults",  # a deployment whose pieces are killed and restarted
    "e2e/test_daemon.py": "daemon",  # dagster-daemon on a seeded copy of the demo
    "e2e/test_browser_ui.py": "dagster-dev",  # `dagster dev`, Chromium, hostile records in both sandboxes
    "e2e/test_jupyterlab.py": "jupyterlab",  # `nb-assets lab` on a git copy of the demo, Chromium, steps a→b→c→d in order
    "e2e/test_demo_project.py": "demo-duckdb",  # the demo seeded and materialized
    "e2e/test_demo_postgres.py": "demo-postgres",  # the demo seeded and materialized on Postgres
    "e2e/test_demo_failure.py": "demo-failure",  # the demo broken, run, its sensor ticked
    "integration/test_deploy_external_storage.py": "deploy-external-storage",  # one cluster as the existing server
    "integration/test_ad_hoc_guard.py": "demo-seed",  # the demo's warehouse seeded once
    "integration/test_report_outputs.py": "jupyter-reference",  # the report run once as Jupyter runs it
    "integration/test_notebook_component.py": "dg-project",  # a project create-dagster makes, scaffolded once
    # support.failed_project's session fixture: a project whose runs failed, in a Dagster instance.
    "integration/test_cli_runs.py": "failed-project",
    "integration/test_context_pane.py": "failed-project",
    "integration/test_context_pane_cell_link.py": "failed-project",
    "integration/test_failure_sensor.py": "failed-project",
    "integration/test_explain_run.py": "failed-project",
}


# pytest-timeout's default (`timeout` in pyproject) is for one test; these modules build a stack, a server or the
# demo in the fixture their first test sets up (a fresh machine also builds images), so their tests get longer.
LONG_TIMEOUT_S = {
    "e2e/test_deploy.py": 3600,  # `deploy up` builds the code image on a fresh machine
    "e2e/test_deploy_down.py": 1800,
    "e2e/test_deploy_durable.py": 3600,  # a durable stack: secrets, drops, backup, upgrade, restore
    "e2e/test_deploy_faults.py": 3600,  # a stack whose pieces are killed and restarted
    "e2e/test_browser_ui.py": 1800,
    "e2e/test_daemon.py": 1800,
    "e2e/test_demo_project.py": 1800,
    "e2e/test_demo_postgres.py": 1800,
    "e2e/test_demo_failure.py": 1800,
    "e2e/test_concurrency.py": 1800,  # its own waits allow 900 s for the runs alone
    "e2e/test_host_killed.py": 1800,  # many runs, killed at random points, then one more
    "e2e/test_teardown_abort.py": 1800,
    "e2e/test_jupyterlab.py": 1800,  # JupyterLab, Chromium, a Docker trial run and a schedule, in one module
    "e2e/test_freshness_daemon.py": 1800,  # dagster-daemon ticks until a stale and a recovery notice arrive
}


def _under_tests(path: Path) -> str:
    """A test module's key in ONE_WORKER and LONG_TIMEOUT_S: its path under tests/, or "" outside it."""
    tests = Path(__file__).parent
    return path.relative_to(tests).as_posix() if path.is_relative_to(tests) else ""


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = _under_tests(item.path)
        group = ONE_WORKER.get(path)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        long_s = LONG_TIMEOUT_S.get(path)
        if long_s is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(long_s))


def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    """On the controller, before any test runs: every test of a ONE_WORKER module must carry its group.
    If pytest-xdist ever stops grouping (pytest 9.2 made it do so silently), a module's tests go to
    several workers, each building the module's stack, and a test that reads what an earlier one made
    finds a fresh stack; stop here with the reason instead."""
    config = getattr(node, "config", None)
    if config is None or config.getvalue("dist") != "loadgroup":
        return
    root = Path(str(config.rootpath))
    ungrouped = [nodeid for nodeid in ids if "@" not in nodeid and _under_tests(root / nodeid.split("::")[0]) in ONE_WORKER]
    if ungrouped:
        pytest.exit(f"pytest-xdist's --dist loadgroup grouped none of the {len(ungrouped)} tests that must share a "
                    f"worker (e.g. {ungrouped[0]}): check the pytest and pytest-xdist versions", returncode=4)


_exit_status: list[int] = []


@pytest.hookimpl(trylast=True)  # after support.skip_gate may have turned the status into a failure
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(session.exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """`make test` reads pytest's exit code. Once pytest has reported, leave
    without interpreter teardown, where the native thread pools of Arrow and
    DuckDB (loaded by the tests) can abort and turn a green run red. Only when
    pytest is the program itself, never when it was called from other code."""
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    if _exit_status and (program in ("pytest", "py.test") or sys.argv[0].endswith(os.path.join("pytest", "__main__.py"))):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])
