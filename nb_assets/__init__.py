"""nb_assets: scheduled Jupyter notebooks as Dagster software-defined assets.

The public surface is small. Names load lazily so that `import
nb_assets.notebook` (inside a notebook) does not pull in Dagster.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "NotebookAsset",
    "DailyPartitions",
    "FileDrop",
    "Reclassify",
    "SandboxLimits",
    "NotebookTranslator",
    "NotebookResource",
    "build_notebook_assets",
    "notebook_definitions",
    "parse_notebook",
    "load_declarations_yaml",
    "Notifications",
    "SmtpChannel",
    "WebhookChannel",
]

_WHERE = {
    "NotebookAsset": "nb_assets.declaration",
    "DailyPartitions": "nb_assets.declaration",
    "FileDrop": "nb_assets.declaration",
    "Reclassify": "nb_assets.declaration",
    "SandboxLimits": "nb_assets.sandbox",
    "NotebookTranslator": "nb_assets.translator",
    "NotebookResource": "nb_assets.resource",
    "build_notebook_assets": "nb_assets.build_assets",
    "notebook_definitions": "nb_assets.defs.entry",  # builds lazily: reading a project needs no Dagster
    "parse_notebook": "nb_assets.notebook_parser",
    "load_declarations_yaml": "nb_assets.declarations_yaml",
    "Notifications": "nb_assets.notify",
    "SmtpChannel": "nb_assets.notify",
    "WebhookChannel": "nb_assets.notify",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'nb_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
