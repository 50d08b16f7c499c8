"""File drops: a sensor per `FileDrop` loads each new file in a folder once, and so lands its table.

Each file is identified by its name and content hash, recorded as the
landing's `source` in the same transaction as its rows. The warehouse, not the
sensor's memory, says what was loaded: a file still in the folder after a
crash (loaded, not yet moved) is recognized and moved, not loaded again; a
file that arrives again with the same name and content is refused as a
duplicate. A loaded file moves to `loaded/`, a refused one to `rejected/` next
to a `<name>.reason.txt`; a file that could not be handled (the warehouse was
busy) stays for the next tick, so none is skipped.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dagster as dg

from nb_assets.project.declaration import FileDrop
from nb_assets.errors import LandingError, WarehouseBusyError

SETTLE_S = 2.0  # a file modified more recently may still be being written; rename into the folder to skip the wait
TICK_BUDGET_S = 30.0  # stay well inside Dagster's sensor timeout; the rest waits for the next tick
LOADED, REJECTED = "loaded", "rejected"


@dataclass(frozen=True)
class DropOutcome:
    file: str  # as the declaration names its folder: landing/orders/more.parquet
    status: Literal["loaded", "rejected", "recovered", "skipped"]
    detail: str
    landing_id: int | None = None

    @property
    def message(self) -> str:
        """What happened to the file, in one line: the sensor's log and its tick's reason."""
        if self.status == "loaded":
            return f"loaded {self.detail} from {self.file} (landing {self.landing_id})"
        if self.status == "rejected":
            return f"rejected {self.file} (moved to {REJECTED}/): {self.detail}"
        if self.status == "skipped":
            return f"skipped {self.file} for now: {self.detail}"
        return f"{self.file}: {self.detail}"


def sweep(
    drop: FileDrop,
    folder: Path,
    warehouse: str | Path,
    *,
    settle_s: float = SETTLE_S,
    budget_s: float = TICK_BUDGET_S,
) -> list[DropOutcome]:
    """Load every settled file matching the drop's pattern, oldest first, within the time budget.

    A file left for the next tick is a "skipped" outcome saying why."""
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + budget_s
    outcomes: list[DropOutcome] = []
    left: str | None = None  # why the rest of the files wait for the next tick
    for path in _candidates(folder, drop.pattern):
        shown = _shown(drop, path)
        age = time.time() - path.lstat().st_mtime
        if age < settle_s:
            outcomes.append(DropOutcome(shown, "skipped", f"modified {age:.1f} s ago, it may still be being written; "
                                                           f"tried again once it is {settle_s:g} s old"))
            continue
        if left is not None:
            outcomes.append(DropOutcome(shown, "skipped", left))
            continue
        try:
            outcomes.append(_handle(drop, path, folder, warehouse))
        except WarehouseBusyError as exc:  # another process is writing: every file left here is tried again
            left = f"the warehouse is busy ({exc}); tried again next tick"
            outcomes.append(DropOutcome(shown, "skipped", left))
            continue
        if time.monotonic() > deadline:
            left = f"this tick used its {budget_s:g} s; tried again next tick"
    return outcomes


def _shown(drop: FileDrop, path: Path) -> str:
    return f"{Path(drop.folder).as_posix()}/{path.name}"


def _candidates(folder: Path, pattern: str) -> list[Path]:
    found = [p for p in folder.glob(pattern) if not p.name.startswith(".") and (p.is_symlink() or p.is_file())]
    return sorted(found, key=lambda p: (p.lstat().st_mtime, p.name))


def _handle(drop: FileDrop, path: Path, folder: Path, warehouse: str | Path) -> DropOutcome:
    from nb_assets.warehouse.backends import land_file  # DuckDB loads in the sensor's tick, not with the definitions

    if path.is_symlink():
        return _reject(drop, path, folder, "is a symbolic link; drop the file itself")
    digest = _sha256(path)
    source = f"file-drop {_shown(drop, path)} sha256:{digest}"
    try:
        result = land_file(warehouse, drop.table, path, mode=drop.mode, source=source, once_per_source=True)
    except LandingError as exc:
        return _reject(drop, path, folder, str(exc))
    landing = result.landing
    if not result.already_landed:
        _move(path, folder / LOADED, landing.id)
        rows = f"{landing.rows} row{'' if landing.rows == 1 else 's'}"
        return DropOutcome(_shown(drop, path), "loaded", f"{rows} into {drop.table}", landing.id)
    earlier = folder / LOADED / path.name
    if earlier.is_file() and _sha256(earlier) == digest:
        return _reject(drop, path, folder, f"already loaded: identical to {LOADED}/{path.name} (landing {landing.id}); not loaded again")
    # Loaded by a tick that ended before moving it: finish that tick's work.
    _move(path, folder / LOADED, landing.id)
    return DropOutcome(_shown(drop, path), "recovered",
                       f"had been loaded as landing {landing.id} by a tick that stopped before moving it; moved to {LOADED}/", landing.id)


def _reject(drop: FileDrop, path: Path, folder: Path, reason: str) -> DropOutcome:
    moved = _move(path, folder / REJECTED, int(time.time()))
    moved.with_name(moved.name + ".reason.txt").write_text(reason + "\n")
    return DropOutcome(_shown(drop, path), "rejected", reason)


def _move(path: Path, into: Path, tag: int) -> Path:
    """Move keeping the name; if taken, insert `tag` before the suffixes (orders.7.parquet)."""
    into.mkdir(exist_ok=True)
    target = into / path.name
    if target.exists() or target.is_symlink():
        stem, dot, rest = path.name.partition(".")
        target = into / f"{stem}.{tag}{dot}{rest}"
    shutil.move(str(path), str(target))
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_drop_sensor(
    drop: FileDrop,
    *,
    name: str,
    base_dir: Path,
    warehouse: str | Path,
    interval_s: int,
    status: dg.DefaultSensorStatus,
) -> dg.SensorDefinition:
    folder = Path(drop.folder) if Path(drop.folder).is_absolute() else base_dir / drop.folder

    @dg.sensor(
        name=name,
        minimum_interval_seconds=interval_s,
        default_status=status,
        description=f"Loads each new {drop.pattern} file in {folder} into {drop.table} once ({drop.mode}).",
    )
    def _file_drop(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        outcomes = sweep(drop, folder, warehouse)
        for outcome in outcomes:
            log = context.log.warning if outcome.status == "rejected" else context.log.info
            log(outcome.message)
        # Dagster calls every tick that requests no run "skipped"; the reason says what this one did.
        # (The landing sensor reports each load; the notebooks' conditions start the runs.)
        return dg.SkipReason(summarize(outcomes) or f"no new files in {folder}")

    return _file_drop


def summarize(outcomes: Sequence[DropOutcome]) -> str:
    return "; ".join(o.message for o in outcomes)
