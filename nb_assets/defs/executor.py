"""The executor notebook runs get: Dagster's own, choosing per run where steps execute.

A step process costs a run more than it gives when its steps can only go one
after another (a single notebook, or a chain): the forkserver's boot before
the first step (~1.7-2 s on a 2-core machine), then a fork and a fresh
definitions load per step (~0.3 s). Such a run executes
its steps in the run's own process (`in_process`), where definitions and the
instance are loaded already. A run in which two steps could run at once keeps
a process per step, so independent notebooks still run concurrently; those
processes fork from a server that imported Dagster, the execution stack and the
instance's storage once per run (instead of spawning a fresh Python per step,
Dagster's default), and leave without interpreter teardown (multiprocessing
ends forked children with os._exit).

Run config still decides when it says so: `in_process`, or `multiprocess` with
a `start_method` (e.g. `spawn: {}`), is taken as given.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg

__all__ = ["PRELOAD_MODULES", "STEP_MODULES", "notebook_executor"]

# What a notebook step loads: Dagster's step machinery and nb_assets' execution stack.
STEP_MODULES = (
    "dagster",
    "nb_assets.defs.build",
    "nb_assets.defs.resource",
    "nb_assets.sandbox.choose",
    "nb_assets.runs.pipeline",
    "nb_assets.defs.materialize",
    "nb_assets.runs.record",
    "nb_assets.runs.history",
    "nb_assets.runs.once",
    "nb_assets.warehouse.backends",
    "nb_assets.warehouse.duckdb.warehouse",  # the chooser loads a backend on first use: warm DuckDB's here
)
# The forkserver's preload: nb_assets.defs.step_preload imports STEP_MODULES and warms them up.
# Dagster puts its executor module first unless the list names it; named second, it is
# imported after step_preload has loaded Dagster, with the garbage collector off.
PRELOAD_MODULES = ("nb_assets.defs.step_preload", "dagster._core.executor.multiprocess")

_BASE = dg.multi_or_in_process_executor


def notebook_executor() -> dg.ExecutorDefinition:
    """`multi_or_in_process_executor`, with the run's own process for plans that cannot
    run two steps at once, and a preloaded forkserver for the others."""

    @dg.executor(
        name="nb_assets_executor",
        config_schema=_BASE.config_schema,
        requirements=lambda config: dg.multiple_process_executor_requirements() if "multiprocess" in config else [],
    )
    def nb_assets_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
        config = init_context.executor_config
        if "multiprocess" not in config or _start_method_chosen(config):
            return _create(init_context, config)
        return OneAtATimeInProcess(
            in_process=_create(init_context, _in_process_config(config)),
            multiprocess=_create(init_context, _forkserver_by_default(config)),
        )

    return nb_assets_executor


class OneAtATimeInProcess(dg.Executor):
    """Executes a plan whose steps can only run one after another in this process, any other in step processes."""

    def __init__(self, in_process: dg.Executor, multiprocess: dg.Executor) -> None:
        self.in_process, self.multiprocess = in_process, multiprocess

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[Any]:
        chosen = self.in_process if one_at_a_time(_levels(execution_plan)) else self.multiprocess
        return chosen.execute(plan_context, execution_plan)

    @property
    def retries(self) -> Any:
        return self.multiprocess.retries

    @property
    def step_dependency_config(self) -> Any:
        return self.multiprocess.step_dependency_config


def one_at_a_time(levels: Sequence[Sequence[Any]] | None) -> bool:
    """True when no two steps could run at once: one step per dependency level.

    A step on level k+1 waits for a step on level k, and that one is the level's
    only step, so each step waits for the one before. None (plan unreadable) → False.
    """
    return levels is not None and all(len(level) <= 1 for level in levels)


def _levels(execution_plan: Any) -> Sequence[Sequence[Any]] | None:
    # The plan Dagster hands Executor.execute; if its shape ever changes, steps keep their processes.
    try:
        levels = execution_plan.get_steps_to_execute_by_level()
        # Steps a dynamic output has yet to map are in no level; a fan-out is not a chain.
        if sum(len(level) for level in levels) != len(execution_plan.step_keys_to_execute):
            return None
        return levels
    except Exception:  # noqa: BLE001 - only an optimization is lost
        return None


def _create(init_context: dg.InitExecutorContext, config: Mapping[str, Any]) -> dg.Executor:
    creation_fn = _BASE.executor_creation_fn
    assert creation_fn is not None
    return creation_fn(dg.InitExecutorContext(
        job=init_context.job, executor_def=init_context.executor_def,
        executor_config=config, instance=init_context.instance,
    ))


def _start_method_chosen(config: Mapping[str, Any]) -> bool:
    return bool((config.get("multiprocess") or {}).get("start_method"))


def _in_process_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The multiprocess config's retries and step dependencies, for `in_process`."""
    multiprocess = config.get("multiprocess") or {}
    return {"in_process": {k: multiprocess[k] for k in ("retries", "step_dependency_config") if k in multiprocess}}


def _forkserver_by_default(config: dict[str, Any]) -> dict[str, Any]:
    if "multiprocess" not in config:  # in_process, chosen in run config
        return config
    if "forkserver" not in multiprocessing.get_all_start_methods():  # not on this platform
        return config
    multiprocess = dict(config["multiprocess"] or {})
    multiprocess.setdefault("start_method", {"forkserver": {"preload_modules": list(PRELOAD_MODULES)}})
    return {"multiprocess": multiprocess}
