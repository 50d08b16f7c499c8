"""Declarations in YAML: what `nb-assets schedule --write` appends and definitions.py loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from nb_assets import NotebookAsset, Reclassify, SandboxLimits, load_declarations_yaml
from nb_assets.project.declarations_yaml import append_declaration
from nb_assets.errors import DeclarationError


def test_a_full_declaration_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "declarations.yaml"
    decl = NotebookAsset(
        "notebooks/kpis.ipynb", owners=("a@example.com", "#data-eng"), params={"ds": "2026-11-25", "days": 7},
        group="kpis", purpose="finance_reporting", cron="0 6 * * *", allow={"file-write": "writes a scratch file"},
        reclassify={"mart.kpis": Reclassify(("public",), "aggregates only")}, limits=SandboxLimits(timeout_s=300),
    )
    append_declaration(path, decl)
    append_declaration(path, NotebookAsset("notebooks/other.ipynb"))
    loaded = load_declarations_yaml(path)
    assert [d.path for d in loaded] == ["notebooks/kpis.ipynb", "notebooks/other.ipynb"]
    first = loaded[0]
    assert (tuple(first.owners), first.params, first.cron, first.purpose) == (decl.owners, decl.params, decl.cron, decl.purpose)
    assert first.reclassify == decl.reclassify and first.limits == decl.limits and first.allow == decl.allow
    assert path.read_text().startswith("# Notebook declarations")


def test_appending_keeps_what_reviewers_already_read(tmp_path: Path) -> None:
    path = tmp_path / "declarations.yaml"
    path.write_text("# our notebooks\nnotebooks:\n  # the daily one\n  - path: a.ipynb\n    cron: '0 5 * * *'\n")
    append_declaration(path, NotebookAsset("b.ipynb", owners=("b@example.com",)))
    text = path.read_text()
    assert text.startswith("# our notebooks\nnotebooks:\n  # the daily one\n  - path: a.ipynb\n")
    assert [d.path for d in load_declarations_yaml(path)] == ["a.ipynb", "b.ipynb"]
    with pytest.raises(DeclarationError, match="already declared"):
        append_declaration(path, NotebookAsset("b.ipynb"))
    assert path.read_text() == text


def test_an_empty_list_is_replaced_by_the_first_entry(tmp_path: Path) -> None:
    path = tmp_path / "declarations.yaml"
    path.write_text("# header\nnotebooks: []\n")
    append_declaration(path, NotebookAsset("a.ipynb"))
    assert path.read_text().startswith("# header\n") and [d.path for d in load_declarations_yaml(path)] == ["a.ipynb"]


def test_a_missing_or_empty_file_declares_nothing(tmp_path: Path) -> None:
    assert load_declarations_yaml(tmp_path / "nope.yaml") == []
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    assert load_declarations_yaml(tmp_path / "empty.yaml") == []


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("notebooks:\n  - path: a.ipynb\n    cronn: '0 5 * * *'\n", 3, "unknown key 'cronn'"),
        ("notebooks:\n  - owners: [a@example.com]\n", 2, "needs 'path:'"),
        ("notebooks:\n  - path: a.ipynb\n    limits: {timeout: 5}\n", 3, "limits: takes a mapping"),
        ("notebooks:\n  - path: a.ipynb\n    reclassify: {mart.x: [public]}\n", 3, "reclassify: maps an output table"),
        ("notebooks:\n  - path: a.ipynb\n\t- path: b\n", 3, "malformed YAML"),
        ("notebooks: a.ipynb\n", 1, "must be a list"),
        ("notebook:\n  - path: a.ipynb\n", 1, "unknown top-level key"),
    ],
)
def test_errors_name_the_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "declarations.yaml"
    path.write_text(text)
    with pytest.raises(DeclarationError) as err:
        load_declarations_yaml(path)
    assert str(err.value).startswith(f"{path}:{line}: ") and message in str(err.value)


def test_instances_and_daily_partitions_read_from_yaml(tmp_path: Path) -> None:
    from nb_assets import DailyPartitions

    path = tmp_path / "declarations.yaml"
    path.write_text(
        "notebooks:\n"
        "  - path: a.ipynb\n"
        "    partitions: {start: 2026-01-01}\n"
        "  - path: b.ipynb\n"
        "    instances: {emea: {region: EMEA}, apac: {region: APAC}}\n"
        "    outputs: {mart.revenue: 'mart.revenue_{region}'}\n"
    )
    a, b = load_declarations_yaml(path)
    assert a.partitions == DailyPartitions(start="2026-01-01", column="ds")
    assert b.instances == {"emea": {"region": "EMEA"}, "apac": {"region": "APAC"}} and b.outputs == {"mart.revenue": "mart.revenue_{region}"}
    path.write_text("notebooks:\n  - path: a.ipynb\n    partitions: daily\n")
    with pytest.raises(DeclarationError, match=r"declarations.yaml:3: partitions: takes \{start: YYYY-MM-DD"):
        load_declarations_yaml(path)


def _two_notebooks(tmp_path: Path) -> Path:
    from support.notebook_factory import RUNTIME, code, write_notebook

    for name in ("a", "b"):
        write_notebook(tmp_path / f"{name}.ipynb", code(RUNTIME), code(f"%%sql rows\nSELECT * FROM raw.{name}"),
                       code(f"output('mart.{name}', rows)"))
    path = tmp_path / "declarations.yaml"
    path.write_text(
        "# header\n"
        "notebooks:\n"
        "  - path: a.ipynb\n"
        "    owners: [a@example.com]\n"
        "  - path: b.ipynb\n"  # line 5
        "    owners: [bob]\n"
        "    cron: '0 6 * *'\n"
    )
    return path


def test_a_load_error_of_a_yaml_declaration_names_the_file_and_line(tmp_path: Path) -> None:
    """Dagster's own load (build_notebook_graph) and the CLI's checks give the same message."""
    from nb_assets.defs.build import build_notebook_graph
    from nb_assets.project.declare import declare_notebooks

    path = _two_notebooks(tmp_path)
    decls = load_declarations_yaml(path)
    assert [d.declared_at for d in decls] == [f"{path}:3", f"{path}:5"]
    with pytest.raises(DeclarationError) as loaded:
        build_notebook_graph(decls, base_dir=tmp_path)
    message = str(loaded.value)
    assert f"- {path}:5: " in message and "owner 'bob' is neither an e-mail address nor team:<name>" in message
    assert f"{path}:5: " in message.split("cron='0 6 * *'")[0].splitlines()[-1]  # each problem names the line
    assert f"{path}:3" not in message  # the good entry is not blamed
    with pytest.raises(DeclarationError) as checked:
        declare_notebooks(decls, tmp_path)
    assert str(checked.value) == message


def test_a_candidate_text_stands_in_for_the_file_while_it_is_open(tmp_path: Path) -> None:
    from nb_assets.project.declarations_yaml import candidate, with_declaration

    path = tmp_path / "declarations.yaml"
    path.write_text("notebooks:\n  - path: a.ipynb\n")
    before = path.read_bytes()
    text = with_declaration(path.read_text(), path, NotebookAsset("b.ipynb", owners=("b@example.com",)))
    with candidate(path, text):
        read = load_declarations_yaml(path)
    assert [(d.path, d.declared_at) for d in read] == [("a.ipynb", f"{path}:2"), ("b.ipynb", f"{path}:3")]
    assert path.read_bytes() == before and [d.path for d in load_declarations_yaml(path)] == ["a.ipynb"]


def test_declaring_a_notebook_twice_says_which_line_to_edit(tmp_path: Path) -> None:
    path = tmp_path / "declarations.yaml"
    path.write_text("notebooks:\n  - path: a.ipynb\n  - path: b.ipynb\n")
    with pytest.raises(DeclarationError) as err:
        append_declaration(path, NotebookAsset("b.ipynb"))
    assert str(err.value).startswith(f"{path}:3: b.ipynb is already declared there. To change its owners")
    assert "edit that entry" in str(err.value) and "copy the notebook to a new file name" in str(err.value)
