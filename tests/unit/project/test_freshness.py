"""`freshness=`: read, refused with the notebook named, and judged as Dagster's own evaluators judge it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nb_assets import NotebookAsset, load_declarations_yaml
from nb_assets.errors import DeclarationError
from nb_assets.project.declare import declare_notebooks
from nb_assets.project.freshness import Freshness, FreshnessError, parse_freshness
from nb_assets.project.freshness_status import LastRun, NotebookFacts, Watched, notebook_status
from support.notebook_factory import RUNTIME, code, write_notebook

BERLIN = ZoneInfo("Europe/Berlin")


def at(*args: int, tz: ZoneInfo | timezone = timezone.utc) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


@pytest.mark.parametrize(("text", "seconds"), [("26h", 26 * 3600), ("90m", 5400), ("2d", 172800), ("1d 2h", 93600),
                                               ("1m", 60), (" 3h30m ", 12600)])
def test_a_maximum_age_is_read_in_days_hours_and_minutes(text: str, seconds: int) -> None:
    rule = parse_freshness(text)
    assert rule.max_age_s == seconds and not rule.is_deadline and rule.text == text


def test_a_deadline_is_a_time_of_day_in_a_zone_utc_unless_named() -> None:
    berlin = parse_freshness("by 07:00 Europe/Berlin")
    assert (berlin.hour, berlin.minute, berlin.timezone, berlin.deadline_cron) == (7, 0, "Europe/Berlin", "0 7 * * *")
    assert parse_freshness("BY 6:45").timezone == "UTC" and parse_freshness("by 6:45").deadline_cron == "45 6 * * *"


@pytest.mark.parametrize(("value", "why"), [
    ("26 hours", "is not a freshness rule"), ("30s", "is not a freshness rule"), ("0m", "under one minute"),
    ("by 25:00", "25:00 is not a time of day"), ("by 07:61", "is not a time of day"),
    ("by 07:00 Mars/Olympus", "'Mars/Olympus' is not an IANA time zone"), (26, "must be a string"), ("", "is not a freshness rule"),
])
def test_what_is_neither_form_is_refused_saying_what_is_accepted(value: object, why: str) -> None:
    with pytest.raises(FreshnessError, match=why) as err:
        parse_freshness(value)
    if "not a freshness rule" in why:
        assert "'26h'" in str(err.value) and "'by 07:00 Europe/Berlin'" in str(err.value)


def test_a_window_goes_stale_its_length_after_the_last_success_or_after_watching_began() -> None:
    rule = parse_freshness("26h")
    assert rule.stale_from(1000.0, 0.0) == 1000.0 + 26 * 3600
    assert rule.stale_from(None, 50.0) == 50.0 + 26 * 3600  # never ran: from when the sensor began watching


def test_a_deadline_is_missed_as_dagsters_cron_policy_says() -> None:
    """Dagster's CronFreshnessPolicy(deadline, lower_bound=24h): at each deadline T the asset must
    have materialized since T - 24h; so it goes stale at the first deadline after success + 24h."""
    rule = parse_freshness("by 07:00 Europe/Berlin")
    ran = at(2026, 12, 7, 6, 30, tz=BERLIN)  # before today's deadline
    assert rule.stale_from(ran, 0.0) == at(2026, 12, 8, 7, 0, tz=BERLIN)
    late = at(2026, 12, 7, 7, 30, tz=BERLIN)  # after it: good for tomorrow's, not the day after's
    assert rule.stale_from(late, 0.0) == at(2026, 12, 9, 7, 0, tz=BERLIN)
    assert rule.stale_from(None, at(2026, 12, 7, 8, 0, tz=BERLIN)) == at(2026, 12, 8, 7, 0, tz=BERLIN)


def test_a_deadline_keeps_its_wall_clock_time_across_a_dst_change() -> None:
    rule = parse_freshness("by 07:00 Europe/Berlin")
    before = at(2026, 3, 27, 6, 0, tz=BERLIN)  # the clocks go forward on 29 March 2026
    stale = rule.stale_from(before, 0.0)
    assert datetime.fromtimestamp(stale, BERLIN).replace(tzinfo=None) == datetime(2026, 3, 28, 7, 0)
    after = rule.stale_from(at(2026, 3, 28, 5, 0, tz=BERLIN), 0.0)
    assert datetime.fromtimestamp(after, BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 7, 0)
    assert after - stale == 23 * 3600  # a 23-hour day


def facts(**changes: object) -> NotebookFacts:
    """Facts of a notebook "daily"; `changes` may set the notebook's fields (name, inputs, ...) as well as the facts'."""
    own = {"name", "path", "owners", "trigger", "inputs", "outputs", "waits_for_inputs"}
    rule = changes.get("freshness", parse_freshness("1h"))
    notebook: dict[str, object] = dict(
        name="daily", path="daily.ipynb", owners=("a@example.com",), trigger="when all inputs have landed",
        inputs=("raw.orders", "raw.customers"), outputs=(), freshness=rule.text if isinstance(rule, Freshness) else None,
        waits_for_inputs=True,
    )
    base: dict[str, object] = dict(freshness=rule, last_run=None, last_success=None, input_updates={}, watched_since=0.0)
    notebook.update((k, v) for k, v in changes.items() if k in own)
    base.update((k, v) for k, v in changes.items() if k not in own)
    return NotebookFacts(notebook=Watched(**notebook), **base)  # type: ignore[arg-type]


def test_a_notebook_stale_after_a_success_names_the_input_that_has_not_landed_since() -> None:
    success = LastRun("run-ok-123456", "success", 1000.0, 1060.0)
    status = notebook_status(facts(last_run=success, last_success=success,
                                   input_updates={"raw.orders": 900.0, "raw.customers": 1500.0}), now=1060.0 + 3600)
    assert status.stale and status.stale_from == 1060.0 + 3600
    [waiting] = status.waiting_for
    assert waiting.startswith("input raw.orders: not landed since the last run started at 1970-01-01 00:16:40 UTC")
    assert "(last landed 1970-01-01 00:15:00 UTC)" in waiting  # raw.customers landed after it: not waited for
    assert "STALE since" in status.line() and "raw.orders" in status.line()


def test_a_failed_run_is_said_before_the_inputs_and_a_fresh_one_is_fresh() -> None:
    success = LastRun("run-ok-123456", "success", 1000.0, 1060.0)
    failed = LastRun("run-bad-98765", "failed", 2000.0, 2010.0, "cell 4 raised KeyError: 'currency'")
    status = notebook_status(facts(last_run=failed, last_success=success,
                                   input_updates={"raw.orders": 1900.0, "raw.customers": 1900.0}), now=2100.0)
    assert status.state == "fresh" and status.waiting_for == [
        "its last run run-bad- failed at 1970-01-01 00:33:30 UTC: cell 4 raised KeyError: 'currency'"]


def test_a_notebook_that_never_ran_is_not_yet_due_then_stale_with_its_inputs_never_landed() -> None:
    assert notebook_status(facts(watched_since=100.0), now=200.0).state == "not yet due"
    stale = notebook_status(facts(watched_since=100.0), now=100.0 + 3600)
    assert stale.stale and stale.waiting_for == ["input raw.orders: never landed", "input raw.customers: never landed"]
    assert notebook_status(facts(freshness=None), now=1e9).state == "no rule"


def test_a_cron_or_on_demand_notebook_waits_for_a_failed_run_but_not_for_its_inputs() -> None:
    failed = LastRun("run-bad-98765", "failed", 2000.0, 2010.0, "cell 4 raised KeyError")
    for trigger in ("cron 0 6 * * *", "on demand"):
        status = notebook_status(facts(trigger=trigger, waits_for_inputs=False, last_run=failed, watched_since=100.0),
                                 now=100.0 + 3600)
        assert status.stale and status.waiting_for == [
            "its last run run-bad- failed at 1970-01-01 00:33:30 UTC: cell 4 raised KeyError"], trigger
    waits = notebook_status(facts(waits_for_inputs=True, last_run=failed, watched_since=100.0), now=100.0 + 3600)
    assert waits.waiting_for[1:] == ["input raw.orders: never landed", "input raw.customers: never landed"]


def test_status_as_json_carries_times_in_utc() -> None:
    success = LastRun("r1", "success", 0.0, 60.0)
    data = notebook_status(facts(last_run=success, last_success=success), now=100.0).as_json()
    assert data["state"] == "fresh" and data["stale_from"] == "1970-01-01 01:01:00 UTC"
    assert data["last_run"]["finished_at"] == "1970-01-01 00:01:00 UTC" and data["freshness"] == "1h"


def _notebook(tmp_path: Path) -> None:
    write_notebook(tmp_path / "daily.ipynb", code(RUNTIME), code("%%sql orders\nSELECT * FROM raw.orders"),
                   code("output('mart.daily', orders)"))


def test_a_bad_freshness_is_refused_at_load_naming_the_notebook(tmp_path: Path) -> None:
    _notebook(tmp_path)
    with pytest.raises(DeclarationError) as err:
        declare_notebooks([NotebookAsset("daily.ipynb", freshness="26 hours")], tmp_path)
    assert "daily.ipynb: freshness='26 hours' is not a freshness rule" in str(err.value)
    [ok] = declare_notebooks([NotebookAsset("daily.ipynb", freshness="by 07:00 Europe/Berlin")], tmp_path)
    assert ok.decl.freshness == "by 07:00 Europe/Berlin"


def test_freshness_in_declarations_yaml_is_read_and_a_bad_one_names_file_line_and_notebook(tmp_path: Path) -> None:
    _notebook(tmp_path)
    path = tmp_path / "declarations.yaml"
    path.write_text("notebooks:\n  - path: daily.ipynb\n    freshness: by 25:00 Europe/Berlin\n")
    [decl] = load_declarations_yaml(path)
    assert decl.freshness == "by 25:00 Europe/Berlin"
    with pytest.raises(DeclarationError) as err:
        declare_notebooks([decl], tmp_path)
    [problem] = str(err.value).splitlines()[1:]
    assert problem.startswith(f"- {path}:2: ")  # the file and line, then the notebook
    assert problem.endswith("daily.ipynb: freshness='by 25:00 Europe/Berlin': 25:00 is not a time of day (00:00 to 23:59)")


def test_dagster_gets_the_same_rule_as_its_own_freshness_policy() -> None:
    import dagster as dg

    from nb_assets.defs.freshness_sensor import freshness_policy, with_freshness

    window = freshness_policy("26h")
    assert isinstance(window, dg.FreshnessPolicy) and window.fail_window.to_timedelta() == timedelta(hours=26)
    cron = freshness_policy("by 07:00 Europe/Berlin")
    assert (cron.deadline_cron, cron.lower_bound_delta, cron.timezone) == ("0 7 * * *", timedelta(hours=24), "Europe/Berlin")
    spec = with_freshness(dg.AssetSpec("x"), "26h")
    assert spec.freshness_policy == window
    translators = dg.AssetSpec("x", freshness_policy=dg.FreshnessPolicy.time_window(timedelta(hours=1)))
    assert with_freshness(translators, "26h").freshness_policy.fail_window.to_timedelta() == timedelta(hours=1)


def test_the_manuals_examples_of_status_lines_and_a_refusal_are_what_the_code_says() -> None:
    """docs/freshness.md shows output; these are the facts behind it, judged by the code."""
    page = Path(__file__).resolve().parents[3] / "docs" / "freshness.md"
    blocks = page.read_text().split("```text\n")[1:]
    refusal, lines = (b.split("```")[0].strip() for b in blocks)

    utc = timezone.utc
    traffic = LastRun("3f2a9c1e-5b7d-4e0f-9a1b-2c3d4e5f6a7b", "success", at(2026, 12, 7, 5, 0, 40, tz=utc), at(2026, 12, 7, 5, 1, 12, tz=utc))
    orders = LastRun("8b0d4e21-9c8b-4a7f-8e6d-5c4b3a291807", "success", at(2026, 12, 6, 9, 13, 40, tz=utc), at(2026, 12, 6, 9, 14, 3, tz=utc))
    now = at(2026, 12, 7, 12, 0, tz=utc)
    shown = [
        notebook_status(facts(name="daily_traffic", inputs=("raw.web_events",), freshness=parse_freshness("by 07:00 Europe/Amsterdam"),
                              last_run=traffic, last_success=traffic, input_updates={"raw.web_events": at(2026, 12, 7, 9, 2, tz=utc)}), now),
        notebook_status(facts(name="clean_orders", inputs=("raw.orders",), freshness=parse_freshness("26h"), last_run=orders,
                              last_success=orders, input_updates={"raw.orders": at(2026, 12, 6, 9, 12, 58, tz=utc)}), now),
    ]
    assert [s.line() for s in shown] == lines.splitlines()

    with pytest.raises(FreshnessError) as err:
        parse_freshness("26 hours")
    assert refusal.endswith(f"notebooks/big_orders.ipynb: {err.value}")
