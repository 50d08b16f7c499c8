"""Every fenced example in README.md and docs/*.md runs or is checked, and the manual builds.

- python: a notebook written cell by cell (`# cell N` lines) is parsed by the project's parser and
  run by `nb-assets run` in the local sandbox. Any other block runs in a copy of the demo project,
  in the namespace its definitions.py leaves (so `NOTEBOOKS`, `WAREHOUSE` and `BASE_DIR` are the
  demo's), the blocks of one page in order; a `NotebookAsset` a block leaves as a bare expression
  is declared with the demo's other notebooks and built, and every `Definitions` resolves.
- yaml: a declarations file loads through `load_declarations_yaml`, a policy through the policy loader,
  a `NotebookComponent` defs.yaml through its attributes model.
- toml: parses. sql: runs against the seeded demo warehouse.
- bash: each command parses: `nb-assets` with the CLI's own parser, `make` targets exist, a script's
  or `dagster`'s options are in its --help, `dg`'s and `create-dagster`'s among their click commands' options.
- text: the CLI page's synopses name exactly the options each command's parser has.
And `mkdocs build --strict` passes, with nothing in the site loaded from the network.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import nbformat
import pytest

from nb_assets.policy.loader import load_policy

REPO = next(p for p in Path(__file__).resolve().parents if (p / "mkdocs.yml").is_file())
BIN = Path(sys.executable).parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LANGUAGES = {"python", "yaml", "toml", "bash", "sql", "text"}
DEMO_FILES = ("definitions.py", "declarations.yaml", "policy.yaml", "notebooks", "sources")
DEMO_ENV = ("NB_ASSETS_WAREHOUSE", "NB_ASSETS_SANDBOX", "NB_ASSETS_SENSOR_INTERVAL_S", "DAGSTER_HOME")
CELL_MARK = re.compile(r"^# cell \d+\b.*$", re.M)

# Notebooks the examples declare that the demo does not have: (SQL input, output table).
EXAMPLE_NOTEBOOKS = {
    "notebooks/country_revenue.ipynb": (
        "SELECT country, sum(revenue) AS revenue FROM mart.customer_revenue GROUP BY country",
        "mart.country_revenue",
    ),
}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def _blocks(page: Path) -> list[Block]:
    blocks, lines, opened = [], page.read_text().splitlines(), None
    for number, line in enumerate(lines, 1):
        if not line.lstrip().startswith("```"):
            continue
        assert line.startswith("```"), f"{page.name}:{number}: an indented fence; keep examples at the top level"
        if opened is None:
            opened = (number, line[3:].strip())
        else:
            start, language = opened
            blocks.append(Block(page, start, language, "\n".join(lines[start:number - 1]) + "\n"))
            opened = None
    assert opened is None, f"{page.name}:{opened[0]}: a fence that never closes"
    return blocks


BLOCKS = [block for page in PAGES for block in _blocks(page)]


def _of(language: str) -> list[Any]:
    return [pytest.param(b, id=b.id) for b in BLOCKS if b.language == language]


def _cli_parser() -> argparse.ArgumentParser:
    from nb_assets.cli.main import _parser

    return _parser()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})


def _is_notebook(block: Block) -> bool:
    return block.language == "python" and CELL_MARK.search(block.code) is not None


def test_every_example_names_a_language_the_tests_check() -> None:
    assert BLOCKS, "no examples found"
    unknown = [f"{b.id}: {b.language or '(none)'}" for b in BLOCKS if b.language not in LANGUAGES]
    assert not unknown, f"tag each fence with one of {sorted(LANGUAGES)}: {unknown}"


def test_toml_examples_parse() -> None:
    import tomllib

    for block in (b for b in BLOCKS if b.language == "toml"):
        tomllib.loads(block.code)


# --- python -----------------------------------------------------------------------------------------


def _write_notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    for kind, source, tags in cells:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, str(path))


def _notebook_cells(code: str) -> list[tuple[str, str, list[str]]]:
    """`# cell N (markdown) — ...` starts a cell; 'tagged `parameters`' tags it."""
    marks = list(CELL_MARK.finditer(code))
    cells = []
    for mark, following in zip(marks, [*marks[1:], None]):
        source = code[mark.end():following.start() if following else len(code)].strip("\n")
        kind = "markdown" if "(markdown)" in mark.group() else "code"
        tags = ["parameters"] if "tagged `parameters`" in mark.group() else []
        cells.append((kind, source, tags))
    return cells


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seeded") / "warehouse.duckdb"
    subprocess.run([str(BIN / "python"), str(REPO / "scripts" / "seed_demo.py"), "--warehouse", str(path)],
                   check=True, capture_output=True, timeout=300)
    return path


@pytest.mark.parametrize("block", [p for p in _of("python") if _is_notebook(p.values[0])])
def test_a_notebook_example_parses_clean_and_runs(block: Block, tmp_path: Path, demo_warehouse: Path) -> None:
    from nb_assets import parse_notebook

    notebook = tmp_path / "example.ipynb"  # no definitions.py above: an ad hoc run
    _write_notebook(notebook, _notebook_cells(block.code))
    spec = parse_notebook(notebook)
    assert not spec.findings, [f.describe(spec.path) for f in spec.findings]
    assert spec.description and spec.inputs and spec.outputs and spec.parameters

    warehouse = shutil.copy(demo_warehouse, tmp_path / "warehouse.duckdb")
    proc = subprocess.run(
        [str(BIN / "nb-assets"), "run", str(notebook), "--sandbox", "local", "--warehouse", str(warehouse), "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "success"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for output in summary["outputs"]:
            assert con.execute(f"SELECT count(*) FROM {output['table']}").fetchone()[0] == output["rows"] > 0
    if "plt.show()" in block.code:  # the chart is in the record
        executed = nbformat.read(summary["executed_notebook"], as_version=4)
        assert any("image/png" in o.get("data", {}) for c in executed.cells for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A copy of the demo project, its definitions.py run: the namespace examples continue from."""
    root = tmp_path_factory.mktemp("demo")
    for name in DEMO_FILES:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, root / name)
    for path, (query, table) in EXAMPLE_NOTEBOOKS.items():
        _write_notebook(root / path, [
            ("markdown", f"# {Path(path).stem}", []),
            ("code", "%load_ext nb_assets.notebook\nfrom nb_assets.notebook import output", []),
            ("code", f"%%sql rows\n{query}", []),
            ("code", f'output("{table}", rows)', []),
        ])
    with pytest.MonkeyPatch.context() as mp:
        for name in DEMO_ENV:
            mp.delenv(name, raising=False)
        mp.chdir(root)
        source = (REPO / "definitions.py").read_text()
        namespace, _ = _run(REPO / "definitions.py", 0, source, {"__file__": str(root / "definitions.py"), "__name__": "definitions"})
    return root, namespace


