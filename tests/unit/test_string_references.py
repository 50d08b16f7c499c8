"""Modules named as strings resolve: the import checker cannot see them, so this test does.

The lazy public names (`nb_assets._WHERE`), the step preload lists, the child processes
started with `python -m`, the parser's cache key, the files copied into the sandbox, the
image recipe and the console script all name modules or files by string; after a move,
a stale one would fail only when its code path runs. Nothing here imports Dagster.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import tomllib
from pathlib import Path

import nb_assets
from support.paths import REPO

PACKAGE = REPO / "nb_assets"
# Docker labels and the landing table are named nb_assets.* too, but are not modules.
NOT_MODULES = {
    "nb_assets.sandbox", "nb_assets.deploy", "nb_assets.owner", "nb_assets.deadline", "nb_assets.spare",
    "nb_assets.claim_by", "nb_assets.maker", "nb_assets.maker_uid", "nb_assets.run_folder", "nb_assets.code_project",
    "nb_assets.spare_pool", "nb_assets.boot_at",
}


def _module_strings() -> set[tuple[str, str]]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"nb_assets(\.\w+)+", node.value):
                found.add((node.value, str(path.relative_to(REPO))))
    return found


def _resolves(dotted: str) -> bool:
    """A module (found, not imported: some load Dagster), an attribute of one, or a lazy public name
    (`nb_assets.NotebookComponent`, as a defs.yaml's `type:` names it)."""
    package, _, name = dotted.partition(".")
    if package == "nb_assets" and name in nb_assets._WHERE:
        return True
    try:
        if importlib.util.find_spec(dotted) is not None:
            return True
    except ModuleNotFoundError:  # a.b.c where a.b is a module, not a package: c may be its attribute
        pass
    module, _, attribute = dotted.rpartition(".")
    source = importlib.util.find_spec(module)
    return source is not None and re.search(rf"^(def |class )?{attribute}\b", Path(source.origin).read_text(), re.M) is not None


def test_every_module_named_in_a_string_exists() -> None:
    strings = _module_strings()
    assert len(strings) > 20  # the walk found them
    stale = sorted((s, where) for s, where in strings if s not in NOT_MODULES and not _resolves(s))
    assert not stale, f"strings naming modules that do not exist: {stale}"


def test_the_lazy_public_names_load_from_where_they_say() -> None:
    for name, module in nb_assets._WHERE.items():
        assert getattr(importlib.import_module(module), name) is getattr(nb_assets, name), name


def test_the_files_copied_into_the_sandbox_and_the_image_recipe_exist() -> None:
    from nb_assets.sandbox import base, image

    for source in (*base.INBOX_FILES.values(), *base.RUNTIME_FILES):
        assert (PACKAGE / source).is_file(), source
    for name in image.RECIPE_FILES:
        assert (image.RECIPE_DIR / name).is_file(), name


def test_the_console_script_and_python_m_reach_the_cli() -> None:
    script = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["nb-assets"]
    module, _, function = script.partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    assert importlib.util.find_spec("nb_assets.cli.__main__") is not None
