"""Run folders for DockerSandbox.run without the host pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from nb_assets.sandbox.base import RunFolder


def make_run_folder(root: Path, *cells: str) -> RunFolder:
    """A run folder as execute.py lays it out, with a notebook of code cells."""
    folder = RunFolder(root).create()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, folder.parameterized_notebook)
    folder.parameters_file.write_text("{}")  # the runner injects these; none here
    folder.install_inbox_files()
    return folder


def result_json(folder: RunFolder) -> dict:
    return json.loads(folder.result_file.read_text())
