"""Data-purpose policy zones: labels on source tables, a purpose per notebook, the gate.

A policy file (YAML) declares::

    zones:                          # every zone, and what a breach of it does
      public:  {mode: enforce, description: Safe to share}
      pii:     {mode: enforce, description: Personal data}
      finance: {mode: log}          # log: the run goes ahead, the breach is reported
    purposes:                       # purpose -> zones a notebook run for it may read
      analytics: [public, finance]
      marketing: [public, pii]
    default_purpose: analytics      # optional: the purpose of notebooks that declare none
    tables:                         # labels of *source* tables only
      raw.customers: [pii]
      raw.orders: [finance]
    default_labels: [public]        # optional: labels of source tables not listed

Rules:

- Labels propagate: each output carries the union of its notebook's input
  labels, unless the notebook reclassifies it (new zones plus a written reason).
- A notebook may read a table when its purpose allows every label on it. A
  disallowed label in an ``enforce`` zone refuses the notebook; in a ``log``
  zone the run is allowed and the breach recorded as a violation.
- Only source tables (read, never written by a notebook) may carry labels; a
  notebook output's labels come from propagation or ``reclassify``.
- A source table missing from ``tables`` gets ``default_labels``; without that
  key it is an error, so a new raw table cannot slip through unlabelled.
- A notebook without a purpose runs as ``default_purpose``. If the policy sets
  none, such a notebook may not read any table: there is no implicit
  "anything goes" purpose.
- Views and table macros are seen through (catalog_lineage): a view's labels
  are the union of the labels of everything it reads, down to its base
  tables. A label written on a view under ``tables`` can only add zones to
  that union; removing zones is what ``reclassify``, with its reason, is for.

Reading the file is policy/loader.py's job; its errors name ``path:line``. Errors
about a flow name the notebook.
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from nb_assets.errors import PolicyError, UnlabelledSourceError
from nb_assets.spec import below
from nb_assets.sql.table_names import missing, no_such_table

Mode = Literal["enforce", "log"]
MODES: tuple[Mode, ...] = ("enforce", "log")
ZONE_TAG_PREFIX = "zone/"
PURPOSE_TAG = "purpose"

# Zone names become Dagster tag keys ("zone/<name>") and purposes tag values;
# dagster/_utils/tags.py allows [A-Za-z0-9_.-]{1,63} per key section and
# [A-Za-z0-9_.-]{0,63} for strict values, so names are held to that at load.
TAG_PART = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")


@dataclass(frozen=True)
class Zone:
    name: str
    mode: Mode
    description: str = ""


@dataclass(frozen=True)
class Policy:
    path: str
    zones: Mapping[str, Zone]
    purposes: Mapping[str, frozenset[str]]  # purpose -> zones it may read
    tables: Mapping[str, frozenset[str]]  # source table -> labels
    default_labels: frozenset[str] | None = None
    default_purpose: str | None = None
    lines: Mapping[str, int] = field(default_factory=dict)  # table -> line of its label

    def where(self, table: str) -> str:
        return f"{self.path}:{self.lines.get(table, 1)}"

    def source_labels(self, table: str) -> frozenset[str]:
        if table in self.tables:
            return self.tables[table]
        if self.default_labels is None:
            raise UnlabelledSourceError(
                f"{self.path}: source table {table} has no labels; add it under "
                "'tables:' or set 'default_labels:'", table,
            )
        return self.default_labels


@dataclass(frozen=True)
class NotebookFlow:
    name: str
    purpose: str | None
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    reclassify: Mapping[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    # Views ("s.v") and macros ("s.m()") among and below the inputs -> what each reads directly.
    through: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def reached(self) -> tuple[str, ...]:
        """The inputs and every view, macro and table below them."""
        return below(self.through, self.inputs)

    def base_tables(self) -> tuple[str, ...]:
        return tuple(t for t in self.reached() if t not in self.through)


@dataclass(frozen=True)
class Violation:
    notebook: str
    purpose: str
    table: str
    zone: str
    mode: Mode
    writer: str | None = None  # the notebook that writes `table`; None for a source table
    allowed_by: tuple[str, ...] = ()  # purposes whose notebooks may read `zone`
    labels: frozenset[str] = frozenset()  # all of `table`'s labels
    via: tuple[str, ...] = ()  # below a view or macro input: the path to where the zone is written
    through: bool = False  # `table` is a view or table macro, not a table

    def message(self) -> str:
        verdict = "refused" if self.mode == "enforce" else "allowed (zone in log mode) but recorded"
        read = f"source table {self.table}" if self.writer is None else f"input {self.table}, written by notebook {self.writer}"
        kind = "table macro" if self.table.endswith("()") else "view"
        if self.via:  # a view or table macro: say where the zone really comes from
            chain = " → ".join((self.table, *self.via))
            read = f"{kind} {self.table}, which reads {self.via[-1]} carrying '{self.zone}': {chain}"
        elif self.through:
            read = f"{kind} {self.table}, labelled '{self.zone}' in the policy"
        purposes = (
            f"run the notebook for a purpose that allows '{self.zone}': {', '.join(self.allowed_by)}"
            if self.allowed_by
            else f"no purpose in the policy allows '{self.zone}'; a purpose that should, must be added to it"
        )
        return "\n".join((
            f"notebook {self.notebook}: purpose '{self.purpose}' may not read zone '{self.zone}' ({read}); {verdict}.",
            "  Either:",
            f"  - {purposes}",
            f"  - or add '{self.zone}' to purposes.{self.purpose} in the policy",
            f"  - or {self._reclassify_advice()}",
        ))

    def _reclassify_advice(self) -> str:
        """reclassify applies only to a notebook's own outputs: a source table keeps its labels."""
        why = f'"<why it no longer holds {self.zone} data>"'
        if self.writer is None:
            table, zones = "<schema.table>", ("<zone>",)
            advice = (
                f"read a table derived from {self.table} by a notebook that runs for such a purpose and "
                f"reclassifies its own output, in its declaration:"
            )
        else:
            table, zones = self.table, tuple(sorted(self.labels - {self.zone})) or ("<zone>",)
            advice = (
                f"if {self.table} no longer holds {self.zone} data, reclassify it "
                f"in the declaration of notebook {self.writer}:"
            )
        zone_tuple = "(" + ", ".join(f'"{z}"' for z in zones) + ("," if len(zones) == 1 else "") + ")"
        return (
            f"{advice}\n      from nb_assets import Reclassify\n"
            f'      NotebookAsset(..., reclassify={{"{table}": Reclassify({zone_tuple}, {why})}})'
        )


