"""`.ipynb` file → NotebookSpec. No Dagster, no Docker, no kernel.

Reads the notebook contract (docs/notebook-contract.md): the `parameters` cell, `%%sql <name>`
input cells, `output("schema.table", df)` calls and the first markdown cell.
Problems an author can fix become Findings naming the cell; a file that is
not a notebook at all raises NotebookParseError naming the file.

Each part of the contract is read by its own module: the file (notebook_file),
the parameters cell (parameters_cell), `%%sql` inputs (sql_inputs), `%%source`
cells (source_cells), output() calls (output_calls); specs are cached on disk
(spec_cache). This module puts them together into one spec.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Iterator

from nb_assets.errors import NotebookParseError
from nb_assets.analysis.notebook_file import kernel_findings, read_notebook
from nb_assets.analysis.output_calls import outputs_of
from nb_assets.analysis.parameters_cell import parameters_of
from nb_assets.analysis.source_cells import placed_source_hints, source_reads
from nb_assets.analysis.spec_cache import load_spec, spec_cache_file, store_spec
from nb_assets.analysis.sql_inputs import sql_inputs
from nb_assets.spec import Cell, Finding, NotebookSpec, Output, SourceRead, SqlInput, notebook_name

# sql_lineage and static_analysis (sqlglot, IPython) are imported on a cache
# miss only: every Dagster process loads the definitions, few parse anything.

RUNTIME_EXTENSION = "nb_assets.notebook"


def parse_notebook(path: str | Path, dialect: str = "duckdb") -> NotebookSpec:
    """Parse one notebook file; cached by content so re-declaring is cheap.

    `dialect` is the warehouse's SQL dialect (locations.dialect_of): the
    `%%sql` inputs are read, and checked, as that warehouse would run them.

    Two caches: in this process, and on disk (`$NB_ASSETS_CACHE/specs`, default
    `~/.cache/nb_assets/specs`), keyed by path, content and the parser's own
    source, so a changed notebook or a changed rule is parsed again.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookParseError(f"{path}: cannot read notebook: {exc.strerror or exc}") from exc
    return _parse_cached(str(path), hashlib.sha256(raw).hexdigest(), raw, dialect)


@functools.lru_cache(maxsize=4096)
def _parse_cached(path: str, content_hash: str, raw: bytes, dialect: str = "duckdb") -> NotebookSpec:
    cache = spec_cache_file(path, content_hash, dialect)
    spec = load_spec(cache)
    if spec is None:
        spec = _parse(path, content_hash, raw, dialect)
        store_spec(cache, spec)
    return spec


def parse_uncached(path: str, raw: bytes, dialect: str = "duckdb") -> tuple[NotebookSpec, Path]:
    """Parse without looking in the caches; also returns the cache file the spec
    belongs in, for `spec_cache.store_spec` (which a caller may run on another thread)."""
    content_hash = hashlib.sha256(raw).hexdigest()
    return _parse(path, content_hash, raw, dialect), spec_cache_file(path, content_hash, dialect)


def _parse(path: str, content_hash: str, raw: bytes, dialect: str = "duckdb") -> NotebookSpec:
    from nb_assets.analysis.checks import analyze

    cells, metadata = read_notebook(path, raw)
    findings: list[Finding] = list(kernel_findings(metadata))
    parameters = tuple(parameters_of(cells, findings))
    inputs = tuple(sql_inputs(cells, parameters, findings, dialect))
    reads = tuple(source_reads(cells, findings, {i.name for i in inputs}))  # %%source cells (analysis/source_cells.py)
    outputs = tuple(outputs_of(cells, findings, dialect))
    findings.extend(_contract_findings(cells, (*inputs, *reads), outputs))
    findings.extend(analyze(cells))
    findings = placed_source_hints(findings, path)  # a literal file read's hint names the file as a Source does
    return NotebookSpec(
        path=path,
        name=notebook_name(path),
        content_hash=content_hash,
        description=next((c.source.strip() for c in cells if c.cell_type == "markdown"), None),
        cells=cells,
        parameters=parameters,
        inputs=inputs,
        outputs=outputs,
        source_reads=reads,
        findings=tuple(sorted(findings, key=lambda f: (f.cell or 0, f.line or 0, f.rule))),
    )


def _contract_findings(
    cells: tuple[Cell, ...], inputs: tuple[SqlInput | SourceRead, ...], outputs: tuple[Output, ...],
) -> Iterator[Finding]:
    from nb_assets.analysis.jupysql_cells import config_lines, runtime_hint

    yield from config_lines(cells)
    uses_runtime = [c.number for c in cells if c.cell_type == "code" and RUNTIME_EXTENSION in c.source and "load_ext" in c.source]
    first_sql = min((i.cell for i in inputs), default=None)
    if first_sql is not None and not any(n < first_sql for n in uses_runtime):
        magic = "%%sql" if any(isinstance(i, SqlInput) and i.cell == first_sql for i in inputs) else "%%source"
        hint = runtime_hint(cells) or f"add `%load_ext nb_assets.notebook` in a cell before the first {magic} cell"
        yield Finding("missing-runtime", "error", hint, first_sql)
    read = {t for i in inputs if isinstance(i, SqlInput) for t in i.tables}
    for out in outputs:
        if out.table in read:
            yield Finding("reads-own-output", "error", f"the notebook both reads and writes {out.table}; write a new table instead", out.cell, out.line)
