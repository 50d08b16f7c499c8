"""The failure sensor, evaluated for real against an instance holding real failed runs,
delivering to real SMTP and HTTP servers on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from support.failed_project import FailedProject, failed_project, step_failure  # noqa: F401  (fixture)
from support.loopback_servers import free_port, smtp_server, webhook_server
from support.paths import TESTS
from support.polling import LogFile
from support.sensor_ticks import wait_for_completed_ticks
from nb_assets.errors import DeclarationError
from nb_assets.defs.failure_sensor import SENSOR_NAME
from nb_assets.notify.ledger import NoticeLedger

WEBHOOK_ENV = "NB_TEST_WEBHOOK_URL"


def _sensor(project: FailedProject, smtp_port: int, ledger: Path, **options: object) -> dg.SensorDefinition:
    defs = project.definitions(project.module.notifications(smtp_port, ledger_dir=str(ledger), **options))
    return next(s for s in defs.sensors if s.name == SENSOR_NAME)


def _tick(sensor: dg.SensorDefinition, project: FailedProject, cursor: str | None) -> dg.SensorResult:
    result = sensor(dg.build_sensor_context(instance=project.instance, cursor=cursor))
    assert isinstance(result, dg.SensorResult)
    return result


def test_the_dagster_failure_shows_the_cell_source_and_the_traceback(failed_project: FailedProject) -> None:
    data = step_failure(failed_project.instance, failed_project.broken_run).step_failure_data.user_failure_data
    description = data.description
    assert description.startswith(f"{failed_project.root / 'broken.ipynb'}: cell 5 raised KeyError: 'currency'")
    assert "broken.ipynb, cell 5, line 2:" in description
    assert "> 2 | missing = rows['currency']" in description
    assert "  1 | total = len(rows)" in description
    assert "Traceback (colour codes stripped):" in description and "cell 5, line 2" in description
    assert "\x1b[" not in description and "In[" not in description  # no colours, no execution counters
    metadata = {k: v.value for k, v in data.metadata.items()}
    assert metadata["notebook/failed_cell"] == 5
    assert metadata["notebook/error"] == {"kind": "cell-error", "type": "KeyError", "message": "'currency'"}
    assert metadata["notebook/parameters"] == {"ds": "2026-11-20"}
    assert Path(metadata["notebook/executed"]).name == "executed.ipynb"
    assert "missing = rows['currency']" in metadata["notebook/cell_source"]


def test_each_owner_hears_once_naming_the_cell_and_refusals_say_why(
    failed_project: FailedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with smtp_server() as smtp, webhook_server() as hook:
        monkeypatch.setenv(WEBHOOK_ENV, hook.url)
        sensor = _sensor(failed_project, smtp.port, tmp_path / "ledger")
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
        first = _tick(sensor, failed_project, None)
        assert first.cursor is not None
        assert "2 new failed run(s) queued; 4 message(s) sent" in first.skip_reason.skip_message

        broken = failed_project.broken_run
        for owner in ("a@example.com", "b@example.com"):
            [mail] = smtp.to(owner)
            assert mail.subject == "[nb-assets] broken failed: cell 5 raised KeyError: 'currency'"
            assert mail.message["X-NB-Assets-Run"] == broken
            body = mail.body
            assert "Cell:       5" in body and "Error:      KeyError: 'currency'" in body
            assert "> 2 | missing = rows['currency']" in body
            assert "Parameters: ds='2026-11-20'" in body and "Partition:  -" in body
            assert "Owners:     a@example.com, b@example.com, team:data-eng" in body
            assert f"Run:        http://dagster.example.invalid:3000/runs/{broken}" in body
            assert f"{broken}/record/executed.html" in body
        [post] = hook.received
        assert post["text"] == "broken failed: cell 5 raised KeyError: 'currency'"
        assert "missing = rows['currency']" in post["blocks"][-1]["text"]["text"]

        [refusal] = smtp.to("c@example.com")
        assert refusal.subject.startswith("[nb-assets] guarded was refused: refused before any data was fetched")
        assert "may not read zone 'finance'" in refusal.subject and "may not read zone 'finance'" in refusal.body
        assert not smtp.to("d@example.com") and not smtp.to("staging@example.com")  # they did not fail

        again = _tick(sensor, failed_project, first.cursor)
        restarted = _tick(sensor, failed_project, None)  # a cursor lost with the daemon: the ledger remembers
        assert "0 message(s) sent" in again.skip_reason.skip_message
        assert "0 new failed run(s) queued; 0 message(s) sent" in restarted.skip_reason.skip_message
        assert len(smtp.mails) == 3 and len(hook.received) == 1


def test_a_webhook_refusing_the_first_attempt_gets_the_retry_within_the_tick(
    failed_project: FailedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with smtp_server() as smtp, webhook_server(statuses=[503]) as hook:
        monkeypatch.setenv(WEBHOOK_ENV, hook.url)
        result = _tick(_sensor(failed_project, smtp.port, tmp_path / "ledger"), failed_project, None)
    assert hook.attempts == 2 and len(hook.received) == 1
    assert "0 waiting" in result.skip_reason.skip_message
    entry = NoticeLedger(tmp_path / "ledger").entry(failed_project.broken_run)
    [delivery] = [d for d in entry.deliveries() if d["recipient"] == "team:data-eng"]
    assert delivery["status"] == "sent"


def test_a_channel_that_is_down_is_logged_and_delivered_on_a_later_tick(
    failed_project: FailedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
) -> None:
    port = free_port()  # nothing listens here yet: connection refused
    monkeypatch.setenv(WEBHOOK_ENV, f"http://127.0.0.1:{port}/hook")
    with smtp_server() as smtp:
        sensor = _sensor(failed_project, smtp.port, tmp_path / "ledger", attempts=2)
        first = _tick(sensor, failed_project, None)
        assert "channel team:data-eng down" in first.skip_reason.skip_message
        assert "1 waiting" in first.skip_reason.skip_message
        assert "channel team:data-eng is down after 2 attempt(s)" in capfd.readouterr().err
        assert len(smtp.mails) == 3  # email is another channel: it went out on this tick
        with webhook_server(port=port) as hook:
            second = _tick(sensor, failed_project, first.cursor)
            third = _tick(sensor, failed_project, second.cursor)
    assert len(hook.received) == 1 and hook.received[0]["text"].startswith("broken failed")
    assert "1 message(s) sent, 0 waiting" in second.skip_reason.skip_message
    assert "0 message(s) sent, 0 waiting" in third.skip_reason.skip_message
    assert len(smtp.mails) == 3
    entry = NoticeLedger(tmp_path / "ledger").entry(failed_project.broken_run)
    assert entry is not None and entry.path.parent.name == "done"
    [delivery] = [d for d in entry.deliveries() if d["recipient"] == "team:data-eng"]
    assert delivery["attempts"] == 2  # one tick down, one tick delivered


def test_a_channel_whose_variable_is_unset_is_off_and_said_once_not_every_tick(
    failed_project: FailedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
) -> None:
    """The demo's webhook variable is unset: its owners are not told, and the log says so once, not per tick for a day."""
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    with smtp_server() as smtp:
        sensor = _sensor(failed_project, smtp.port, tmp_path / "ledger")
        cursor = None
        messages = []
        for _ in range(4):
            result = _tick(sensor, failed_project, cursor)
            cursor, messages = result.cursor, [*messages, result.skip_reason.skip_message]
    err = capfd.readouterr().err
    said = f"channel team:data-eng is off (environment variable {WEBHOOK_ENV} is not set)"
    assert err.count(said) == 1, err
    assert "is down" not in err and "not set" not in "".join(messages[1:])
    assert "3 message(s) sent, 0 waiting, 0 dropped, 1 not sent (channel off)" in messages[0]
    assert len(smtp.mails) == 3  # email is on: every other owner heard once
    entry = NoticeLedger(tmp_path / "ledger").entry(failed_project.broken_run)
    assert entry is not None and entry.path.parent.name == "done"  # nothing left pending to retry all day
    [delivery] = [d for d in entry.deliveries() if d["recipient"] == "team:data-eng"]
    assert (delivery["status"], delivery["attempts"]) == ("off", 1) and WEBHOOK_ENV in delivery["error"]


