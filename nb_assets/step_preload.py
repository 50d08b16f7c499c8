"""Imported by the step processes' forkserver only: work every notebook step would repeat.

Each forked step builds the run's Dagster instance (its first build imports the
storage stack, SQLAlchemy and Alembic: ~0.45 s) and renders its record as HTML
(nbconvert's import and first rendering: ~0.7 s). Done once here, before the
server forks, every step inherits both warm. An ephemeral instance imports the
same storage modules without touching the real instance; neither leaves a
thread running, so forking after this stays safe.
"""

from __future__ import annotations

import dagster as dg

from nb_assets.record import warm_html

with dg.DagsterInstance.ephemeral():
    pass
warm_html()
