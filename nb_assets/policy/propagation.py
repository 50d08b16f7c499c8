"""Propagation: every table's labels, in dependency order, with each notebook passed through the gate."""

from __future__ import annotations

import graphlib
from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType

from nb_assets.errors import PolicyError, UnlabelledSourceError
from nb_assets.policy.gate import check_notebook
from nb_assets.policy.model import NotebookFlow, Policy
from nb_assets.policy.report import PolicyReport, Reclassification, Violation
from nb_assets.sql.table_names import missing, no_such_table


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
