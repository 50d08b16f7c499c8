"""The Schedule form's fields, without a kernel: the purpose is a choice of the policy's purposes,
the fields are kept however `%nb_schedule` names the notebook, and a notebook empty as saved is
told apart from one that is not. Real ipywidgets, real files, the project's own policy loader."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import nbformat
import pytest
from traitlets import TraitError

from nb_assets.jupyter.schedule_form import ScheduleForm, show_schedule_form
from nb_assets.jupyter.server_session import is_loopback, session_notebook
from nb_assets.jupyter.unsaved import never_saved
from nb_assets.policy.loader import load_policy
from nb_assets.project.starter import write_starter
from support.paths import REPO

DEFINITIONS = "from pathlib import Path\nNOTEBOOKS = []\n"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A project: definitions.py naming the demo's policy.yaml, and the starter notebook x.ipynb."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "policy.yaml", root / "policy.yaml")
    (root / "definitions.py").write_text(DEFINITIONS + "POLICY = Path(__file__).parent / 'policy.yaml'\n")
    write_starter(root / "notebooks" / "x.ipynb")
    return root


def test_the_purpose_is_a_choice_of_the_purposes_the_policy_declares(tiny: Path) -> None:
    form = ScheduleForm(tiny / "notebooks" / "x.ipynb")
    declared = load_policy(tiny / "policy.yaml").purposes
    assert [value for _, value in form.purpose.options] == ["", *declared]  # none first: the policy's default applies
    labels = dict((value, label) for label, value in form.purpose.options)
    assert labels[""] == "(none)"  # the demo policy has no default purpose
    assert labels["finance_reporting"] == "finance_reporting (reads finance, public)"
    form.purpose.value = "marketing"
    assert form.fields().flags()[-2:] == ["--purpose", "marketing"]
    with pytest.raises(TraitError):
        form.purpose.value = "finance-reporting"  # a misspelling cannot be chosen

    policy = (tiny / "policy.yaml").read_text().replace("purposes:", "default_purpose: product_analytics\npurposes:", 1)
    (tiny / "policy.yaml").write_text(policy)
    labels = {value: label for label, value in ScheduleForm(tiny / "notebooks" / "x.ipynb").purpose.options}
    assert labels[""] == "(none: the policy's default, product_analytics)"


def test_without_purposes_to_offer_the_purpose_is_a_free_field(tiny: Path) -> None:
    (tiny / "definitions.py").write_text(DEFINITIONS)  # no policy
    form = ScheduleForm(tiny / "notebooks" / "x.ipynb")
    assert not hasattr(form.purpose, "options") and "the project has no policy" in form.purpose.placeholder
    form.purpose.value = "anything"
    assert form.fields().purpose == "anything"

    (tiny / "definitions.py").write_text(DEFINITIONS + "POLICY = Path(__file__).parent / 'policy.yaml'\n")
    (tiny / "policy.yaml").write_text("zones:\n  public: {mode: enforce}\npurposes: {}\ntables: {}\n")
    assert "the policy declares no purposes" in ScheduleForm(tiny / "notebooks" / "x.ipynb").purpose.placeholder

    (tiny / "policy.yaml").write_text("zones: [\n")  # broken: the form still opens, Check says what is wrong
    assert "its policy cannot be read" in ScheduleForm(tiny / "notebooks" / "x.ipynb").purpose.placeholder


def test_a_purpose_the_policy_no_longer_declares_is_not_restored(tiny: Path) -> None:
    notebook = tiny / "notebooks" / "x.ipynb"
    first = ScheduleForm(notebook)
    first.owners.value, first.purpose.value = "a@example.com", "marketing"
    (tiny / "policy.yaml").write_text((tiny / "policy.yaml").read_text().replace("  marketing:          [pii, public]\n", ""))
    again = ScheduleForm(notebook)
    assert (again.owners.value, again.purpose.value) == ("a@example.com", "")


def test_the_fields_are_kept_however_the_magic_names_the_notebook(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tiny / "notebooks"
    monkeypatch.chdir(folder)  # the kernel's folder: the notebook's own
    monkeypatch.setenv("JPY_SESSION_NAME", str(folder / "x.ipynb"))  # as Jupyter Server tells its kernel
    form = show_schedule_form(None, {})
    form.owners.value, form.cron.value, form.purpose.value = "a@example.com", "0 6 * * *", "finance_reporting"
    form.params["limit"].value = "5"
    (tiny / "linked").symlink_to(folder)
    for argument in ("x.ipynb", "./x.ipynb", "notebooks/x.ipynb", str(tiny / "linked" / "x.ipynb"), None):
        again = show_schedule_form(argument, {})
        kept = (again.owners.value, again.cron.value, again.purpose.value, again.params["limit"].value)
        assert kept == ("a@example.com", "0 6 * * *", "finance_reporting", "5"), argument
    other = show_schedule_form(str(write_starter(folder / "y.ipynb")), {})
    assert (other.owners.value, other.purpose.value, other.params["limit"].value) == ("", "", "100")  # its own memory


def test_a_notebook_is_never_saved_when_its_file_has_no_cell_with_source(tmp_path: Path) -> None:
    new = tmp_path / "Untitled.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), str(new))  # what JupyterLab's "new notebook" writes
    assert never_saved(new)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("  \n")]), str(new))
    assert never_saved(new)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title")]), str(new))
    assert not never_saved(new)
    new.write_text("{not json")
    assert not never_saved(new)  # not a notebook: check says so


def test_only_loopback_urls_are_asked() -> None:
    assert is_loopback("http://127.0.0.1:8888/") and is_loopback("http://localhost:8888/lab/")
    assert is_loopback("http://[::1]:8888/")
    for elsewhere in ("http://example.invalid:8888/", "http://10.0.0.1:8888/", "http://127.0.0.1.example.com/",
                      "http+unix://%2Ftmp%2Fjp.sock/", "file:///tmp/x"):
        assert not is_loopback(elsewhere), elsewhere


class _Sessions(BaseHTTPRequestHandler):
    """A server's /api/sessions for one kernel, or a redirect, as `answer` says."""

    answer: dict[str, object] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        seen = type(self).answer.setdefault("seen", [])
        assert isinstance(seen, list)
        seen.append((self.path, self.headers.get("Authorization")))
        location = type(self).answer.get("redirect")
        if location:
            self.send_response(302)
            self.send_header("Location", str(location))
            self.end_headers()
            return
        if self.headers.get("Authorization") != "token t0k":
            self.send_response(403)
            self.end_headers()
            return
        body = json.dumps([{"id": "s1", "path": "notebooks/renamed.ipynb", "type": "notebook",
                            "kernel": {"id": "k-1", "name": "python3"}}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sessions_server() -> Iterator[tuple[str, type[_Sessions]]]:
    handler = type("Sessions", (_Sessions,), {"answer": {}})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_session_of_this_kernel_names_the_notebook_now(sessions_server: tuple[str, type[_Sessions]], tmp_path: Path) -> None:
    url, handler = sessions_server
    server = {"url": url, "token": "t0k", "root_dir": str(tmp_path), "pid": os.getppid()}
    assert session_notebook("k-1", [server]) == tmp_path / "notebooks" / "renamed.ipynb"
    assert handler.answer["seen"] == [("/api/sessions", "token t0k")]
    assert session_notebook("k-2", [server]) is None  # no session of that kernel
    assert session_notebook("k-1", [{**server, "token": "wrong"}]) is None  # refused: the fallback
    assert session_notebook("k-1", [{**server, "pid": -5}]) is None  # a server that did not start this process


def test_a_redirect_is_not_followed(sessions_server: tuple[str, type[_Sessions]], tmp_path: Path) -> None:
    url, handler = sessions_server
    handler.answer["redirect"] = url + "elsewhere"  # followed, it would carry the token on
    server = {"url": url, "token": "t0k", "root_dir": str(tmp_path), "pid": os.getppid()}
    assert session_notebook("k-1", [server]) is None
    assert [path for path, _ in handler.answer["seen"]] == ["/api/sessions"]  # type: ignore[union-attr]
