"""`nb-assets lab [PROJECT]`: JupyterLab on a project, ready for `%%sql` on its warehouse.

The server runs from this environment, so its `python3` kernel is this Python
and `%load_ext nb_assets.notebook` loads; NB_ASSETS_WAREHOUSE is set to the
warehouse the project's definitions name (the one its scheduled runs read), so
`%%sql` in any notebook of the project reads the same tables. It listens on
127.0.0.1 only, with the token JupyterLab makes (or JUPYTER_TOKEN, its own
setting). Hidden paths are served, so the run records %nb_context links to
(under .nb_assets/) open. JupyterLab comes from the `lab` extra: pip install 'nb_assets[lab]'.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from nb_assets.errors import DeclarationError


def add_lab_command(sub: Any) -> None:
    lab = sub.add_parser("lab", help="open JupyterLab on a project, %%%%sql reading its warehouse")
    lab.add_argument("project", nargs="?", type=Path, default=Path("."), help="the project folder (default: here)")
    lab.add_argument("--port", type=int, default=None, help="default: JupyterLab's (8888, or the next free one)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser; the URL is printed")
    lab.set_defaults(func=cmd_lab)


def project_warehouse(project: Path) -> str:
    """The warehouse the project's definitions name, else its warehouse.duckdb."""
    definitions = project / "definitions.py"
    if definitions.is_file():
        from nb_assets.project.definitions_file import load_declarations

        warehouse = load_declarations(definitions).warehouse
        if warehouse:
            return warehouse
    return str(project / "warehouse.duckdb")


def lab_command(project: Path, port: int | None, no_browser: bool) -> tuple[list[str], dict[str, str]]:
    """The JupyterLab command line and environment for `project` (the test starts the same)."""
    project = project.resolve()
    if not project.is_dir():
        raise DeclarationError(f"no such project folder: {project}")
    if importlib.util.find_spec("jupyterlab") is None:
        raise DeclarationError("JupyterLab is not installed here: pip install 'nb_assets[lab]' (make setup installs it)")
    env = dict(os.environ, NB_ASSETS_WAREHOUSE=project_warehouse(project))
    argv = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={project}",
            # The server itself reaches nothing: no extension installs from PyPI, no update check, no news feed.
            "--LabApp.extension_manager=readonly", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=None",
            # %nb_context links to run records under the project's hidden .nb_assets/ folder, which Jupyter
            # Server refuses (404) unless told. It has no per-folder setting, and a token holder already
            # reads any file through a kernel, so this widens nothing they could not do.
            "--ContentsManager.allow_hidden=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # a dev container's root: JupyterLab refuses it unless told
        argv.append("--ServerApp.allow_root=True")
    argv += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"] if port is not None else []
    argv += ["--no-browser"] if no_browser else []
    return argv, env


def cmd_lab(args: argparse.Namespace) -> int:
    argv, env = lab_command(args.project, args.port, args.no_browser)
    warehouse = env["NB_ASSETS_WAREHOUSE"]
    if "://" not in warehouse and not Path(warehouse).exists():
        print(f"nb-assets lab: warning: {warehouse} does not exist yet; %%sql needs it (the demo: make seed)", file=sys.stderr)
    print(f"nb-assets lab: JupyterLab on {args.project.resolve()}, %%sql reading {warehouse}", flush=True)
    os.execve(argv[0], argv, env)  # JupyterLab is the process from here on: Ctrl-C stops it as usual
    return 0  # not reached
