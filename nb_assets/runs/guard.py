"""An ad hoc `nb-assets run` replaces only tables that are its notebook's own.

Loading a project (Dagster) and `nb-assets schedule` refuse a second writer of a
table: one table, one writer. An ad hoc run loads whatever its notebook
outputs, so before anything runs each output is checked against two owners:

- the project, its nearest definitions.py read without Dagster: a table another
  declared notebook writes, or a source some declared notebook reads (directly,
  or through a view when the warehouse's catalog can be read);
- the warehouse: a table that exists and does not name this notebook as its
  writer. Every load records its notebook in the table's comment, by name and
  by where it lives (writer_identity), so a notebook run ad hoc twice replaces
  its own table, while a table loaded by hand, by `nb-assets land`, by another
  notebook, or by another file of the same name is refused, with or without a
  definitions.py. A comment that names the notebook only (loads before locations
  were recorded) cannot tell two files of one name apart: it is refused too, and
  `--force` once makes the table this file's.

A table the project declares this very notebook to write is its own. `--force`
runs anyway, once the caller has been told what it will replace; but first
`refuse_anyway` refuses what --force would not change (error findings, bad
parameters, a view that cannot be seen through, a missing table), so neither
--force is offered nor a replacement announced for a run that cannot go ahead.

`ad_hoc_takeover` reads the warehouse (its catalog, its tables' comments and row
counts) and imports DuckDB only then; the rest only parses notebooks. No Dagster.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nb_assets.sql.see_through import Catalog, see_through_all
from nb_assets.errors import NbAssetsError, TableOwnedError
from nb_assets.spec import NotebookSpec
from nb_assets.warehouse.writer import Writer, notebook_location, writer_of_notebook

SUGGESTED_SCHEMA = "mart"


@dataclass(frozen=True)
class Owners:
    """What a project says about the tables of one notebook run ad hoc."""

    mine: frozenset[str]  # the tables its declaration loads (an instance's mapped names included)
    writers: Mapping[str, str]  # table -> where the other declared notebook that writes it lives (notebook_location)
    readers: Mapping[str, tuple[str, ...]]  # table -> the other declared notebooks that read it
    definitions: Path | None = None
    names: frozenset[str] = frozenset()  # the names of the other declared notebooks


NO_PROJECT = Owners(frozenset(), {}, {})


@dataclass(frozen=True)
class Taken:
    """An output of the notebook that belongs to someone else."""

    table: str
    owner: str  # "written by the declared notebook notebooks/clean_orders.ipynb (definitions.py); ...", "a source read by ..."
    rows: int | None = None  # its rows now; None where the warehouse does not have it

    def line(self) -> str:
        now = f" ({self.rows} rows now)" if self.rows is not None else ""
        return f"- {self.table}{now}: {self.owner}"

    def as_json(self) -> dict[str, Any]:
        return {"table": self.table, "owner": self.owner, "rows_before": self.rows}


@dataclass(frozen=True)
class Takeover:
    """The outputs of a notebook run ad hoc that are not its own, in which warehouse,
    and a table no one owns that it could write instead."""

    notebook: str  # as the caller named it
    warehouse: str  # as messages and records name it (a URL's password redacted)
    taken: tuple[Taken, ...]
    instead: str

    def __bool__(self) -> bool:
        return bool(self.taken)

    def refusal(self) -> TableOwnedError:
        them = "it" if len(self.taken) == 1 else "them"
        return TableOwnedError(
            f"{self.notebook} would replace tables in {self.warehouse} that are not its own; nothing ran:\n"
            + "\n".join(t.line() for t in self.taken)
            + f'\nwrite a new table instead (e.g. output("{self.instead}", df)), or pass --force to replace {them} anyway'
        )

    def announcement(self) -> str:
        return (f"--force: {self.notebook} will replace tables in {self.warehouse} that are not its own:\n"
                + "\n".join(t.line() for t in self.taken))


def ad_hoc_takeover(notebook: Path, spec: NotebookSpec, project: Any, definitions: Path | None, warehouse: str) -> Takeover:
    """The outputs of `spec`, run ad hoc against `warehouse`, that are not its own (the
    warehouse is only read: its catalog, its tables' comments, the rows of those taken)."""
    from nb_assets.locations import dialect_of, redact
    from nb_assets.warehouse.backends import open_catalog, open_warehouse

    if not spec.output_tables:
        return Takeover(str(notebook), redact(warehouse), (), "")
    owners = NO_PROJECT
    if project is not None and definitions is not None:
        catalog = open_catalog(warehouse)
        dialect = dialect_of(project.warehouse or warehouse)
        owners = project_owners(notebook, project, definitions, dialect, catalog if isinstance(catalog, Catalog) else None)
    store = open_warehouse(warehouse)
    me = writer_of_notebook(notebook)
    recorded = store.recorded_writers(spec.output_tables)
    taken = taken_outputs(spec, me, owners, recorded)
    if not taken:
        return Takeover(str(notebook), redact(warehouse), (), "")
    taken = [replace(t, rows=getattr(store.describe(t.table), "rows", None)) for t in taken]
    others = {*owners.names, *(w.name for w in recorded.values() if w is not None and w != me)}
    candidates = table_candidates(spec, notebook, others)
    instead = free_table(candidates, spec, me, owners, store.recorded_writers(candidates))
    return Takeover(str(notebook), redact(warehouse), tuple(taken), instead)


def project_owners(notebook: Path, project: Any, definitions: Path, dialect: str, catalog: Catalog | None) -> Owners:
    """`project` is a definitions_file.ProjectDeclarations. Notebooks that cannot be read
    are left out: the project's load reports them, this run is not theirs to judge."""
    from nb_assets.project.instances import expand_instances, instance_spec
    from nb_assets.analysis.parser import parse_notebook

    me = notebook.resolve()
    mine: set[str] = set()
    others: list[NotebookSpec] = []
    for decl in expand_instances(project.notebooks)[0]:
        path = decl.notebook_file(project.base_dir)
        try:
            spec = instance_spec(parse_notebook(path, dialect), decl)
        except NbAssetsError:
            continue
        if path.resolve() == me:
            mine.update(spec.output_tables)
        else:
            others.append(spec)
    if catalog is not None:  # a view over a source is read through to the source
        others = see_through_all(others, catalog)
    writers = {t: notebook_location(spec.path) for spec in others for t in spec.output_tables}
    readers: dict[str, list[str]] = {}
    for spec in others:
        for table in dict.fromkeys((*spec.named_relations, *spec.input_tables)):
            if table not in writers:
                readers.setdefault(table, []).append(spec.name)
    return Owners(frozenset(mine), writers, {t: tuple(sorted(set(r))) for t, r in readers.items()}, definitions,
                  frozenset(spec.name for spec in others))


def taken_outputs(spec: NotebookSpec, me: Writer, owners: Owners, recorded: Mapping[str, Writer | None]) -> list[Taken]:
    """The outputs of `spec` (the notebook `me`) that are not its own; `recorded` is what the
    warehouse says of each output that exists: the notebook its comment names as writer, or None."""
    where = f" ({owners.definitions.name})" if owners.definitions else ""
    taken = []
    for table in spec.output_tables:
        if table in owners.mine:
            continue
        writer = recorded.get(table)
        if table in owners.writers:
            owner = f"written by the declared notebook {owners.writers[table]}{where}; one table, one writer"
        elif table in owners.readers:
            owner = f"a source read by {', '.join(owners.readers[table])}{where}"
        elif table not in recorded or writer == me:
            continue
        elif writer is None:
            owner = "already in the warehouse, not loaded by a notebook (by hand, `nb-assets land` or another tool)"
        elif writer.location is None and writer.name == me.name:
            owner = (f"already in the warehouse, loaded by a notebook named {writer.name} before loads recorded "
                     "which file: if it was this one, pass --force once (its loads then record this file)")
        else:
            owner = f"already in the warehouse, loaded by notebook {writer}"
        taken.append(Taken(table, owner))
    return taken


def table_candidates(spec: NotebookSpec, notebook: Path, others: Collection[str]) -> list[str]:
    """Tables to suggest writing instead, best first: `mart.<name>`; when another notebook has
    the same name (`others`: the names of the other owners), `mart.<folder>_<name>`, so the
    suggestion says which of the two this is."""
    from nb_assets.spec import notebook_name

    stem = spec.name
    if stem in others:
        stem = f"{notebook_name(notebook.resolve().parent.name)}_{stem}"
    return [f"{SUGGESTED_SCHEMA}.{stem}", *(f"{SUGGESTED_SCHEMA}.{stem}_{n}" for n in range(2, 10))]


def free_table(candidates: Sequence[str], spec: NotebookSpec, me: Writer, owners: Owners,
               recorded: Mapping[str, Writer | None]) -> str:
    """The first candidate no one else owns: not written or read by a declared notebook, not one
    this notebook reads or already writes, not in the warehouse unless this notebook loaded it."""
    busy = {*spec.output_tables, *spec.input_tables, *spec.named_relations, *owners.writers, *owners.readers, *owners.mine}
    free = [t for t in candidates if t not in busy and (t not in recorded or recorded[t] == me)]
    return (free or candidates)[0]


def refuse_anyway(spec: NotebookSpec, params: Mapping[str, Any], warehouse: str) -> None:
    """Raise what the run would be refused for with or without --force, as run_pipeline would:
    error findings (reads-own-output, ...), bad parameters, and, when the warehouse's catalog can
    be read now, a view that cannot be seen through or a table the warehouse lacks."""
    from nb_assets.runs.pipeline import refuse_missing_tables, runnable_parameters, seen_through_or_refused
    from nb_assets.warehouse.backends import open_catalog

    runnable_parameters(spec, params)
    if not spec.inputs:
        return
    catalog = open_catalog(warehouse)
    if not isinstance(catalog, Catalog):  # cannot be read now: the run's own prefetch says why
        return
    seen_through_or_refused(spec, catalog)
    refuse_missing_tables(spec, catalog)
