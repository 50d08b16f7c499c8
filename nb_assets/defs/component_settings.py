"""`nb_assets.NotebookProjectSettings`: what a dg project gives all its notebooks, once, in one defs.yaml.

    type: nb_assets.NotebookProjectSettings
    attributes:
      warehouse: warehouse.duckdb
      policy: policy.yaml
      sandbox: auto
      notifications:
        email: {host: smtp.example.com, port: 587, sender: nb-assets@example.com}
        webhooks: {data-eng: {url_env: DATA_ENG_WEBHOOK_URL}}
      sources:
        - {name: sales_regions, path: sources/sales_regions/, format: csv, zones: [public]}
      file_drops:
        - {table: raw.orders, folder: landing/orders}

The schema is derived (component_schema.py) from `ProjectSettings`, whose nested
fields are the very classes a definitions.py passes to `notebook_definitions`:
`Notifications` with `SmtpChannel`/`WebhookChannel`, `Source` (the keys
`load_sources_yaml` reads), `FileDrop`. Paths are relative to the project's root.
The environment still overrides the deployment-specific three: NB_ASSETS_WAREHOUSE,
NB_ASSETS_POLICY, NB_ASSETS_SANDBOX. Without this component those three come from
the environment or their defaults, and there are no notifications, sources or drops.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import dagster as dg
import pydantic

from nb_assets.defs.component_schema import NOT_ATTRIBUTES, from_model, model_of, rendered
from nb_assets.errors import DeclarationError
from nb_assets.notify.channels import Notifications, SmtpChannel, WebhookChannel
from nb_assets.project.declaration import FileDrop
from nb_assets.project.project_settings import ProjectSettings
from nb_assets.sources.model import Source

__all__ = ["NotebookProjectSettings", "ProjectSettings", "project_settings"]


class NotebookProjectSettings(dg.Component, dg.Resolvable):
    """The project-wide settings of nb_assets notebooks: warehouse, policy, sandbox, notifications, sources, file drops.

    At most one per project; every nb_assets.NotebookComponent reads it. The attributes are those of
    nb_assets.project.project_settings.ProjectSettings; paths are relative to the project's root, and
    NB_ASSETS_WAREHOUSE, NB_ASSETS_POLICY and NB_ASSETS_SANDBOX override the first three.
    """

    def __init__(self, settings: ProjectSettings | None = None) -> None:
        # dg builds a component whose attributes are empty (what the scaffold writes) without resolving them.
        self.settings = settings if settings is not None else ProjectSettings()

    @classmethod
    def model(cls) -> type[pydantic.BaseModel]:
        return model_of(ProjectSettings, skip=NOT_ATTRIBUTES, doc=inspect.getdoc(NotebookProjectSettings))

    @classmethod
    def resolve_from_model(cls, context: dg.ResolutionContext, model: pydantic.BaseModel) -> NotebookProjectSettings:
        values_of = rendered(context, model)  # templates rendered, validated again
        tree = context.source_position_tree

        def line(*key: str | int) -> str | None:
            where = tree.lookup([*context.path, *key]) if tree else None
            return f"{where.filename}:{where.start.line}" if where else None

        values: dict[str, Any] = {n: getattr(values_of, n) for n in ("warehouse", "policy", "sandbox")
                                  if n in values_of.model_fields_set}
        if "sources" in values_of.model_fields_set:  # each Source names its own line, as load_sources_yaml's do
            values["sources"] = tuple(_made(line("sources", i), Source, s, declared_at=line("sources", i))
                                      for i, s in enumerate(getattr(values_of, "sources")))
        if "file_drops" in values_of.model_fields_set:
            values["file_drops"] = tuple(_made(line("file_drops", i), FileDrop, d)
                                         for i, d in enumerate(getattr(values_of, "file_drops")))
        if "notifications" in values_of.model_fields_set and values_of.notifications is not None:  # type: ignore[attr-defined]
            values["notifications"] = _notifications(values_of.notifications, line)  # type: ignore[attr-defined]
        return cls(ProjectSettings(**values, declared_at=line()))

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """Nothing of its own: the notebooks' components build with these settings (component_project.py)."""
        return dg.Definitions()

    def __repr__(self) -> str:
        return f"NotebookProjectSettings({self.settings!r})"


def _notifications(model: pydantic.BaseModel, line: Callable[..., str | None]) -> Notifications:
    """Each channel checked at its own line first, so a bad one is named where it is written."""
    email = getattr(model, "email", None)
    if email is not None:
        _made(line("notifications", "email"), SmtpChannel, email)
    for name, hook in (getattr(model, "webhooks", None) or {}).items():
        _made(line("notifications", "webhooks", name), WebhookChannel, hook)
    notifications: Notifications = _made(line("notifications"), Notifications, model)
    return notifications


def _made(where: str | None, cls: type, model: pydantic.BaseModel, **extra: Any) -> Any:
    """The dataclass `cls` from its validated model, a refusal prefixed by the defs.yaml line of what it
    was making (unless the message names it already)."""
    try:
        return from_model(cls, model, **extra)
    except (DeclarationError, TypeError, ValueError) as exc:
        message = str(exc)
        if where and not message.startswith(where.rsplit(":", 1)[0]):
            message = f"{where}: {message}"
        raise DeclarationError(message) from exc


def project_settings(context: dg.ComponentLoadContext) -> ProjectSettings:
    """The project's one NotebookProjectSettings, or the defaults (the environment's) without one."""
    found = context.component_tree.get_all_components(NotebookProjectSettings)
    if len(found) > 1:
        places = ", ".join(s.settings.declared_at or "?" for s in found)
        raise DeclarationError(f"nb_assets.NotebookProjectSettings is declared {len(found)} times ({places}); "
                               "a project has one: merge them into one defs.yaml")
    return found[0].settings if found else ProjectSettings()
