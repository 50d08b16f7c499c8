"""A definitions.py project's settings as the `nb_assets.NotebookProjectSettings` defs.yaml of a dg project.

`nb-assets migrate-to-components` carries what `notebook_definitions(...)` was given besides the
notebooks (the captured call, project/definitions_file.py) into the attributes of the one settings
component: the warehouse, the policy, the sandbox, the notifications, the sources and the file drops.
The nested values are the very dataclasses the component's schema is derived from (ProjectSettings),
so each is written field by field, leaving out what equals the dataclass's default. Paths change
base: definitions.py reads sources and drops from its base_dir, the warehouse and policy from the
folder it runs in; a component reads all from the project's root. Secrets stay out: the channels
name them by environment variable already, and a warehouse URL holding a password is not written.
No Dagster here: the CLI writes this, `dg check defs` reads it back through the component.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from nb_assets.errors import DeclarationError
from nb_assets.locations import is_postgres_url
from nb_assets.project.definitions_file import ProjectDeclarations
from nb_assets.project.project_settings import POLICY_ENV, SANDBOX_ENV, WAREHOUSE_ENV
from nb_assets.sql.source_calls import is_absolute, is_url

SETTINGS_TYPE = "nb_assets.NotebookProjectSettings"
SETTINGS_TYPES = {SETTINGS_TYPE, "nb_assets.defs.component_settings.NotebookProjectSettings"}
SETTINGS_FOLDER = "nb_assets_project"  # under the defs folder: <defs>/nb_assets_project/defs.yaml
# Set by a loader, never written (the component's schema skips them too).
_NOT_WRITTEN = frozenset({"declared_at", "instance"})


@dataclasses.dataclass(frozen=True)
class CarriedSettings:
    """The settings component's attributes, and what the user should know about what was not written."""

    attributes: dict[str, Any]
    notes: list[str]


def carried_settings(declared: ProjectDeclarations, root: Path, environ: Mapping[str, str]) -> CarriedSettings:
    """What `declared` (a captured notebook_definitions call) gives the project at `root`, as attributes.

    A warehouse, policy or sandbox equal to its NB_ASSETS_* variable in `environ` came from the
    environment (the demo reads them so): the components read that variable too, so it is not written,
    lest one machine's value be fixed in the project."""
    attributes: dict[str, Any] = {}
    notes: list[str] = []
    warehouse = declared.warehouse
    if warehouse and environ.get(WAREHOUSE_ENV) == warehouse:
        notes.append(f"the warehouse came from {WAREHOUSE_ENV}, which the components read too: not written")
    elif warehouse and is_postgres_url(warehouse):
        if urlsplit(warehouse).password:
            notes.append(f"the warehouse URL holds a password, which no file should: not written; set {WAREHOUSE_ENV} "
                         "where the project runs")
        else:
            attributes["warehouse"] = warehouse
    elif warehouse:
        attributes["warehouse"] = placed(Path(warehouse).resolve(), root)
    policy = declared.policy
    if policy is not None and environ.get(POLICY_ENV) == str(policy):
        notes.append(f"the policy came from {POLICY_ENV}, which the components read too: not written")
    elif policy is not None:
        attributes["policy"] = placed(Path(policy).resolve(), root)
    elif (root / "policy.yaml").is_file():
        notes.append(f"the definitions name no policy, but the components read {root / 'policy.yaml'} when there is one")
    if declared.sandbox and declared.sandbox != "auto" and environ.get(SANDBOX_ENV) == declared.sandbox:
        notes.append(f"the sandbox came from {SANDBOX_ENV}, which the components read too: not written")
    elif declared.sandbox and declared.sandbox != "auto":
        attributes["sandbox"] = declared.sandbox
    base_dir = Path(declared.base_dir).resolve()
    if declared.notifications is not None:
        attributes["notifications"] = plain(declared.notifications)
    if declared.sources:
        attributes["sources"] = [plain(dataclasses.replace(s, path=rebased(s.path, base_dir, root)))
                                 if getattr(s, "path", None) else plain(s) for s in declared.sources]
    if declared.file_drops:
        attributes["file_drops"] = [plain(dataclasses.replace(d, folder=rebased(str(d.folder), base_dir, root)))
                                    for d in declared.file_drops]
    secrets = secrets_in({k: v for k, v in attributes.items() if k in ("notifications", "sources", "file_drops")}, environ)
    if secrets:
        raise DeclarationError(
            "the settings would write what looks like a secret into a file, so nothing is written:\n  "
            + "\n  ".join(secrets) + "\nin definitions.py, name a secret by its variable instead (url_env=, "
            "password_env=, headers={'NAME': {'env': 'VAR'}}), which the YAML then names too")
    return CarriedSettings(attributes, notes)


# Variables whose values are secrets by their name: such a value must never be written into a file.
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|KEY|WEBHOOK|CREDENTIAL|AUTH|DSN|URL", re.I)


