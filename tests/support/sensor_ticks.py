"""A sensor ticked in-process the way the sensor daemon ticks it; the ticks a real daemon recorded."""

from __future__ import annotations

from typing import Any

import dagster as dg

from support.polling import HasLog, wait_for

from nb_assets.defs.automation import LANDING_SENSOR


class Daemon:
    """Ticks one sensor as the sensor daemon would: report its events, keep its cursor."""

    def __init__(self, defs: dg.Definitions, name: str = LANDING_SENSOR) -> None:
        self.defs, self.sensor = defs, defs.resolve_sensor_def(name)
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor: str | None = None

    def tick(self, *, report: bool = True, save_cursor: bool = True) -> dg.SensorExecutionData:
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=self.defs)
        data = self.sensor.evaluate_tick(context)
        if report:
            for event in data.asset_events:
                self.instance.report_runless_asset_event(event)
        if save_cursor and data.cursor is not None:
            self.cursor = data.cursor
        return data

    def reported(self, table: str) -> list[int]:
        """Landing ids on the table's asset, oldest first."""
        records = self.instance.fetch_materializations(dg.AssetKey(table.split(".")), limit=1000, ascending=True).records
        return [r.asset_materialization.metadata["landing/id"].value for r in records]


# --- ticks a real dagster-daemon recorded -------------------------------------------------------------------


def recorded_ticks(instance: dg.DagsterInstance, name: str, since: float = 0.0) -> list[Any]:
    """The ticks a daemon recorded for sensor `name` after `since` (a time.time()), newest first."""
    state = next((s for s in instance.all_instigator_state() if s.instigator_name == name), None)
    if state is None:
        return []
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=200)
    return [t for t in ticks if t.timestamp > since]


def completed_ticks(instance: dg.DagsterInstance, name: str, since: float = 0.0) -> list[Any]:
    """Only the finished ones (success, skipped or failed), not one still being evaluated."""
    return [t for t in recorded_ticks(instance, name, since) if t.status.value != "STARTED"]


def wait_for_completed_ticks(instance: dg.DagsterInstance, name: str, count: int, since: float, process: HasLog,
                             timeout_s: float = 180.0) -> None:
    """A negative ("nothing was sent again", "nothing ran") holds only over ticks that happened: wait until the
    daemon finished `count` evaluations of the sensor after `since`, instead of sleeping a fixed time that may
    cover none on a loaded machine. Fails if one of those ticks failed."""
    wait_for(f"{count} completed ticks of {name}", lambda: len(completed_ticks(instance, name, since)) >= count,
             process, timeout_s)
    failed = [t for t in completed_ticks(instance, name, since) if t.status.value == "FAILURE"]
    assert not failed, f"a tick of {name} failed: {failed[0].error}"
