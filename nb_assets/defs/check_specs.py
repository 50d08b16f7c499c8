"""Output checks as Dagster asset checks: one AssetCheckSpec per check, one AssetCheckResult per outcome.

A check with severity "error" is `blocking`: it already stops the publish (the load rolls back
inside its transaction, warehouse/checks.py), and Dagster is told so, so its asset page shows the
check as blocking and a run that materializes downstream assets skips them. Tables a check reads
besides its output (a relationships target, a `sql` check's tables) are the check's
`additional_deps`, not the asset's deps: the check reads them, the notebook's data does not depend
on them, and an `on_inputs_landed` notebook does not wait for them to land.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import dagster as dg

from nb_assets.analysis.output_checks import check_tables
from nb_assets.defs.asset_defaults import AssetProps
from nb_assets.inbox.checks import OutputCheck

if TYPE_CHECKING:  # the outcomes come from a run; loading definitions imports no warehouse code
    from nb_assets.warehouse.checks import CheckOutcome


def default_check_specs(props: AssetProps, key: dg.AssetKey, table_keys: Mapping[str, dg.AssetKey]) -> list[dg.AssetCheckSpec]:
    """The checks of the output `props` describes (its notebook's and its declaration's)."""
    if props.spec is None or props.table is None:
        return []
    checks = props.spec.output_checks.get(props.table, ())
    return [check_spec(c, key, props.table, table_keys, props.warehouse_kind) for c in checks]


def check_spec(check: OutputCheck, key: dg.AssetKey, table: str, table_keys: Mapping[str, dg.AssetKey], dialect: str) -> dg.AssetCheckSpec:
    reads = [t for t in check_tables([check], "postgres" if dialect == "postgres" else "duckdb") if t != table]
    return dg.AssetCheckSpec(
        name=check.name,
        asset=key,
        description=f"{check.describe()}; run inside the load, before it commits"
        + (" (blocking: a failure publishes nothing)" if check.blocking else " (warning: a failure publishes and is reported)"),
        blocking=check.blocking,
        additional_deps=[table_keys.get(t) or dg.AssetKey(t.split(".")) for t in reads],
        metadata={"nb_assets/check": check.describe()},
    )


def check_results(
    outcomes: Sequence[CheckOutcome], keys: Mapping[str, dg.AssetKey], selected: frozenset[dg.AssetCheckKey] | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """One result per check that ran on a table in `keys` (and, when given, in `selected`)."""
    from nb_assets.defs.materialize import markdown_table

    for outcome in outcomes:
        key = keys.get(outcome.table)
        if key is None or (selected is not None and dg.AssetCheckKey(key, outcome.check.name) not in selected):
            continue
        metadata: dict[str, dg.RawMetadataValue] = {
            "failed_rows": outcome.failed_rows,
            "check": outcome.check.describe(),
        }
        if outcome.sample:
            # The failing rows are the output's data and carry its zones, as its preview does.
            columns = [[row[i] for row in outcome.sample] for i in range(len(outcome.columns))]
            metadata["sample"] = dg.MetadataValue.md(markdown_table(list(outcome.columns), columns))
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=outcome.check.name,
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.ERROR if outcome.check.blocking else dg.AssetCheckSeverity.WARN,
            metadata=metadata,
        )
