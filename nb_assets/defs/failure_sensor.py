"""The run-failure sensor: every owner of a failed or refused notebook hears about it once.

Each tick, in this order:
1. read the RUN_FAILURE events after the cursor (Dagster's own run-status
   event log) and queue one notice per failed notebook in the delivery
   ledger, durably, before the cursor moves past the run;
2. deliver every queued message that is still pending, marking each in the
   ledger as soon as its channel accepts it; a channel that stays down is
   retried with backoff, then left for the next tick;
3. return the new cursor.

A restarted daemon resumes from the cursor and the ledger, so nothing is sent
twice; a crash in the middle of step 2 leaves the rest pending, so nothing is
lost. No failure inside a tick escapes it: a broken channel or a malformed
run is logged and the sensor goes on.
"""

# No `from __future__ import annotations`: Dagster inspects the sensor function's annotations.

import logging
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from nb_assets.notify.notice import FailureNotice
from nb_assets.notify.ledger import PENDING, SENT, NoticeLedger
from nb_assets.notify.channels import Dispatcher, Notifications, ledger_folder

SENSOR_NAME = "nb_assets_failure_notifications"
PAGE = 100
MAX_RUNS_PER_TICK = 500
CELL_LINES = 8


@dataclass(frozen=True)
class WatchedNotebook:
    """A notebook whose failures are reported: its step name, file and owners."""

    name: str
    path: str | None  # None when a translator dropped the `notebook` metadata
    owners: tuple[str, ...]
    keys: frozenset[dg.AssetKey]


def watched_notebooks(assets: Sequence[Any]) -> list[WatchedNotebook]:
    """One per notebook asset; owners are the union of its assets' owners (the translator's say)."""
    watched = []
    for asset in assets:
        if not isinstance(asset, dg.AssetsDefinition):
            continue
        specs = list(asset.specs)
        owners = tuple(dict.fromkeys(o for s in specs for o in s.owners))
        path = next((str(s.metadata["notebook"].value) for s in specs if "notebook" in s.metadata), None)
        watched.append(WatchedNotebook(asset.node_def.name, path, owners, frozenset(s.key for s in specs)))
    return watched


