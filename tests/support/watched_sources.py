"""The demo project's declared sources watched (poll_s=), and what the source sensor reported for them.

tests/e2e/test_daemon.py runs a copy of the demo whose definitions.py differs from the demo's in three places:
both sources are polled, as a project whose partner drops files would declare them, and fx_revenue, their
reader, starts when its inputs land. Each edit must apply exactly once, so a change to the demo fails the test
instead of leaving nothing watched.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

POLL_S = 2  # as often as the daemon test's other sensors look (NB_ASSETS_SENSOR_INTERVAL_S)
WATCHED = {
    'Source("partner_rates", path="sources/partner_rates.json", format="json", zones=["public"])':
        f'Source("partner_rates", path="sources/partner_rates.json", format="json", zones=["public"], poll_s={POLL_S})',
    'Source("sales_regions", path="sources/sales_regions/", format="csv", zones=["public"])':
        f'Source("sales_regions", path="sources/sales_regions/", format="csv", zones=["public"], poll_s={POLL_S})',
    '"notebooks/fx_revenue.ipynb",': '"notebooks/fx_revenue.ipynb", on_inputs_landed=True,',
}


def watched_definitions(demo_definitions: str, *, trigger: bool = True) -> str:
    """The demo's definitions.py text with its sources watched and (unless not `trigger`) fx_revenue started by landings."""
    for demo_text, watched in WATCHED.items():
        if not trigger and "fx_revenue" in demo_text:
            continue
        assert demo_definitions.count(demo_text) == 1, f"the demo's definitions.py no longer has {demo_text}"
        demo_definitions = demo_definitions.replace(demo_text, watched)
    return demo_definitions


def source_landings(instance: dg.DagsterInstance, source: str) -> list[dg.EventLogRecord]:
    """What the source sensor reported for a declared source (runless materializations), oldest first."""
    return list(instance.fetch_materializations(dg.AssetKey(["source", source]), limit=100, ascending=True).records)


def new_files(record: dg.EventLogRecord) -> list[str]:
    """The names of the files a source landing reported as new ([] for a first sight of an empty folder)."""
    materialization = record.asset_materialization
    named = materialization.metadata.get("source/new_files") if materialization is not None else None
    return [Path(f).name for f in named.value] if named is not None else []