CRASHING_TICK = """
import sys
import dagster as dg
from support.failed_project import load_module
from nb_assets.defs.failure_sensor import SENSOR_NAME

module = load_module(sys.argv[1], "definitions_in_subprocess")
sensor = next(s for s in module.defs.sensors if s.name == SENSOR_NAME)
with dg.DagsterInstance.get() as instance:
    sensor(dg.build_sensor_context(instance=instance, cursor=None))
"""


def test_a_crash_mid_send_loses_no_notice_and_repeats_none(
    failed_project: FailedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sensor process is killed while a webhook hangs: mails already sent are not sent
    again, and the message in flight is delivered by the next tick."""
    ledger = tmp_path / "ledger"
    with smtp_server() as smtp, webhook_server(hang=True) as hook:
        env = {**os.environ, "DAGSTER_HOME": str(failed_project.instance_dir), "NB_TEST_SMTP_PORT": str(smtp.port),
               WEBHOOK_ENV: hook.url, "NB_TEST_LEDGER": str(ledger),
               "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
        process = subprocess.Popen([sys.executable, "-c", CRASHING_TICK, str(failed_project.root / "definitions.py")],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert hook.arrived.wait(120), process.stdout.read().decode() if process.poll() is not None else "no request"
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(30)
        assert process.returncode == -signal.SIGKILL
        sent_before_crash = len(smtp.mails)
        assert sent_before_crash == 2  # the broken run's two mails went out before the webhook hung
        pending = NoticeLedger(ledger).pending()
        assert {e.run_id for e in pending} >= {failed_project.broken_run}

        hook.hang = False  # the receiver recovers
        monkeypatch.setenv(WEBHOOK_ENV, hook.url)
        _tick(_sensor(failed_project, smtp.port, ledger), failed_project, None)  # the crashed tick saved no cursor
    assert [m.recipients for m in smtp.mails].count(["a@example.com"]) == 1
    assert [m.recipients for m in smtp.mails].count(["b@example.com"]) == 1
    assert len(smtp.to("c@example.com")) == 1
    assert len(hook.received) == 1 and hook.received[0]["text"].startswith("broken failed")


def test_an_owner_no_channel_reaches_is_refused_when_loading(failed_project: FailedProject) -> None:
    from nb_assets import Notifications, SmtpChannel

    with pytest.raises(DeclarationError, match=r"broken.ipynb: team:data-eng") as err:
        failed_project.definitions(Notifications(email=SmtpChannel("127.0.0.1", 25, security="plain")))
    assert "webhooks={'<name>': WebhookChannel(...)}" in str(err.value)
    with pytest.raises(DeclarationError, match=r"broken.ipynb: a@example.com"):
        failed_project.definitions(Notifications(webhooks={"data-eng": __import__("nb_assets").WebhookChannel(url="http://127.0.0.1:9/")}))


DAEMON_TIMEOUT_S = 180


@pytest.mark.slow
def test_a_real_daemon_notifies_once_and_a_restarted_one_does_not_resend(
    failed_project: FailedProject, tmp_path: Path,
) -> None:
    daemon = Path(sys.executable).with_name("dagster-daemon")
    if not daemon.exists():
        pytest.skip(f"dagster-daemon is not installed next to {sys.executable}")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    from nb_assets import NotebookResource
    from nb_assets.defs.build import RESOURCE_KEY

    assets = list(failed_project.module.defs.assets)
    resource = NotebookResource(warehouse=str(failed_project.root / "warehouse.duckdb"), sandbox="local")

    def refuse_once(instance: dg.DagsterInstance) -> str:
        """A refused run is a real failed run that needs no kernel: cheap to make twice."""
        policy = failed_project.root / "policy.yaml"
        original = policy.read_text()
        policy.write_text(original.replace("reporting: [finance]", "reporting: []"))
        try:
            result = dg.materialize(assets, instance=instance, resources={RESOURCE_KEY: resource},
                                    selection=["mart/guarded"], raise_on_error=False)
        finally:
            policy.write_text(original)
        return result.run_id

    with smtp_server() as smtp:
        env = {**os.environ, "DAGSTER_HOME": str(home), "NB_TEST_SMTP_PORT": str(smtp.port),
               WEBHOOK_ENV: "http://127.0.0.1:9/unused"}

        # The daemon's log goes to a file: a pipe nobody reads fills up and blocks the daemon mid-tick.
        log = LogFile(tmp_path / "daemon.log")

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [str(daemon), "run", "-f", str(failed_project.root / "definitions.py"), "--working-directory", str(failed_project.root)],
                env=env, cwd=failed_project.root, stdout=log.handle, stderr=subprocess.STDOUT,
            )

        def wait_for(count: int, process: subprocess.Popen[bytes]) -> None:
            deadline = time.monotonic() + DAEMON_TIMEOUT_S
            while len(smtp.to("c@example.com")) < count:
                if process.poll() is not None:
                    pytest.fail(f"dagster-daemon exited:\n{log.tail()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no mail {count} within {DAEMON_TIMEOUT_S} s; daemon log:\n{log.tail()}")
                time.sleep(0.5)

        def stop(process: subprocess.Popen[bytes]) -> None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

        with dg.instance_for_test(temp_dir=str(home)) as instance:
            first_run = refuse_once(instance)
            process = start()
            try:
                wait_for(1, process)
            finally:
                stop(process)
            second_run = refuse_once(instance)  # while no daemon runs
            process = start()
            try:
                wait_for(2, process)
                # "Nothing resent" holds over ticks that happened: three more completed ticks, not a fixed sleep.
                wait_for_completed_ticks(instance, SENSOR_NAME, 3, time.time(), log, DAEMON_TIMEOUT_S)
            finally:
                stop(process)
                log.close()
    runs = [m.message["X-NB-Assets-Run"] for m in smtp.to("c@example.com")]
    assert runs == [first_run, second_run]
