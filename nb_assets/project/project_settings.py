"""What a dg project gives all its notebooks once (warehouse, policy, sandbox, notifications, sources,
file drops), as `nb_assets.NotebookProjectSettings` declares them in a defs.yaml.

One model for both readers: the component (defs/component_settings.py) derives its YAML schema from
`ProjectSettings` and builds it with Dagster; `nb-assets schedule` reads the three the CLI needs
(warehouse, policy, sandbox) from the same defs.yaml as plain YAML (project/component_files.py),
without Dagster. The environment overrides those three, as a deployment sets them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from nb_assets.locations import is_postgres_url
from nb_assets.notify.channels import Notifications
from nb_assets.project.declaration import FileDrop
from nb_assets.sandbox.base import SandboxKind
from nb_assets.sources.model import Source

WAREHOUSE_ENV, POLICY_ENV, SANDBOX_ENV = "NB_ASSETS_WAREHOUSE", "NB_ASSETS_POLICY", "NB_ASSETS_SANDBOX"


@dataclasses.dataclass(frozen=True)
class ProjectSettings:
    """The project-level settings of a dg project's notebooks.

    warehouse: a DuckDB file (relative to the project's root) or a postgresql:// URL; default
        warehouse.duckdb in the project's root. NB_ASSETS_WAREHOUSE overrides it.
    policy: the policy file (docs/policy-zones.md), relative to the project's root; default policy.yaml
        there, when there is one. NB_ASSETS_POLICY overrides it.
    sandbox: auto (Docker when an engine answers, else local), docker or local. NB_ASSETS_SANDBOX overrides it.
    notifications: who hears about failed runs and stale notebooks, and how (docs/notifications.md).
    sources: the declared sources notebooks read (docs/sources.md), with the keys of declarations.yaml's sources:.
    file_drops: folders (relative to the project's root) whose files load into a source table.
    """

    warehouse: str | None = None
    policy: str | None = None
    sandbox: SandboxKind | None = None
    notifications: Notifications | None = None
    sources: Sequence[Source] = ()
    file_drops: Sequence[FileDrop] = ()
    declared_at: str | None = None  # the defs.yaml declaring them, for errors

    def warehouse_at(self, root: Path) -> str:
        named = os.environ.get(WAREHOUSE_ENV) or self.warehouse
        if not named:
            return str(root / "warehouse.duckdb")
        return named if is_postgres_url(named) else str(root / named)  # joining an absolute path yields it

    def policy_at(self, root: Path) -> Path | None:
        named = os.environ.get(POLICY_ENV) or self.policy
        if named:
            return root / named
        default = root / "policy.yaml"
        return default if default.is_file() else None

    def sandbox_kind(self) -> str:
        return os.environ.get(SANDBOX_ENV) or self.sandbox or "auto"
