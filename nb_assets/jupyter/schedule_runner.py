"""What %nb_schedule's buttons run: `nb-assets schedule` itself, one step at a time.

Every button runs the command (cli/schedule.py) in a child process with the
form's fields as its flags, so the form and the terminal share one code path:
Check is `--until check`, Preview `--until preview --preview-json`, Trial run
the dry run, Schedule `--git` (which writes the declaration and the plan and
commits them on a branch). A declared notebook's steps all run with `--update`
(its declaration becomes what the form says). In a definitions.py project the
command is given `--definitions`; in a dg project it is run from the project's
root without it, and finds the project itself (its declarations are
NotebookComponents). The child's printed steps are the progress line;
its one-line error (what failed and the fix) is what the form shows, never a
traceback. No widgets here, so this is tested without a browser.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nb_assets.jupyter.schedule_results import TrialFacts

Step = Literal["check", "preview", "trial", "schedule"]
STEPS: tuple[Step, ...] = ("check", "preview", "trial", "schedule")
_ERROR = re.compile(r"^nb-assets schedule: ")


@dataclass
class FormFields:
    """What the form holds, as `nb-assets schedule` takes it."""

    owners: Sequence[str] = ()
    trigger: Literal["cron", "inputs", "both"] = "cron"
    cron: str = ""
    timezone: str = ""
    params: Mapping[str, str] = field(default_factory=dict)  # only the ones that differ from the notebook's defaults
    purpose: str = ""
    instances: str = ""  # one per line: NAME K=V K=V
    daily_from: str = ""  # YYYY-MM-DD: daily partitions from that day
    freshness: str = ""  # a maximum age ("26h") or a daily deadline ("by 07:00 Europe/Berlin")
    kept: Sequence[str] = ()  # flags for what a declared notebook sets that the form has no field for

    def flags(self) -> list[str]:
        words = [w for owner in self.owners if owner.strip() for w in ("--owner", owner.strip())]
        if self.trigger in ("cron", "both") and self.cron.strip():
            words += ["--cron", self.cron.strip()]
            words += ["--timezone", self.timezone.strip()] if self.timezone.strip() else []
        words += ["--on-inputs-landed"] if self.trigger in ("inputs", "both") else []
        words += [w for name, value in self.params.items() for w in ("--param", f"{name}={value}")]
        words += ["--purpose", self.purpose.strip()] if self.purpose.strip() else []
        for line in self.instances.splitlines():  # "emea region='North America'": shell words, quotes kept together
            if line.split():
                words += ["--instance", *_words(line)]
        words += ["--daily-from", self.daily_from.strip()] if self.daily_from.strip() else []
        words += ["--freshness", self.freshness.strip()] if self.freshness.strip() else []
        return [*words, *self.kept]


@dataclass
class StepResult:
    step: Step
    ok: bool
    lines: list[str]  # what the command printed, step by step
    error: str | None = None  # the command's own message: what failed and how to fix it
    preview: dict[str, Any] | None = None
    plan: Path | None = None
    branch: str | None = None
    trials: list[TrialFacts] = field(default_factory=list)  # the command's --trials-json
    update: bool = False  # the notebook was declared: the command ran with --update
    declared_in: str | None = None  # the file and line the command wrote the declaration at

    @property
    def past_checks(self) -> bool:
        """Whether the command got past its first step (the checks, after reading its flags)."""
        return self.ok or any(line.startswith("2/6 ") for line in self.lines)


def command_env() -> dict[str, str]:
    """The environment of a command a button runs: the kernel's, but read as the terminal reads the
    project (the kernel's NB_ASSETS_MODE would make it a scheduled run)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("NB_ASSETS_MODE")}


def schedule_argv(notebook: Path, project: Path, step: Step, fields: FormFields, preview_json: Path | None = None,
                  trials_json: Path | None = None, *, dg: bool = False, update: bool = False) -> list[str]:
    """The `nb-assets schedule` command line a button runs. `dg`: `project` is a dg project's root,
    which the command (run there) finds itself; `update`: the notebook is declared."""
    argv = [sys.executable, "-m", "nb_assets.cli", "schedule", str(notebook), *fields.flags()]
    argv += [] if dg else ["--definitions", str(project / "definitions.py")]
    argv += ["--update"] if update else []
    if step in ("check", "preview"):
        argv += ["--until", step]
    if step == "preview" and preview_json is not None:
        argv += ["--preview-json", str(preview_json)]
    if step in ("trial", "schedule") and trials_json is not None:
        argv += ["--trials-json", str(trials_json)]
    if step == "schedule":
        argv += ["--git"]
    return argv


def run_step(notebook: Path, project: Path, step: Step, fields: FormFields,
             progress: Callable[[str], None] = lambda line: None, log_dir: Path | None = None, *,
             dg: bool = False, update: bool = False) -> StepResult:
    """Run one button's command in `project`, calling `progress` with each line it prints."""
    with tempfile.TemporaryDirectory(prefix="nb_schedule_") as tmp:
        preview_json, trials_json = Path(tmp, "preview.json"), Path(tmp, "trials.json")
        argv = schedule_argv(notebook, project, step, fields, preview_json, trials_json, dg=dg, update=update)
        env = command_env()
        proc = subprocess.Popen(argv, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            if line.strip():
                progress(line.strip())
        stderr = proc.stderr.read()
        code = proc.wait()
        preview = json.loads(preview_json.read_text(encoding="utf-8")) if preview_json.is_file() else None
        trials = json.loads(trials_json.read_text(encoding="utf-8")) if trials_json.is_file() else []
    plan = next((Path(m.group(1)) for line in lines if (m := re.match(r"5/6 test plan: (.+)$", line))), None)
    branch = next((m.group(1) for line in lines if (m := re.search(r"committed on a new branch, ([^,]+),", line))), None)
    declared_in = next((m.group(1) for line in lines
                        if (m := re.match(r"6/6 (?:declared|updated its declaration) in (.+)$", line))), None)
    error = None if code == 0 else _message(stderr, code, log_dir, argv, lines)
    return StepResult(step, code == 0, lines, error, preview, plan, branch, [TrialFacts.from_json(t) for t in trials],
                      update, declared_in)


# The form's field for each flag argparse may say is missing: the author sees fields, not flags.
_FIELD_OF_FLAG = {"--owner": "Owners (an e-mail address, or team:NAME)"}
_REQUIRED = re.compile(r"error: the following arguments are required: (.+)$", re.MULTILINE)


def _message(stderr: str, code: int, log_dir: Path | None, argv: list[str], lines: list[str]) -> str:
    """The command's own error (it says what failed and the fix); a crash's traceback goes to a
    log file, and the form names the file instead of showing it."""
    if required := _REQUIRED.search(stderr):
        flags = [flag.strip() for flag in required.group(1).split(",")]
        return "Fill in " + " and ".join(_FIELD_OF_FLAG.get(flag, flag) for flag in flags) + ", then press the button again."
    said = [line for line in stderr.splitlines() if _ERROR.match(line)]
    if said:
        rest = stderr.split(said[0], 1)[1]
        return (_ERROR.sub("", said[0]) + rest).strip()
    if "Traceback (most recent call last)" not in stderr and stderr.strip():
        return stderr.strip()
    where = ""
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = Path(tempfile.mkstemp(prefix="nb_schedule-", suffix=".log", dir=log_dir)[1])
        log.write_text(" ".join(argv) + "\n\n" + "\n".join(lines) + "\n\n" + stderr, encoding="utf-8")
        where = f"; its output is in {log}"
    last = (stderr.strip().splitlines() or [f"exit code {code}"])[-1]
    return f"nb-assets schedule stopped unexpectedly ({last}){where}"


def _words(line: str) -> list[str]:
    """A line's shell words; a line with an unclosed quote splits on spaces (the command then says what is wrong)."""
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()
