"""The landing sensor: each row of the landing log reported once, on its source table's asset.

A landing becomes a runless materialization of the table's external asset,
which is what the notebooks' conditions (automation.py) count as an update.
The cursor is the last landing id read, plus a digest of the source tables the
definitions declared when it was written. A landing of a table no declared
notebook reads is read past and not reported; when the definitions change
(say `nb-assets schedule --write` declared a notebook reading that table, and
`dagster dev` reloaded), the digest differs and the next tick reports each
source's latest landing that was never reported, so data that landed before
its reader was declared is not lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from nb_assets.errors import LandingError, WarehouseBusyError
from nb_assets.locations import redact

if TYPE_CHECKING:
    from nb_assets.warehouse.landing import Landing

LANDING_SENSOR = "nb_assets_landings"
DEFAULT_INTERVAL_S = 15
# A backlog is reported over several ticks, oldest first. The daemon stores a tick's
# events one by one after the tick (benchmarks/landing_sensor.py), so a bound keeps ticks short.
MAX_LANDINGS_PER_TICK = 1_000
LANDING_ID, LANDED_AT = "landing/id", "landing/landed_at"
_SOURCES = ";sources="


def landing_sensor(
    warehouse: str | Path,
    sources: Mapping[str, dg.AssetKey],
    *,
    interval_s: int = DEFAULT_INTERVAL_S,
    status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
    max_per_tick: int = MAX_LANDINGS_PER_TICK,
    partitioned: Mapping[str, dg.PartitionsDefinition] | None = None,
) -> dg.SensorDefinition:
    """Reports each row of the landing log, once, as a materialization of its source table's asset.

    A landing of a `partitioned` source is reported on its partition; one without a
    partition, or with one the table does not have, is logged and not reported
    (`nb-assets land` refuses both, so only another loader can write them).

    Dagster saves the cursor after the tick's events, so a tick that dies in
    between would report some landings again; the events carry their landing
    id, and the next tick skips those already reported.
    """

    shown = redact(warehouse)  # a URL's password stays out of the UI
    digest = sources_digest(sources)
    parts = partitioned or {}

    @dg.sensor(
        name=LANDING_SENSOR,
        minimum_interval_seconds=interval_s,
        default_status=status,
        description=f"Reports each landing recorded in nb_assets.landings ({shown}) on its source table's asset.",
    )
    def nb_assets_landings(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        from nb_assets.warehouse.backends import last_landing_id, latest_landings, read_landings  # DuckDB loads in the tick

        after, declared = parse_cursor(context.cursor)
        try:
            landings = read_landings(warehouse, after_id=after, limit=max_per_tick)
            if not landings and after and last_landing_id(warehouse) < after:
                context.log.warning(f"the landing log in {shown} ends before landing {after}: it was recreated; reading it from the start")
                after = 0
                landings = read_landings(warehouse, after_id=0, limit=max_per_tick)
            # New definitions may read tables whose landings earlier ticks read past.
            earlier = latest_landings(warehouse, up_to_id=after) if after and declared not in (None, digest) else []
        except WarehouseBusyError as exc:
            return dg.SensorResult(skip_reason=f"warehouse busy, trying again next tick: {exc}")
        caught_up = never_reported(context.instance, _fitting(earlier, sources, parts), sources)
        for landing in caught_up:
            context.log.info(f"landing {landing.id} of {landing.table} was recorded before a declared notebook read "
                             f"{landing.table}; reporting it now")
        unknown = sorted({landing.table for landing in landings if landing.table not in sources})
        if unknown:
            context.log.warning(f"landings of tables no declared notebook reads were not reported: {', '.join(unknown)} "
                                "(the latest of each is reported once a notebook reading it is declared)")
        known = [landing for landing in landings if landing.table in sources]
        misfits = [l for l in known if l.table in parts and not _has_partition(parts[l.table], l.partition)]
        for landing in misfits:
            context.log.warning(
                f"landing {landing.id} of {landing.table} names partition {landing.partition!r}, which is not one of its "
                f"days ({parts[landing.table].get_first_partition_key()} to yesterday); not reported"
            )
        fresh = not_yet_reported(context.instance, [l for l in known if l not in misfits], sources)
        reported = [*caught_up, *fresh]
        events = [landing_event(landing, sources[landing.table], partitioned=landing.table in parts) for landing in reported]
        last = landings[-1].id if landings else after
        summary = f"reported {len(events)} landing(s)" + (f", {landings[0].id} to {last}" if landings else "")
        if caught_up:
            summary += f"; {len(caught_up)} of them recorded before a notebook read their table"
        if not events and not landings:
            summary = f"no landings after {after}"
        return dg.SensorResult(asset_events=events, cursor=format_cursor(last, digest), skip_reason=summary)

    return nb_assets_landings


def sources_digest(sources: Mapping[str, dg.AssetKey]) -> str:
    """Which source tables the definitions declare, in a few characters."""
    return hashlib.sha256("\n".join(sorted(sources)).encode()).hexdigest()[:12]


def format_cursor(after: int, digest: str) -> str:
    return f"{after}{_SOURCES}{digest}"


def parse_cursor(cursor: str | None) -> tuple[int, str | None]:
    """The last landing id read, and the digest of the sources then declared.

    A bare id (a cursor written before the digest existed) is taken as written
    by these same definitions: nothing to catch up."""
    if not cursor:
        return 0, None
    text, _, digest = cursor.partition(_SOURCES)
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise LandingError(f"the {LANDING_SENSOR} cursor {cursor!r} is not a landing id; clear it in the sensor's page to report from the start")
    return value, digest or None


def _has_partition(partitions_def: dg.PartitionsDefinition, key: str | None) -> bool:
    try:
        return key is not None and partitions_def.has_partition_key(key)
    except Exception:  # a key that is not a date at all: Dagster's parse error type is internal
        return False


def _fitting(latest: Sequence[Landing], sources: Mapping[str, dg.AssetKey], parts: Mapping[str, dg.PartitionsDefinition]) -> list[Landing]:
    """Of each source's latest landing per partition: the newest one for a table without
    partitions, each day's for a partitioned table (days it does not have left out)."""
    newest: dict[str, Landing] = {}
    fitting: list[Landing] = []
    for landing in latest:
        if landing.table not in sources:
            continue
        if landing.table in parts:
            if _has_partition(parts[landing.table], landing.partition):
                fitting.append(landing)
        elif landing.table not in newest or landing.id > newest[landing.table].id:
            newest[landing.table] = landing
    return sorted([*fitting, *newest.values()], key=lambda landing: landing.id)


