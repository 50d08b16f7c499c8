"""Read a project's declarations from its definitions file, without Dagster running it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, NamedTuple

from nb_assets.errors import DeclarationError


class Declarations(NamedTuple):
    notebooks: list[Any]
    policy: Path | None
    base_dir: Path
    warehouse: Path | None  # WAREHOUSE, where views and macros are seen through


def load_declarations(path: Path) -> Declarations:
    """Import the definitions file and read its NOTEBOOKS, POLICY, BASE_DIR and WAREHOUSE."""
    if not path.exists():
        raise DeclarationError(f"definitions file not found: {path} (pass --definitions)")
    module_spec = importlib.util.spec_from_file_location("nb_assets_user_definitions", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    notebooks = getattr(module, "NOTEBOOKS", None)
    if notebooks is None:
        raise DeclarationError(f"{path} has no NOTEBOOKS list of NotebookAsset declarations")
    policy = getattr(module, "POLICY", None)
    base_dir = Path(getattr(module, "BASE_DIR", path.resolve().parent))
    warehouse = getattr(module, "WAREHOUSE", None)
    return Declarations(list(notebooks), Path(policy) if policy else None, base_dir, Path(warehouse) if warehouse else None)
