"""The factory users call from definitions.py: declarations → Dagster definitions.

Every notebook is parsed, checked, seen through the warehouse's views and
macros (when the warehouse can be opened) and placed under the policy before
Dagster sees anything; if any notebook has an error, loading fails with every
finding of every notebook at once.
"""

# No `from __future__ import annotations`: Dagster inspects the asset function's real annotations.

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dagster as dg

from nb_assets.asset_defaults import AssetProps
from nb_assets.automation import DEFAULT_INTERVAL_S, notebook_sensors, trigger_problems
from nb_assets.catalog_lineage import Catalog, see_through_all
from nb_assets.declaration import FileDrop, NotebookAsset
from nb_assets.errors import DeclarationError, NbAssetsError, PolicyError
from nb_assets.executor import notebook_executor
from nb_assets.instances import expand_instances, instance_spec, label
from nb_assets.locations import check_read_dsn
from nb_assets.parameters import resolve_parameters
from nb_assets.partitions import partition_problems
from nb_assets.notebook_parser import dialect_of, parse_notebook
from nb_assets.notify import Notifications
from nb_assets.policy import NotebookFlow, Policy, PolicyReport, check_notebook, propagate
from nb_assets.policy_file import load_policy
from nb_assets.partition_assets import daily_partitions_def, source_partitions
from nb_assets.resource import NotebookResource
from nb_assets.run_config import overrides, run_config_schema
from nb_assets.spec import NotebookSpec
from nb_assets.translator import NotebookTranslator

RESOURCE_KEY = "nb_resource"
# Checks right before a run, given the catalog the run's queries will read
# (None: the notebook reads nothing); returns facts for metadata.
Gate = Callable[[Catalog | None], dict[str, Any]]
log = logging.getLogger("nb_assets")


@dataclass(frozen=True)
class DeclaredNotebook:
    decl: NotebookAsset
    spec: NotebookSpec

    def flow(self) -> NotebookFlow:
        seen = self.spec.seen_through
        return NotebookFlow(
            name=self.spec.name,
            purpose=self.decl.purpose,
            inputs=self.spec.named_relations,
            outputs=self.spec.output_tables,
            reclassify={t: (tuple(r.zones), r.reason) for t, r in self.decl.reclassify.items()},
            through=dict(seen.through) if seen is not None else {},
        )


