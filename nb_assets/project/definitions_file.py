"""Read a project's declarations from its definitions file, without building it.

The CLI needs what `notebook_definitions(...)` was given (the notebooks, the
policy, the warehouse), not the Dagster graph it builds. Building would also
apply the policy, and a project that refuses to load is exactly the one
`nb-assets lineage` must still explain. So the file is executed with the call
captured: `notebook_definitions` (defs/entry.py) records its arguments and
builds nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb_assets.errors import DeclarationError


@dataclass(frozen=True)
class ProjectDeclarations:
    notebooks: Sequence[Any]  # NotebookAsset; typed loosely so this module imports nothing heavy
    policy: Path | None
    base_dir: Path
    warehouse: str | None = None
    sandbox: str = "auto"
    notifications: Any = None  # nb_assets.notify.channels.Notifications
    sources: Sequence[Any] = ()  # nb_assets.sources.Source: the project's source registry
    file_drops: Sequence[Any] = ()  # nb_assets.FileDrop
    # The call's other keyword arguments, as given (translator, sensor_interval_s, read_dsn, ...):
    # `migrate-to-components` tells which a component's settings can carry.
    options: Mapping[str, Any] = field(default_factory=dict)


_captured: ContextVar[list[ProjectDeclarations] | None] = ContextVar("nb_assets_captured", default=None)


def capture(declarations: ProjectDeclarations) -> bool:
    """Called by notebook_definitions (defs/entry.py): True when a loader only wants the arguments."""
    sink = _captured.get()
    if sink is None:
        return False
    sink.append(declarations)
    return True


@contextmanager
def _capturing() -> Iterator[list[ProjectDeclarations]]:
    sink: list[ProjectDeclarations] = []
    token = _captured.set(sink)
    try:
        yield sink
    finally:
        _captured.reset(token)


def load_declarations(path: Path) -> ProjectDeclarations:
    """What the definitions file declares: its notebook_definitions(...) call, else its
    NOTEBOOKS, POLICY, BASE_DIR, WAREHOUSE, SOURCES and FILE_DROPS globals."""
    if not path.exists():
        raise DeclarationError(f"definitions file not found: {path} (pass --definitions)")
    module_spec = importlib.util.spec_from_file_location("nb_assets_user_definitions", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    with _capturing() as calls:
        module_spec.loader.exec_module(module)
    if len(calls) > 1:
        raise DeclarationError(f"{path} calls notebook_definitions {len(calls)} times; the CLI reads one project per file")
    if calls:
        return calls[0]
    notebooks = getattr(module, "NOTEBOOKS", None)
    if notebooks is None:
        raise DeclarationError(f"{path} neither calls notebook_definitions(...) nor has a NOTEBOOKS list")
    policy = getattr(module, "POLICY", None)
    base_dir = Path(getattr(module, "BASE_DIR", path.resolve().parent))
    warehouse = getattr(module, "WAREHOUSE", None)
    return ProjectDeclarations(list(notebooks), Path(policy) if policy else None, base_dir, str(warehouse) if warehouse else None,
                               sources=list(getattr(module, "SOURCES", ())), file_drops=list(getattr(module, "FILE_DROPS", ())))

