"""The delivery ledger: who must hear about which failed run, and who already has.

One JSON file per failed run, under `pending/` until every delivery is
settled, then moved to `done/` (kept: it says who was told what, and when).
Every change is written to a temporary file, flushed to disk and renamed
into place, so a crash leaves either the old state or the new one.

This is what makes notification exactly-once per (run, notebook, recipient)
across restarts: a run enters the ledger before the sensor's cursor moves
past it, and each delivery is marked sent right after the channel accepts it.
The only window left is a crash between a channel accepting a message and
the mark being written: that one message may be sent twice, never lost.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nb_assets.notify import freshness_notice
from nb_assets.notify.freshness_notice import FreshnessNotice
from nb_assets.notify.notice import FailureNotice

PENDING, SENT = "pending", "sent"
SETTLED = (SENT, "rejected", "no-channel", "off", "abandoned")


@dataclass
class LedgerEntry:
    """One failed run's notices and deliveries, as stored."""

    path: Path
    data: dict[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.data["run_id"])

    @property
    def failed_at(self) -> float:
        return float(self.data.get("failed_at", 0.0))

    def notices(self) -> dict[str, FailureNotice | FreshnessNotice]:
        return {n["notebook"]: FreshnessNotice.from_json(n) if n.get("kind") == freshness_notice.KIND else FailureNotice.from_json(n)
                for n in self.data["notices"]}

    def deliveries(self) -> list[dict[str, Any]]:
        return list(self.data["deliveries"])

    def open_deliveries(self) -> list[dict[str, Any]]:
        return [d for d in self.data["deliveries"] if d["status"] == PENDING]


class NoticeLedger:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.pending_dir = self.folder / "pending"
        self.done_dir = self.folder / "done"

    def _name(self, run_id: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id) + ".json"

    def knows(self, run_id: str) -> bool:
        name = self._name(run_id)
        return (self.pending_dir / name).exists() or (self.done_dir / name).exists()

    def add(self, run_id: str, notices: Sequence[FailureNotice | FreshnessNotice], failed_at: float) -> bool:
        """Queue one delivery per (notebook, owner); False if the run was already queued."""
        if self.knows(run_id):
            return False
        deliveries = [
            {"notebook": n.notebook, "recipient": owner, "status": PENDING, "attempts": 0, "error": None, "at": None}
            for n in notices for owner in dict.fromkeys(n.owners)
        ]
        data = {"run_id": run_id, "failed_at": failed_at, "queued_at": time.time(),
                "notices": [n.to_json() for n in notices], "deliveries": deliveries}
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.pending_dir / self._name(run_id), data)
        return True

    def pending(self) -> list[LedgerEntry]:
        """Runs with deliveries still to make, oldest failure first."""
        if not self.pending_dir.is_dir():
            return []
        entries = []
        for path in self.pending_dir.glob("*.json"):
            try:
                entries.append(LedgerEntry(path, json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError):
                continue  # a half-written temp file is never named *.json; anything else is not ours
        return sorted(entries, key=lambda e: e.failed_at)

    def settle(self, entry: LedgerEntry, delivery: dict[str, Any], status: str, error: str | None = None) -> None:
        """Record one attempt's outcome at once, before the next message is sent."""
        delivery["attempts"] += 1
        delivery["status"], delivery["error"], delivery["at"] = status, error, time.time()
        _write_atomically(entry.path, entry.data)

    def close_if_settled(self, entry: LedgerEntry) -> bool:
        if entry.open_deliveries():
            return False
        self.done_dir.mkdir(parents=True, exist_ok=True)
        os.replace(entry.path, self.done_dir / entry.path.name)
        return True

    def entry(self, run_id: str) -> LedgerEntry | None:
        for folder in (self.pending_dir, self.done_dir):
            path = folder / self._name(run_id)
            if path.exists():
                return LedgerEntry(path, json.loads(path.read_text(encoding="utf-8")))
        return None


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)
