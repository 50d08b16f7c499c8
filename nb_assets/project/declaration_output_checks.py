"""Output checks on a declaration: `NotebookAsset(checks={"mart.x": [unique("id")]})` or, in
declarations.yaml, `checks: {mart.x: [{unique: id}, {row_count: {min: 1}}]}`.

One model for both and for the notebook's own `output(..., checks=[...])`: the YAML items call the
same constructors (inbox/checks.py). A declaration's checks add to the notebook's; they are keyed
by the table the output loads into, or by the name the notebook writes (with instances, that name
stands for every instance's table). Why on the declaration too: the owner of a schedule (not always
the notebook's author) can require checks without editing the notebook, and `nb-assets schedule`
writes them next to the trigger. No Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from nb_assets.analysis.output_checks import sql_check_findings
from nb_assets.inbox.checks import CONSTRUCTORS, OutputCheck, check_list
from nb_assets.spec import NotebookSpec

YAML_HELP = (
    "checks: maps an output table to a list of checks, each one key naming its kind, e.g. "
    "{mart.orders: [{unique: order_id}, {not_null: [order_id]}, {row_count: {min: 1}}, "
    "{accepted_values: {column: status, values: [paid]}}, {sql: \"SELECT ...\"}]}"
)


def checks_from_yaml(value: Any) -> dict[str, tuple[OutputCheck, ...]]:
    """The `checks:` value of a YAML declaration; ValueError saying what is wrong."""
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise ValueError(YAML_HELP)
    return {str(table): check_list(str(table), [check_from_yaml(table, item) for item in items]) for table, items in value.items()}


def check_from_yaml(table: str, item: Any) -> OutputCheck:
    if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in CONSTRUCTORS:
        raise ValueError(f"checks of {table}: each check is one key of {', '.join(CONSTRUCTORS)}; got {item!r}")
    kind, args = next(iter(item.items()))
    try:
        if isinstance(args, dict):
            return CONSTRUCTORS[kind](**args)  # type: ignore[operator]
        return CONSTRUCTORS[kind](args)  # type: ignore[operator]
    except TypeError as exc:
        raise ValueError(f"checks of {table}: {kind}: {exc}") from exc


def check_as_yaml(check: OutputCheck) -> dict[str, Any]:
    """The YAML item that reads back as `check` (declarations_yaml writes declarations with it)."""
    args: dict[str, Any] = {}
    if check.kind in ("not_null", "unique"):
        args["columns"] = list(check.columns)
    elif check.kind in ("accepted_values", "relationships", "freshness_column"):
        args["column"] = check.columns[0]
    if check.kind == "accepted_values":
        args["values"] = list(check.values)
    if check.kind == "row_count":
        args.update({k: v for k, v in (("min", check.min), ("max", check.max)) if v is not None})
    if check.kind == "relationships":
        args["to"] = check.to
    if check.kind == "freshness_column":
        args["max_age"] = check.max_age_s
    if check.kind == "sql":
        args["query"] = check.query
    if check.severity != "error":
        args["severity"] = check.severity
    default = CONSTRUCTORS[check.kind](**args)  # type: ignore[operator]
    if default.name != check.name:
        args["name"] = check.name
    return {check.kind: args}


def with_declared_checks(
    spec: NotebookSpec, checks: Mapping[str, Sequence[OutputCheck]], where: str, dialect: str = "duckdb", *, instance: bool = False,
) -> tuple[NotebookSpec, list[str]]:
    """`spec` whose outputs also carry the declaration's checks; and the problems (an unknown table,
    a name used twice, a `sql` check the static SQL checks refuse). For one `instance` of a declaration
    with instances, a key naming another instance's table is not a problem: it is that instance's."""
    if not checks:
        return spec, []
    problems: list[str] = []
    known = {o.table for o in spec.outputs} | {o.written_as for o in spec.outputs if o.written_as}
    for table in checks:
        if table not in known and not instance:
            problems.append(f"{where}: checks: {table} is not an output of the notebook (outputs: {', '.join(sorted(known)) or 'none'})")
    outputs = []
    for out in spec.outputs:
        added = tuple(checks.get(out.table, ())) + (tuple(checks.get(out.written_as, ())) if out.written_as else ())
        if not added:
            outputs.append(out)
            continue
        try:
            merged = check_list(out.table, [*out.checks, *added])
        except ValueError as exc:
            problems.append(f"{where}: {exc} (the notebook's and the declaration's checks together)")
            continue
        for check in added:
            problems.extend(f"{where}: {f.message}" for f in sql_check_findings(out.table, check, dialect))
        outputs.append(replace(out, checks=merged))
    return (replace(spec, outputs=tuple(outputs)), problems) if not problems else (spec, problems)
