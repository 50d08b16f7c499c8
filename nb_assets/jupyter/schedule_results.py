"""What the Schedule form reads out of `nb-assets schedule`'s answers, for the author at the form.

- the trials, from the test plan the command wrote (its `## Trial run` section, which is
  worded for the reviewer): what ran, how it went, the rows, where the executed notebook is;
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
    outputs: list[tuple[str, int, str | None]] = field(default_factory=list)  # table → rows written, its columns
    record: str | None = None  # the record folder, relative to the project
    executed: str | None = None  # the executed notebook (or its HTML), relative to the project
    run_id: str | None = None


# The plan's trial lines (cli/schedule_workflow.plan_markdown), as "- " items.
_LABEL = re.compile(r"^\*\*(.+)\*\*$")
_STATUS = re.compile(r"^status: \*\*(\w+)\*\*(?:: (.*))?$")
_DURATION = re.compile(r"^duration: ([\d.]+) s in the (.+) sandbox$")
_INPUT = re.compile(r"^input `(.+)`: (\d+) rows$")
_OUTPUT = re.compile(r"^output `(.+?)`: (\d+) rows(?:; columns: (.*))?$")
_RECORD = re.compile(r"record: `(.+?)`(?: \(executed notebook `(.+?)`\))?, run id `(.+?)`")


def trial_facts(section: str) -> list[TrialFacts]:
    """The trials of a plan's `## Trial run` section; lines it does not know are the reviewer's, skipped."""
    trials: list[TrialFacts] = []
    labelled = False
    for line in (raw[2:] for raw in section.splitlines() if raw.startswith("- ")):
        if m := _LABEL.match(line):
            trials.append(TrialFacts(label=m.group(1)))
            labelled = True
        elif m := _STATUS.match(line):
            if not labelled or not trials:
                trials.append(TrialFacts())
            trials[-1].status, trials[-1].failure = m.group(1), m.group(2)
        elif not trials:
            continue
        elif m := _DURATION.match(line):
            trials[-1].duration_s, trials[-1].sandbox = float(m.group(1)), m.group(2)
        elif m := _INPUT.match(line):
            trials[-1].inputs.append((m.group(1), int(m.group(2))))
        elif m := _OUTPUT.match(line):
            trials[-1].outputs.append((m.group(1), int(m.group(2)), m.group(3)))
        elif m := _RECORD.search(line):
            trials[-1].record, trials[-1].executed, trials[-1].run_id = m.group(1), m.group(2), m.group(3)
    return trials


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