def declare_notebooks(
    notebooks: Sequence[NotebookAsset],
    base_dir: str | Path | None = None,
    warehouse: str | Path | None = None,
    dialect: str | None = None,
) -> list[DeclaredNotebook]:
    """Parse and check every notebook; raise one DeclarationError listing all problems.

    `%%sql` inputs are read in `dialect`, by default the warehouse's (dialect_of).

    With a `warehouse`, its views and macros are seen through now if it can be
    opened; if not, one line says so and the gate does it before each run."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    declared: list[DeclaredNotebook] = []
    expanded, problems = expand_instances(notebooks)
    for decl in expanded:
        try:
            spec = parse_notebook(decl.notebook_file(base), dialect or dialect_of(warehouse))
            where = label(decl, spec.path)
            spec = _with_allowances(spec, decl.allow)
            resolve_parameters(spec, decl.params, where)
            spec = instance_spec(spec, decl)
        except NbAssetsError as exc:
            problems.append(str(exc))
            continue
        problems.extend(trigger_problems(decl, where, spec.input_tables))
        problems.extend(partition_problems(decl, spec, where))
        declared.append(DeclaredNotebook(decl, spec))
    if warehouse is not None and any(d.spec.inputs for d in declared):
        declared = seen_through_now(declared, warehouse)
    problems.extend(f.describe(d.spec.path) for d in declared for f in d.spec.errors)
    problems.extend(_conflicts(declared))
    if problems:
        raise DeclarationError(f"{len(problems)} problem(s) in declared notebooks:\n" + "\n".join(f"- {p}" for p in problems))
    return declared


def _with_allowances(spec: NotebookSpec, allow: Mapping[str, str]) -> NotebookSpec:
    if not allow:
        return spec
    from dataclasses import replace

    from nb_assets.static_analysis import RULES, apply_allowances

    # Only the eligibility rules can be allowed: a broken contract (an unknown
    # SQL parameter, a non-literal output) would just fail later, less clearly.
    allowable = sorted(rule.id for rule in RULES)
    unknown = sorted(set(allow) - set(allowable))
    if unknown:
        raise DeclarationError(f"{spec.path}: allow= names {unknown}, which cannot be allowed (allowable: {allowable})")
    try:
        return replace(spec, findings=apply_allowances(spec.findings, allow))
    except ValueError as exc:
        raise DeclarationError(f"{spec.path}: {exc}") from exc


def _conflicts(declared: Sequence[DeclaredNotebook]) -> list[str]:
    problems: list[str] = []
    names: dict[str, str] = {}
    writers: dict[str, str] = {}
    for item in declared:
        other = names.setdefault(item.spec.name, item.spec.path)
        if other != item.spec.path:
            problems.append(f"{item.spec.path}: notebook name {item.spec.name!r} is also used by {other}; rename one file")
        # Keyed by name, not path: two instances of one notebook must not write one table either.
        who = label(item.decl, item.spec.path)
        for table in item.spec.output_tables:
            writer = writers.setdefault(table, who)
            if writer != who:
                problems.append(f"{who}: writes {table}, which {writer} writes too; one table, one writer")
    return problems


def seen_through_now(declared: Sequence[DeclaredNotebook], warehouse: str | Path) -> list[DeclaredNotebook]:
    """Each notebook seen through the warehouse's current catalog, or as it is if that cannot be read."""
    from nb_assets.catalog import open_catalog  # DuckDB loads only where a warehouse is given

    catalog = open_catalog(warehouse)
    if isinstance(catalog, str):
        if catalog not in _said:  # once per process: a definitions file is often loaded twice
            _said.add(catalog)
            log.warning("nb_assets: %s; views and table macros will be seen through before each run instead", catalog)
        return list(declared)
    return _seen_through(declared, catalog)


_said: set[str] = set()


def _seen_through(declared: Sequence[DeclaredNotebook], catalog: Catalog) -> list[DeclaredNotebook]:
    specs = see_through_all([d.spec for d in declared], catalog)
    return [replace(d, spec=spec) for d, spec in zip(declared, specs)]


def apply_policy(declared: Sequence[DeclaredNotebook], policy_path: str | Path | None) -> PolicyReport | None:
    """Propagate zones over the whole graph; enforce-mode violations refuse declaration."""
    if policy_path is None:
        return None
    policy = load_policy(policy_path)
    report = propagate(policy, [d.flow() for d in declared])
    blocking = report.blocking()
    if blocking:
        raise DeclarationError(
            f"{len(blocking)} policy violation(s) in {policy_path}:\n" + "\n".join(f"- {v.message()}" for v in blocking)
        )
    return report


@dataclass(frozen=True)
class NotebookGraph:
    """What declaring a project built: its assets, and the asset key of every table."""

    assets: list[dg.AssetsDefinition | dg.AssetSpec]
    table_keys: Mapping[str, dg.AssetKey]
    sources: tuple[str, ...]  # tables no declared notebook writes
    triggered: bool  # some notebook has a trigger (cron, on_inputs_landed)
    partitioned_sources: Mapping[str, dg.PartitionsDefinition] = field(default_factory=dict)