def secrets_in(data: Any, environ: Mapping[str, str], where: str = "") -> list[str]:
    """Where `data` (plain YAML data) holds a URL with a password, or the value of an environment
    variable named like a secret (definitions.py read it with os.environ): each as `place: why`."""
    if isinstance(data, Mapping):
        return [found for k, v in data.items() for found in secrets_in(v, environ, f"{where}.{k}" if where else str(k))]
    if isinstance(data, list):
        return [found for i, v in enumerate(data) for found in secrets_in(v, environ, f"{where}[{i}]")]
    if not isinstance(data, str):
        return []
    found = []
    if is_url(data) and urlsplit(data).password:
        found.append(f"{where}: a URL with a password")
    found += [f"{where}: the value of ${name}" for name, value in sorted(environ.items())
              if len(value) >= 8 and _SECRET_NAME.search(name) and value in data]
    return found


def settings_yaml(attributes: Mapping[str, Any], origin: Path) -> str:
    """The settings component's defs.yaml: its type, a comment naming where it came from, the attributes."""
    body = yaml.safe_dump(dict(attributes), sort_keys=False, default_flow_style=None, allow_unicode=True, width=100)
    return (f"# The project's settings, as {origin.name} gave them to notebook_definitions(...)\n"
            "# (written by `nb-assets migrate-to-components`).\n"
            f"type: {SETTINGS_TYPE}\n\nattributes:\n" + "".join(f"  {line}" for line in body.splitlines(keepends=True)))


def declared_settings(defs_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Each NotebookProjectSettings already under `defs_dir`: its defs.yaml and its attributes."""
    found: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(defs_dir.rglob("defs.yaml")) if defs_dir.is_dir() else ():
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as exc:
            raise DeclarationError(f"{path}: malformed YAML: {exc}") from exc
        found += [(path, d.get("attributes") or {}) for d in documents
                  if isinstance(d, dict) and d.get("type") in SETTINGS_TYPES]
    return found


def placed(path: Path, root: Path) -> str:
    """An absolute path as a settings attribute: relative to `root` when inside it, else absolute."""
    root = root.resolve()
    return Path(os.path.relpath(path, root)).as_posix() if path.is_relative_to(root) else path.as_posix()


def rebased(location: str, base_dir: Path, root: Path) -> str:
    """A source's path or a drop's folder, named from `base_dir`, named from `root`; a URL stays as it is."""
    if is_url(location):
        return location
    full = Path(os.path.normpath(location if is_absolute(location) else base_dir / location))
    moved = placed(full, root)
    return f"{moved}/" if location.endswith("/") and not moved.endswith("/") else moved


def plain(value: Any) -> Any:
    """`value` as plain YAML data: a dataclass as its fields that differ from their defaults (every
    required one), sequences as lists, paths as text. Anything else (a callable, an object) is refused."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            if f.name in _NOT_WRITTEN or not f.compare:
                continue
            written = plain(getattr(value, f.name))
            if f.default is not dataclasses.MISSING and written == plain(f.default):
                continue
            if f.default_factory is not dataclasses.MISSING and written == plain(f.default_factory()):
                continue
            fields[f.name] = written
        return fields
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in (sorted(value) if isinstance(value, set | frozenset) else value)]
    raise DeclarationError(f"{type(value).__name__} {value!r} has no YAML form a settings component reads")


def settings_declared(path: Path, attributes: Mapping[str, Any]) -> tuple[Any, list[Any], list[Any]]:
    """The notifications, sources and file drops a NotebookProjectSettings in `path` declares, as the
    classes a definitions.py passes (what `nb-assets schedule` checks a dg project's notebook against;
    the component builds the same from its schema). A value the class refuses names the file."""
    from nb_assets.notify.channels import Notifications, SmtpChannel, WebhookChannel
    from nb_assets.project.declaration import FileDrop
    from nb_assets.project.sources import sources_from_node

    try:
        given = dict(attributes.get("notifications") or {})
        notifications = None
        if given:
            email = given.pop("email", None)
            hooks = given.pop("webhooks", None) or {}
            notifications = Notifications(email=SmtpChannel(**email) if email else None,
                                          webhooks={n: WebhookChannel(**h) for n, h in hooks.items()}, **given)
        drops = [FileDrop(**d) for d in attributes.get("file_drops") or ()]
    except (TypeError, ValueError, DeclarationError) as exc:
        raise DeclarationError(f"{path}: nb_assets.NotebookProjectSettings: {exc}") from exc
    node = _sources_node(path)
    return notifications, sources_from_node(node, path) if node is not None else [], drops


def _sources_node(path: Path) -> yaml.Node | None:
    """The `sources:` node of the settings component in `path`, with its lines (errors name them)."""
    for document in yaml.compose_all(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader):
        keys = {k.value: v for k, v in document.value} if isinstance(document, yaml.MappingNode) else {}
        kind, attributes = keys.get("type"), keys.get("attributes")
        if isinstance(kind, yaml.ScalarNode) and kind.value in SETTINGS_TYPES and isinstance(attributes, yaml.MappingNode):
            return next((v for k, v in attributes.value if k.value == "sources"), None)
    return None
