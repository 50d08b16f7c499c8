"""When notebooks run: trigger conditions, file drops and the automation sensor.

Every trigger is a Dagster `AutomationCondition`, evaluated by one
`AutomationConditionSensorDefinition`, so the UI shows for each notebook which
part of its condition held and which did not. Landings reach Dagster through
the landing sensor (defs/landing_sensor.py) as runless materializations of the
source tables' external assets: for an external asset that Dagster cannot
observe itself, a materialization is the event its conditions (newly updated,
updated since a cron tick) count as an update; an observation would not be.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import get_args

import dagster as dg

from nb_assets.project.declaration import FileDrop, LoadMode, NotebookAsset
from nb_assets.errors import DeclarationError
from nb_assets.defs.landing_sensor import DEFAULT_INTERVAL_S, LANDING_SENSOR, MAX_LANDINGS_PER_TICK, landing_sensor

__all__ = ["AUTOMATION_SENSOR", "DEFAULT_INTERVAL_S", "LANDING_SENSOR", "MAX_LANDINGS_PER_TICK", "landing_sensor",
           "notebook_sensors", "trigger_condition"]

AUTOMATION_SENSOR = "nb_assets_automation"


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
    that updated its input. A notebook that never ran also counts the inputs
    that had landed before its first evaluation (`_input_landed`), so data that
    landed before the notebook was declared starts its first run.
    """
    each = [_input_landed(key) for key in deps]
    return (functools.reduce(operator.and_, each) & _inputs_quiet()).with_label("once every input has landed since the last run")


@functools.cache
def _input_landed(key: dg.AssetKey) -> dg.AutomationCondition:
    """One input: updated since this notebook was last requested, or (for a notebook that
    never ran) there at all.

    The second part is what makes a landing recorded before the notebook was declared
    count: `newly_updated` compares with the previous evaluation, and a new notebook has
    none, so an update from before its first evaluation would never be seen. While the
    notebook has not been requested since its first evaluation (`_first_run`), an input
    that is there has landed before that evaluation or since: `updated` already covers
    the latter, so "there" is what counts. An input a notebook writes and that never
    materialized is not there, so its readers wait for its first run.

    The memory is the one `since` in `_first_run`, the same for every input. It used to be
    one `since` per input, each over an AND naming no key; Dagster keys a `since`'s memory
    by its children's names, and an AND is named "AND", so those shared one memory: an
    input that had landed before the first evaluation (a watched source's first report)
    lent its "landed" to another input that never had, and the notebook started before
    that input's first run (tests/integration/test_first_run_waits.py). Identical
    conditions sharing a memory is harmless; different ones must differ in their
    children's names. Changing the shape of this tree forgets, once, what had landed
    towards a notebook's next run."""
    table = ".".join(key.path)
    requested = dg.AutomationCondition.newly_requested().with_label("this notebook was requested")
    updated = (
        dg.AutomationCondition.asset_matches(key, dg.AutomationCondition.newly_updated())
        .since(requested)
        .with_label(f"{table} updated since this notebook was last requested")
    )
    there = dg.AutomationCondition.asset_matches(key, ~dg.AutomationCondition.missing()).with_label(f"{table} has landed")
    first = (_first_run() & there).with_label(f"{table} has landed, for this notebook's first run")
    return (updated | first).with_label(f"{table} landed or was updated since this notebook was last requested")


@functools.cache
def _first_run() -> dg.AutomationCondition:
    """This notebook had never materialized at its first evaluation, and has not been requested since."""
    requested = dg.AutomationCondition.newly_requested().with_label("this notebook was requested")
    never = (
        dg.AutomationCondition.initial_evaluation().with_label("first evaluation of this notebook")
        & dg.AutomationCondition.missing().with_label("this notebook never materialized")
    )
    return never.since(requested).with_label("not requested since its first evaluation, when it had never materialized")


@functools.cache
def _inputs_quiet() -> dg.AutomationCondition:
    return (
        ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.any_deps_match(dg.AutomationCondition.execution_failed()).with_label("an input's last run failed")
        & ~dg.AutomationCondition.in_progress()
    ).with_label("no input in flight or failed, and this notebook not running")


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
    from nb_assets.defs.file_drop import file_drop_sensor

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
