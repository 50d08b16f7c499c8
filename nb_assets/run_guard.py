"""An ad hoc `nb-assets run` replaces only tables that are its notebook's own.

Loading a project (Dagster) and `nb-assets schedule` refuse a second writer of a
table: one table, one writer. An ad hoc run loads whatever its notebook
outputs, so before anything runs each output is checked against two owners:

- the project, its nearest definitions.py read without Dagster: a table another
  declared notebook writes, or a source some declared notebook reads (directly,
  or through a view when the warehouse's catalog can be read);
- the warehouse: a table that exists and does not name this notebook as its
  writer. Every load records its notebook in the table's comment
  (warehouse.WRITER_COMMENT), so a notebook run ad hoc twice replaces its own
  table, while a table loaded by hand, by `nb-assets land` or by another
  notebook is refused, with or without a definitions.py.

A table the project declares this very notebook to write is its own. `--force`
runs anyway, once the caller has said what it will replace.

`ad_hoc_taken` reads the warehouse (its catalog, its tables' comments and row
counts) and imports DuckDB only then; the rest only parses notebooks. No Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nb_assets.catalog_lineage import Catalog, see_through_all
from nb_assets.errors import NbAssetsError, TableOwnedError
from nb_assets.spec import NotebookSpec


@dataclass(frozen=True)
class Owners:
    """What a project says about the tables of one notebook run ad hoc."""

    mine: frozenset[str]  # the tables its declaration loads (an instance's mapped names included)
    writers: Mapping[str, str]  # table -> the other declared notebook that writes it
    readers: Mapping[str, tuple[str, ...]]  # table -> the other declared notebooks that read it
    definitions: Path | None = None


NO_PROJECT = Owners(frozenset(), {}, {})


@dataclass(frozen=True)
class Taken:
    """An output of the notebook that belongs to someone else."""

    table: str
    owner: str  # "written by notebook clean_orders (definitions.py); ...", "a source read by ..."
    rows: int | None = None  # its rows now; None where the warehouse does not have it

    def line(self) -> str:
        now = f" ({self.rows} rows now)" if self.rows is not None else ""
        return f"- {self.table}{now}: {self.owner}"


def ad_hoc_taken(notebook: Path, spec: NotebookSpec, project: Any, definitions: Path | None, warehouse: str) -> list[Taken]:
    """The outputs of `spec`, run ad hoc against `warehouse`, that are not its own (the
    warehouse is only read: its catalog, its tables' comments, the rows of those taken)."""
    from nb_assets.catalog import open_catalog
    from nb_assets.locations import redact
    from nb_assets.notebook_parser import dialect_of
    from nb_assets.warehouse import open_warehouse

    if not spec.output_tables:
        return []
    owners = NO_PROJECT
    if project is not None and definitions is not None:
        catalog = open_catalog(warehouse)
        dialect = dialect_of(project.warehouse or warehouse)
        owners = project_owners(notebook, project, definitions, dialect, catalog if isinstance(catalog, Catalog) else None)
    store = open_warehouse(warehouse)
    taken = taken_outputs(spec, owners, store.recorded_writers(spec.output_tables), redact(warehouse))
    return [replace(t, rows=getattr(store.describe(t.table), "rows", None)) for t in taken]


def project_owners(notebook: Path, project: Any, definitions: Path, dialect: str, catalog: Catalog | None) -> Owners:
    """`project` is a definitions_file.ProjectDeclarations. Notebooks that cannot be read
    are left out: the project's load reports them, this run is not theirs to judge."""
    from nb_assets.instances import expand_instances, instance_spec
    from nb_assets.notebook_parser import parse_notebook

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
    writers = {t: spec.name for spec in others for t in spec.output_tables}
    readers: dict[str, list[str]] = {}
    for spec in others:
        for table in dict.fromkeys((*spec.named_relations, *spec.input_tables)):
            if table not in writers:
                readers.setdefault(table, []).append(spec.name)
    return Owners(frozenset(mine), writers, {t: tuple(sorted(set(r))) for t, r in readers.items()}, definitions)


def taken_outputs(spec: NotebookSpec, owners: Owners, recorded: Mapping[str, str | None], warehouse: str) -> list[Taken]:
    """The outputs of `spec` that are not its own; `recorded` is what the warehouse says of
    each output that exists: the notebook its comment names as writer, or None."""
    where = f" ({owners.definitions.name})" if owners.definitions else ""
    taken = []
    for table in spec.output_tables:
        if table in owners.mine:
            continue
        if table in owners.writers:
            owner = f"written by notebook {owners.writers[table]}{where}; one table, one writer"
        elif table in owners.readers:
            owner = f"a source read by {', '.join(owners.readers[table])}{where}"
        elif table not in recorded or recorded[table] == spec.name:
            continue
        elif recorded[table] is not None:
            owner = f"already in {warehouse}, loaded by notebook {recorded[table]}"
        else:
            owner = f"already in {warehouse}, and not loaded by a notebook (by hand, `nb-assets land` or another tool)"
        taken.append(Taken(table, owner))
    return taken


def refusal(path: str, spec: NotebookSpec, taken: Sequence[Taken]) -> TableOwnedError:
    return TableOwnedError(
        f"{path} would replace tables that are not its own; nothing ran:\n"
        + "\n".join(t.line() for t in taken)
        + f'\nwrite a new table instead (e.g. output("mart.{spec.name}", df)), or pass --force to replace '
        + ("it" if len(taken) == 1 else "them") + " anyway"
    )
