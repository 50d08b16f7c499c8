"""The public surface is stable and the layers stay apart, checked in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# The host's pure side: parsing, analysis, policy, lineage (docs/architecture.md).
PURE_MODULES = (
    "nb_assets.spec",
    "nb_assets.errors",
    "nb_assets.analysis.parser",
    "nb_assets.analysis.cell_ast",
    "nb_assets.sql.lineage",
    "nb_assets.sql.columns",
    "nb_assets.sql.escape_hatches",
    "nb_assets.sql.params",
    "nb_assets.locations",
    "nb_assets.sql.syntax_hints",
    "nb_assets.analysis.parse_many",
    "nb_assets.analysis.checks",
    "nb_assets.analysis.rules",
    "nb_assets.analysis.parameters",
    "nb_assets.project.instances",
    "nb_assets.project.partitions",
    "nb_assets.policy.zones",
    "nb_assets.policy.loader",
    "nb_assets.project.lineage",
    "nb_assets.sql.see_through",
    "nb_assets.runs.failure",
    "nb_assets.notify.notice",
    "nb_assets.notify.channels",
    "nb_assets.notify.ledger",
    "nb_assets.runs.history",
    "nb_assets.runs.report",
    "nb_assets.jupyter.context_pane",
    "nb_assets.project.declaration_checks",
    "nb_assets.project.cron_syntax",
    "nb_assets.sandbox.cron_ticks",
    "nb_assets.sandbox.ahead",
    "nb_assets.project.declare",
    "nb_assets.project.load_check",
    "nb_assets.warehouse.backends",
    "nb_assets.cli.lineage",
    "nb_assets.runs.guard",
    "nb_assets.sql.table_names",
    "nb_assets.runs.output",
    "nb_assets.runs.record_safety",
    "nb_assets.runs.record_safety_html",
    "nb_assets.jupyter.context_pane_project",
    "nb_assets.warehouse.writer",
    "nb_assets.warehouse.base",
    "nb_assets.warehouse.files",
    "nb_assets.warehouse.landing",
)
HEAVY = ("dagster", "duckdb", "docker")


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_load_no_dagster_duckdb_or_docker(module: str) -> None:
    loaded = _fresh(f"""
        import importlib, json, sys
        importlib.import_module({module!r})
        print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))
    """)
    assert loaded == [], f"{module} imports {loaded}"


def test_parsing_a_notebook_loads_no_dagster_duckdb_or_docker(tmp_path) -> None:
    from support.notebook_factory import RUNTIME, code, params, write_notebook

    path = write_notebook(tmp_path / "nb.ipynb", code(RUNTIME), params('ds = "x"'),
                          code("%%sql o\nSELECT * FROM raw.orders WHERE d = $ds"))
    loaded = _fresh(f"""
        import json, os, sys
        os.environ["NB_ASSETS_CACHE"] = {str(tmp_path / "cache")!r}
        from nb_assets import parse_notebook
        spec = parse_notebook({str(path)!r})
        assert spec.input_tables == ("raw.orders",), spec
        print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))
    """)
    assert loaded == []


@pytest.mark.parametrize("first", ["import nb_assets.analysis.parser", "import nb_assets.defs.build", "pass"])
def test_public_names_are_the_same_objects_whatever_was_imported_first(first: str) -> None:
    kinds = _fresh(f"""
        import json, inspect
        {first}
        import nb_assets
        from nb_assets import *  # noqa: F403
        names = {{n: getattr(nb_assets, n) for n in nb_assets.__all__}}
        assert names["parse_notebook"] is nb_assets.analysis.parser.parse_notebook
        kind = lambda v: "module" if inspect.ismodule(v) else "class" if inspect.isclass(v) else "function" if inspect.isfunction(v) else "other"
        print(json.dumps({{n: kind(v) for n, v in names.items()}}))
    """)
    assert kinds == {
        "NotebookAsset": "class", "DailyPartitions": "class", "FileDrop": "class", "Reclassify": "class", "SandboxLimits": "class",
        "NotebookTranslator": "class",
        "NotebookResource": "class", "NotebookComponent": "class", "NotebookProjectSettings": "class", "build_notebook_assets": "function", "notebook_definitions": "function",
        "parse_notebook": "function", "load_declarations_yaml": "function",
        "Notifications": "class", "SmtpChannel": "class", "WebhookChannel": "class",
        "not_null": "function", "unique": "function", "accepted_values": "function", "row_count": "function",
        "relationships": "function", "freshness_column": "function", "sql_check": "function",
        "Source": "class", "load_sources_yaml": "function",
    }


def test_loading_the_notebook_runtime_loads_no_host_module_until_nb_context_is_used() -> None:
    """The sandbox has only the runtime: `%load_ext` must not need the context pane or the interactive `%%sql`."""
    loaded = _fresh("""
        import json, sys
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.extension_manager.load_extension("nb_assets.notebook")
        assert "nb_context" in shell.magics_manager.lsmagic()["line"]
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"dagster", "duckdb", "docker"}
                                or m in ("nb_assets.jupyter.context_pane", "nb_assets.jupyter.interactive"))))
    """)
    assert loaded == []
