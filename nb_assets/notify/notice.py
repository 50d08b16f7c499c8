"""What owners are told about a failed or refused run, and how it reads in a mail or a chat.

Pure: a frozen, JSON-round-tripping notice (it waits in the delivery ledger
between ticks) and its renderings; no Dagster, no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SLACK_TEXT_LIMIT = 2900  # Slack rejects section text over 3000 characters


@dataclass(frozen=True)
class FailureNotice:
    """One failed notebook in one run: what every owner of it receives."""

    run_id: str
    notebook: str  # its name, as in the Dagster graph
    path: str  # the .ipynb file
    owners: tuple[str, ...]
    status: Literal["failed", "refused"]
    summary: str  # one line: "cell 6 raised KeyError: 'currency'", or why it was refused
    cell: int | None = None  # 1-based, as the author counts
    cell_lines: str = ""  # numbered first lines of the failing cell, the failing line marked
    error_type: str | None = None
    error_message: str | None = None
    reason: str | None = None  # the whole refusal, for refused runs
    parameters: Mapping[str, Any] = field(default_factory=dict)
    partition: str | None = None
    job: str | None = None
    run_url: str | None = None
    executed_url: str | None = None
    executed_path: str | None = None
    traceback: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["owners"] = list(self.owners)
        data["parameters"] = dict(self.parameters)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FailureNotice:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "owners": tuple(known.get("owners", ()))})

    @property
    def verb(self) -> str:
        return "was refused" if self.status == "refused" else "failed"


def email_subject(notice: FailureNotice) -> str:
    subject = f"[nb-assets] {notice.notebook} {notice.verb}: {notice.summary}"
    return subject if len(subject) <= 160 else subject[:159] + "…"


def _facts(notice: FailureNotice) -> list[tuple[str, str]]:
    params = ", ".join(f"{k}={v!r}" for k, v in notice.parameters.items()) or "(defaults)"
    facts = [("Notebook", notice.path), ("Owners", ", ".join(notice.owners) or "-")]
    if notice.cell is not None:
        facts.append(("Cell", str(notice.cell)))
    if notice.error_type:
        facts.append(("Error", f"{notice.error_type}: {notice.error_message or ''}".rstrip(": ")))
    facts += [("Parameters", params), ("Partition", notice.partition or "-"), ("Run id", notice.run_id)]
    if notice.job:
        facts.append(("Job", notice.job))
    if notice.run_url:
        facts.append(("Run", notice.run_url))
    if notice.executed_url:
        facts.append(("Executed notebook", notice.executed_url))
    if notice.executed_path:
        facts.append(("Record", notice.executed_path))
    return facts


def email_body(notice: FailureNotice) -> str:
    width = max(len(label) for label, _ in _facts(notice)) + 1
    lines = [f"{notice.notebook} {notice.verb}: {notice.summary}", ""]
    lines += [f"{label + ':':<{width}} {value}" for label, value in _facts(notice)]
    if notice.reason and notice.status == "refused":
        lines += ["", "Why it was refused:", notice.reason]
    if notice.cell_lines:
        lines += ["", f"Cell {notice.cell}:", notice.cell_lines]
    if notice.traceback:
        lines += ["", "Traceback:", notice.traceback]
    return "\n".join(lines) + "\n"


def webhook_body(notice: FailureNotice) -> dict[str, Any]:
    """Slack's incoming-webhook shape: `text` for notifications, `blocks` for the message."""
    run = f"<{notice.run_url}|{notice.run_id[:8]}>" if notice.run_url else f"`{notice.run_id}`"
    executed = f"<{notice.executed_url}|executed notebook>" if notice.executed_url else (
        f"`{notice.executed_path}`" if notice.executed_path else "no executed notebook")
    text = f"{notice.notebook} {notice.verb}: {notice.summary}"
    facts = "\n".join(f"*{label}:* {value}" for label, value in _facts(notice)
                      if label not in ("Run", "Executed notebook", "Record"))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _cap(f"*{_escape(text)}*\nRun {run} · {executed}")}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cap(_escape(facts))}},
    ]
    if notice.reason and notice.status == "refused":
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _code(notice.reason)}})
    if notice.cell_lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _code(notice.cell_lines)}})
    return {"text": text, "blocks": blocks}


def _escape(text: str) -> str:
    """Slack reads &, < and > as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cap(text: str, limit: int = SLACK_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code(text: str) -> str:
    return f"```{_cap(_escape(text), SLACK_TEXT_LIMIT - 6)}```"
