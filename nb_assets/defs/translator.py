"""AssetProps → Dagster AssetSpec: the one place asset attributes are decided.

As in dagster-dbt, each attribute has its own public `get_*` method whose
default is a plain function in `defs.asset_defaults`; override one and keep the
rest. Dependencies are not the translator's: the builder wires each input
table to the key the translator gave that table, so keys cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

from nb_assets.defs import asset_defaults
from nb_assets.defs.asset_defaults import AssetProps
from nb_assets.defs.check_specs import default_check_specs


class NotebookTranslator:
    """Override a `get_*` method to change how notebooks and tables map onto assets."""

    def get_asset_spec(self, props: AssetProps, deps: Iterable[dg.AssetKey] = ()) -> dg.AssetSpec:
        dep_keys = list(deps)
        return dg.AssetSpec(
            self.get_asset_key(props),
            deps=dep_keys,
            description=self.get_description(props),
            owners=self.get_owners(props),
            tags=self.get_tags(props),
            metadata=self.get_metadata(props),
            group_name=self.get_group_name(props),
            code_version=self.get_code_version(props),
            kinds=self.get_kinds(props),
            automation_condition=self.get_automation_condition(props, dep_keys),
            partitions_def=self.get_partitions_def(props),
        )

    def get_asset_key(self, props: AssetProps) -> dg.AssetKey:
        return asset_defaults.default_asset_key(props)

    def get_description(self, props: AssetProps) -> str | None:
        return asset_defaults.default_description(props)

    def get_owners(self, props: AssetProps) -> list[str]:
        return asset_defaults.default_owners(props)

    def get_tags(self, props: AssetProps) -> dict[str, str]:
        return asset_defaults.default_tags(props)

    def get_metadata(self, props: AssetProps) -> dict[str, Any]:
        return asset_defaults.default_metadata(props)

    def get_group_name(self, props: AssetProps) -> str | None:
        return asset_defaults.default_group_name(props)

    def get_code_version(self, props: AssetProps) -> str | None:
        return asset_defaults.default_code_version(props)

    def get_kinds(self, props: AssetProps) -> set[str]:
        return asset_defaults.default_kinds(props)

    def get_automation_condition(self, props: AssetProps, deps: Sequence[dg.AssetKey]) -> dg.AutomationCondition | None:
        return asset_defaults.default_automation_condition(props, deps)

    def get_partitions_def(self, props: AssetProps) -> dg.PartitionsDefinition | None:
        return asset_defaults.default_partitions_def(props)

    def get_check_specs(self, props: AssetProps, key: dg.AssetKey, table_keys: Mapping[str, dg.AssetKey]) -> list[dg.AssetCheckSpec]:
        """The output's checks as asset checks (defs/check_specs.py); `table_keys` keys the tables a check reads."""
        return default_check_specs(props, key, table_keys)