def landing_event(landing: Landing, key: dg.AssetKey, *, partitioned: bool = False) -> dg.AssetMaterialization:
    metadata: dict[str, dg.MetadataValue] = {
        LANDING_ID: dg.MetadataValue.int(landing.id),
        LANDED_AT: dg.MetadataValue.timestamp(landing.landed_at),
    }
    if landing.rows is not None:
        metadata["landing/rows"] = dg.MetadataValue.int(landing.rows)
    if landing.partition is not None:
        metadata["landing/partition"] = dg.MetadataValue.text(landing.partition)
    if landing.source:
        metadata["landing/source"] = dg.MetadataValue.text(landing.source)
    rows = f"{landing.rows} rows" if landing.rows is not None else "data"
    return dg.AssetMaterialization(
        asset_key=key,
        description=f"{landing.table} landed: {rows} from {landing.source or 'a loader'}",
        metadata=metadata,
        partition=landing.partition if partitioned else None,
    )


def not_yet_reported(instance: dg.DagsterInstance, landings: Sequence[Landing], sources: Mapping[str, dg.AssetKey]) -> list[Landing]:
    """Drop landings a previous tick reported before dying without saving its cursor.

    Ticks report in id order, so such landings are a prefix of this batch: if the
    first was not reported, none was (one lookup on the usual path).
    """
    if not landings:
        return []
    reported = _reported_check(instance, sources)
    if not reported(landings[0]):
        return list(landings)
    return [landing for landing in landings if not reported(landing)]


def never_reported(instance: dg.DagsterInstance, landings: Sequence[Landing], sources: Mapping[str, dg.AssetKey]) -> list[Landing]:
    """The landings no tick reported (one lookup per table, only when the definitions changed)."""
    reported = _reported_check(instance, sources, look_back=20)
    return [landing for landing in landings if not reported(landing)]


def _reported_check(
    instance: dg.DagsterInstance, sources: Mapping[str, dg.AssetKey], look_back: int = 1,
) -> Callable[[Landing], bool]:
    latest: dict[str, tuple[int, float] | None] = {}

    def reported(landing: Landing) -> bool:
        if landing.table not in latest:
            latest[landing.table] = _last_reported(instance, sources[landing.table], look_back)
        last = latest[landing.table]
        # landed_at too: a recreated log reuses small ids, but its landings are newer
        return last is not None and last[0] >= landing.id and last[1] >= landing.landed_at

    return reported


def _last_reported(instance: dg.DagsterInstance, key: dg.AssetKey, look_back: int = 1) -> tuple[int, float] | None:
    """The newest landing reported on `key`, among its last `look_back` materializations
    (others are someone else's, e.g. made by hand in the UI). Newest first: one is the cheapest lookup."""
    for record in instance.fetch_materializations(key, limit=look_back).records:
        materialization = record.asset_materialization
        metadata = materialization.metadata if materialization is not None else {}
        landing_id, landed_at = metadata.get(LANDING_ID), metadata.get(LANDED_AT)
        if landing_id is not None and landed_at is not None:
            return int(landing_id.value), float(landed_at.value)  # type: ignore[arg-type]
    return None
