"""The starter notebook: the one template behind `nb-assets new` (and any future scaffold).

The template (templates/starter.ipynb) is a valid notebook as written: the
runtime cell, a `parameters` cell, one `%%sql` input, one `output()` and the
Schedule form's cell (`%nb_schedule`, which a scheduled run skips). Its
placeholders ({title}, {table}, {output}) are replaced in the cells' text,
never by str.format over the JSON, so braces an author adds stay as they are.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from nb_assets.errors import DeclarationError
from nb_assets.inbox.contract import TABLE_NAME

TEMPLATE = "starter.ipynb"
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def template_text() -> str:
    """The template as shipped in the package."""
    return files("nb_assets.project").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")


def starter_notebook(name: str, *, table: str = "raw.orders", output: str | None = None) -> dict[str, Any]:
    """The starter notebook for `name` (a lowercase identifier, which becomes the notebook's
    asset name), reading `table` and writing `output` (default `mart.<name>`)."""
    if not _NAME.fullmatch(name):
        raise DeclarationError(f"notebook name {name!r}: use lowercase letters, digits and _ (it names the asset), e.g. daily_sales")
    output = output or f"mart.{name}"
    for what, value in (("--table", table), ("--output", output)):
        if not TABLE_NAME.match(value):
            raise DeclarationError(f"{what} {value!r}: a lowercase 'schema.table' name, e.g. raw.orders")
    values = {"{title}": name.replace("_", " ").capitalize(), "{table}": table, "{output}": output}
    notebook = json.loads(template_text())
    for cell in notebook["cells"]:
        text = "".join(cell["source"])
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        cell["source"] = text.splitlines(keepends=True)
    return notebook


def write_starter(path: Path, *, table: str = "raw.orders", output: str | None = None) -> Path:
    """Write the starter notebook to `path` (its stem is the notebook's name); never over a file."""
    if path.suffix != ".ipynb":
        raise DeclarationError(f"{path}: a notebook file ends in .ipynb")
    if path.exists():
        raise DeclarationError(f"{path} exists already; pick another name or remove it")
    notebook = starter_notebook(path.stem, table=table, output=output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
