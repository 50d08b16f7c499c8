"""The freshness sensor: silence is a failure too. A notebook whose outputs miss their
`freshness=` rule tells its owners once per episode, and once more when it is fresh again.

Each tick:
1. judge every notebook with a rule on the facts `nb-assets status` reads
   (runs/status.py: the run records under the instance's storage, the landing
   log): fresh, or stale since when, and what it is waiting for;
2. a notebook newly stale opens an episode: one stale notice per owner goes into
   a delivery ledger (notify/ledger.py, its own folder beside the failure
   sensor's); an open episode whose notebook is fresh again queues one recovery
   notice and closes;
3. deliver what is pending (the failure sensor's deliver_pending: retries, a
   channel down waits for the next tick) and return the cursor.

The cursor holds the open episodes and, for notebooks that never materialized,
when the sensor started watching them. An episode's id is the notebook and the
moment it went stale, which the facts alone determine; the ledger refuses an id
it has seen. So a daemon restarted, or a tick whose cursor was lost, queues
nothing twice: exactly one stale and one recovery notice per episode.
"""

# No `from __future__ import annotations`: Dagster inspects the sensor function's annotations.

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from nb_assets.defs.failure_sensor import deliver_pending
from nb_assets.notify.channels import Notifications, ledger_folder
from nb_assets.notify.freshness_notice import FreshnessNotice
from nb_assets.notify.ledger import NoticeLedger
from nb_assets.project.freshness import Freshness, iso, parse_freshness
from nb_assets.project.freshness_status import NotebookStatus
from nb_assets.runs.status import Watched, project_status, read_watch, write_watch

SENSOR_NAME = "nb_assets_freshness"
LEDGER_SUBFOLDER = "freshness"
MAX_DEFERRALS = 4  # ticks a new episode waits for a readable landing log before it is told without one


def freshness_policy(freshness: str) -> dg.FreshnessPolicy:
    """The declaration's rule as Dagster's own policy, shown on the asset's page (and evaluated by
    Dagster's freshness daemon where the instance enables it)."""
    rule = parse_freshness(freshness)
    if rule.max_age_s is not None:
        return dg.FreshnessPolicy.time_window(fail_window=_seconds(rule.max_age_s))
    return dg.FreshnessPolicy.cron(deadline_cron=rule.deadline_cron, lower_bound_delta=_seconds(86400), timezone=rule.timezone)


def with_freshness(spec: dg.AssetSpec, freshness: str | None) -> dg.AssetSpec:
    """`spec` with the declared rule, unless a translator gave it a policy of its own."""
    if freshness is None:
        return spec
    return dg.apply_freshness_policy(spec, freshness_policy(freshness), overwrite_existing=False)


def _seconds(n: int) -> Any:
    from datetime import timedelta

    return timedelta(seconds=n)