@dataclass(frozen=True)
class Reclassification:
    notebook: str
    table: str
    inherited: frozenset[str]  # labels propagation would have given
    labels: frozenset[str]
    reason: str


@dataclass(frozen=True)
class PolicyReport:
    labels: Mapping[str, frozenset[str]]
    violations: tuple[Violation, ...]
    reclassified: tuple[Reclassification, ...]
    writers: Mapping[str, str] = field(default_factory=dict)  # table -> the notebook that writes it

    def blocking(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.mode == "enforce")


# --- the gate ---------------------------------------------------------------


def _purpose_of(policy: Policy, flow: NotebookFlow) -> str | None:
    """The purpose a flow is checked under; None only for a notebook that reads nothing."""
    purpose = flow.purpose if flow.purpose is not None else policy.default_purpose
    if purpose is None:
        if flow.inputs:
            raise PolicyError(
                f"notebook {flow.name} reads {', '.join(flow.inputs)} but declares no purpose, "
                f"and {policy.path} sets no default_purpose; declare the purpose it runs for"
            )
        return None
    if purpose not in policy.purposes:
        raise PolicyError(
            f"notebook {flow.name}: unknown purpose '{purpose}'; {policy.path} declares: "
            f"{', '.join(policy.purposes) or '(none)'}"
        )
    return purpose


def _check_reclassify(policy: Policy, flow: NotebookFlow) -> None:
    for table, (zones, reason) in flow.reclassify.items():
        where = f"notebook {flow.name}: reclassify {table}"
        if table not in flow.outputs:
            raise PolicyError(f"{where}: not an output of this notebook (outputs: {', '.join(flow.outputs)})")
        if not reason or not reason.strip():
            raise PolicyError(f"{where}: needs a written reason (why the data no longer needs its zones)")
        if not zones:
            raise PolicyError(f"{where}: give at least one zone, e.g. ('public',)")
        unknown = sorted(set(zones) - set(policy.zones))
        if unknown:
            raise PolicyError(f"{where}: unknown zone(s) {', '.join(unknown)} (not in {policy.path})")


