"""Imported by the step processes' forkserver only: work every notebook step would repeat.

Each forked step builds the run's Dagster instance (the first build of one
imports SQLAlchemy, Alembic and Dagster's SQL storage: ~0.45 s) and renders its
record as HTML (nbconvert's import and first rendering: ~0.6 s). Done once
here, before the server forks, every step inherits both warm. An ephemeral
instance (in-memory SQLite) imports those modules without touching the real
instance; storages of other modules (dagster_postgres) stay cold. Neither
warm-up starts a thread (tests/test_executor.py counts them).

The forkserver survives only an ImportError in a preload module, so nothing
may escape from here: a failed warm-up costs the steps their head start only.
"""

from __future__ import annotations

import sys

try:
    import dagster as dg

    from nb_assets.record import warm_html

    with dg.DagsterInstance.ephemeral():
        pass
    warm_html()
except Exception as exc:  # noqa: BLE001 - see the module docstring
    print(f"[nb_assets] step processes start cold: {type(exc).__name__}: {exc}", file=sys.stderr)
