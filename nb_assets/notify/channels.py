"""Notification channels: email over SMTP and JSON webhooks, configured in the definitions.

    notifications=Notifications(
        email=SmtpChannel("smtp.example.com", 587, security="starttls",
                          username_env="SMTP_USER", password_env="SMTP_PASSWORD",
                          sender="nb-assets@example.com"),
        webhooks={"data-eng": WebhookChannel(url_env="DATA_ENG_WEBHOOK_URL")},
        ui_base_url="https://dagster.example.com",
    )

An owner is an email address (sent by `email`) or `team:<name>` (posted to
`webhooks[<name>]`). Secrets never live in the definitions file: SMTP
credentials and secret webhook URLs are named by environment variable and
read at send time. No Dagster import: the failure sensor drives these.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, get_args

from nb_assets.errors import DeclarationError, NbAssetsError
from nb_assets.notify.freshness_notice import FreshnessNotice
from nb_assets.notify.notice import FailureNotice, email_body, email_subject, webhook_body

Security = Literal["starttls", "ssl", "plain"]
Notice = FailureNotice | FreshnessNotice  # a failed run, or a stale (recovered) notebook
EMAIL = "email"
TEAM_PREFIX = "team:"


class DeliveryError(NbAssetsError):
    """A channel did not take a message; `transient` errors are retried, others are not."""

    kind = "delivery"

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class SmtpChannel:
    """Email over SMTP. `security`: "starttls" (upgrade a plain connection, port 587),
    "ssl" (TLS from the first byte, port 465) or "plain" (no TLS: a relay on localhost).
    `ca_file` trusts a private certificate authority besides the system's."""

    host: str
    port: int = 587
    security: Security = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    sender: str = "nb-assets@localhost"
    ca_file: str | None = None
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.security not in get_args(Security):
            raise DeclarationError(f"SmtpChannel security must be one of {get_args(Security)}, got {self.security!r}")
        if bool(self.username_env) != bool(self.password_env):
            raise DeclarationError("SmtpChannel needs both username_env and password_env, or neither")

    @property
    def name(self) -> str:
        return EMAIL

    def off_reason(self) -> str | None:
        """Why the channel is off (its credentials' variables are not set), or None when it is on."""
        unset = [name for name in (self.username_env, self.password_env) if name and os.environ.get(name) is None]
        return f"environment variable(s) {', '.join(unset)} not set" if unset else None

    def send(self, recipient: str, notice: Notice) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = recipient
        message["Subject"] = notice.email_subject() if isinstance(notice, FreshnessNotice) else email_subject(notice)
        message["X-NB-Assets-Run"] = notice.run_id
        message.set_content(notice.email_body() if isinstance(notice, FreshnessNotice) else email_body(notice))
        try:
            with self._connect() as smtp:
                credentials = self._credentials()
                if credentials:
                    smtp.login(*credentials)
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:  # fixable by whoever runs the daemon: keep trying
            raise DeliveryError(f"SMTP {self.host}:{self.port} refused the login: {exc.smtp_code} {exc.smtp_error!r}") from exc
        except smtplib.SMTPResponseException as exc:  # the server answered: 4xx try later, 5xx never
            raise DeliveryError(f"SMTP {self.host}:{self.port} answered {exc.smtp_code} {exc.smtp_error!r}",
                                transient=exc.smtp_code < 500) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"SMTP {self.host}:{self.port} refused {recipient}: {exc.recipients}", transient=False) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc

    def _connect(self) -> smtplib.SMTP:
        tls = ssl.create_default_context(cafile=self.ca_file)
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=tls)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        try:
            if self.security == "starttls":
                smtp.starttls(context=tls)  # refuses to go on in the clear if the server cannot
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _credentials(self) -> tuple[str, str] | None:
        if not self.username_env or not self.password_env:
            return None
        user, password = os.environ.get(self.username_env), os.environ.get(self.password_env)
        if user is None or password is None:
            missing = [n for n, v in ((self.username_env, user), (self.password_env, password)) if v is None]
            raise DeliveryError(f"SMTP credentials: environment variable(s) {', '.join(missing)} not set")
        return user, password


