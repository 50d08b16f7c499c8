"""What a user writes in definitions.py for one notebook: a small typed object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb_assets.sandbox import SandboxKind, SandboxLimits


@dataclass(frozen=True)
class Reclassify:
    """Give an output other zones than its inputs' union; the reason is recorded."""

    zones: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class NotebookAsset:
    """One scheduled notebook.

    path: the .ipynb file, relative to the definitions' base folder.
    params: parameter values for scheduled runs (checked against the notebook's
        `parameters` cell; unknown names are an error).
    key_prefix: prefixes the report asset's key (notebooks without outputs);
        output assets are always keyed by their table, `["schema", "table"]`.
    purpose: the policy zone this notebook runs for.
    allow: rule id → written reason, downgrading that static-analysis finding.
    reclassify: output table → new zones and the reason.
    cron: a cron schedule for the notebook's job; None means on demand or sensors.
    """

    path: str | Path
    owners: Sequence[str] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    group: str | None = None
    key_prefix: Sequence[str] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    purpose: str | None = None
    allow: Mapping[str, str] = field(default_factory=dict)
    reclassify: Mapping[str, Reclassify] = field(default_factory=dict)
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    sandbox: SandboxKind = "auto"
    cron: str | None = None