def check_notebook(
    policy: Policy,
    flow: NotebookFlow,
    input_labels: Mapping[str, frozenset[str]],
    writers: Mapping[str, str] | None = None,
) -> tuple[Violation, ...]:
    """The run-time gate for one notebook; run again just before a run, since the policy may have changed.

    ``writers`` (table -> notebook, as in ``PolicyReport.writers``) lets a violation's
    advice tell a notebook's output, which can be reclassified, from a source table.
    """
    _check_reclassify(policy, flow)
    purpose = _purpose_of(policy, flow)
    if purpose is None:
        return ()
    allowed = policy.purposes[purpose]
    violations = []
    for table in dict.fromkeys(flow.inputs):
        if table not in input_labels:
            raise PolicyError(f"notebook {flow.name}: no labels known for input {table}")
        for zone in sorted(input_labels[table] - allowed):
            # a zone dropped from the policy since labelling fails closed
            mode: Mode = policy.zones[zone].mode if zone in policy.zones else "enforce"
            allowed_by = tuple(sorted(p for p, zones in policy.purposes.items() if zone in zones))
            writer = (writers or {}).get(table)
            via = _zone_origin(policy, flow, table, zone, input_labels)
            violations.append(Violation(
                flow.name, purpose, table, zone, mode, writer, allowed_by, input_labels[table], via, table in flow.through,
            ))
    return tuple(violations)


def _zone_origin(
    policy: Policy, flow: NotebookFlow, name: str, zone: str, labels: Mapping[str, frozenset[str]]
) -> tuple[str, ...]:
    """The path below a view or macro to where `zone` is written: a table's labels, or a view's own."""
    stack: list[tuple[str, tuple[str, ...]]] = [(name, ())]
    seen: set[str] = set()
    while stack:
        current, path = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current not in flow.through:
            if zone in labels.get(current, ()):
                return path
        elif zone in policy.tables.get(current, ()):
            return path
        else:
            stack.extend((read, (*path, read)) for read in reversed(flow.through[current]))
    return ()


# --- propagation ------------------------------------------------------------


def _writers(flows: Sequence[NotebookFlow]) -> dict[str, str]:
    writers: dict[str, str] = {}
    names: set[str] = set()
    for flow in flows:
        if flow.name in names:
            raise PolicyError(f"notebook {flow.name} is declared twice")
        names.add(flow.name)
        for table in flow.outputs:
            if table in writers:
                raise PolicyError(f"table {table} is written by both {writers[table]} and {flow.name}")
            writers[table] = flow.name
    return writers


def _check_labelled_tables(
    policy: Policy,
    flows: Sequence[NotebookFlow],
    writers: Mapping[str, str],
    known_tables: Collection[str] | None,
) -> None:
    read = {t for flow in flows for t in flow.reached()}
    known = None if known_tables is None else {t.lower() for t in known_tables} | read
    for table in policy.tables:
        if table in writers:
            raise PolicyError(_labelled_and_written(policy, flows, table, writers[table]))
        if known is not None and table not in known:
            raise PolicyError(f"{policy.where(table)}: labelled table {table} does not exist")


def _labelled_and_written(policy: Policy, flows: Sequence[NotebookFlow], table: str, writer: str) -> str:
    """The policy labels `table` as a source; a notebook writing it would replace the source's data."""
    readers = sorted({f.name for f in flows if f.name != writer and table in f.reached()})
    if readers:
        return (
            f"notebook {writer} writes {table}, a source table read by {', '.join(readers)} "
            f"(labelled in {policy.where(table)}); writing it would replace that data: "
            f"have {writer} write a new table instead, e.g. output(\"mart.{writer}\", df)"
        )
    return (
        f"notebook {writer} writes {table}, which {policy.where(table)} labels as a source table: "
        f"have {writer} write a new table instead; or, if {writer} is meant to own {table}, drop its label there "
        f"(an output's zones come from its inputs, or from reclassify in {writer}'s declaration)"
    )


