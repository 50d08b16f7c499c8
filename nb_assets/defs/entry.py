"""`nb_assets.notebook_definitions`, the call a project's definitions.py makes.

Importing this module loads no Dagster: a CLI reading the project (`nb-assets
land`, `run --definitions`, `schedule`, `%nb_context`) executes definitions.py
with the call captured (project/definitions_file.py) and never builds. Dagster, loading
the same file, gets the build (defs.build.build_definitions).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nb_assets.project.definitions_file import ProjectDeclarations, capture

if TYPE_CHECKING:
    import dagster as dg


def notebook_definitions(
    notebooks: Sequence[Any],
    *,
    warehouse: str | Path,
    base_dir: str | Path | None = None,
    policy: str | Path | None = None,
    sandbox: str = "auto",
    **options: Any,
) -> dg.Definitions:
    """Records its arguments for a CLI reading the project, else builds the project's
    Dagster definitions (`defs.build.build_definitions`, which documents the options)."""
    declared = ProjectDeclarations(
        list(notebooks), Path(policy) if policy else None, Path(base_dir) if base_dir else Path.cwd(), str(warehouse), sandbox,
        notifications=options.get("notifications"), sources=list(options.get("sources") or ()),
        file_drops=list(options.get("file_drops") or ()), options=dict(options),
    )
    if capture(declared):
        return None  # type: ignore[return-value]  # only the CLI sees this, and it reads the capture
    from nb_assets.defs.build import build_definitions

    return build_definitions(notebooks, warehouse=warehouse, base_dir=base_dir, policy=policy, sandbox=sandbox, **options)
