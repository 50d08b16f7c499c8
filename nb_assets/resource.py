"""The Dagster resource that runs notebooks: warehouse, sandbox choice, records."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg

from nb_assets.declaration import PARTITION_PARAM, NotebookAsset
from nb_assets.errors import NbAssetsError
from nb_assets.sandbox import SandboxKind
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
    ) -> Iterator[dg.MaterializeResult]:
        """Run the notebook once: with the declared params, the run config's `overrides`,
        and for a partitioned notebook its partition's day as `ds`."""
        # The execution stack (duckdb, pyarrow, docker) loads here, inside a run,
        # not in every process that merely loads the definitions.
        from nb_assets.choose_sandbox import choose_sandbox
        from nb_assets.host_pipeline import discard_data, run_pipeline
        from nb_assets.locations import redact
        from nb_assets.materialize import failure, materialize_results, refusal
        from nb_assets.record import keep_record, prewarm_html, seen_through_facts
        from nb_assets.run_records import keep_refusal_record
        from nb_assets.warehouse_backends import open_warehouse
        from nb_assets.warehouse_base import PartitionLoad
        from nb_assets.writer_identity import notebook_location

        prewarm_html()  # nbconvert imports while the notebook runs
        kind = decl.sandbox if decl.sandbox != "auto" else self.sandbox
        sandbox = choose_sandbox(kind, image=self.image)
        run_dir = self.records_root(context) / spec.name / context.run.run_id
        gate_facts: dict[str, Any] = {}
        # What `nb-assets runs` and `%nb_context` list for this run, next to the verdict.
        about = {
            "run_id": context.run.run_id,
            "source": "dagster",
            "started_at": datetime.now(timezone.utc).isoformat(),
            "warehouse": redact(self.warehouse),
            "notebook_file": notebook_location(spec.path),
        }

        params = {**decl.params, **(overrides or {})}
        partition = None
        if decl.partitions is not None:
            # A backfill tags its runs with a one-day range, not a key: partition_key reads either.
            day = context.partition_key  # a day: the definition makes only those
            params[PARTITION_PARAM] = about["partition"] = day
            partition = PartitionLoad(decl.partitions.column, day)
        if overrides:
            context.log.info(f"{spec.path}: run config overrides {', '.join(f'{k}={v!r}' for k, v in overrides.items())}")

        def checked_gate(catalog: Any) -> None:
            if gate is not None:
                gate_facts.update(gate(catalog))

        context.log.info(f"{spec.path}: running in {sandbox.kind} sandbox, record at {run_dir}")
        selected = {t: k for t, k in keys.items() if k in context.selected_asset_keys}
        not_loaded = [t for t in keys if t not in selected]
        if not_loaded:
            gate_facts["notebook/not_loaded"] = not_loaded
            context.log.info(
                f"{spec.path}: selected {', '.join(selected)} only: the notebook runs whole; "
                f"{', '.join(not_loaded)} {'is' if len(not_loaded) == 1 else 'are'} computed but not loaded"
            )
        try:
            run = run_pipeline(
                spec,
                warehouse=open_warehouse(self.warehouse, self.read_dsn),
                sandbox=sandbox,
                run_dir=run_dir,
                params=params,
                limits=decl.limits,
                gate=checked_gate,
                load=list(selected) if not_loaded else None,
                partition=partition,
            )
        except NbAssetsError as exc:  # refused before anything ran: the record says why
            error = {"cell": exc.cell, "type": exc.kind, "message": str(exc)}
            try:
                keep_refusal_record(run_dir, {"notebook": spec.path, "status": "refused", "error": error,
                                              "parameters": params, **about})
            except OSError as io_error:  # the refusal, not the bookkeeping, is what the run must report
                context.log.warning(f"{spec.path}: could not keep the refusal record at {run_dir}: {io_error}")
            raise refusal(spec.path, exc, params) from exc
        gate_facts.update(seen_through_facts(run.spec))
        try:
            record = keep_record(run, {**gate_facts, **about})
            if run.status != "success":
                raise failure(run, record)
            results = list(materialize_results(run, selected, record, gate_facts))
        finally:
            discard_data(run.folder)  # Parquet copies can be large; the record stays
        yield from results
