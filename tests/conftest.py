from __future__ import annotations

import os
import sys

import pytest

# Fixtures every tier uses; helpers are imported from `support` where they are used.
pytest_plugins = ["support.warehouses", "support.sandboxes"]


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