def build_notebook_assets(
    notebooks: Sequence[NotebookAsset],
    *,
    base_dir: str | Path | None = None,
    policy: str | Path | None = None,
    translator: NotebookTranslator | None = None,
    warehouse: str | Path | None = None,
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """One multi-asset per notebook plus external assets for source tables.

    Deps are base tables: a notebook reading a view depends on the tables
    behind it (`warehouse` is where views and macros are seen through)."""
    return build_notebook_graph(notebooks, base_dir=base_dir, policy=policy, translator=translator, warehouse=warehouse).assets


def build_notebook_graph(
    notebooks: Sequence[NotebookAsset],
    *,
    base_dir: str | Path | None = None,
    policy: str | Path | None = None,
    translator: NotebookTranslator | None = None,
    warehouse: str | Path | None = None,
) -> NotebookGraph:
    translator = translator or NotebookTranslator()
    declared = declare_notebooks(notebooks, base_dir, warehouse)
    report = apply_policy(declared, policy)
    labels = dict(report.labels) if report else {}
    kind = dialect_of(warehouse)
    props = {item.spec.name: asset_props(item, labels, kind) for item in declared}
    written = {t for d in declared for t in d.spec.output_tables}
    check_partitioned_triggers(declared)
    source_parts = source_partitions(declared, written)
    sources = [AssetProps("source", t, labels.get(t, frozenset()), partitions=source_parts.get(t), warehouse_kind=kind) for t in sorted(
        {t for d in declared for t in d.spec.input_tables} - written
    )]
    # Every table's key comes from the translator once; deps are looked up here,
    # so an overridden get_asset_key moves a table and its readers' edges together.
    table_keys = {p.table: translator.get_asset_key(p) for p in (*sources, *(p for ps in props.values() for p in ps)) if p.table}
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = []
    for item in declared:
        deps = [table_keys[t] for t in item.spec.input_tables]
        specs = [translator.get_asset_spec(p, deps) for p in props[item.spec.name]]
        gate = policy_gate(policy, declared, item) if policy else None
        assets.append(_notebook_asset(item, props[item.spec.name], specs, gate))
    assets.extend(translator.get_asset_spec(p) for p in sources)
    triggered = any(d.decl.cron or d.decl.on_inputs_landed for d in declared)
    partitioned = {t: daily_partitions_def(p) for t, p in source_parts.items()}
    return NotebookGraph(assets, table_keys, tuple(p.table for p in sources if p.table), triggered, partitioned)


def check_partitioned_triggers(declared: Sequence[DeclaredNotebook]) -> None:
    """A partitioned notebook waiting on an unpartitioned input would run every day since
    its start at each landing (Dagster maps the one input to all days): refused, by
    Dagster's loading and by the CLI's `--definitions` alike."""
    source_parts = source_partitions(declared, {t for d in declared for t in d.spec.output_tables})
    day_tables = set(source_parts) | {t for d in declared if d.decl.partitions for t in d.spec.output_tables}
    problems = [
        f"{label(d.decl, d.spec.path)}: on_inputs_landed=True on a daily-partitioned notebook needs daily inputs, but {t} is not "
        "partitioned (an unpartitioned notebook writes it, or one reads it); every landing would run every day since the start"
        for d in declared if d.decl.partitions and d.decl.on_inputs_landed
        for t in d.spec.input_tables if t not in day_tables
    ]
    if problems:
        raise DeclarationError(f"{len(problems)} problem(s) in declared notebooks:\n" + "\n".join(f"- {p}" for p in problems))


def asset_props(item: DeclaredNotebook, labels: Mapping[str, frozenset[str]], kind: str = "duckdb") -> list[AssetProps]:
    """One per output table, or a single report whose zones are its inputs' union."""
    decl, spec = item.decl, item.spec
    if not spec.outputs:
        zones = frozenset().union(*(labels.get(t, frozenset()) for t in spec.input_tables))
        return [AssetProps("report", None, zones, decl, spec, warehouse_kind=kind)]
    return [AssetProps("table", t, labels.get(t, frozenset()), decl, spec, warehouse_kind=kind) for t in spec.output_tables]


def _notebook_asset(
    item: DeclaredNotebook,
    props: Sequence[AssetProps],
    specs: Sequence[dg.AssetSpec],
    gate: Gate | None,
) -> dg.AssetsDefinition:
    decl, spec = item.decl, item.spec
    # The keys results are reported under are the specs' own keys: no second derivation.
    keys = {p.table or "": s.key for p, s in zip(props, specs)}

    partitions_def = daily_partitions_def(decl.partitions) if decl.partitions else None

    # Subsettable so that selecting one output (UI, `--select`, automation) works: the
    # notebook still runs whole, and the resource loads only the selected outputs.
    # A partitioned notebook takes one day per run, so a backfill is one run per day.
    @dg.multi_asset(
        name=spec.name, specs=specs, can_subset=True, description=spec.description, partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.multi_run(1) if partitions_def else None,
        config_schema=run_config_schema(spec, decl),
    )
    def notebook_asset(context: dg.AssetExecutionContext, nb_resource: NotebookResource):  # type: ignore[no-untyped-def]
        overridden = overrides(context.op_execution_context.op_config)
        yield from nb_resource.materialize(context, decl, spec, keys, gate, overrides=overridden)

    return notebook_asset


def policy_gate(policy_path: str | Path, declared: Sequence[DeclaredNotebook], item: DeclaredNotebook) -> Gate:
    """Re-read the policy, and see every notebook through the catalog the run
    reads, right before a run: both may have changed since loading."""

    def gate(catalog: Catalog | None) -> dict[str, Any]:
        policy: Policy = load_policy(policy_path)
        current = _seen_through(declared, catalog) if catalog is not None else list(declared)
        flows = [d.flow() for d in current]
        report = propagate(policy, flows)
        flow = next(f for f in flows if f.name == item.spec.name)
        violations = check_notebook(policy, flow, report.labels, report.writers)
        blocking = [v for v in violations if v.mode == "enforce"]
        if blocking:
            raise PolicyError(f"{item.spec.path}: refused before any data was fetched:\n" + "\n".join(v.message() for v in blocking))
        return {
            "policy/labels": {t: sorted(report.labels.get(t, ())) for t in (*flow.reached(), *flow.outputs)},
            "policy/purpose": flow.purpose,
            "policy/violations": [v.message() for v in violations],
        }

    return gate


def notebook_definitions(
    notebooks: Sequence[NotebookAsset],
    *,
    warehouse: str | Path,
    base_dir: str | Path | None = None,
    policy: str | Path | None = None,
    sandbox: str = "auto",
    translator: NotebookTranslator | None = None,
    notifications: Notifications | None = None,
    file_drops: Sequence[FileDrop] = (),
    sensor_interval_s: int = DEFAULT_INTERVAL_S,
    sensor_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
    read_dsn: str | None = None,
) -> dg.Definitions:
    """Everything `dagster dev` needs: assets with their triggers, the resource, and sensors.

    Sensors: the landing sensor (the landing log → events on source tables), one
    per file drop, the automation sensor that starts triggered notebooks, and with
    `notifications` one telling owners about failed runs; all start running unless
    `sensor_status` says otherwise. With a Postgres `warehouse`, `read_dsn` is the
    login prefetch reads as (default: `nb_assets_reader`, see postgres_warehouse.py).
    Users call it as `nb_assets.notebook_definitions`, which first lets a CLI record
    the arguments instead (definitions_file.py).
    """
    check_read_dsn(warehouse, read_dsn)  # refused at load, not at the first run
    graph = build_notebook_graph(notebooks, base_dir=base_dir, policy=policy, translator=translator, warehouse=warehouse)
    sensors = notebook_sensors(
        sources={t: graph.table_keys[t] for t in graph.sources},
        written=set(graph.table_keys) - set(graph.sources),
        triggered=graph.triggered,
        file_drops=file_drops,
        warehouse=warehouse,
        base_dir=Path(base_dir) if base_dir else Path.cwd(),
        interval_s=sensor_interval_s,
        status=sensor_status,
        partitioned=graph.partitioned_sources,
    )
    if notifications is not None:
        sensors.append(failure_sensor(graph.assets, notifications))
    return dg.Definitions(
        assets=graph.assets,
        sensors=sensors,
        resources={RESOURCE_KEY: NotebookResource(warehouse=str(warehouse), read_dsn=read_dsn, sandbox=sandbox)},
        executor=notebook_executor(),
    )


def failure_sensor(assets: Sequence[Any], notifications: Notifications) -> dg.SensorDefinition:
    """Refuses owners no channel reaches: a notice nobody can receive is a silent failure."""
    from nb_assets.failure_sensor import failure_notification_sensor, watched_notebooks

    watched = watched_notebooks(assets)
    unreachable = notifications.unreachable({w.path or w.name: list(w.owners) for w in watched})
    if unreachable:
        raise DeclarationError(
            f"{len(unreachable)} owner(s) no notification channel reaches (email addresses need email=SmtpChannel(...), "
            "team:<name> needs webhooks={'<name>': WebhookChannel(...)}):\n" + "\n".join(f"- {u}" for u in unreachable)
        )
    return failure_notification_sensor(watched, notifications)

