"""What the Schedule form reads out of `nb-assets schedule`'s answers, for the author at the form.

- the trials, from the facts the command wrote (`--trials-json`): what ran, how it went, the
  rows, where the executed notebook is;
- a refusal by the checks, without what the findings table (`nb-assets check`'s) shows
  already, and without the line of the declaration the command only tried: the notebook
  is not declared yet, so `declarations.yaml:12` points at nothing in the file.

Pure text: no widgets, no child processes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb_assets.spec import Finding


@dataclass
class TrialFacts:
    """One trial as the author needs it: what ran, how it went, the rows, where its executed notebook is."""

    label: str | None = None  # the instance or day, when the notebook has several trials
    status: str = "unknown"
    failure: str | None = None  # what failed, without the message (the command prints that)
    duration_s: float | None = None
    sandbox: str | None = None
    inputs: list[tuple[str, int]] = field(default_factory=list)  # %%sql input → rows read
    outputs: list[tuple[str, int, list[str]]] = field(default_factory=list)  # table → rows written, its columns
    record: str | None = None  # the record folder, relative to the project
    executed: str | None = None  # the executed notebook (or its HTML), relative to the project
    run_id: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialFacts:
        """One entry of the command's `--trials-json` (cli/schedule_workflow.trials_json)."""
        return cls(
            label=data.get("label"), status=data.get("status", "unknown"), failure=data.get("failure"),
            duration_s=data.get("duration_s"), sandbox=data.get("sandbox"),
            inputs=[(name, int(rows)) for name, rows in data.get("inputs", [])],
            outputs=[(table, int(rows), list(columns)) for table, rows, columns in data.get("outputs", [])],
            record=data.get("record"), executed=data.get("executed"), run_id=data.get("run_id"),
        )


# The load's and the policy's lists of problems (project/declare.py), and the line of a YAML entry.
_LISTED = re.compile(r"(\d+) (problem|policy violation)\(s\) in (.+?):\n- ")
_AT_LINE = re.compile(r"^([^:\n]+?\.ya?ml):(\d+): ")
_NOTEBOOK = re.compile(r"^.*?\.ipynb(?: \(instance '[^']*'\))?")
_NO_SUCH_TABLE = re.compile(r"no such table (\S+)")


def unseen_problems(error: str, shown: Sequence[Finding], declarations: Path) -> str:
    """The command's refusal as the form shows it under the findings table (`shown`, check's):
    without the problems the table lists already, each said once; and without the line of
    the declaration the command tried (`declarations.yaml:N` past the file's end), which is
    not in the file: the notebook is not declared yet. '' when nothing is left to say."""
    listed = _LISTED.match(error)
    items = error[listed.end():].split("\n- ") if listed else [error]
    saved = len(declarations.read_text(encoding="utf-8").splitlines()) if declarations.is_file() else 0
    kept = []
    for item in items:
        at = _AT_LINE.match(item)
        if at and Path(at.group(1)).name == declarations.name and int(at.group(2)) > saved:
            item = item[at.end():]
        if already_shown(item, shown):
            continue
        kept.append(_missing_table(item, shown))
    if not kept:
        return ""
    if listed is None:
        return kept[0]
    besides = " besides the findings above" if len(kept) < len(items) else ""
    head = (f"With it declared as the form fills it in, the project has {len(kept)} problem(s){besides}"
            if listed.group(2) == "problem" else f"{len(kept)} policy violation(s) in {listed.group(3)}{besides}")
    return head + ":\n" + "\n".join(f"- {item}" for item in kept)


def already_shown(message: str, shown: Sequence[Finding]) -> bool:
    """Whether `message` (a problem or warning naming the notebook by its path) is one of `shown`."""
    said = {_tail(f.describe("x.ipynb")) for f in shown} | {_tail(f.message) for f in shown if ".ipynb" in f.message}
    return _tail(message.strip()) in said


def _tail(message: str) -> str:
    """What a message says after naming the notebook (its path, and its instance)."""
    named = _NOTEBOOK.match(message)
    return message[named.end():] if named else message


def _missing_table(item: str, shown: Sequence[Finding]) -> str:
    """The policy's "no such table X" when check's warning says it already: why it refuses, not the name again."""
    found = _NO_SUCH_TABLE.search(item)
    if found is None:
        return item
    table = found.group(1)
    said = re.compile(rf"no such table {re.escape(table)}(?![\w.])")
    if not any(f.rule == "no-such-table" and said.search(f.message) for f in shown):
        return item
    return (f"the warehouse has no table {table} (the no-such-table warning above), and the policy cannot place a "
            "table it cannot find: correct the name in that cell, or land the table first")