def _order(flows: Sequence[NotebookFlow], writers: Mapping[str, str]) -> list[str]:
    graph = {flow.name: {writers[t] for t in flow.base_tables() if t in writers} for flow in flows}
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        cycle = " -> ".join(err.args[1])
        raise PolicyError(f"notebooks form a cycle (each reads a table the other writes): {cycle}") from err


def propagate(
    policy: Policy,
    flows: Sequence[NotebookFlow],
    known_tables: Collection[str] | None = None,
    relations: Collection[str] | None = None,
) -> PolicyReport:
    """Label every table, in dependency order, and collect every violation.

    ``known_tables`` (e.g. the warehouse's tables) lets a label on a table that
    does not exist be caught as a typo; ``None`` skips that check.
    ``relations`` (a Catalog's: the warehouse's tables and views) turns "source
    table X has no labels" into "no such table X (did you mean Y?)" when the
    warehouse lacks X: a misspelling, not a matter for the policy.
    """
    writers = _writers(flows)
    _check_labelled_tables(policy, flows, writers, known_tables)
    by_name = {flow.name: flow for flow in flows}
    labels: dict[str, frozenset[str]] = dict(policy.tables)
    violations: list[Violation] = []
    reclassified: list[Reclassification] = []
    for name in _order(flows, writers):
        flow = by_name[name]
        for table in flow.base_tables():
            if table not in labels:  # writers come first, so this is a source table
                labels[table] = _source_labels(policy, flow, table, relations)
        _label_through(policy, flow, labels)
        violations.extend(check_notebook(policy, flow, labels, writers))
        inherited = frozenset().union(*(labels[t] for t in flow.inputs))
        for table in flow.outputs:
            labels[table] = inherited
            if table in flow.reclassify:
                zones, reason = flow.reclassify[table]
                labels[table] = frozenset(zones)
                reclassified.append(Reclassification(name, table, inherited, labels[table], reason.strip()))
    return PolicyReport(MappingProxyType(labels), tuple(violations), tuple(reclassified), MappingProxyType(writers))


def _source_labels(policy: Policy, flow: NotebookFlow, table: str, relations: Collection[str] | None) -> frozenset[str]:
    """"Add it under 'tables:'" is no advice for a table the warehouse does not have: a misspelled name."""
    try:
        return policy.source_labels(table)
    except UnlabelledSourceError:
        known = None if relations is None else {r.lower() for r in relations}
        if known is not None and missing([table], known):
            raise PolicyError(f"notebook {flow.name}: {no_such_table(table, known)}") from None
        raise


def _label_through(policy: Policy, flow: NotebookFlow, labels: dict[str, frozenset[str]]) -> None:
    """A view's or macro's labels: its own (if any) plus everything it reads; base tables are labelled."""

    def label(name: str, path: frozenset[str]) -> frozenset[str]:
        if name not in flow.through:
            return labels[name]
        if name in done or name in path:  # a loop is reported by the resolution
            return labels.get(name, frozenset())
        zones = set(policy.tables.get(name, ()))
        for read in flow.through[name]:
            zones |= label(read, path | {name})
        labels[name] = frozenset(zones)
        done.add(name)
        return labels[name]

    done: set[str] = set()
    for name in flow.inputs:
        label(name, frozenset())


def zone_tags(labels: Iterable[str], purpose: str | None) -> dict[str, str]:
    """Dagster asset tags for a table's zones and its notebook's purpose: {"zone/pii": "", "purpose": "marketing"}."""
    tags: dict[str, str] = {}
    for zone in sorted(set(labels)):
        if not TAG_PART.match(zone):
            raise PolicyError(f"zone '{zone}' cannot be a Dagster tag key; use 1-63 of [A-Za-z0-9_.-]")
        tags[ZONE_TAG_PREFIX + zone] = ""
    if purpose is not None:
        if not TAG_PART.match(purpose):
            raise PolicyError(f"purpose '{purpose}' cannot be a Dagster tag value; use 1-63 of [A-Za-z0-9_.-]")
        tags[PURPOSE_TAG] = purpose
    return tags
