"""`nb-assets adopt`: the whole notebook's edits, as a reviewable diff, written only when asked.

Reads the `.ipynb` JSON itself (not nbformat) so that what it does not edit
(metadata, outputs of untouched cells, cell ids) comes back byte-for-byte the
same in meaning; rewrites.py decides what each cell becomes.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb_assets.adopt.rewrites import RUNTIME_LINE, CellEdit, NewCell, rewrite_python, rewrite_sql
from nb_assets.errors import NotebookParseError
from nb_assets.locations import nearest_project
from nb_assets.sql.source_calls import project_relative

PARAMETERS_CELL = "# Parameters: a scheduled run's values are put after this cell (papermill's `parameters` tag)"
_PATH = re.compile(r'\bpath="([^"]*)"')  # in a proposed Source(...) (rewrites.source_declaration)
_PLACEHOLDER = re.compile(r"\$([A-Za-z_]\w*)|\{\{\s*([A-Za-z_]\w*)\s*\}\}")


@dataclass
class Adoption:
    """What `adopt` proposes for one notebook."""

    path: str
    document: dict[str, Any]
    before: list[dict[str, Any]]
    after: list[dict[str, Any]]
    declarations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return _text(self.before) != _text(self.after)

    def diff(self) -> str:
        """A unified diff of the cells (as `# %% [type] cell N` blocks) and of the declarations to add."""
        name = Path(self.path).name
        lines = list(difflib.unified_diff(
            _text(self.before).splitlines(keepends=True), _text(self.after).splitlines(keepends=True),
            f"a/{name}", f"b/{name}",
        ))
        if self.declarations:
            added = ["# declare in the project's source registry: nb_assets.Source(...) in definitions.py, or `sources:` in "
                     "declarations.yaml loaded with load_sources_yaml; a path is relative to the project, not to the notebook\n"]
            added += [f"{d}\n" for d in self.declarations]
            lines += list(difflib.unified_diff([], added, "/dev/null", "b/declarations (sources to declare)"))
        return "".join(lines)

    def write(self) -> None:
        """Replace the notebook file atomically with the proposed cells."""
        document = dict(self.document, cells=self.after)
        target = Path(self.path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.adopt")
        tmp.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, target)


def plan_adoption(path: str | Path) -> Adoption:
    """Read a notebook and propose its edits; nothing is written."""
    path = Path(path)
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise NotebookParseError(f"{path}: cannot read notebook: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookParseError(f"{path}: not a notebook: invalid JSON ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list) or document.get("nbformat") != 4:
        raise NotebookParseError(f"{path}: not a Jupyter notebook in nbformat 4")
    with_ids = int(document.get("nbformat_minor", 0)) >= 5
    before = [dict(c) for c in document["cells"]]
    adoption = Adoption(str(path), document, before, [])
    runtime_loaded = False
    for cell in before:
        source = _source(cell)
        if cell.get("cell_type") != "code":
            adoption.after.append(cell)
            continue
        text = source.lstrip()
        if text.startswith("%%sql"):
            edit = rewrite_sql(source)
        elif text.startswith("%%"):
            edit = CellEdit()
        else:
            edit = rewrite_python(source, runtime_loaded)
        runtime_loaded = runtime_loaded or any(RUNTIME_LINE in c.source for c in (edit.cells or [])) or (
            edit.cells is None and RUNTIME_LINE in source
        )
        adoption.after.extend(_cells(cell, edit, with_ids))
        placed = [_placed(d, path) for d in edit.declarations]
        adoption.declarations += [d for d in placed if d not in adoption.declarations]
        adoption.notes += edit.notes
    _ensure_runtime(adoption, with_ids)
    _ensure_parameters(adoption, with_ids)
    return adoption


def _placed(declaration: str, notebook: Path) -> str:
    """A proposed Source's path as the project names it: the notebook's kernel reads `../data/x.csv`
    from the notebook's folder, a Source's path is relative to the project (the nearest folder at or
    above the notebook holding a definitions.py). Without a project it stays as written, and the
    diff's header line says the path is the project's."""
    found = _PATH.search(declaration)
    folder = notebook.resolve().parent
    root = nearest_project(folder)
    if found is None or root is None:
        return declaration
    placed = project_relative(found.group(1), folder.as_posix(), root.as_posix())
    return declaration[:found.start(1)] + placed + declaration[found.end(1):]


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _cells(original: dict[str, Any], edit: CellEdit, with_ids: bool) -> list[dict[str, Any]]:
    if edit.cells is None:
        return [original]
    made = []
    for number, new in enumerate(edit.cells):
        cell = _new_cell(new, with_ids) if number or new.cell_type != original.get("cell_type") else dict(original)
        cell["source"] = new.source
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        made.append(cell)
    return made


def _new_cell(new: NewCell, with_ids: bool) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": new.cell_type, "metadata": {"tags": list(new.tags)} if new.tags else {}, "source": new.source}
    if new.cell_type == "code":
        cell.update(outputs=[], execution_count=None)
    if with_ids:
        cell["id"] = uuid.uuid4().hex[:8]
    return cell


def _reads_sql(cell: dict[str, Any]) -> bool:
    source = _source(cell)
    return cell.get("cell_type") == "code" and (
        source.lstrip().startswith(("%%sql", "%%source")) or re.search(r"(?m)^\s*(?:\w+\s*=\s*)?%sql\s", source) is not None
    )


def _ensure_runtime(adoption: Adoption, with_ids: bool) -> None:
    first_sql = next((i for i, c in enumerate(adoption.after) if _reads_sql(c)), None)
    if first_sql is None:
        return
    if any(RUNTIME_LINE in _source(c) for c in adoption.after[:first_sql] if c.get("cell_type") == "code"):
        return
    adoption.after.insert(first_sql, _new_cell(NewCell("code", RUNTIME_LINE), with_ids))
    adoption.notes.append(f"added a `{RUNTIME_LINE}` cell before the first SQL cell: it runs %%sql in scheduled runs and in Jupyter")


def _ensure_parameters(adoption: Adoption, with_ids: bool) -> None:
    """Tag the cell that assigns the values the SQL binds, or add an empty `parameters` cell."""
    code = [c for c in adoption.after if c.get("cell_type") == "code"]
    if any("parameters" in (c.get("metadata") or {}).get("tags", []) for c in code):
        return
    bound = {a or b for c in code if _reads_sql(c) for a, b in _PLACEHOLDER.findall(_source(c))}
    for cell in code:
        names = _literal_assignments(_source(cell))
        if names and names & bound:
            metadata = dict(cell.get("metadata") or {})
            metadata["tags"] = [*metadata.get("tags", []), "parameters"]
            # a copy: `before` holds the same dict, and the diff compares the two
            adoption.after[next(i for i, c in enumerate(adoption.after) if c is cell)] = dict(cell, metadata=metadata)
            adoption.notes.append(f"tagged the cell assigning {', '.join(sorted(names & bound))} `parameters`: the SQL binds them")
            return
    first = next((i for i, c in enumerate(adoption.after) if c.get("cell_type") == "code"), len(adoption.after))
    adoption.after.insert(first, _new_cell(NewCell("code", PARAMETERS_CELL, ("parameters",)), with_ids))
    adoption.notes.append("added an empty cell tagged `parameters`, where a scheduled run's values go")


def _literal_assignments(source: str) -> set[str]:
    """Names a cell assigns when it holds nothing but `name = literal` lines; else empty."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            return set()
        try:
            ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return set()
        names.add(node.targets[0].id)
    return names


def _text(cells: list[dict[str, Any]]) -> str:
    blocks = []
    for cell in cells:  # no cell numbers: one inserted cell would renumber every later block
        tags = (cell.get("metadata") or {}).get("tags", [])
        head = f"# %% [{cell.get('cell_type')}]" + (f" tags={','.join(tags)}" if tags else "")
        blocks.append(f"{head}\n{_source(cell).rstrip()}\n")
    return "\n".join(blocks)