@dataclass(frozen=True)
class WebhookChannel:
    """A JSON POST with a Slack-compatible body (`text` and `blocks`). Give `url`, or
    `url_env` when the URL itself is a secret (as Slack's incoming webhooks are)."""

    url: str | None = None
    url_env: str | None = None
    timeout_s: float = 10.0
    name: str = "webhook"

    def __post_init__(self) -> None:
        if bool(self.url) == bool(self.url_env):
            raise DeclarationError("WebhookChannel needs exactly one of url= or url_env=")

    def off_reason(self) -> str | None:
        """Why the channel is off (`url_env` names no URL here), or None when it is on."""
        if self.url or os.environ.get(self.url_env or ""):
            return None
        return f"environment variable {self.url_env} is not set"

    def send(self, recipient: str, notice: Notice) -> None:
        url = self.url or os.environ.get(self.url_env or "")
        if not url:
            raise DeliveryError(f"webhook {self.name}: environment variable {self.url_env} not set")
        body = notice.webhook_body() if isinstance(notice, FreshnessNotice) else webhook_body(notice)
        request = urllib.request.Request(
            url, data=json.dumps(body).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "nb-assets"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:  # 5xx, 408, 429: the receiver may recover
            transient = exc.code >= 500 or exc.code in (408, 429)
            raise DeliveryError(f"webhook {self.name}: HTTP {exc.code} {exc.reason}", transient=transient) from exc
        except (OSError, ValueError) as exc:  # refused, unreachable, timed out
            raise DeliveryError(f"webhook {self.name}: {type(exc).__name__}: {exc}") from exc


Channel = SmtpChannel | WebhookChannel


@dataclass(frozen=True)
class Notifications:
    """Who hears about failed runs, and how.

    ui_base_url: the Dagster UI, for links to the run and the executed notebook.
    attempts, backoff_s: tries per message within one tick, waiting backoff_s, 2×, 4×...;
        a channel still down is left for the next tick.
    interval_s: how often the sensor ticks.
    give_up_after_s: a message still undelivered this long after the failure is dropped (logged).
    first_tick_lookback_s: on its first tick the sensor reports failures this recent.
    ledger_dir: where deliveries are recorded (default: under the Dagster instance's storage).
    """

    email: SmtpChannel | None = None
    webhooks: Mapping[str, WebhookChannel] = field(default_factory=dict)
    ui_base_url: str | None = None
    attempts: int = 3
    backoff_s: float = 1.0
    interval_s: int = 30
    tick_budget_s: float = 40.0  # plus one send's timeout, below Dagster's 60 s sensor timeout
    give_up_after_s: float = 86400.0
    first_tick_lookback_s: float = 3600.0
    ledger_dir: str | None = None

    def channel_for(self, owner: str) -> Channel | None:
        """The channel an owner is reached on, or None if none is configured for it."""
        if owner.startswith(TEAM_PREFIX):
            name = owner[len(TEAM_PREFIX):]
            hook = self.webhooks.get(name) or self.webhooks.get(owner)
            return replace(hook, name=f"{TEAM_PREFIX}{name}") if hook else None
        return self.email if "@" in owner else None

    def off_channels(self) -> dict[str, str]:
        """Each configured channel that is off in this process (an unset variable), with why.

        The environment is read as each message is sent, and a daemon's does not
        change while it runs: a channel off now stays off until it is restarted."""
        channels: list[Channel] = [self.email] if self.email else []
        channels += [replace(hook, name=f"{TEAM_PREFIX}{name.removeprefix(TEAM_PREFIX)}") for name, hook in self.webhooks.items()]
        return {channel.name: reason for channel in channels if (reason := channel.off_reason())}


Outcome = Literal["sent", "down", "rejected", "no-channel", "off"]


class Dispatcher:
    """Sends within one tick: retries with backoff, then marks the channel down for the
    rest of the tick so later messages on it wait for the next tick instead of the timeout."""

    def __init__(self, notifications: Notifications, log: Callable[[str], None], *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.notifications = notifications
        self.log = log
        self.sleep = sleep
        self.started = time.monotonic()
        self.down: dict[str, str] = {}  # channel name → last error

    def out_of_time(self) -> bool:
        return time.monotonic() - self.started > self.notifications.tick_budget_s

    def send(self, recipient: str, notice: Notice) -> tuple[Outcome, str | None]:
        channel = self.notifications.channel_for(recipient)
        if channel is None:
            return "no-channel", f"no channel configured for owner {recipient!r}"
        off = channel.off_reason()
        if off:  # not retried all day: the sensor says once that the channel is off
            return "off", f"channel {channel.name} is off: {off}"
        if channel.name in self.down:
            return "down", self.down[channel.name]
        error: DeliveryError | None = None
        tries = 0
        while tries < max(1, self.notifications.attempts):
            if tries:
                if self.out_of_time():  # the tick must end before Dagster's sensor timeout
                    break
                self.sleep(self.notifications.backoff_s * 2 ** (tries - 1))
            tries += 1
            try:
                channel.send(recipient, notice)
                return "sent", None
            except DeliveryError as exc:
                error = exc
                if not exc.transient:
                    return "rejected", str(exc)
        self.down[channel.name] = str(error)
        self.log(f"nb-assets notifications: channel {channel.name} is down after "
                 f"{tries} attempt(s) ({error}); retrying on the next tick")
        return "down", str(error)


def ledger_folder(notifications: Notifications, storage_directory: str | Path) -> Path:
    return Path(notifications.ledger_dir) if notifications.ledger_dir else Path(storage_directory) / "nb_assets_notifications"