def failure_notification_sensor(notebooks: Sequence[WatchedNotebook], notifications: Notifications) -> dg.SensorDefinition:
    by_name = {n.name: n for n in notebooks}
    announced: set[tuple[str, str]] = set()  # off channels already said, once per process that loaded the definitions

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=notifications.interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Tells the owners of a failed or refused notebook run, by email or webhook, once per run.",
    )
    def nb_assets_failure_notifications(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        for name, reason in notifications.off_channels().items():
            if (name, reason) not in announced:
                announced.add((name, reason))
                context.log.warning(f"nb-assets notifications: channel {name} is off ({reason}): its owners are not told of "
                                    "failures; set it and restart to turn it on")
        ledger = NoticeLedger(ledger_folder(notifications, context.instance.storage_directory()))
        try:
            cursor, queued = queue_new_failures(context, ledger, by_name, notifications)
        except Exception as exc:  # the event log or the ledger failed us: keep the cursor, try next tick
            context.log.exception(f"nb-assets notifications: could not queue failed runs: {exc}")
            cursor, queued = context.cursor, 0
        outcome = deliver_pending(ledger, notifications, context.log)
        return dg.SensorResult(cursor=cursor, skip_reason=f"{queued} new failed run(s) queued; {outcome}")

    return nb_assets_failure_notifications


def queue_new_failures(
    context: dg.SensorEvaluationContext,
    ledger: NoticeLedger,
    notebooks: Mapping[str, WatchedNotebook],
    notifications: Notifications,
) -> tuple[str | None, int]:
    """Queue the failed runs after the cursor; returns the new cursor and how many were queued."""
    instance = context.instance
    cursor = context.cursor
    queued = seen = 0
    while seen < MAX_RUNS_PER_TICK:
        if cursor is None:  # first tick: recent failures only, not the instance's whole history
            since = time.time() - notifications.first_tick_lookback_s
            records_filter = dg.RunStatusChangeRecordsFilter(dg.DagsterEventType.RUN_FAILURE, after_timestamp=since)
        else:
            records_filter = dg.RunStatusChangeRecordsFilter(dg.DagsterEventType.RUN_FAILURE, after_storage_id=int(cursor))
        page = instance.fetch_run_status_changes(records_filter, limit=PAGE, ascending=True)
        for record in page.records:
            run_id = record.event_log_entry.run_id
            if not ledger.knows(run_id):
                try:
                    notices = notices_for_run(instance, record, notebooks, notifications)
                except Exception as exc:  # one malformed run must not block the others
                    context.log.exception(f"nb-assets notifications: cannot describe failed run {run_id}: {exc}")
                    notices = []
                # A ledger write that fails raises here, before the cursor moves past this run.
                if notices and ledger.add(run_id, notices, record.timestamp):
                    queued += 1
            cursor = str(record.storage_id)
            seen += 1
        if not page.has_more or not page.records:
            break
    return cursor, queued


def notices_for_run(
    instance: dg.DagsterInstance,
    record: dg.EventLogRecord,
    notebooks: Mapping[str, WatchedNotebook],
    notifications: Notifications,
) -> list[FailureNotice]:
    """One notice per failed notebook of the run (none if the run is not a notebook's)."""
    run_id = record.event_log_entry.run_id
    run = instance.get_run_by_id(run_id)
    if run is None:
        return []
    failures = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    notices = []
    for failure in failures:
        event = failure.event_log_entry.dagster_event
        watched = notebooks.get(event.step_key) if event is not None else None
        if watched is None:
            continue
        data = event.step_failure_data
        user = data.user_failure_data
        metadata = {k: v.value for k, v in (user.metadata if user else {}).items()}
        if watched.path and metadata.get("notebook/path", watched.path) != watched.path:
            continue  # same step name in another project on this instance
        description = user.description if user and user.description else _error_text(data.error) or event.message
        notices.append(_notice(run, watched, str(description or "failed"), metadata, notifications))
    if notices or failures:
        return notices
    # The run failed without any step failing (its worker died, it could not start):
    # tell the owners of every notebook it was meant to run.
    selected = set(run.asset_selection or ())
    run_error = _error_text(getattr(record.event_log_entry.dagster_event.event_specific_data, "error", None))
    message = run_error or record.event_log_entry.message or "the run failed before any notebook step ran"
    return [_notice(run, w, message, {}, notifications) for w in notebooks.values() if w.keys & selected]


def _notice(
    run: dg.DagsterRun, watched: WatchedNotebook, description: str, metadata: Mapping[str, Any], notifications: Notifications,
) -> FailureNotice:
    path = str(metadata.get("notebook/path") or watched.path or watched.name)
    error = metadata.get("notebook/error") or {}
    refused = "notebook/refused" in metadata
    lines = description.strip().splitlines() or ["failed"]
    # "x.ipynb: refused before any data was fetched:" says more with the line after it.
    headline = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    summary = headline[len(path) + 2:] if headline.startswith(f"{path}: ") else headline
    executed = metadata.get("notebook/executed")
    html = metadata.get("notebook/html")
    base = (notifications.ui_base_url or "").rstrip("/")
    return FailureNotice(
        run_id=run.run_id,
        notebook=watched.name,
        path=path,
        owners=watched.owners,
        status="refused" if refused else "failed",
        summary=summary,
        cell=metadata.get("notebook/failed_cell"),
        cell_lines="\n".join(_unfenced(metadata.get("notebook/cell_source")).splitlines()[:CELL_LINES]),
        error_type=error.get("type"),
        error_message=error.get("message") if not refused else None,
        reason=description if refused else None,
        parameters=dict(metadata.get("notebook/parameters") or {}),
        partition=run.tags.get("dagster/partition"),
        job=run.job_name,
        run_url=f"{base}/runs/{run.run_id}" if base else None,
        executed_url=notebook_page_url(base, run, str(executed)) if base and executed else None,
        executed_path=str(html or executed) if (html or executed) else None,
        traceback=_unfenced(metadata.get("notebook/traceback")),
    )


def notebook_page_url(base: str, run: dg.DagsterRun, executed: str) -> str | None:
    """The UI's page for an executed notebook, under `base` ("" for a link relative to the UI's root).
    The UI renders a notebook through its code location, so the link needs the location's name."""
    origin = run.remote_job_origin
    if origin is None:  # an in-process run (`materialize`): no code location serves it
        return None
    query = urllib.parse.urlencode({"path": executed, "repoLocName": origin.location_name})
    return f"{base}/notebook?{query}"


def _unfenced(markdown: Any) -> str:
    """The text inside the ``` fence materialize.failure put around it."""
    text = str(markdown or "")
    if text.startswith("```\n") and text.endswith("\n```"):
        return text[4:-4]
    return text


def _error_text(error: Any) -> str | None:
    if error is None:
        return None
    return f"{getattr(error, 'cls_name', None) or 'Error'}: {getattr(error, 'message', error)}".strip()


def deliver_pending(ledger: NoticeLedger, notifications: Notifications, log: logging.Logger) -> str:
    """Send every pending message; record each outcome at once. Never raises."""
    dispatcher = Dispatcher(notifications, log.warning)
    counts = {"sent": 0, "waiting": 0, "dropped": 0, "off": 0}
    for entry in ledger.pending():
        try:
            notices = entry.notices()
            expired = time.time() - entry.failed_at > notifications.give_up_after_s
            for delivery in entry.open_deliveries():
                recipient, notice = delivery["recipient"], notices[delivery["notebook"]]
                if expired:
                    last_error = delivery["error"]
                    ledger.settle(entry, delivery, "abandoned", f"undelivered after {notifications.give_up_after_s:g} s: {last_error}")
                    log.error(f"nb-assets notifications: gave up telling {recipient} about run {entry.run_id}: {last_error}")
                    counts["dropped"] += 1
                    continue
                if dispatcher.out_of_time():
                    counts["waiting"] += 1
                    continue
                outcome, error = dispatcher.send(recipient, notice)
                if outcome == "down":
                    ledger.settle(entry, delivery, PENDING, error)
                    counts["waiting"] += 1
                    continue
                ledger.settle(entry, delivery, SENT if outcome == "sent" else outcome, error)
                if outcome == "off":  # said once when the sensor first saw it, not per message
                    counts["off"] += 1
                elif outcome == "sent":
                    log.info(f"nb-assets notifications: told {recipient} that {notice.notebook} {notice.verb} (run {entry.run_id})")
                    counts["sent"] += 1
                else:
                    log.error(f"nb-assets notifications: cannot tell {recipient} about run {entry.run_id}: {error}")
                    counts["dropped"] += 1
            ledger.close_if_settled(entry)
        except Exception as exc:  # a bug or a full disk: log it, keep the other runs going
            log.exception(f"nb-assets notifications: delivering run {entry.run_id} failed: {exc}")
    down = "".join(f"; channel {name} down: {error}" for name, error in dispatcher.down.items())
    off = f", {counts['off']} not sent (channel off)" if counts["off"] else ""
    return f"{counts['sent']} message(s) sent, {counts['waiting']} waiting, {counts['dropped']} dropped{off}{down}"
