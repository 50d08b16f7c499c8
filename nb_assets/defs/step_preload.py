"""Imported first by the step processes' forkserver: what every notebook step would repeat.

It imports what a step loads (executor.STEP_MODULES) and warms two things up:
each forked step builds the run's Dagster instance (the first build imports
SQLAlchemy, Alembic and Dagster's SQL storage: ~0.45 s) and renders its record
as HTML (nbconvert's import and first rendering: ~0.6 s). Done once here,
before the server forks, every step inherits them warm. An ephemeral instance
(in-memory SQLite) imports those modules without touching the real instance;
storages of other modules (dagster_postgres) stay cold. Neither warm-up starts
a thread (tests/integration/test_executor.py counts them).

The garbage collector is off meanwhile: imports make millions of objects and
no garbage, and collecting during them cost ~0.35 s of the server's ~1.7 s
boot. Then everything the server holds is frozen (gc.freeze), so collections
in the forked steps skip it and leave its memory pages shared.

The forkserver survives only an ImportError in a preload module, so nothing
may escape from here: a failed warm-up costs the steps their head start only.

The server ends when its run's process does, and then leaves without
interpreter teardown (its forked steps always do): with Dagster, pyarrow and
nbconvert loaded, teardown costs ~0.5 s of CPU after the run, and Arrow's
native pools can abort it (see tests/e2e/test_teardown_abort.py). So a process
that imports this module exits with status 0 through os._exit.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys

gc.disable()
try:
    import dagster as dg

    from nb_assets.defs.executor import STEP_MODULES
    from nb_assets.runs.record import warm_html

    for module in STEP_MODULES:
        importlib.import_module(module)
    with dg.DagsterInstance.ephemeral():
        pass
    warm_html()
except Exception as exc:  # noqa: BLE001 - see the module docstring
    print(f"[nb_assets] step processes start cold: {type(exc).__name__}: {exc}", file=sys.stderr)
finally:
    gc.freeze()
    gc.enable()


def _leave_without_teardown() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


atexit.register(_leave_without_teardown)  # registered last, so it runs first