def freshness_notification_sensor(
    notebooks: Sequence[Watched],
    warehouse: str,
    notifications: Notifications,
    *,
    asset_paths: Mapping[str, str] | None = None,
    records_dir: str | Path | None = None,
) -> dg.SensorDefinition:
    """`asset_paths`: notebook → its first asset's path in the UI ("mart/revenue"), for the link."""
    rules = {n.name: parse_freshness(n.freshness) for n in notebooks if n.freshness}
    outputs = {n.name: n.outputs for n in notebooks}
    paths = dict(asset_paths or {})

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=notifications.interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Tells the owners of a notebook whose outputs miss their freshness rule, once per episode, "
                    "and once when they are fresh again.",
    )
    def nb_assets_freshness(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        storage = Path(context.instance.storage_directory())
        ledger = NoticeLedger(ledger_folder(notifications, storage) / LEDGER_SUBFOLDER)
        state = _read_cursor(context.cursor)
        queued = 0
        try:
            now = time.time()
            root = Path(records_dir) if records_dir else storage / "nb_assets"
            status = project_status(notebooks, [root], warehouse, now=now, watched_since=state["since"])
            for item in status.notebooks:  # the clock of one that never materialized starts when first seen
                if item.name in rules and item.last_success_at is None:
                    state["since"].setdefault(item.name, now)
                else:
                    state["since"].pop(item.name, None)  # it runs from its materializations now
            if read_watch([root]) != state["since"]:  # `nb-assets status` judges from the same moment
                write_watch(root, state["since"])
            if status.landings_problem:
                context.log.warning(f"nb-assets freshness: the landing log cannot be read now ({status.landings_problem})")
            for item in status.notebooks:
                if item.name in rules:
                    queued += _episode(item, rules[item.name], state, ledger, notifications, paths.get(item.name), outputs[item.name],
                                       deferring=status.landings_problem is not None, now=now)
        except Exception as exc:  # a bug or an unreadable record: log it, keep the cursor and deliver what waits
            context.log.exception(f"nb-assets freshness: could not judge freshness: {exc}")
        outcome = deliver_pending(ledger, notifications, context.log)
        stale = sorted(state["open"])
        return dg.SensorResult(
            cursor=json.dumps(state, sort_keys=True),
            skip_reason=f"{len(stale)} stale notebook(s){': ' + ', '.join(stale) if stale else ''}; "
                        f"{queued} notice(s) queued; {outcome}",
        )

    return nb_assets_freshness


def _episode(
    item: NotebookStatus, rule: Freshness, state: dict[str, Any], ledger: NoticeLedger, notifications: Notifications,
    asset_path: str | None, outputs: tuple[str, ...], *, deferring: bool, now: float,
) -> int:
    """Open, keep or close `item`'s episode; returns how many notices were queued."""
    name, open_episode = item.name, state["open"].get(item.name)
    episode = f"freshness-{name}-{int(item.stale_from or 0)}"
    queued = 0
    if open_episode and (not item.stale or open_episode != episode):
        # Fresh again; or fresh and stale again between two ticks: that episode ended too.
        ledger.add(f"{open_episode}-recovered", [_notice(item, rule, notifications, asset_path, outputs, open_episode, recovered=True)], now)
        del state["open"][name]
        queued += 1
    if item.stale and name not in state["open"]:
        deferred = state["deferred"].get(name, 0)
        if deferring and deferred < MAX_DEFERRALS:  # its message would say too little of what it waits for
            state["deferred"][name] = deferred + 1
            return queued
        state["deferred"].pop(name, None)
        # Queued now: give_up_after_s counts from here, not from a staleness that began before the sensor ran.
        ledger.add(episode, [_notice(item, rule, notifications, asset_path, outputs, episode, recovered=False)], now)
        state["open"][name] = episode
        queued += 1
    if not item.stale:
        state["deferred"].pop(name, None)
    return queued


def _notice(
    item: NotebookStatus, rule: Freshness, notifications: Notifications, asset_path: str | None, outputs: tuple[str, ...],
    episode: str, *, recovered: bool,
) -> FreshnessNotice:
    base = (notifications.ui_base_url or "").rstrip("/")
    run = item.last_run
    stale_since = float(episode.rsplit("-", 1)[1])  # the episode's own start, also for a recovery
    return FreshnessNotice(
        episode_id=f"{episode}-recovered" if recovered else episode,
        notebook=item.name,
        path=item.path,
        owners=item.owners,
        status="fresh" if recovered else "stale",
        freshness=rule.text,
        rule=rule.describe(),
        stale_since=iso(stale_since) or "-",
        last_success=iso(item.last_success_at),
        last_run=f"{run.run_id} {run.status} at {iso(run.finished_at)}" if run else None,
        waiting_for=() if recovered else tuple(item.waiting_for),
        recovered_at=iso(item.last_success_at) if recovered else None,
        outputs=outputs,
        ui_url=f"{base}/assets/{asset_path}" if base and asset_path else None,
    )


def _read_cursor(cursor: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if cursor:
        try:
            state = json.loads(cursor)
        except ValueError:
            state = {}
    return {key: dict(state.get(key) or {}) for key in ("since", "open", "deferred")}
