"""A pytest plugin (tests/conftest.py loads it): a skipped test that needs Docker, PostgreSQL or a browser fails the run.

`make test` and CI read pytest's exit code. A Docker engine too slow to answer, a missing PostgreSQL or Chromium
used to skip dozens of tests and still exit 0. Here a skip counts as "needed" when its reason carries the tag of
support.needs.skip_missing, or when the test is marked `docker`, `postgres` or `browser`; such a skip turns a
passing run into a failed one (exit code 1) and the summary names each test and why, unless NB_ASSETS_ALLOW_SKIPS
names the component. Under xdist the reports reach the controller as they happen, and the controller alone
judges (a worker's own exit code is not what `make test` reads).
"""

from __future__ import annotations

import pytest

from support.needs import ALLOW_SKIPS, COMPONENTS, TAG, allowed_skips

_needed_skips: dict[str, list[str]] = {}


def _needed_component(report: pytest.TestReport) -> str | None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr or "")
    for component in COMPONENTS:
        if TAG.format(component) in reason:
            return component
    for component in COMPONENTS:  # a marked test skipped some other way (skipif, importorskip)
        if component in report.keywords:
            return component
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.skipped or getattr(report, "wasxfail", None) is not None:
        return
    component = _needed_component(report)
    if component is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _needed_skips.setdefault(component, []).append(f"{report.nodeid}: {reason}")


def _forbidden_skips(config: pytest.Config) -> dict[str, list[str]]:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller judges
        return {}
    allowed = allowed_skips()
    return {c: skipped for c, skipped in _needed_skips.items() if c not in allowed}


@pytest.hookimpl(tryfirst=True)  # before conftest records the status it exits with
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _forbidden_skips(session.config) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: object, exitstatus: int, config: pytest.Config) -> None:
    forbidden = _forbidden_skips(config)
    if not forbidden:
        return
    write = terminalreporter.write_line  # type: ignore[attr-defined]
    terminalreporter.section("skips that fail this run", sep="=", red=True, bold=True)  # type: ignore[attr-defined]
    for component, skipped in sorted(forbidden.items()):
        write(f"{len(skipped)} test(s) needing {component} were skipped, so this run proves nothing about them:")
        for line in skipped[:10]:
            write(f"  {line}")
        if len(skipped) > 10:
            write(f"  ... and {len(skipped) - 10} more")
    names = ",".join(sorted(forbidden))
    write(f"FAILED: needed components were absent. Install/start them, or set {ALLOW_SKIPS}={names} to accept the skips.")
