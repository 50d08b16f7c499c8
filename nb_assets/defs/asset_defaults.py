"""How a table or report becomes an asset by default: one plain function per attribute.

`NotebookTranslator` calls these; a subclass overrides one `get_*` method and
keeps the rest. Each function takes the same `AssetProps`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dagster as dg

from nb_assets.defs.automation import trigger_condition
from nb_assets.errors import DeclarationError
from nb_assets.project.declaration import DailyPartitions, NotebookAsset
from nb_assets.policy.zones import zone_tags
from nb_assets.sources.model import Source
from nb_assets.spec import NotebookSpec

Role = Literal["table", "report", "source"]
NOTEBOOK_KINDS = frozenset({"notebook", "duckdb"})  # on a Postgres warehouse, postgres for duckdb
SOURCE_GROUP = "sources"


@dataclass(frozen=True)
class AssetProps:
    """One asset to be: a notebook's output table, a report notebook, or a source table.

    `notebook` and `spec` are None for a source table (one no declared notebook writes);
    `table` is None for a report (a notebook without outputs).
    """

    role: Role
    table: str | None
    zones: frozenset[str] = frozenset()
    notebook: NotebookAsset | None = None
    spec: NotebookSpec | None = None
    partitions: DailyPartitions | None = None  # a source table's, when only partitioned notebooks read it
    warehouse_kind: str = "duckdb"  # the warehouse the tables live in: duckdb or postgres
    declared: Source | None = None  # a declared source (files, object store, HTTP, another database), fetched by the host
    # A notebook's inputs that never land: declared sources nobody watches (no poll_s). Read at each run, never
    # waited for: on_inputs_landed counts the others, or the notebook would wait forever, silently.
    never_lands: frozenset[dg.AssetKey] = frozenset()


def default_asset_key(props: AssetProps) -> dg.AssetKey:
    if props.table is not None:
        return dg.AssetKey(props.table.split("."))
    assert props.notebook is not None and props.spec is not None
    return dg.AssetKey([*props.notebook.key_prefix, props.spec.name])


def default_description(props: AssetProps) -> str | None:
    if props.declared is not None:
        return f"Declared source {props.declared.name}: {props.declared.location}, fetched by the host before each run."
    if props.spec is None:
        return f"Source table {props.table} in the warehouse."
    return props.spec.description


def default_owners(props: AssetProps) -> list[str]:
    return list(props.notebook.owners) if props.notebook else []


def default_tags(props: AssetProps) -> dict[str, str]:
    if props.notebook is None:
        return zone_tags(props.zones, None)
    return {**props.notebook.tags, **zone_tags(props.zones, props.notebook.purpose)}


def default_group_name(props: AssetProps) -> str | None:
    return props.notebook.group if props.notebook else SOURCE_GROUP


def default_code_version(props: AssetProps) -> str | None:
    return props.spec.content_hash[:16] if props.spec else None


def default_kinds(props: AssetProps) -> set[str]:
    if props.declared is not None:
        return {props.declared.kind}
    return {"notebook", props.warehouse_kind} if props.spec else {props.warehouse_kind}


def default_automation_condition(props: AssetProps, deps: Sequence[dg.AssetKey]) -> dg.AutomationCondition | None:
    """The declaration's trigger (cron, on_inputs_landed); sources have none."""
    if props.notebook is None:
        return None
    landing = [key for key in deps if key not in props.never_lands]
    if props.notebook.on_inputs_landed and deps and not landing:
        sources = ", ".join(key.to_user_string() for key in deps)
        raise DeclarationError(
            f"{props.notebook.path}: on_inputs_landed waits for its inputs to land, but each ({sources}) is a declared "
            "source nobody watches, which never lands: give one of them poll_s=SECONDS, or use a cron")
    return trigger_condition(props.notebook, landing)


def default_partitions_def(props: AssetProps) -> dg.PartitionsDefinition | None:
    """A source table's daily partitions; a notebook's assets get theirs from their multi-asset."""
    from nb_assets.defs.partitions import daily_partitions_def

    return daily_partitions_def(props.partitions) if props.role == "source" and props.partitions else None


def default_metadata(props: AssetProps) -> dict[str, Any]:
    decl, spec = props.notebook, props.spec
    if props.declared is not None:
        return source_metadata(props.declared)
    if decl is None or spec is None:
        return {}
    metadata: dict[str, Any] = {
        "notebook": dg.MetadataValue.path(spec.path),
        "notebook/role": props.role,
        "notebook/parameters": dg.MetadataValue.json({p.name: p.default for p in spec.parameters}),
        "notebook/inputs": dg.MetadataValue.json({i.name: list(i.tables) for i in spec.inputs}),
        "notebook/columns_read": dg.MetadataValue.json(columns_read(spec)),
        "dagster/code_references": _code_reference(spec.path),
    }
    optional: Mapping[str, Any] = {
        "notebook/scheduled_params": dict(decl.params),
        "notebook/partitions": {"daily_from": decl.partitions.start, "column": decl.partitions.column} if decl.partitions else None,
        "notebook/written_as": {o.table: o.written_as for o in spec.outputs if o.written_as},
        "notebook/allowances": dict(decl.allow),
        "notebook/reclassified": {t: {"zones": list(r.zones), "reason": r.reason} for t, r in decl.reclassify.items()},
    }
    metadata.update({k: dg.MetadataValue.json(v) for k, v in optional.items() if v})
    if decl.instance:
        metadata["notebook/instance"] = dg.MetadataValue.text(decl.instance)
    return metadata


def _code_reference(path: str) -> dg.CodeReferencesMetadataValue:
    """Links the asset to its .ipynb in the UI; the API is beta, the warning is noise for users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.CodeReferencesMetadataValue(code_references=[dg.LocalFileCodeReference(file_path=os.path.abspath(path))])


def columns_read(spec: NotebookSpec) -> dict[str, list[str]]:
    """Which columns of each input table the SQL cells read (best effort, from sqlglot)."""
    read: dict[str, set[str]] = {}
    for sql_input in spec.inputs:
        for table, column in sql_input.columns:
            read.setdefault(table, set()).add(column)
    return {table: sorted(columns) for table, columns in sorted(read.items())}


def source_metadata(source: Source) -> dict[str, Any]:
    """Where a declared source is and what it holds; never a header's value (secrets come from the environment)."""
    metadata: dict[str, Any] = {
        "source/location": dg.MetadataValue.text(source.location),
        "source/format": dg.MetadataValue.text(source.file_format if source.connection is None else "table"),
        "source/zones": dg.MetadataValue.json(sorted(source.zones)),
    }
    if source.url is not None:
        metadata["source/url"] = dg.MetadataValue.url(source.url)
    if source.schema:
        metadata["source/schema"] = dg.MetadataValue.json(dict(source.schema))
    if source.headers:
        metadata["source/headers"] = dg.MetadataValue.json(sorted(source.headers))  # names only
    if source.declared_at:
        metadata["source/declared_at"] = dg.MetadataValue.text(source.declared_at)
    return metadata
