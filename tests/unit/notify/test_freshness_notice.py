"""Stale and recovery notices: what they say, and that they wait in the delivery ledger as they are."""

from __future__ import annotations

from pathlib import Path

from nb_assets.notify.freshness_notice import FreshnessNotice
from nb_assets.notify.ledger import NoticeLedger
from nb_assets.notify.notice import FailureNotice

STALE = FreshnessNotice(
    episode_id="freshness-daily-1000", notebook="daily", path="notebooks/daily.ipynb", owners=("a@example.com", "team:ops"),
    status="stale", freshness="26h", rule="materialized within the last 1d 2h", stale_since="2026-12-07 07:00:00 UTC",
    last_success="2026-12-06 05:00:00 UTC", last_run="r1 success at 2026-12-06 05:00:00 UTC",
    waiting_for=("input raw.orders: not landed since the last run started at 2026-12-06 04:59:00 UTC (never landed)",
                 "input <b>&evil: never landed"),
    outputs=("mart.daily",), ui_url="http://dagster.example.invalid/assets/mart/daily",
)


def test_a_stale_notice_says_what_it_waits_for_and_that_one_more_message_will_come() -> None:
    assert STALE.email_subject().startswith("[nb-assets] daily is stale: not materialized within the last 1d 2h; waiting for input raw.orders")
    body = STALE.email_body()
    assert "Stale since:" in body and "2026-12-07 07:00:00 UTC" in body and "Outputs:" in body and "mart.daily" in body
    assert "- input raw.orders: not landed since the last run started at 2026-12-06 04:59:00 UTC (never landed)" in body
    assert "one more message, when its outputs are materialized again" in body


def test_a_recovery_notice_says_when_and_waits_for_nothing() -> None:
    fresh = FreshnessNotice(**{**STALE.to_json(), "episode_id": "freshness-daily-1000-recovered", "status": "fresh",
                               "recovered_at": "2026-12-07 08:00:00 UTC", "waiting_for": ()})
    assert fresh.email_subject() == ("[nb-assets] daily is fresh again: materialized at 2026-12-07 08:00:00 UTC, "
                                     "stale since 2026-12-07 07:00:00 UTC")
    assert "Waiting for" not in fresh.email_body() and "Fresh again at:" in fresh.email_body()
    assert len(fresh.webhook_body()["blocks"]) == 2


def test_the_webhook_body_escapes_what_slack_reads_as_markup() -> None:
    body = STALE.webhook_body()
    waiting = body["blocks"][-1]["text"]["text"]
    assert "&lt;b&gt;&amp;evil" in waiting and "<b>" not in waiting


def test_both_kinds_of_notice_wait_in_the_ledger_and_come_back_as_they_went_in(tmp_path: Path) -> None:
    ledger = NoticeLedger(tmp_path)
    failure = FailureNotice(run_id="run-1", notebook="other", path="other.ipynb", owners=("b@example.com",),
                            status="failed", summary="cell 3 raised")
    assert ledger.add("run-1", [failure], 1.0)
    assert ledger.add(STALE.episode_id, [STALE], 2.0)
    assert not ledger.add(STALE.episode_id, [STALE], 3.0)  # an episode is queued once
    entries = {e.run_id: e for e in ledger.pending()}
    assert entries["run-1"].notices() == {"other": failure}
    assert entries[STALE.episode_id].notices() == {"daily": STALE}
    assert [d["recipient"] for d in entries[STALE.episode_id].deliveries()] == ["a@example.com", "team:ops"]
