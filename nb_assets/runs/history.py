"""Find and read run records (`run.json` in each record folder), wherever runs keep them.

Dagster runs keep theirs under the instance's storage,
`$DAGSTER_HOME/storage/nb_assets/<notebook>/<run_id>/record/`; `nb-assets run`
under `.nb_assets/runs/<notebook>/<time>/<n>/record/`. Both hold the same
run.json, so the CLI (`runs`, `show`) and `%nb_context` read them alike,
without Dagster or its webserver. Pure: files only, no Dagster, DuckDB or Docker.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nb_assets.locations import nearest_project
from nb_assets.errors import NbAssetsError

CLI_RECORDS = Path(".nb_assets") / "runs"
DAGSTER_RECORDS = Path("storage") / "nb_assets"  # under DAGSTER_HOME
DEMO_DAGSTER_HOME = ".dagster_home"  # where `make dev` points DAGSTER_HOME
DEPLOY_SETTINGS = "deploy.json"  # beside `make deploy`'s DAGSTER_HOME, in its state folder (deploy/config.py)


@dataclass(frozen=True)
class RunRecord:
    """One run as its record tells it."""

    run_id: str
    notebook: str  # the notebook's name (its record folder)
    record_dir: Path
    summary: Mapping[str, Any]  # run.json as written

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "unknown"))

    @property
    def path(self) -> str:
        return str(self.summary.get("notebook", ""))

    @property
    def started_at(self) -> datetime:
        raw = self.summary.get("started_at")
        if isinstance(raw, str):
            try:
                return datetime.fromisoformat(raw)
            except ValueError:
                pass
        return datetime.fromtimestamp((self.record_dir / "run.json").stat().st_mtime, tz=timezone.utc)

    @property
    def duration_s(self) -> float | None:
        value = self.summary.get("duration_s")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.summary.get("parameters") or {})

    @property
    def partition(self) -> str | None:
        return self.summary.get("partition")

    @property
    def notebook_file(self) -> str | None:
        """The file that ran, as table comments name it (writer_identity); None where not recorded."""
        value = self.summary.get("notebook_file")
        return str(value) if value else None

    @property
    def warehouse(self) -> str | None:
        """The warehouse the run read and loaded into (a URL's password redacted); None in older records."""
        value = self.summary.get("warehouse")
        return str(value) if value else None

    @property
    def replaced(self) -> list[dict[str, Any]]:
        """What a --force run replaced that was not its notebook's: table, owner, rows_before."""
        return [dict(r) for r in self.summary.get("replaced") or [] if isinstance(r, Mapping)]

    @property
    def error(self) -> dict[str, Any] | None:
        error = self.summary.get("error")
        return error if isinstance(error, dict) else None

    @property
    def failed_cell(self) -> int | None:
        return (self.error or {}).get("cell")

    @property
    def executed(self) -> Path | None:
        path = self.record_dir / "executed.ipynb"
        return path if path.exists() else None

    @property
    def html(self) -> Path | None:
        path = self.record_dir / "executed.html"
        return path if path.exists() else None

    @property
    def source(self) -> str:
        """"dagster" or "cli": who ran it."""
        folder = self.record_dir.parent.name
        return str(self.summary.get("source") or ("dagster" if len(folder) == 36 and folder.count("-") == 4 else "cli"))

    @property
    def where(self) -> str:
        """Where it ran: "cli", or "dagster dev" / "dagster deploy" when the Dagster instance
        holding the record is `make dev`'s or `make deploy`'s, else "dagster"."""
        if self.source != "dagster":
            return "cli"
        home = next((p.parent.parent for p in self.record_dir.parents if p.name == DAGSTER_RECORDS.name
                     and p.parent.name == DAGSTER_RECORDS.parent.name), None)
        if home is None:
            return "dagster"
        if (home.parent / DEPLOY_SETTINGS).is_file():
            return "dagster deploy"
        return "dagster dev" if home.name == DEMO_DAGSTER_HOME else "dagster"

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "notebook": self.notebook,
            "path": self.path,
            "notebook_file": self.notebook_file,
            "source": self.source,
            "where": self.where,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "duration_s": self.duration_s,
            "parameters": self.parameters,
            "partition": self.partition,
            "warehouse": self.warehouse,
            "forced": bool(self.summary.get("forced")),
            "replaced": self.replaced,
            "failed_cell": self.failed_cell,
            "error": self.error,
            "record": str(self.record_dir),
            "executed_notebook": str(self.executed) if self.executed else None,
            "html": str(self.html) if self.html else None,
        }


def record_roots(project_dir: Path, explicit: Sequence[Path] = (), near: Sequence[Path] = ()) -> list[Path]:
    """Where to look: `explicit` folders if given, else the CLI records of the project
    and of the `near` folders (`nb-assets run` keeps them where it runs), and the
    Dagster instance's (`$DAGSTER_HOME`, else the project's `.dagster_home`)."""
    if explicit:
        return [Path(p) for p in explicit]
    roots = [folder / CLI_RECORDS for folder in (project_dir, *near)]
    if os.environ.get("DAGSTER_HOME"):
        roots.append(Path(os.environ["DAGSTER_HOME"]) / DAGSTER_RECORDS)
    roots.append(project_dir / DEMO_DAGSTER_HOME / DAGSTER_RECORDS)
    unique: dict[Path, None] = {}
    for root in roots:
        unique.setdefault(root.resolve(), None)
    return list(unique)


def project_dir_of(start: Path) -> Path:
    """The nearest folder at or above `start` holding a definitions.py; else `start`."""
    start = start.resolve()
    return nearest_project(start) or (start if start.is_dir() else start.parent)


def find_runs(roots: Iterable[Path], notebook: str | None = None) -> list[RunRecord]:
    """Every readable run record under `roots` (of one notebook, by name), newest first."""
    found: list[RunRecord] = []
    for root in roots:
        if not root.is_dir():
            continue
        folders = [root / notebook] if notebook else [p for p in root.iterdir() if p.is_dir()]
        for folder in folders:
            for summary_file in folder.glob("**/record/run.json"):
                record = _read(summary_file, folder.name)
                if record is not None:
                    found.append(record)
    return sorted(found, key=lambda r: r.started_at, reverse=True)


def find_run(roots: Iterable[Path], run_id: str) -> RunRecord:
    """The run whose id is `run_id` or starts with it (as the Dagster UI shortens ids)."""
    runs = find_runs(roots)
    exact = [r for r in runs if r.run_id == run_id]
    matches = exact or [r for r in runs if r.run_id.startswith(run_id)]
    if not matches:
        raise NbAssetsError(f"no run record with id {run_id!r} under {', '.join(map(str, roots)) or 'nothing'}")
    if len(matches) > 1:
        raise NbAssetsError(f"run id {run_id!r} is ambiguous: {', '.join(r.run_id for r in matches[:5])}")
    return matches[0]


def _read(summary_file: Path, notebook: str) -> RunRecord | None:
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict):
        return None
    record_dir = summary_file.parent
    run_id = summary.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        run_id = record_dir.parent.name  # Dagster's folder is the run id
    return RunRecord(run_id, notebook, record_dir, summary)


def keep_refusal_record(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    """A run refused before anything ran still leaves a run.json saying why, so
    `nb-assets runs` and `%nb_context` list it next to the runs that ran."""
    record = run_dir / "record"
    record.mkdir(parents=True, exist_ok=True)
    path = record / "run.json"
    path.write_text(json.dumps(dict(summary), indent=2, default=str), encoding="utf-8")
    read_only = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    os.chmod(path, read_only)
    os.chmod(record, read_only | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
