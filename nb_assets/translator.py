"""NotebookSpec + declaration → Dagster AssetSpecs (the one place keys are made)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import dagster as dg

from nb_assets.declaration import NotebookAsset
from nb_assets.policy import zone_tags
from nb_assets.spec import NotebookSpec

KINDS = {"notebook", "duckdb"}


class NotebookTranslator:
    """Override a method to change how notebooks and tables map onto assets."""

    def table_key(self, table: str) -> dg.AssetKey:
        return dg.AssetKey(table.split("."))

    def report_key(self, decl: NotebookAsset, spec: NotebookSpec) -> dg.AssetKey:
        return dg.AssetKey([*decl.key_prefix, spec.name])

    def group_name(self, decl: NotebookAsset, spec: NotebookSpec) -> str | None:
        return decl.group

    def asset_specs(
        self,
        decl: NotebookAsset,
        spec: NotebookSpec,
        labels: Mapping[str, frozenset[str]] | None = None,
    ) -> list[dg.AssetSpec]:
        """One spec per declared output, or a single report asset.

        Deps are the tables the notebook reads, seen through views and macros:
        data lands in tables, so that is what a run must wait for and follow."""
        labels = labels or {}
        deps = [self.table_key(t) for t in spec.input_tables]
        common = dict(
            deps=deps,
            description=spec.description,
            owners=list(decl.owners),
            kinds=KINDS,
            group_name=self.group_name(decl, spec),
            code_version=spec.content_hash[:16],
        )
        if not spec.outputs:
            # named_relations: a view's labels include zones written on the view itself
            input_zones = frozenset().union(*(labels.get(t, frozenset()) for t in spec.named_relations))
            return [dg.AssetSpec(
                self.report_key(decl, spec),
                tags=self._tags(decl, input_zones),
                metadata=self._metadata(decl, spec, "report"),
                **common,
            )]
        return [
            dg.AssetSpec(
                self.table_key(table),
                tags=self._tags(decl, labels.get(table, frozenset())),
                metadata=self._metadata(decl, spec, "table"),
                **common,
            )
            for table in spec.output_tables
        ]

    def source_spec(self, table: str, labels: frozenset[str] = frozenset()) -> dg.AssetSpec:
        """A table no declared notebook writes: an external asset, for lineage."""
        return dg.AssetSpec(
            self.table_key(table),
            description=f"Source table {table} in the warehouse.",
            kinds={"duckdb"},
            group_name="sources",
            tags=zone_tags(labels, None),
        )

    def _tags(self, decl: NotebookAsset, zones: Iterable[str]) -> dict[str, str]:
        return {**decl.tags, **zone_tags(zones, decl.purpose)}

    def _metadata(self, decl: NotebookAsset, spec: NotebookSpec, role: str) -> dict[str, object]:
        metadata: dict[str, object] = {
            "notebook": dg.MetadataValue.path(spec.path),
            "notebook/role": role,
            "notebook/parameters": dg.MetadataValue.json({p.name: p.default for p in spec.parameters}),
            "notebook/inputs": dg.MetadataValue.json({i.name: list(i.tables) for i in spec.inputs}),
            "notebook/columns_read": dg.MetadataValue.json(columns_read(spec)),
            "dagster/code_references": _code_reference(spec.path),
        }
        if spec.seen_through is not None and spec.seen_through.through:
            metadata["notebook/read_through"] = dg.MetadataValue.json({n: list(r) for n, r in spec.seen_through.through})
        if decl.params:
            metadata["notebook/scheduled_params"] = dg.MetadataValue.json(dict(decl.params))
        if decl.allow:
            metadata["notebook/allowances"] = dg.MetadataValue.json(dict(decl.allow))
        if decl.reclassify:
            metadata["notebook/reclassified"] = dg.MetadataValue.json(
                {t: {"zones": list(r.zones), "reason": r.reason} for t, r in decl.reclassify.items()}
            )
        return metadata


def _code_reference(path: str) -> dg.CodeReferencesMetadataValue:
    """Links the asset to its .ipynb in the UI; the API is beta, the warning is noise for users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.CodeReferencesMetadataValue(code_references=[dg.LocalFileCodeReference(file_path=str(Path(path).resolve()))])


def columns_read(spec: NotebookSpec) -> dict[str, list[str]]:
    """Which columns of each input table the SQL cells read (best effort, from sqlglot)."""
    read: dict[str, set[str]] = {}
    for sql_input in spec.inputs:
        for table, column in sql_input.columns:
            read.setdefault(table, set()).add(column)
    return {table: sorted(columns) for table, columns in sorted(read.items())}
