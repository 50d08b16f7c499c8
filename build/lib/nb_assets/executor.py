"""The executor notebook runs get: Dagster's own, with step processes forked from a warm server.

Dagster's default (`multi_or_in_process_executor`) spawns a fresh Python for
every step: it imports Dagster and the execution stack again, and when the step
is done waits for that interpreter's teardown (about 1 s on a loaded 2-core
machine). With the forkserver start method, step processes fork from a server
that imported those once per run, and leave without teardown (multiprocessing
ends forked children with os._exit). Steps still run in their own processes, so
independent notebooks run concurrently; run config can still choose
`in_process`, or another `start_method`.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import dagster as dg

__all__ = ["PRELOAD_MODULES", "notebook_executor"]

# Imported by the forkserver: Dagster's step machinery and what a notebook step loads.
PRELOAD_MODULES = (
    "dagster",
    "nb_assets.build_assets",
    "nb_assets.resource",
    "nb_assets.choose_sandbox",
    "nb_assets.host_pipeline",
    "nb_assets.materialize",
    "nb_assets.record",
    "nb_assets.run_records",
    "nb_assets.warehouse",
)


def notebook_executor() -> dg.ExecutorDefinition:
    """`multi_or_in_process_executor` whose multiprocess default starts steps by forkserver."""
    if "forkserver" not in multiprocessing.get_all_start_methods():  # not on this platform
        return dg.multi_or_in_process_executor
    return dg.multi_or_in_process_executor.configured(
        _forkserver_by_default,
        config_schema=dg.multi_or_in_process_executor.config_schema,
        name="nb_assets_executor",
    )


def _forkserver_by_default(config: dict[str, Any]) -> dict[str, Any]:
    if "multiprocess" not in config:  # in_process, chosen in run config
        return config
    multiprocess = dict(config["multiprocess"] or {})
    multiprocess.setdefault("start_method", {"forkserver": {"preload_modules": list(PRELOAD_MODULES)}})
    return {"multiprocess": multiprocess}
