"""The host stages' deadlines (warehouse/deadline.py): how long each stage gets, and what the timer does.

The engines' cancels are proven against real DuckDB and Postgres in
tests/integration/test_stage_deadlines.py; here the cancel is a callback that
records when it ran, so the timer's own rules can be checked in milliseconds."""

from __future__ import annotations

import argparse
import math
import threading
import time

import pytest

from nb_assets.cli.jobs import limits_with_flags
from nb_assets.errors import DeclarationError, WarehouseError
from nb_assets.sandbox.base import SandboxLimits
from nb_assets.warehouse.deadline import Deadline, RunBudget, StageTimeoutError

BOUND_S = 30  # generous: the waits below are a fraction of a second on any machine


def test_a_stage_gets_its_limit_while_the_run_has_more_left() -> None:
    deadline = RunBudget(600).stage("prefetch", "prefetch_timeout", 300)
    assert 299 < deadline.left() <= 300
    assert deadline.why == "prefetch_timeout 300 s"


def test_a_stage_never_gets_more_than_what_is_left_of_the_run() -> None:
    budget = RunBudget(10, started=time.monotonic() - 7)  # 7 s of the run's 10 s are gone
    deadline = budget.stage("load", "load_timeout", 300)
    assert deadline.left() <= 3
    assert deadline.why == "load_timeout 300 s, cut to what was left of the run's timeout_s 10 s"


def test_a_run_with_nothing_left_refuses_the_stage_before_any_query() -> None:
    deadline = RunBudget(5, started=time.monotonic() - 6).stage("load", "load_timeout", 300)
    ran = threading.Event()
    with pytest.raises(StageTimeoutError) as err, deadline.watching(ran.set, "nb.ipynb", "loading mart.x"):
        pytest.fail("the block ran with no time left")
    assert str(err.value) == ("nb.ipynb: loading mart.x: the load did not finish within the deadline of 0 s (load_timeout 300 s, "
                              "cut to what was left of the run's timeout_s 5 s); nothing loaded")
    assert not ran.is_set()
    assert isinstance(err.value, WarehouseError) and err.value.kind == "stage-timeout"


def test_the_checks_deadline_is_its_own_and_never_past_the_load() -> None:
    load = Deadline(60, stage="load", why="load_timeout 60 s", subs={"checks_timeout": 5})
    checks = load.sub("checks_timeout")
    assert checks.stage == "output checks" and checks.why == "checks_timeout 5 s" and checks.left() <= 5
    short = Deadline(2, stage="load", why="load_timeout 2 s", subs={"checks_timeout": 120})
    cut = short.sub("checks_timeout")
    assert cut.left() <= 2 and cut.why == "checks_timeout 120 s, cut to what was left of the load (load_timeout 2 s)"


def test_the_timer_cancels_the_running_work_and_the_error_names_the_step_and_cell() -> None:
    cancelled = threading.Event()
    deadline = Deadline(0.2, stage="prefetch", why="prefetch_timeout 0.2 s")
    with pytest.raises(StageTimeoutError) as err, deadline.watching(cancelled.set, "nb.ipynb", "reading the catalog") as watch:
        watch.at("cell 3: SQL input 'rows'", 3)
        # Stands in for the engine: its running statement fails once it is cancelled.
        if not cancelled.wait(BOUND_S):
            pytest.fail("the deadline never cancelled")
        raise OSError("canceling statement due to user request")
    assert deadline.expired and err.value.cell == 3
    assert str(err.value) == (
        "nb.ipynb: cell 3: SQL input 'rows': the prefetch did not finish within the deadline of 0.2 s "
        "(prefetch_timeout 0.2 s); the query was cancelled in the warehouse and nothing was fetched"
    )
    assert isinstance(err.value.__cause__, OSError)


def test_a_stage_that_ends_in_time_is_left_alone_and_never_cancelled_later() -> None:
    cancelled = threading.Event()
    deadline = Deadline(0.3, stage="load", why="load_timeout 0.3 s")
    with deadline.watching(cancelled.set, "nb.ipynb", "loading mart.x"):
        pass
    time.sleep(0.6)  # past the deadline: the timer must have been stopped with the block
    assert not cancelled.is_set() and not deadline.expired


def test_an_error_before_the_deadline_stays_what_it_was() -> None:
    deadline = Deadline(60, stage="load", why="load_timeout 60 s")
    with pytest.raises(WarehouseError) as err, deadline.watching(lambda: None, "nb.ipynb"):
        raise WarehouseError("nb.ipynb: loading outputs failed, nothing loaded: disk full")
    assert not isinstance(err.value, StageTimeoutError)


def test_no_deadline_starts_no_timer() -> None:
    deadline = Deadline.unlimited("prefetch")
    before = threading.active_count()
    with deadline.watching(lambda: pytest.fail("cancelled"), "nb.ipynb"):
        assert threading.active_count() == before
    assert math.isinf(deadline.left())


@pytest.mark.parametrize("value", [0, -1, "an hour", True])
def test_limits_refuse_a_stage_limit_that_is_not_seconds_above_zero(value: object) -> None:
    with pytest.raises(ValueError, match=f"limits: load_timeout must be a number of seconds above 0, not {value!r}"):
        SandboxLimits(load_timeout=value)  # type: ignore[arg-type]


def test_declarations_yaml_names_the_line_of_a_bad_stage_limit(tmp_path) -> None:
    from nb_assets.project.declarations_yaml import load_declarations_yaml

    path = tmp_path / "declarations.yaml"
    path.write_text("notebooks:\n  - path: a.ipynb\n    limits: {prefetch_timeout: 0}\n")
    with pytest.raises(DeclarationError, match=r"declarations.yaml:3: limits: prefetch_timeout must be a number of seconds above 0"):
        load_declarations_yaml(path)


def test_run_flags_override_the_declared_stage_limits() -> None:
    declared = SandboxLimits(timeout_s=900, prefetch_timeout=60, load_timeout=60, checks_timeout=30)
    args = argparse.Namespace(timeout=None, prefetch_timeout=5.0, load_timeout=None, checks_timeout=2.0)
    assert limits_with_flags(declared, args) == SandboxLimits(timeout_s=900, prefetch_timeout=5, load_timeout=60, checks_timeout=2)
    backfill = argparse.Namespace(timeout=30.0)  # backfill has --timeout only
    assert limits_with_flags(declared, backfill) == SandboxLimits(timeout_s=30, prefetch_timeout=60, load_timeout=60, checks_timeout=30)
