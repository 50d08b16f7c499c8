"""nb_assets: scheduled Jupyter notebooks as Dagster software-defined assets.

The public surface is small. Names load lazily so that `import
nb_assets.notebook` (inside a notebook) does not pull in Dagster.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; at run time _WHERE loads each name on first use
    from nb_assets.analysis.parser import parse_notebook
    from nb_assets.defs.build import build_notebook_assets
    from nb_assets.defs.component import NotebookComponent
    from nb_assets.defs.component_settings import NotebookProjectSettings
    from nb_assets.defs.entry import notebook_definitions
    from nb_assets.defs.resource import NotebookResource
    from nb_assets.defs.translator import NotebookTranslator
    from nb_assets.notify.channels import Notifications, SmtpChannel, WebhookChannel
    from nb_assets.project.declaration import DailyPartitions, FileDrop, NotebookAsset, Reclassify
    from nb_assets.project.declarations_yaml import load_declarations_yaml
    from nb_assets.sandbox.base import SandboxLimits
    from nb_assets.inbox.checks import accepted_values, freshness_column, not_null, relationships, row_count, sql_check, unique
    from nb_assets.sources.model import Source
    from nb_assets.project.sources import load_sources_yaml

__all__ = [
    "NotebookAsset",
    "DailyPartitions",
    "FileDrop",
    "Reclassify",
    "SandboxLimits",
    "NotebookTranslator",
    "NotebookResource",
    "NotebookComponent",
    "NotebookProjectSettings",
    "build_notebook_assets",
    "notebook_definitions",
    "parse_notebook",
    "load_declarations_yaml",
    "Notifications",
    "SmtpChannel",
    "WebhookChannel",
    "not_null",
    "unique",
    "accepted_values",
    "row_count",
    "relationships",
    "freshness_column",
    "sql_check",
    "Source",
    "load_sources_yaml",
]

_WHERE = {
    "NotebookAsset": "nb_assets.project.declaration",
    "DailyPartitions": "nb_assets.project.declaration",
    "FileDrop": "nb_assets.project.declaration",
    "Reclassify": "nb_assets.project.declaration",
    "SandboxLimits": "nb_assets.sandbox.base",
    "NotebookTranslator": "nb_assets.defs.translator",
    "NotebookResource": "nb_assets.defs.resource",
    "NotebookComponent": "nb_assets.defs.component",  # a dg project's defs.yaml (docs/components.md)
    "NotebookProjectSettings": "nb_assets.defs.component_settings",  # its project-wide settings, once
    "build_notebook_assets": "nb_assets.defs.build",
    "notebook_definitions": "nb_assets.defs.entry",  # builds lazily: reading a project needs no Dagster
    "parse_notebook": "nb_assets.analysis.parser",
    "load_declarations_yaml": "nb_assets.project.declarations_yaml",
    "Notifications": "nb_assets.notify.channels",
    "SmtpChannel": "nb_assets.notify.channels",
    "WebhookChannel": "nb_assets.notify.channels",
    # Output checks (docs/checks.md). `sql` is `sql_check` here: nb_assets.sql is the SQL analysis package.
    "not_null": "nb_assets.inbox.checks",
    "unique": "nb_assets.inbox.checks",
    "accepted_values": "nb_assets.inbox.checks",
    "row_count": "nb_assets.inbox.checks",
    "relationships": "nb_assets.inbox.checks",
    "freshness_column": "nb_assets.inbox.checks",
    "sql_check": "nb_assets.inbox.checks",
    "Source": "nb_assets.sources.model",
    "load_sources_yaml": "nb_assets.project.sources",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'nb_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
