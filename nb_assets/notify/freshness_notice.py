"""What owners are told when a notebook's outputs go stale, and when they are fresh again.

One stale notice per episode (from the moment the freshness rule is missed
until the outputs are materialized again), one recovery notice at its end.
Pure: a frozen, JSON-round-tripping notice (it waits in the delivery ledger
like a FailureNotice; `kind` tells the two apart there) and its renderings.
Everything in it is text the sensor computed; nothing is fetched when a
message is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from nb_assets.notify.notice import SLACK_TEXT_LIMIT

KIND = "freshness"


@dataclass(frozen=True)
class FreshnessNotice:
    """One notebook's stale (or recovered) outputs: what every owner of it receives."""

    episode_id: str  # the ledger's key: notebook and the moment it went stale, plus "-recovered"
    notebook: str
    path: str
    owners: tuple[str, ...]
    status: Literal["stale", "fresh"]
    freshness: str  # the rule as declared, "26h" or "by 07:00 Europe/Berlin"
    rule: str  # the rule in words
    stale_since: str  # when the rule was missed (UTC)
    last_success: str | None  # the outputs' last materialization (UTC), None: never
    last_run: str | None = None  # "<id> <status> at <time>"
    waiting_for: tuple[str, ...] = ()
    recovered_at: str | None = None
    outputs: tuple[str, ...] = ()
    ui_url: str | None = None
    kind: str = field(default=KIND)

    @property
    def run_id(self) -> str:
        """The ledger and the mail's X-NB-Assets-Run header key notices by this."""
        return self.episode_id

    @property
    def verb(self) -> str:
        return "is stale" if self.status == "stale" else "is fresh again"

    @property
    def summary(self) -> str:
        if self.status == "fresh":
            return f"materialized at {self.recovered_at}, stale since {self.stale_since}"
        if self.waiting_for:
            return f"not {self.rule}; waiting for {self.waiting_for[0]}"
        return f"not {self.rule}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("owners", "waiting_for", "outputs"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FreshnessNotice:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, **{k: tuple(known.get(k, ())) for k in ("owners", "waiting_for", "outputs")}})

    def email_subject(self) -> str:
        subject = f"[nb-assets] {self.notebook} {self.verb}: {self.summary}"
        return subject if len(subject) <= 160 else subject[:159] + "…"

    def facts(self) -> list[tuple[str, str]]:
        facts = [("Notebook", self.path), ("Owners", ", ".join(self.owners) or "-"),
                 ("Freshness", f"{self.freshness} ({self.rule})"),
                 ("Outputs", ", ".join(self.outputs) or "- (report)"),
                 ("Stale since", self.stale_since),
                 ("Last materialized", self.last_success or "never")]
        if self.recovered_at:
            facts.append(("Fresh again at", self.recovered_at))
        if self.last_run:
            facts.append(("Last run", self.last_run))
        if self.ui_url:
            facts.append(("In Dagster", self.ui_url))
        return facts

    def email_body(self) -> str:
        width = max(len(label) for label, _ in self.facts()) + 1
        lines = [f"{self.notebook} {self.verb}.", ""]
        lines += [f"{label + ':':<{width}} {value}" for label, value in self.facts()]
        if self.status == "stale":
            lines += ["", "Waiting for:"]
            lines += [f"- {w}" for w in self.waiting_for] or ["- nothing known: the notebook has not run (is its trigger on?)"]
            lines += ["", "You will get one more message, when its outputs are materialized again."]
        return "\n".join(lines) + "\n"

    def webhook_body(self) -> dict[str, Any]:
        text = f"{self.notebook} {self.verb}: {self.summary}"
        facts = "\n".join(f"*{label}:* {value}" for label, value in self.facts())
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": _cap(f"*{_escape(text)}*")}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _cap(_escape(facts))}},
        ]
        if self.status == "stale" and self.waiting_for:
            waiting = "Waiting for:\n" + "\n".join(f"• {w}" for w in self.waiting_for)
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cap(_escape(waiting))}})
        return {"text": text, "blocks": blocks}


def _escape(text: str) -> str:
    """Slack reads &, < and > as markup: a table name cannot become a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cap(text: str, limit: int = SLACK_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
