from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Fixtures every tier uses; helpers are imported from `support` where they are used.
pytest_plugins = ["support.warehouses", "support.sandboxes"]

# `make test` runs on pytest-xdist workers (`-n`, `--dist loadgroup` in pyproject). Each test has its own tmp
# folder, free ports, DAGSTER_HOME or ephemeral instance, Postgres database (a cluster per worker) and Docker
# containers, so any test may run beside any other. These modules build something once for all their tests
# (a module- or session-scoped fixture of seconds to minutes): their tests run on one worker, one after another,
# so it is built once, as in a serial run. Keyed by path under tests/; the value names the xdist group.
ONE_WORKER = {
    "e2e/test_deploy.py": "deploy-stack",  # `deploy up`: code image, Postgres, code server, webserver, daemon
    "e2e/test_deploy_durable.py": "deploy-durable",  # a durable deployment: secrets, drops, backup, upgrade, restore
    "e2e/test_deploy_faults.py": "deploy-faults",  # a deployment whose pieces are killed and restarted
    "e2e/test_daemon.py": "daemon",  # dagster-daemon on a seeded copy of the demo
    "e2e/test_browser_ui.py": "dagster-dev",  # `dagster dev`, Chromium, hostile records in both sandboxes
    "e2e/test_demo_project.py": "demo-duckdb",  # the demo seeded and materialized
    "e2e/test_demo_postgres.py": "demo-postgres",  # the demo seeded and materialized on Postgres
    "e2e/test_demo_failure.py": "demo-failure",  # the demo broken, run, its sensor ticked
    "integration/test_ad_hoc_guard.py": "demo-seed",  # the demo's warehouse seeded once
    "integration/test_report_outputs.py": "jupyter-reference",  # the report run once as Jupyter runs it
    # support.failed_project's session fixture: a project whose runs failed, in a Dagster instance.
    "integration/test_cli_runs.py": "failed-project",
    "integration/test_context_pane.py": "failed-project",
    "integration/test_failure_sensor.py": "failed-project",
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        group = ONE_WORKER.get(item.path.relative_to(tests).as_posix())
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


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
