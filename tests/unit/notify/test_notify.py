"""Channels against real servers on loopback: SMTP plain, STARTTLS and TLS with credentials
from the environment; webhooks that answer, refuse, or reject."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.loopback_servers import free_port, self_signed_certificate, server_tls, smtp_server, webhook_server
from nb_assets.errors import DeclarationError
from nb_assets.notify.notice import FailureNotice
from nb_assets.notify.channels import DeliveryError, Dispatcher, Notifications, SmtpChannel, WebhookChannel

# Plain SMTP with AUTH is what the plain-mode test means to exercise.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

NOTICE = FailureNotice(
    run_id="0f1e2d3c-aaaa-bbbb-cccc-000000000001",
    notebook="clean_orders",
    path="notebooks/clean_orders.ipynb",
    owners=("a@example.com", "team:data-eng"),
    status="failed",
    summary="cell 6 raised KeyError: 'currency'",
    cell=6,
    cell_lines="  1 | df = orders\n> 2 | df['currency'] & <b>",
    error_type="KeyError",
    error_message="'currency'",
    parameters={"ds": "2026-11-20"},
    partition="2026-11-20",
    run_url="http://dagster.example.invalid/runs/0f1e2d3c",
)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def test_plain_smtp_sends_one_readable_mail_with_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB_TEST_SMTP_USER", "robot")
    monkeypatch.setenv("NB_TEST_SMTP_PASSWORD", "s3cret")
    with smtp_server(users={"robot": "s3cret"}) as smtp:
        channel = SmtpChannel("127.0.0.1", smtp.port, security="plain", username_env="NB_TEST_SMTP_USER",
                              password_env="NB_TEST_SMTP_PASSWORD", sender="nb-assets@example.com")
        channel.send("a@example.com", NOTICE)
    [mail] = smtp.mails
    assert smtp.logins == [("robot", "s3cret")]
    assert mail.recipients == ["a@example.com"] and mail.message["From"] == "nb-assets@example.com"
    assert mail.subject == "[nb-assets] clean_orders failed: cell 6 raised KeyError: 'currency'"
    body = mail.body
    for line in ("Notebook:   notebooks/clean_orders.ipynb", "Cell:       6", "Error:      KeyError: 'currency'",
                 "Parameters: ds='2026-11-20'", "Partition:  2026-11-20", "Run:        http://dagster.example.invalid/runs/0f1e2d3c",
                 "> 2 | df['currency'] & <b>"):
        assert line in body


def test_missing_credentials_name_the_variable_and_leak_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB_TEST_SMTP_USER", "robot")
    monkeypatch.delenv("NB_TEST_SMTP_PASSWORD", raising=False)
    with smtp_server(users={"robot": "s3cret"}) as smtp:
        channel = SmtpChannel("127.0.0.1", smtp.port, security="plain", username_env="NB_TEST_SMTP_USER",
                              password_env="NB_TEST_SMTP_PASSWORD")
        with pytest.raises(DeliveryError, match="NB_TEST_SMTP_PASSWORD not set") as err:
            channel.send("a@example.com", NOTICE)
    assert err.value.transient and not smtp.mails and "robot" not in str(err.value)


def test_starttls_upgrades_before_logging_in(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = certificate
    monkeypatch.setenv("NB_TEST_SMTP_USER", "robot")
    monkeypatch.setenv("NB_TEST_SMTP_PASSWORD", "s3cret")
    with smtp_server(tls=server_tls(cert, key), users={"robot": "s3cret"}) as smtp:
        SmtpChannel("127.0.0.1", smtp.port, security="starttls", username_env="NB_TEST_SMTP_USER",
                    password_env="NB_TEST_SMTP_PASSWORD", ca_file=str(cert)).send("a@example.com", NOTICE)
        # The server requires STARTTLS: a plain client is turned away.
        with pytest.raises(DeliveryError):
            SmtpChannel("127.0.0.1", smtp.port, security="plain").send("b@example.com", NOTICE)
    assert [m.recipients for m in smtp.mails] == [["a@example.com"]] and smtp.logins == [("robot", "s3cret")]


def test_implicit_tls_and_an_untrusted_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with smtp_server(tls=server_tls(cert, key), implicit_tls=True) as smtp:
        SmtpChannel("127.0.0.1", smtp.port, security="ssl", ca_file=str(cert)).send("a@example.com", NOTICE)
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            SmtpChannel("127.0.0.1", smtp.port, security="ssl").send("b@example.com", NOTICE)
    assert [m.recipients for m in smtp.mails] == [["a@example.com"]]


def test_the_webhook_body_is_slack_shaped_and_escaped() -> None:
    with webhook_server() as hook:
        WebhookChannel(url=hook.url).send("team:data-eng", NOTICE)
    [body] = hook.received
    assert body["text"] == "clean_orders failed: cell 6 raised KeyError: 'currency'"
    assert [b["type"] for b in body["blocks"]] == ["section"] * 3
    assert "<http://dagster.example.invalid/runs/0f1e2d3c|0f1e2d3c>" in body["blocks"][0]["text"]["text"]
    assert body["blocks"][-1]["text"]["text"] == "```  1 | df = orders\n&gt; 2 | df['currency'] &amp; &lt;b&gt;```"


def test_a_rejecting_receiver_is_not_retried_and_a_down_channel_is_skipped_for_the_tick() -> None:
    logged: list[str] = []
    notifications = Notifications(webhooks={"data-eng": WebhookChannel(url="http://127.0.0.1:1/")}, attempts=3, backoff_s=0.01)
    with webhook_server(statuses=[404]) as hook:
        rejecting = Notifications(webhooks={"data-eng": WebhookChannel(url=hook.url)}, attempts=3, backoff_s=0.01)
        assert Dispatcher(rejecting, logged.append).send("team:data-eng", NOTICE) == ("rejected", "webhook team:data-eng: HTTP 404 Not Found")
    assert hook.attempts == 1
    port = free_port()
    down = Notifications(webhooks={"data-eng": WebhookChannel(url=f"http://127.0.0.1:{port}/")}, attempts=3, backoff_s=0.01)
    dispatcher = Dispatcher(down, logged.append)
    outcome, error = dispatcher.send("team:data-eng", NOTICE)
    assert outcome == "down" and "Connection refused" in error
    assert dispatcher.send("team:data-eng", NOTICE) == ("down", error)  # no second round of attempts this tick
    assert logged == [f"nb-assets notifications: channel team:data-eng is down after 3 attempt(s) ({error}); retrying on the next tick"]
    assert Dispatcher(notifications, logged.append).send("nobody", NOTICE)[0] == "no-channel"


def test_a_channel_whose_variable_is_unset_is_off_and_not_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NB_TEST_HOOK", raising=False)
    monkeypatch.delenv("NB_TEST_SMTP_PASSWORD", raising=False)
    monkeypatch.setenv("NB_TEST_SMTP_USER", "robot")
    with smtp_server() as smtp:
        routes = Notifications(
            email=SmtpChannel("127.0.0.1", smtp.port, security="plain", username_env="NB_TEST_SMTP_USER", password_env="NB_TEST_SMTP_PASSWORD"),
            webhooks={"data-eng": WebhookChannel(url_env="NB_TEST_HOOK"), "ops": WebhookChannel(url="http://127.0.0.1:9/")},
        )
        assert routes.off_channels() == {"email": "environment variable(s) NB_TEST_SMTP_PASSWORD not set",
                                         "team:data-eng": "environment variable NB_TEST_HOOK is not set"}
        logged: list[str] = []
        dispatcher = Dispatcher(routes, logged.append)
        assert dispatcher.send("team:data-eng", NOTICE) == ("off", "channel team:data-eng is off: environment variable NB_TEST_HOOK is not set")
        assert dispatcher.send("a@example.com", NOTICE)[0] == "off"
        assert logged == [] and smtp.mails == []  # not tried, not retried, not logged per message
        monkeypatch.setenv("NB_TEST_HOOK", "http://127.0.0.1:9/")
        assert "team:data-eng" not in routes.off_channels()


def test_configuration_mistakes_are_refused_when_declared() -> None:
    with pytest.raises(DeclarationError, match="security must be one of"):
        SmtpChannel("127.0.0.1", security="tls")  # type: ignore[arg-type]
    with pytest.raises(DeclarationError, match="both username_env and password_env"):
        SmtpChannel("127.0.0.1", username_env="USER")
    with pytest.raises(DeclarationError, match="exactly one of url= or url_env="):
        WebhookChannel()
    routes = Notifications(email=SmtpChannel("127.0.0.1"), webhooks={"data-eng": WebhookChannel(url_env="HOOK")})
    assert routes.channel_for("a@example.com") is routes.email
    assert routes.channel_for("team:data-eng").name == "team:data-eng"


def test_a_notice_round_trips_through_json() -> None:
    assert FailureNotice.from_json(NOTICE.to_json()) == NOTICE
