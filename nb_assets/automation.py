"""When notebooks run: trigger conditions, the landing sensor, file drops and the automation sensor.

Every trigger is a Dagster `AutomationCondition`, evaluated by one
`AutomationConditionSensorDefinition`, so the UI shows for each notebook which
part of its condition held and which did not. Landings reach Dagster through
the landing sensor as runless materializations of the source tables' external
assets: for an external asset that Dagster cannot observe itself, a
materialization is the event its conditions (newly updated, updated since a
cron tick) count as an update; an observation would not be.
"""

from __future__ import annotations

import functools
import operator
import zoneinfo
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import dagster as dg

from nb_assets.declaration import FileDrop, LoadMode, NotebookAsset
from nb_assets.errors import DeclarationError, LandingError, WarehouseBusyError
from nb_assets.locations import redact

if TYPE_CHECKING:
    from nb_assets.landing import Landing

LANDING_SENSOR = "nb_assets_landings"
AUTOMATION_SENSOR = "nb_assets_automation"
DEFAULT_INTERVAL_S = 15
# A backlog is reported over several ticks, oldest first. The daemon stores a tick's
# events one by one after the tick (benchmarks/landing_sensor.py), so a bound keeps ticks short.
MAX_LANDINGS_PER_TICK = 1_000
LANDING_ID, LANDED_AT = "landing/id", "landing/landed_at"


# --- triggers -----------------------------------------------------------------


def trigger_condition(decl: NotebookAsset, deps: Sequence[dg.AssetKey]) -> dg.AutomationCondition | None:
    """The declaration's trigger as one labelled condition; None runs the notebook only on demand.

    Conditions are immutable, so notebooks with the same trigger share one, and
    so do the parts for an input many notebooks read: a project has few
    distinct crons (building each anew was most of a trigger's load time)."""
    if decl.cron:
        return _cron_condition(decl.cron, decl.timezone or "UTC", decl.on_inputs_landed, decl.partitions is not None)
    if decl.on_inputs_landed:
        return inputs_landed(deps)
    return None


@functools.cache
def _cron_condition(cron: str, timezone: str, wait_for_inputs: bool, partitioned: bool) -> dg.AutomationCondition:
    if wait_for_inputs:
        return dg.AutomationCondition.on_cron(cron, timezone).with_label(
            f"at each tick of '{cron}' ({timezone}), once every input has landed since the tick"
        )
    condition = dg.AutomationCondition.cron_tick_passed(cron, timezone).since_last_handled() & ~dg.AutomationCondition.in_progress()
    if partitioned:  # a tick runs the latest day, not every day since the start
        condition = condition & dg.AutomationCondition.in_latest_time_window()
    return condition.with_label(f"at each tick of '{cron}' ({timezone})")


def inputs_landed(deps: Sequence[dg.AssetKey]) -> dg.AutomationCondition:
    """Every input updated since this notebook was last requested, and none in flight or failed.

    One `since` per input, named by its input's key: Dagster keys a `since`'s
    memory by its children's names, and `any_deps_match(...).allow(...)` is
    named alike for every input, so those would share one memory. The memory
    resets when this notebook is requested, not when its run ends, so an input
    that lands while the notebook runs counts towards its next run.

    Dagster reports a request on the tick after it (`newly_requested`), so a
    landing reported between the request and that tick arrives on the same
    tick as the reset. The reset is `newly_requested` alone because it carries
    the request's time and the landing its own, and `since` lets the later one
    win: that landing starts the next run. (An OR with `initial_evaluation()`
    dropped the time, the reset always won, and such a landing started no run;
    the first evaluation needs no reset, as `newly_updated` is empty then.)
    The price: a landing committed while the request's own tick was being
    evaluated can be counted by both ticks and run the notebook once more,
    which replaces its outputs with the same data. An upstream notebook is not
    requested together with its readers: each reader starts after the run
    that updated its input.
    """
    each = [_landed_since_requested(key) for key in deps]
    return (functools.reduce(operator.and_, each) & _inputs_quiet()).with_label("once every input has landed since the last run")


