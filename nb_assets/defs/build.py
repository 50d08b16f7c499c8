"""What `nb_assets.notebook_definitions` (defs/entry.py) builds when Dagster loads: declarations → definitions.

Every notebook is declared first (declared_notebooks: parsed, checked, seen
through the warehouse's views and macros when it can be opened, and placed
under the policy) before Dagster sees anything; if any notebook has a problem,
loading fails with every problem of every notebook at once. Those checks are
Dagster-free, so `nb-assets schedule` runs the very same ones before it writes
a declaration.
"""

# No `from __future__ import annotations`: Dagster inspects the asset function's real annotations.

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dagster as dg

from nb_assets.defs.asset_defaults import AssetProps
from nb_assets.defs.automation import DEFAULT_INTERVAL_S, notebook_sensors
from nb_assets.project.declaration import FileDrop, NotebookAsset
from nb_assets.project.declaration_checks import unreachable_owners
from nb_assets.project.declare import DeclaredNotebook, Gate, apply_policy, declare_notebooks, policy_gate
from nb_assets.errors import DeclarationError
from nb_assets.defs.executor import notebook_executor
from nb_assets.defs.freshness_sensor import freshness_notification_sensor, with_freshness
from nb_assets.locations import check_read_dsn, dialect_of
from nb_assets.notify.channels import Notifications
from nb_assets.defs.partitions import daily_partitions_def, source_partitions
from nb_assets.defs.resource import NotebookResource
from nb_assets.defs.run_config import overrides, run_config_schema
from nb_assets.defs.translator import NotebookTranslator
from nb_assets.runs.status import Watched, watched
from nb_assets.sources.model import Source, is_relation, relation

__all__ = [
    "RESOURCE_KEY", "NotebookGraph", "ProjectBuild", "asset_props", "build_definitions", "build_notebook_assets", "build_notebook_graph", "build_project",
    "failure_sensor",
]

RESOURCE_KEY = "nb_resource"


@dataclass(frozen=True)
class NotebookGraph:
    """What declaring a project built: its assets, and the asset key of every table."""

    assets: list[dg.AssetsDefinition | dg.AssetSpec]
    table_keys: Mapping[str, dg.AssetKey]
    sources: tuple[str, ...]  # tables no declared notebook writes
    triggered: bool  # some notebook has a trigger (cron, on_inputs_landed)
    partitioned_sources: Mapping[str, dg.PartitionsDefinition] = field(default_factory=dict)
    watched: Sequence[Watched] = ()  # every declared notebook, for the freshness sensor
    notebook_files: Mapping[str, Path] = field(default_factory=dict)  # each notebook asset's node name → its .ipynb


