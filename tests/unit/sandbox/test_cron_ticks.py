"""A declared notebook's next run from its cron and time zone (sandbox/cron_ticks.py, sandbox/ahead.py),
across the DST days of Europe/Amsterdam, and the same ticks as Dagster's own iterator fires."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from nb_assets.sandbox.ahead import expect_next_run, next_run_at
from nb_assets.sandbox.container import DockerSandbox
from nb_assets.sandbox.cron_ticks import next_tick
from nb_assets.sandbox.local import LocalSandbox

AMS = ZoneInfo("Europe/Amsterdam")


def at(*fields: int, fold: int = 0) -> float:
    return dt.datetime(*fields, tzinfo=AMS, fold=fold).timestamp()  # type: ignore[misc]


def local(epoch: float | None) -> str:
    assert epoch is not None
    return dt.datetime.fromtimestamp(epoch, AMS).isoformat()


# 2026-03-29: 02:00 CET jumps to 03:00 CEST. 2026-10-25: 03:00 CEST falls back to 02:00 CET.
@pytest.mark.parametrize(("cron", "after", "expected"), [
    ("0 6 * * *", at(2026, 3, 28, 7), "2026-03-29T06:00:00+02:00"),  # a daily run on the short day
    ("0 6 * * *", at(2026, 10, 24, 7), "2026-10-25T06:00:00+01:00"),  # and on the long day
    ("30 2 * * *", at(2026, 3, 28, 7), "2026-03-29T03:00:00+02:00"),  # 02:30 does not exist: the gap's end
    ("30 2 * * *", at(2026, 10, 24, 7), "2026-10-25T02:30:00+01:00"),  # 02:30 twice: the later one only
    ("30 2 * * *", at(2026, 10, 25, 2, 30, fold=0), "2026-10-25T02:30:00+01:00"),
    ("30 * * * *", at(2026, 3, 29, 1, 45), "2026-03-29T03:30:00+02:00"),  # every hour: the missing one is skipped
    ("30 * * * *", at(2026, 10, 25, 2, 30, fold=0), "2026-10-25T02:30:00+01:00"),  # every hour: both 02:30s
    ("0 7 * * 1", at(2026, 3, 27, 12), "2026-03-30T07:00:00+02:00"),  # weekly across the change
    ("0 0 L * *", at(2026, 3, 29, 12), "2026-03-31T00:00:00+02:00"),
    ("0 5 * * 0#1", at(2026, 3, 29, 12), "2026-04-05T05:00:00+02:00"),
])
def test_the_next_tick_in_amsterdam_across_dst(cron: str, after: float, expected: str) -> None:
    assert local(next_run_at(cron, "Europe/Amsterdam", after)) == expected


def test_every_hour_fires_at_both_passes_of_the_doubled_hour() -> None:
    ticks, now = [], at(2026, 10, 25, 0, 59)
    for _ in range(4):
        now = next_tick("30 * * * *", "Europe/Amsterdam", now)  # type: ignore[assignment]
        ticks.append(local(now))
    assert ticks == ["2026-10-25T01:30:00+02:00", "2026-10-25T02:30:00+02:00",
                     "2026-10-25T02:30:00+01:00", "2026-10-25T03:30:00+01:00"]


def test_no_cron_or_an_unreadable_one_gives_no_next_run() -> None:
    assert next_run_at(None) is None
    assert next_run_at("not a cron") is None
    assert next_run_at("0 6 * * *", "Not/A_Zone") is None


def test_the_default_time_zone_is_utc_and_now_is_the_default_start() -> None:
    due = next_run_at("*/5 * * * *")
    now = dt.datetime.now(dt.timezone.utc).timestamp()
    assert due is not None and now < due <= now + 300 and due % 300 == 0


def test_the_docker_sandbox_learns_the_next_tick_and_a_local_one_is_left_alone() -> None:
    docker = DockerSandbox(image="nb-assets-sandbox:never-pulled", lazy=True)  # lazy: no engine is asked
    due = expect_next_run(docker, "0 6 * * *", "Europe/Amsterdam", at(2026, 3, 28, 7))
    assert docker.next_run_at == due and local(due) == "2026-03-29T06:00:00+02:00"
    assert expect_next_run(docker, None) is None and docker.next_run_at == due  # an on-demand notebook: unchanged
    plain = LocalSandbox()
    expect_next_run(plain, "0 6 * * *")
    assert not hasattr(plain, "next_run_at")


CRONS = ["0 6 * * *", "30 2 * * *", "*/15 * * * *", "30 * * * *", "15 2 * * 0", "0 0 L * *", "0 5 * * 1#2",
         "0 5 * * L5", "0 0 29 2 *", "0 7 1,15 * mon", "@weekly", "0 9-17/2 * * mon-fri", "0 0 * * fri-mon",
         "45 1-3 * * *", "0 12 * jan-mar,nov-dec *", "5 4 */3 * *", "0 0 * * */1", "10/20 2 * * *", "0 2 L * *"]
STARTS = [dt.datetime(2026, 3, 28, 12), dt.datetime(2026, 10, 24, 12), dt.datetime(2026, 10, 25, 0, 10),
          dt.datetime(2027, 2, 20)]


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "America/New_York"])
def test_the_same_ticks_as_dagsters_iterator(zone: str) -> None:
    # The oracle is Dagster's private iterator (the package itself uses none of it); skip if it moves.
    schedules = pytest.importorskip("dagster._utils.schedules")
    wrong = []
    for cron in CRONS:
        for start in STARTS:
            now = start.replace(tzinfo=dt.timezone.utc).timestamp()
            theirs = schedules.cron_string_iterator(now, cron, zone)
            for _ in range(30):
                expected = next(theirs).timestamp()
                while expected <= now:
                    expected = next(theirs).timestamp()
                if next_tick(cron, zone, now) != expected:
                    wrong.append((cron, start.isoformat(), expected))
                    break
                now = expected
    assert wrong == []