def _run(page: Path, line: int, code: str, namespace: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """exec `code` (line numbers as in `page`); the values of its bare expressions are returned too."""
    tree = ast.parse("\n" * line + code, filename=str(page))
    values: list[Any] = []
    for i, node in enumerate(tree.body):
        if isinstance(node, ast.Expr):  # keep the value: `__values__.append(expr)`
            call = ast.Call(ast.Attribute(ast.Name("__values__", ast.Load()), "append", ast.Load()), [node.value], [])
            tree.body[i] = ast.copy_location(ast.Expr(call), node)
    ast.fix_missing_locations(tree)
    namespace["__values__"] = values
    exec(compile(tree, str(page), "exec"), namespace)  # noqa: S102 - the documented example is the test
    return namespace, values


def _check_declared(example: Any, root: Path, namespace: dict[str, Any]) -> None:
    """An example declaration is one the demo project accepts, beside its other notebooks."""
    from nb_assets import build_notebook_assets

    others = [n for n in namespace["NOTEBOOKS"] if Path(n.path) != Path(example.path)]
    assets = build_notebook_assets([*others, example], base_dir=root, policy=root / "policy.yaml",
                                   sources=namespace.get("SOURCES", ()))
    assert assets


@pytest.mark.parametrize("page", sorted({b.page for b in BLOCKS if b.language == "python" and not _is_notebook(b)}),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_the_python_examples_of_a_page_run_in_the_demo_project(page: Path, demo: tuple[Path, dict[str, Any]],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from nb_assets import NotebookAsset

    root, seeded = demo
    for name in DEMO_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(root)
    namespace = dict(seeded)
    for block in (b for b in BLOCKS if b.page == page and b.language == "python" and not _is_notebook(b)):
        before = dict(namespace)
        namespace, values = _run(page, block.line, block.code, namespace)
        for value in values:
            if isinstance(value, NotebookAsset):
                _check_declared(value, root, namespace)
        made = [v for k, v in namespace.items() if not k.startswith("__") and before.get(k) is not v]
        for definitions in (v for v in made if isinstance(v, dg.Definitions)):
            assert definitions.resolve_asset_graph().get_all_asset_keys(), block.id
        assert values or made, f"{block.id}: the example makes nothing to check"


# --- yaml, sql --------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", _of("yaml"))
def test_a_yaml_example_loads_through_the_project_loader(block: Block, tmp_path: Path) -> None:
    import yaml

    document = yaml.safe_load(block.code)
    path = tmp_path / "example.yaml"
    path.write_text(block.code)
    if "notebooks" in document or "sources" in document:
        from nb_assets import load_declarations_yaml, load_sources_yaml

        declared = load_declarations_yaml(path)
        assert [str(n.path) for n in declared] == [entry["path"] for entry in document.get("notebooks") or []]
        assert [s.name for s in load_sources_yaml(path)] == [entry["name"] for entry in document.get("sources") or []]
    elif document.get("type") in ("nb_assets.NotebookComponent", "nb_assets.NotebookProjectSettings"):  # dg defs.yaml
        import nb_assets  # docs/components.md: each through its component's attributes model

        getattr(nb_assets, document["type"].split(".")[1]).model().model_validate(document["attributes"])
    elif "zones" in document:
        policy = load_policy(path)
        assert set(policy.zones) == set(document["zones"])
    else:
        pytest.fail(f"{block.id}: neither declarations nor a policy")


@pytest.mark.parametrize("block", _of("sql"))
def test_a_sql_example_runs_against_the_demo_warehouse(block: Block, tmp_path: Path, demo_warehouse: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse = shutil.copy(demo_warehouse, tmp_path / "warehouse.duckdb")
    monkeypatch.chdir(tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        for name in re.findall(r"read_parquet\('([^']+)'\)", block.code):  # a file for the loader to read
            table = re.search(r"INSERT INTO (\S+) SELECT \* FROM read_parquet", block.code)[1]
            con.execute(f"COPY (SELECT * FROM {table} LIMIT 5) TO '{name}' (FORMAT parquet)")
        landed = con.execute("SELECT count(*) FROM nb_assets.landings").fetchone()[0]
        con.execute(block.code)
        if "nb_assets.landings" in block.code:
            assert con.execute("SELECT count(*), max(id) FROM nb_assets.landings").fetchone() == (landed + 1, landed + 1)


# --- shell ------------------------------------------------------------------------------------------


def _commands(code: str) -> list[list[str]]:
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            words.pop(0)  # VAR=value before the command
        if words:
            commands.append(words)
    return commands


def _options_in_help(argv: list[str], options: list[str]) -> None:
    shown = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert shown.returncode == 0, shown.stderr
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", shown.stdout)]
    assert not missing, f"{' '.join(argv)} has no {missing}"


def _check_command(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    program, args = Path(words[0]).name, words[1:]
    options = [a.split("=", 1)[0] for a in args if a.startswith("-")]
    if program == "nb-assets":
        try:
            _cli_parser().parse_args(args)
        except SystemExit as stop:
            pytest.fail(f"`{shlex.join(words)}` does not parse: {capsys.readouterr().err.strip()} ({stop.code})")
    elif program == "make":
        makefile = (REPO / "Makefile").read_text()
        missing = [t for t in args if not re.search(rf"^{re.escape(t)}\s*:", makefile, re.M)]
        assert not missing, f"the Makefile has no target {missing}"
    elif program in ("python", "python3"):
        script = REPO / args[0]
        assert script.is_file(), f"no script {args[0]}"
        _options_in_help([str(BIN / "python"), str(script)], options)
    elif program == "dagster":
        _options_in_help([str(BIN / "dagster"), *[a for a in args if not a.startswith("-")][:1]], options)
    elif program in ("dg", "create-dagster"):
        _click_options(program, args, options)
    elif program == "cd":
        assert len(args) == 1, words  # the commands after it run in that folder (docs/components.md's are run too)
    else:
        pytest.fail(f"no check for the program {program!r}: add one")


def _click_options(program: str, args: list[str], options: list[str]) -> None:
    """`dg` and `create-dagster` are click commands (their --help needs a terminal): walk to the
    subcommand the words name and look for the options among its parameters."""
    import click

    if program == "dg":
        from dagster_dg_cli.cli import cli as command
    else:
        from create_dagster.cli import cli as command
    context = click.Context(command)
    words = [a for a in args if not a.startswith("-")]
    while isinstance(command, click.Group) and words:
        if words[0] not in command.commands and "." in words[0]:
            # `dg scaffold defs <component type>`: its command and options come from the project's environment
            return  # (docs/components.md's scaffolds run in tests/integration/test_*component*.py)
        sub = command.get_command(context, words.pop(0))
        assert sub is not None, f"{program} {' '.join(args)}: no such command"
        command, context = sub, click.Context(sub, parent=context)
    known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    assert not set(options) - known, f"{program} {' '.join(args)} has no {sorted(set(options) - known)}"


@pytest.mark.parametrize("block", _of("bash"))
def test_a_shell_example_is_made_of_commands_that_parse(block: Block, capsys: pytest.CaptureFixture[str]) -> None:
    commands = _commands(block.code)
    assert commands
    for words in commands:
        _check_command(words, capsys)


def _synopses(code: str) -> list[str]:
    """`nb-assets ...` lines with their `[...]` continuation lines, comments dropped."""
    synopses: list[str] = []
    continues = False
    for line in code.splitlines():
        text = line.split("#", 1)[0].strip()
        if line.startswith("nb-assets "):
            synopses.append(text)
            continues = True
        elif continues and line.startswith(" ") and text.startswith("["):
            synopses[-1] += " " + text
        else:
            continues = False  # the description started
    return synopses


def test_the_cli_page_names_each_commands_options_as_its_parser_has_them() -> None:
    documented: dict[tuple[str, ...], set[str]] = {}
    for block in (b for b in BLOCKS if b.page.name == "cli.md" and b.language == "text"):
        for synopsis in _synopses(block.code):
            parser, path = _cli_parser(), []
            for word in synopsis.split()[1:]:
                if word not in _subcommands(parser):
                    break
                parser, path = _subcommands(parser)[word], [*path, word]
            options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", synopsis))
            known = {o for o in parser._option_string_actions if o.startswith("--")} - {"--help"}
            assert options <= known, f"nb-assets {' '.join(path)}: the parser has no {sorted(options - known)}"
            documented.setdefault(tuple(path), set()).update(options)

    def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
        subs = _subcommands(parser)
        return [leaf for name, sub in subs.items() for leaf in leaves(sub, (*path, name))] if subs else [(path, parser)]

    for path, parser in leaves(_cli_parser(), ()):
        assert path in documented, f"docs/cli.md does not show nb-assets {' '.join(path)}"
        known = {o for o in parser._option_string_actions if o.startswith("--")} - {"--help"}
        assert known <= documented[path], f"docs/cli.md: nb-assets {' '.join(path)} lacks {sorted(known - documented[path])}"


# --- the site ---------------------------------------------------------------------------------------

LOADS = re.compile(
    r"""<(?:script|img|iframe|source|embed|object|audio|video)\b[^>]*\b(?:src|data)\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//|@import\s+["']?(?:url\()?\s*["']?(?:https?:)?//""",
    re.I,
)


def test_the_manual_builds_strictly_and_loads_nothing_from_the_network(tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    pages = {p.stem for p in site.glob("*.html")}
    assert {p.stem for p in (REPO / "docs").glob("*.md")} <= pages
    loads = [f"{p.relative_to(site)}: {m.group()}" for p in site.rglob("*") if p.suffix in (".html", ".css")
             for m in LOADS.finditer(p.read_text(errors="replace"))]
    assert not loads, loads


def test_the_readme_is_a_front_door_whose_links_lead_to_files() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250, "the reference belongs in docs/"
    links = [t.split("#", 1)[0] for t in re.findall(r"\]\(([^)\s]+)\)", readme) if not re.match(r"[a-z]+:", t)]
    assert links and not [t for t in links if not (REPO / t).exists()]


def test_nothing_refers_to_a_design_document_outside_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    hits = [f"{name}:{n}" for name in tracked if (REPO / name).is_file()
            for n, line in enumerate((REPO / name).read_text(errors="replace").splitlines(), 1)
            if re.search(r"\b(?:DESIGN|LAYOUT)\.md\b|\.\./shared\b", line)]
    assert not hits, hits