@functools.cache
def _landed_since_requested(key: dg.AssetKey) -> dg.AutomationCondition:
    requested = dg.AutomationCondition.newly_requested().with_label("this notebook was requested")
    return (
        dg.AutomationCondition.asset_matches(key, dg.AutomationCondition.newly_updated())
        .since(requested)
        .with_label(f"{'.'.join(key.path)} landed or was updated since this notebook was last requested")
    )


@functools.cache
def _inputs_quiet() -> dg.AutomationCondition:
    return (
        ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.any_deps_match(dg.AutomationCondition.execution_failed()).with_label("an input's last run failed")
        & ~dg.AutomationCondition.in_progress()
    ).with_label("no input in flight or failed, and this notebook not running")


def trigger_problems(decl: NotebookAsset, notebook: str, inputs: Collection[str]) -> list[str]:
    """What is wrong with a declaration's trigger, each naming the notebook."""
    problems: list[str] = []
    if decl.timezone is not None:
        if not decl.cron:
            problems.append(f"{notebook}: timezone={decl.timezone!r} needs cron=; it says how to read the cron schedule")
        try:
            zoneinfo.ZoneInfo(decl.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(f"{notebook}: timezone={decl.timezone!r} is not an IANA time zone (e.g. 'Europe/Amsterdam')")
    if decl.cron and not _is_cron(decl.cron):
        problems.append(f"{notebook}: cron={decl.cron!r} is not a cron schedule (e.g. '0 6 * * *': daily at 06:00)")
    if decl.on_inputs_landed and not inputs:
        problems.append(f"{notebook}: on_inputs_landed=True, but the notebook has no SQL inputs to wait for")
    return problems


@functools.cache
def _is_cron(cron: str) -> bool:
    try:
        dg.AutomationCondition.cron_tick_passed(cron)
    except Exception:  # Dagster's check raises its own error type; the caller says what matters
        return False
    return True


# --- sensors ------------------------------------------------------------------


def notebook_sensors(
    *,
    sources: Mapping[str, dg.AssetKey],
    written: Collection[str],
    triggered: bool,
    file_drops: Sequence[FileDrop],
    warehouse: str | Path,
    base_dir: Path,
    interval_s: int,
    status: dg.DefaultSensorStatus,
    partitioned: Mapping[str, dg.PartitionsDefinition] | None = None,
) -> list[dg.SensorDefinition]:
    """The landing sensor (when there are source tables), one sensor per file drop, and
    the automation sensor (when any notebook has a trigger)."""
    from nb_assets.file_drop import file_drop_sensor

    sensors: list[dg.SensorDefinition] = []
    if sources:
        sensors.append(landing_sensor(warehouse, sources, interval_s=interval_s, status=status, partitioned=partitioned))
    problems = [p for drop in file_drops for p in _file_drop_problems(drop, sources, written)]
    folders = [(base_dir / drop.folder).resolve() for drop in file_drops]
    problems.extend(f"two file drops watch {folder}; give each its own folder" for folder in sorted({f for f in folders if folders.count(f) > 1}))
    if problems:
        raise DeclarationError(f"{len(problems)} problem(s) in file drops:\n" + "\n".join(f"- {p}" for p in problems))
    names: dict[str, int] = {}
    for drop in file_drops:
        name = "nb_assets_file_drop_" + drop.table.replace(".", "_")
        names[name] = names.get(name, 0) + 1
        name += f"_{names[name]}" if names[name] > 1 else ""
        sensors.append(file_drop_sensor(drop, name=name, base_dir=base_dir, warehouse=warehouse, interval_s=interval_s, status=status))
    if triggered:
        sensors.append(
            dg.AutomationConditionSensorDefinition(
                AUTOMATION_SENSOR,
                target=dg.AssetSelection.all(),
                default_status=status,
                minimum_interval_seconds=interval_s,
                description="Starts notebook runs when their triggers (cron, inputs landed) say so.",
            )
        )
    return sensors


def _file_drop_problems(drop: FileDrop, sources: Mapping[str, dg.AssetKey], written: Collection[str]) -> list[str]:
    where = f"FileDrop({drop.table!r}, folder={str(drop.folder)!r})"
    if drop.table in written:
        return [f"{where}: {drop.table} is written by a declared notebook; only source tables land"]
    if drop.table not in sources:
        known = ", ".join(sorted(sources)) or "none"
        return [f"{where}: no declared notebook reads {drop.table}, so nothing would wait for it (source tables: {known})"]
    if drop.mode not in get_args(LoadMode):
        return [f"{where}: mode={drop.mode!r}; use one of {', '.join(get_args(LoadMode))}"]
    return []


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

    The cursor is the last landing id reported. Dagster saves it after the
    tick's events, so a tick that dies in between would report some landings
    again; the events carry their landing id, and the next tick skips those
    already reported.
    """

    shown = redact(warehouse)  # a URL's password stays out of the UI

    @dg.sensor(
        name=LANDING_SENSOR,
        minimum_interval_seconds=interval_s,
        default_status=status,
        description=f"Reports each landing recorded in nb_assets.landings ({shown}) on its source table's asset.",
    )
    def nb_assets_landings(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        from nb_assets.landing import last_landing_id, read_landings  # DuckDB loads in the tick

        after = parse_cursor(context.cursor)
        try:
            landings = read_landings(warehouse, after_id=after, limit=max_per_tick)
            if not landings and after and last_landing_id(warehouse) < after:
                context.log.warning(f"the landing log in {shown} ends before landing {after}: it was recreated; reading it from the start")
                after = 0
                landings = read_landings(warehouse, after_id=0, limit=max_per_tick)
        except WarehouseBusyError as exc:
            return dg.SensorResult(skip_reason=f"warehouse busy, trying again next tick: {exc}")
        if not landings:
            return dg.SensorResult(skip_reason=f"no landings after {after}", cursor=str(after))
        unknown = sorted({landing.table for landing in landings if landing.table not in sources})
        if unknown:
            context.log.warning(f"landings of tables no declared notebook reads were not reported: {', '.join(unknown)}")
        known = [landing for landing in landings if landing.table in sources]
        parts = partitioned or {}
        misfits = [l for l in known if l.table in parts and not _has_partition(parts[l.table], l.partition)]
        for landing in misfits:
            context.log.warning(
                f"landing {landing.id} of {landing.table} names partition {landing.partition!r}, which is not one of its "
                f"days ({parts[landing.table].get_first_partition_key()} to yesterday); not reported"
            )
        known = [landing for landing in known if landing not in misfits]
        fresh = not_yet_reported(context.instance, known, sources)
        events = [landing_event(landing, sources[landing.table], partitioned=landing.table in parts) for landing in fresh]
        summary = f"reported {len(events)} landing(s), {landings[0].id} to {landings[-1].id}"
        return dg.SensorResult(asset_events=events, cursor=str(landings[-1].id), skip_reason=summary)

    return nb_assets_landings


def parse_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        value = int(cursor)
    except ValueError:
        value = -1
    if value < 0:
        raise LandingError(f"the {LANDING_SENSOR} cursor {cursor!r} is not a landing id; clear it in the sensor's page to report from the start")
    return value


def _has_partition(partitions_def: dg.PartitionsDefinition, key: str | None) -> bool:
    try:
        return key is not None and partitions_def.has_partition_key(key)
    except Exception:  # a key that is not a date at all: Dagster's parse error type is internal
        return False


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
    latest: dict[str, tuple[int, float] | None] = {}

    def reported(landing: Landing) -> bool:
        if landing.table not in latest:
            latest[landing.table] = _last_reported(instance, sources[landing.table])
        last = latest[landing.table]
        # landed_at too: a recreated log reuses small ids, but its landings are newer
        return last is not None and last[0] >= landing.id and last[1] >= landing.landed_at

    if not landings or not reported(landings[0]):
        return list(landings)
    return [landing for landing in landings if not reported(landing)]


def _last_reported(instance: dg.DagsterInstance, key: dg.AssetKey) -> tuple[int, float] | None:
    records = instance.fetch_materializations(key, limit=1).records  # newest first; the cheapest lookup
    materialization = records[0].asset_materialization if records else None
    if materialization is None:
        return None
    landing_id, landed_at = materialization.metadata.get(LANDING_ID), materialization.metadata.get(LANDED_AT)
    if landing_id is None or landed_at is None:
        return None  # reported by someone else (e.g. by hand in the UI)
    return int(landing_id.value), float(landed_at.value)  # type: ignore[arg-type]
