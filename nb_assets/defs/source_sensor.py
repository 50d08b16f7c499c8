"""The source sensor: declared sources with `poll_s` reported as landed when what they hold changes.

Each change becomes a runless materialization of the source's external asset,
which is what `on_inputs_landed` counts as an update (automation.py), exactly
as the landing sensor reports a landed table. The cursor maps each source to
its last mark (sources/watch.py) and when it was taken, so a change is reported
once, across daemon restarts, and each source is looked at no more often than
its `poll_s`. A source seen for the first time is reported once: what it holds
has landed as far as its readers know.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import dagster as dg

from nb_assets.errors import SourceFetchError
from nb_assets.sources.model import Source

SOURCE_SENSOR = "nb_assets_sources"
MAX_NAMED_FILES = 20  # a new day's folder may hold many files; the metadata names the first ones


def source_sensor(
    sources: Sequence[Source],
    keys: Mapping[str, dg.AssetKey],
    base_dir: Path,
    *,
    status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    watched = [s for s in sources if s.poll_s is not None and s.name in keys]
    interval = min((int(s.poll_s or 30) for s in watched), default=30)

    @dg.sensor(
        name=SOURCE_SENSOR, minimum_interval_seconds=interval, default_status=status,
        description="Reports a declared source (poll_s=) as landed when its files or its content change.",
    )
    def nb_assets_sources(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        from nb_assets.sources.watch import current_mark

        cursor: dict[str, dict] = json.loads(context.cursor) if context.cursor else {}
        now = time.time()
        events: list[dg.AssetMaterialization] = []
        for source in watched:
            seen = cursor.get(source.name, {})
            if now - float(seen.get("at", 0)) < int(source.poll_s or 0):
                continue  # not due yet
            try:
                mark = current_mark(source, base_dir)
            except SourceFetchError as exc:
                context.log.warning(f"{exc}; trying again in {source.poll_s} s")
                continue
            empty = source.url is None and not mark.files  # a folder or prefix with no file yet: nothing to read
            if mark.digest != seen.get("mark") and not empty:
                new = sorted(set(mark.files) - set(seen.get("files", ())))
                metadata = {"source/location": dg.MetadataValue.text(mark.location), "source/mark": mark.digest}
                if new:
                    metadata["source/new_files"] = dg.MetadataValue.json(new[:MAX_NAMED_FILES])
                    metadata["source/new_file_count"] = len(new)
                events.append(dg.AssetMaterialization(asset_key=keys[source.name], metadata=metadata))
            cursor[source.name] = {"mark": mark.digest, "files": list(mark.files), "at": now}
        return dg.SensorResult(asset_events=events, cursor=json.dumps(cursor),
                               skip_reason=None if events else "no declared source changed")

    return nb_assets_sources