def build_notebook_assets(
    notebooks: Sequence[NotebookAsset],
    *,
    base_dir: str | Path | None = None,
    policy: str | Path | None = None,
    translator: NotebookTranslator | None = None,
    warehouse: str | Path | None = None,
    sources: Sequence[Source] = (),
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """One multi-asset per notebook plus external assets for source tables.

    Deps are base tables: a notebook reading a view depends on the tables
    behind it (`warehouse` is where views and macros are seen through)."""
    return build_notebook_graph(
        notebooks, base_dir=base_dir, policy=policy, translator=translator, warehouse=warehouse, sources=sources,
    ).assets


def build_notebook_graph(
    notebooks: Sequence[NotebookAsset],
    *,
    base_dir: str | Path | None = None,
    policy: str | Path | None = None,
    translator: NotebookTranslator | None = None,
    warehouse: str | Path | None = None,
    notifications: Notifications | None = None,
    sources: Sequence[Source] = (),
) -> NotebookGraph:
    """With `notifications`, every owner must be one a channel reaches. `sources`: the project's
    declared sources; each one a notebook reads is an external asset in group `sources`."""
    translator = translator or NotebookTranslator()
    declared = declare_notebooks(notebooks, base_dir, warehouse, notifications=notifications, sources=sources)
    report = apply_policy(declared, policy, sources=sources)
    labels = dict(report.labels) if report else {}
    kind = dialect_of(warehouse)
    props = {item.spec.name: asset_props(item, labels, kind) for item in declared}
    written = {t for d in declared for t in d.spec.output_tables}
    source_parts = source_partitions(declared, written)
    registry = {s.relation: s for s in sources}
    source_props = [AssetProps(
        "source", t, labels.get(t, frozenset(registry[t].zones) if t in registry else frozenset()),
        partitions=source_parts.get(t), warehouse_kind=kind, declared=registry.get(t),
    ) for t in sorted({t for d in declared for t in d.spec.input_tables} - written)]
    # Every table's key comes from the translator once; deps are looked up here,
    # so an overridden get_asset_key moves a table and its readers' edges together.
    table_keys = {p.table: translator.get_asset_key(p) for p in (*source_props, *(p for ps in props.values() for p in ps)) if p.table}
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = []
    unwatched = {table_keys[s.relation] for s in sources if s.poll_s is None and s.relation in table_keys}
    for item in declared:
        deps = [table_keys[t] for t in item.spec.input_tables]
        props[item.spec.name] = [replace(p, never_lands=frozenset(unwatched.intersection(deps))) for p in props[item.spec.name]]
        specs = [with_freshness(translator.get_asset_spec(p, deps), item.decl.freshness) for p in props[item.spec.name]]
        checks = [c for p, s in zip(props[item.spec.name], specs) for c in translator.get_check_specs(p, s.key, table_keys)]
        gate = policy_gate(policy, declared, item, sources) if policy else None
        read = _SourcesRead(sources, {n: table_keys[relation(n)] for n in item.spec.sources}, Path(base_dir) if base_dir else Path.cwd())
        assets.append(_notebook_asset(item, props[item.spec.name], specs, gate, checks, read))
    assets.extend(translator.get_asset_spec(p) for p in source_props)
    triggered = any(d.decl.cron or d.decl.on_inputs_landed for d in declared)
    partitioned = {t: daily_partitions_def(p) for t, p in source_parts.items()}
    files = {item.spec.name: item.decl.notebook_file(base_dir or Path.cwd()).resolve() for item in declared}
    return NotebookGraph(assets, table_keys, tuple(p.table for p in source_props if p.table), triggered, partitioned,
                         watched(declared), files)


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
    check_specs: Sequence[dg.AssetCheckSpec] = (),
    read: "_SourcesRead | None" = None,
) -> dg.AssetsDefinition:
    decl, spec = item.decl, item.spec
    # The keys results are reported under are the specs' own keys: no second derivation.
    keys = {p.table or "": s.key for p, s in zip(props, specs)}

    partitions_def = daily_partitions_def(decl.partitions) if decl.partitions else None

    # Subsettable so that selecting one output (UI, `--select`, automation) works: the
    # notebook still runs whole, and the resource loads only the selected outputs.
    # A partitioned notebook takes one day per run, so a backfill is one run per day.
    @dg.multi_asset(
        name=spec.name, specs=specs, check_specs=list(check_specs) or None, can_subset=True, description=spec.description, partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.multi_run(1) if partitions_def else None,
        config_schema=run_config_schema(spec, decl),
    )
    def notebook_asset(context: dg.AssetExecutionContext, nb_resource: NotebookResource):  # type: ignore[no-untyped-def]
        overridden = overrides(context.op_execution_context.op_config)
        yield from nb_resource.materialize(
            context, decl, spec, keys, gate, overrides=overridden,
            **({"sources": read.sources, "source_keys": read.keys, "base_dir": read.base_dir} if read and read.keys else {}),
        )

    return notebook_asset


@dataclass(frozen=True)
class _SourcesRead:
    """The registry, the asset key of each source a notebook reads, and where relative paths start."""

    sources: Sequence[Source]
    keys: Mapping[str, dg.AssetKey]
    base_dir: Path


