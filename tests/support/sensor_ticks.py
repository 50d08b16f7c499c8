"""A sensor ticked in-process the way the sensor daemon ticks it."""

from __future__ import annotations

import dagster as dg

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
