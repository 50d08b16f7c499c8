"""`dg scaffold defs nb_assets.NotebookComponent notebooks/weekly_kpis`: a starter notebook and its defs.yaml.

The notebook is the one `nb-assets new` writes (project/starter.py): the runtime
cell, a `parameters` cell, one `%%sql` input and one `output()`. Its name is the
target folder's name, which also names its asset (`mart.<name>`).
"""

from __future__ import annotations

import dagster as dg
import pydantic

from nb_assets.project.starter import write_starter


class NotebookScaffoldParams(pydantic.BaseModel):
    """`--json-params` of `dg scaffold defs nb_assets.NotebookComponent`."""

    table: str = "raw.orders"  # the table the starter's %%sql input reads
    output: str | None = None  # the table it writes; default mart.<folder name>
    owners: list[str] = []


class NotebookScaffolder(dg.Scaffolder[NotebookScaffoldParams]):
    @classmethod
    def get_scaffold_params(cls) -> type[NotebookScaffoldParams]:
        return NotebookScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[NotebookScaffoldParams]) -> None:
        params = request.params or NotebookScaffoldParams()
        name = request.target_path.name
        notebook = write_starter(request.target_path / f"{name}.ipynb", table=params.table, output=params.output)
        attributes: dict[str, object] = {"path": notebook.name}
        if params.owners:
            attributes["owners"] = list(params.owners)
        dg.scaffold_component(request, attributes)
