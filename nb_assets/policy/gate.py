"""The gate: may a notebook, run for its purpose, read the labels on its inputs?"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from nb_assets.errors import PolicyError
from nb_assets.policy.model import Mode, NotebookFlow, Policy
from nb_assets.policy.report import Violation


def purposes_that_may_read(policy: Policy, labels: Iterable[frozenset[str]]) -> tuple[str, ...]:
    """The policy's purposes whose zones cover every label in `labels` (the zones of a notebook's inputs)."""
    needed = frozenset().union(*labels)
    return tuple(p for p, zones in policy.purposes.items() if needed <= zones)


def _purpose_of(policy: Policy, flow: NotebookFlow, input_labels: Mapping[str, frozenset[str]]) -> str | None:
    """The purpose a flow is checked under; None only for a notebook that reads nothing."""
    purpose = flow.purpose if flow.purpose is not None else policy.default_purpose
    if purpose is None:
        if flow.inputs:
            raise PolicyError(
                f"notebook {flow.name} reads {', '.join(flow.inputs)} but declares no purpose, "
                f"and {policy.path} sets no default_purpose; {_purpose_choice(policy, flow, input_labels)}"
            )
        return None
    if purpose not in policy.purposes:
        raise PolicyError(
            f"notebook {flow.name}: unknown purpose '{purpose}'; {policy.path} declares: "
            f"{', '.join(policy.purposes) or '(none)'}"
        )
    return purpose


def _purpose_choice(policy: Policy, flow: NotebookFlow, input_labels: Mapping[str, frozenset[str]]) -> str:
    """Which purposes the author may declare: those that may read the inputs' zones, when they are known."""
    if not all(t in input_labels for t in flow.inputs):
        return f"declare the purpose it runs for, one of {policy.path}'s: {', '.join(policy.purposes) or '(none)'}"
    zones = sorted(frozenset().union(*(input_labels[t] for t in flow.inputs)))
    fitting = purposes_that_may_read(policy, (input_labels[t] for t in flow.inputs))
    if fitting:
        return f"declare the purpose it runs for; purposes that may read its inputs: {', '.join(fitting)}"
    return (f"no purpose in {policy.path} may read its inputs (zones {', '.join(zones)}); "
            f"declare one there, or read fewer zones")


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
    purpose = _purpose_of(policy, flow, input_labels)
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