def build_definitions(
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
    sources: Sequence[Source] = (),
) -> dg.Definitions:
    """Everything Dagster loads: assets with their triggers, the resource, and sensors.

    Sensors: the landing sensor (the landing log → events on source tables), one
    per file drop, the automation sensor that starts triggered notebooks, and with
    `notifications` one telling owners about failed runs; all start running unless
    `sensor_status` says otherwise. With a Postgres `warehouse`, `read_dsn` is the
    login prefetch reads as (default: `nb_assets_reader`, see warehouse/postgres/warehouse.py).
    Users call it as `nb_assets.notebook_definitions` (defs/entry.py), which first
    lets a CLI record the arguments instead and builds only when Dagster loads.
    """
    return build_project(
        notebooks, warehouse=warehouse, base_dir=base_dir, policy=policy, sandbox=sandbox, translator=translator,
        notifications=notifications, file_drops=file_drops, sensor_interval_s=sensor_interval_s,
        sensor_status=sensor_status, read_dsn=read_dsn, sources=sources,
    ).defs


@dataclass(frozen=True)
class ProjectBuild:
    """`build_definitions`'s answer with the graph it came from: dg components (defs/component_project.py)
    split it, each notebook's assets to its own component and the project-wide pieces to all."""

    graph: NotebookGraph
    defs: dg.Definitions


def build_project(
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
    sources: Sequence[Source] = (),
) -> ProjectBuild:
    """What `build_definitions` builds, with its graph."""
    check_read_dsn(warehouse, read_dsn)  # refused at load, not at the first run
    graph = build_notebook_graph(notebooks, base_dir=base_dir, policy=policy, translator=translator, warehouse=warehouse,
                                 notifications=notifications, sources=sources)
    sensors = notebook_sensors(
        sources={t: graph.table_keys[t] for t in graph.sources if not is_relation(t)},  # declared sources never land in the log
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
    if notifications is not None and any(w.freshness for w in graph.watched):
        sensors.append(freshness_notification_sensor(graph.watched, str(warehouse), notifications,
                                                     asset_paths=asset_paths(graph.assets)))
    polled = {s.name: graph.table_keys[s.relation] for s in sources if s.poll_s is not None and s.relation in graph.table_keys}
    if polled:  # declared sources that land (poll_s=): defs/source_sensor.py
        from nb_assets.defs.source_sensor import source_sensor

        sensors.append(source_sensor(sources, polled, Path(base_dir) if base_dir else Path.cwd(), status=sensor_status))
    return ProjectBuild(graph, dg.Definitions(
        assets=graph.assets,
        sensors=sensors,
        resources={RESOURCE_KEY: NotebookResource(warehouse=str(warehouse), read_dsn=read_dsn, sandbox=sandbox)},
        executor=notebook_executor(),
    ))


def failure_sensor(assets: Sequence[Any], notifications: Notifications) -> dg.SensorDefinition:
    """Refuses owners no channel reaches: a notice nobody can receive is a silent failure.
    (declare_notebooks refused the declared owners already; this sees a translator's.)"""
    from nb_assets.defs.failure_sensor import failure_notification_sensor, watched_notebooks

    watched = watched_notebooks(assets)
    unreachable = [p for w in watched for p in unreachable_owners(w.path or w.name, list(w.owners), notifications)]
    if unreachable:
        raise DeclarationError(f"{len(unreachable)} problem(s) in declared notebooks:\n" + "\n".join(f"- {u}" for u in unreachable))
    return failure_notification_sensor(watched, notifications)


def asset_paths(assets: Sequence[Any]) -> dict[str, str]:
    """Each notebook's first asset as the UI's URL names it ("mart/revenue"), for links in notices."""
    return {a.node_def.name: "/".join(next(iter(a.specs)).key.path) for a in assets if isinstance(a, dg.AssetsDefinition)}
