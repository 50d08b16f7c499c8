"""Read a project's declarations from its definitions file, without Dagster running it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from nb_assets.errors import DeclarationError


def load_declarations(path: Path) -> tuple[list[Any], Path | None, Path]:
    """Import the definitions file and read its NOTEBOOKS, POLICY and BASE_DIR."""
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
    return list(notebooks), Path(policy) if policy else None, base_dir
