"""The Dagster resource that runs notebooks: warehouse, sandbox choice, records."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from nb_assets.project.declaration import NotebookAsset
from nb_assets.sandbox.base import SandboxKind
from nb_assets.spec import NotebookSpec


class NotebookResource(dg.ConfigurableResource):
    """Runs declared notebooks: prefetch → sandbox → load.

    warehouse: the DuckDB file, or a postgresql:// URL (open_warehouse).
    read_dsn: with a Postgres warehouse, the login prefetch reads as (default: nb_assets_reader).
    sandbox: "auto" (Docker when available), "docker" or "local"; a notebook's
        own declaration wins when it is not "auto".
    records_dir: where executed notebooks are kept; defaults to the Dagster
        instance's storage folder.
    """

    warehouse: str
    read_dsn: str | None = None
    sandbox: SandboxKind = "auto"
    image: str | None = None
    records_dir: str | None = None

    def records_root(self, context: dg.AssetExecutionContext) -> Path:
        if self.records_dir:
            return Path(self.records_dir)
        return Path(context.instance.storage_directory()) / "nb_assets"

    def materialize(
        self,
        context: dg.AssetExecutionContext,
        decl: NotebookAsset,
        spec: NotebookSpec,
        keys: Mapping[str, dg.AssetKey],
        gate: Callable[[Any], dict[str, Any]] | None = None,
        overrides: Mapping[str, Any] | None = None,
        sources: Sequence[Any] = (),
        source_keys: Mapping[str, dg.AssetKey] | None = None,
        base_dir: Path | None = None,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Run the notebook once: with the declared params, the run config's `overrides`,
        and for a partitioned notebook its partition's day as `ds`."""
        # The execution stack (duckdb, pyarrow, docker) loads here, inside a run,
        # not in every process that merely loads the definitions.
        from nb_assets.sandbox.ahead import expect_next_run
        from nb_assets.sandbox.choose import choose_sandbox
        from nb_assets.defs.check_specs import check_results
        from nb_assets.defs.materialize import failure, materialize_results, refusal
        from nb_assets.runs.record import prewarm_html
        from nb_assets.runs.once import Refused, about_run, run_once
        from nb_assets.warehouse.backends import open_warehouse
        from nb_assets.warehouse.base import PartitionLoad

        prewarm_html()  # nbconvert imports while the notebook runs
        kind = decl.sandbox if decl.sandbox != "auto" else self.sandbox
        sandbox = choose_sandbox(kind, image=self.image)
        expect_next_run(sandbox, decl.cron, decl.timezone)  # a spare for the next tick boots shortly before it
        run_dir = self.records_root(context) / spec.name / context.run.run_id
        params = {**decl.params, **(overrides or {})}
        partition: PartitionLoad | None = None
        day: str | None = None
        if decl.partitions is not None:
            # A backfill tags its runs with a one-day range, not a key: partition_key reads either.
            day = context.partition_key  # a day: the definition makes only those
            partition = PartitionLoad(decl.partitions.column, day)
        # What `nb-assets runs` and `%nb_context` list for this run, next to the verdict.
        about = about_run(context.run.run_id, "dagster", warehouse=self.warehouse, notebook=spec.path, day=day)
        if overrides:
            context.log.info(f"{spec.path}: run config overrides {', '.join(f'{k}={v!r}' for k, v in overrides.items())}")

        context.log.info(f"{spec.path}: running in {sandbox.kind} sandbox, record at {run_dir}")
        selected = {t: k for t, k in keys.items() if k in context.selected_asset_keys}
        not_loaded = [t for t in keys if t not in selected]
        if not_loaded:
            context.log.info(
                f"{spec.path}: selected {', '.join(selected)} only: the notebook runs whole; "
                f"{', '.join(not_loaded)} {'is' if len(not_loaded) == 1 else 'are'} computed but not loaded"
            )
        with run_once(
            spec,
            warehouse=open_warehouse(self.warehouse, self.read_dsn),
            sandbox=sandbox,
            run_dir=run_dir,
            about=about,
            params=params,
            limits=decl.limits,
            gate=gate,
            load=list(selected) if not_loaded else None,
            partition=partition,
            facts={"notebook/not_loaded": not_loaded} if not_loaded else None,
            keep_refusal=True,
            sources=sources,
            base_dir=base_dir,
        ) as outcome:
            if isinstance(outcome, Refused):  # refused before anything ran: its record says why
                if outcome.record_error is not None:
                    context.log.warning(f"{spec.path}: could not keep the refusal record at {run_dir}: {outcome.record_error}")
                raise refusal(spec.path, outcome.error, outcome.parameters) from outcome.error
            # The output checks ran inside the load (warehouse/checks.py): their results go to the Checks tab
            # whether the load committed or a blocking check rolled it back.
            checked = list(check_results(outcome.run.check_outcomes, selected, context.selected_asset_check_keys))
            if outcome.run.status != "success":
                stopped: dg.Failure | None = failure(outcome.run, outcome.record)
                results: list[Any] = []
            else:
                stopped = None
                results = list(materialize_results(outcome.run, selected, outcome.record, outcome.facts))
                for name, read in outcome.run.sources.items():  # the data version each declared source had when read
                    if source_keys and name in source_keys:
                        context.log_event(source_observation(source_keys[name], read))
        yield from results
        yield from checked
        if stopped is not None:
            raise stopped


def source_observation(key: dg.AssetKey, read: Mapping[str, Any]) -> dg.AssetObservation:
    """What a run read from a declared source; its content hash is the data version the UI shows."""
    return dg.AssetObservation(
        asset_key=key,
        metadata={f"source/{k}": v for k, v in read.items() if v is not None},
        tags={"dagster/data_version": str(read["content_hash"])},
    )
