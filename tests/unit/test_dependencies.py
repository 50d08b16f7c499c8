"""The declared dependencies are what the package imports: nothing missing, nothing extra.

Every third-party module imported anywhere in nb_assets (at top level or inside a function)
belongs to a distribution in [project.dependencies]; every distribution declared there is
imported, or is one of the few needed without an import (each named here with its reason).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from support.paths import REPO

NEEDED_WITHOUT_IMPORT = {
    "dagster-webserver": "`dagster dev` and the deployment's webserver",
    "dagster-postgres": "the deployment's storage, named in its dagster.yaml",
    "dagster-docker": "the deployment's run launcher, named in its dagster.yaml",
    "ipykernel": "the kernel papermill starts",
    "matplotlib": "the charts notebooks draw in that kernel",
    "s3fs": "fsspec's back end for s3:// declared sources (nb_assets/sources/files.py)",
    "dagster-dg-cli": "`dg`, which lists, scaffolds and checks NotebookComponent (docs/components.md)",
}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imported_modules() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "nb_assets").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "nb_assets"}


def test_declared_dependencies_are_what_the_package_imports() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    owners = importlib.metadata.packages_distributions()
    imported = {m: {_name(d) for d in owners.get(m, [m])} for m in _imported_modules()}

    undeclared = {m: dists for m, dists in imported.items() if not dists & declared}
    assert not undeclared, f"imported by nb_assets but not in [project.dependencies]: {undeclared}"
    used = set().union(*imported.values())
    unused = declared - used - set(NEEDED_WITHOUT_IMPORT)
    assert not unused, f"declared but never imported (a test extra, or a reason in NEEDED_WITHOUT_IMPORT?): {unused}"
    assert set(NEEDED_WITHOUT_IMPORT) <= declared
