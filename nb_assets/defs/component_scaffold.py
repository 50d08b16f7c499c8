"""`dg scaffold defs nb_assets.NotebookComponent notebooks/weekly_kpis`: a starter notebook and its defs.yaml.

The notebook is the one `nb-assets new` writes (project/starter.py): the runtime
cell, a `parameters` cell, one `%%sql` input and one `output()`. Its name is the
target folder's name, which also names its asset (`mart.<name>`).

With `--json-params '{"from": "path/to/existing.ipynb"}'` (or `--from ...`) the
component wraps an existing notebook instead: it is copied into the folder under
its own name (with `"copy": false`, the defs.yaml refers to it where it is), and
the defs.yaml's `params` are its parameters cell's values, as the parser reads them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pydantic

from nb_assets.analysis.parser import parse_notebook
from nb_assets.errors import DeclarationError, NbAssetsError
from nb_assets.project.starter import write_starter


class NotebookScaffoldParams(pydantic.BaseModel):
    """`--json-params` of `dg scaffold defs nb_assets.NotebookComponent`."""

    # dg validates the JSON by alias, then validates the model's dump again by field name: accept both.
    model_config = pydantic.ConfigDict(populate_by_name=True)

    table: str = "raw.orders"  # the table the starter's %%sql input reads
    output: str | None = None  # the table it writes; default mart.<folder name>
    owners: list[str] = []
    from_: str | None = pydantic.Field(default=None, alias="from")  # an existing notebook to wrap instead
    copy_: bool = pydantic.Field(default=True, alias="copy")  # copy it into the folder, else refer to it


class NotebookScaffolder(dg.Scaffolder[NotebookScaffoldParams]):
    @classmethod
    def get_scaffold_params(cls) -> type[NotebookScaffoldParams]:
        return NotebookScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[NotebookScaffoldParams]) -> None:
        params = request.params or NotebookScaffoldParams()
        attributes: dict[str, object]
        if params.from_:
            attributes = wrapped(Path(params.from_), request.target_path, copy=params.copy_)
        else:
            name = request.target_path.name
            notebook = write_starter(request.target_path / f"{name}.ipynb", table=params.table, output=params.output)
            attributes = {"path": notebook.name}
        if params.owners:
            attributes["owners"] = list(params.owners)
        dg.scaffold_component(request, attributes)


def wrapped(source: Path, folder: Path, *, copy: bool) -> dict[str, Any]:
    """The attributes of a component wrapping the notebook at `source` (relative to the current
    folder, as the shell gave it), copied into `folder` or referred to where it is."""
    source = source.resolve()
    if source.suffix != ".ipynb" or not source.is_file():
        raise DeclarationError(f"from: {source} is not a notebook file (.ipynb)")
    try:
        spec = parse_notebook(source)
    except NbAssetsError as exc:
        raise DeclarationError(f"from: {source}: {exc}") from exc
    if copy:
        target = folder / source.name
        if target.exists():
            raise DeclarationError(f"{target} exists already; remove it or pass \"copy\": false")
        shutil.copyfile(source, target)
        path = source.name
    else:
        path = Path(os.path.relpath(source, folder)).as_posix()
    attributes: dict[str, Any] = {"path": path}
    if spec.parameters:
        attributes["params"] = {p.name: p.default for p in spec.parameters}
    return attributes
