"""A notebook renamed since its kernel started (JupyterLab's first save of an Untitled one) is
found by the magics under its new name: the kernel asks the Jupyter server that started it
for its session (the sessions API, on loopback, with the running server's token). Without a
server to ask, the magic says, as before, that the kernel's name may be stale.

A real `nb-assets lab`, a real kernel it starts, renamed through the server's REST API as
JupyterLab renames a notebook (the file, then the session's path).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any

from jupyter_client import BlockingKernelClient

from nb_assets.project.starter import write_starter
from support.lab_server import LabServer, lab_server
from support.paths import REPO


def _api(lab: LabServer, method: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(f"{lab.base}{path}", data=json.dumps(body).encode(), method=method,
                                     headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def _run(client: BlockingKernelClient, code: str) -> tuple[str, str]:
    """What running `code` shows (display data's and printed text), and its error, if any."""
    shown, error = [], ""

    def keep(message: dict[str, Any]) -> None:
        nonlocal error
        content = message["content"]
        if message["msg_type"] in ("display_data", "execute_result"):
            shown.append(content["data"].get("text/plain", ""))
        elif message["msg_type"] == "stream":
            shown.append(content["text"])
        elif message["msg_type"] == "error":
            error = f"{content['ename']}: {content['evalue']}"

    client.execute_interactive(code, output_hook=keep, timeout=120)
    return "".join(shown), error


def test_a_renamed_notebook_is_found_through_the_servers_session(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "policy.yaml", project / "policy.yaml")
    (project / "definitions.py").write_text("from pathlib import Path\nNOTEBOOKS = []\nPOLICY = Path(__file__).parent / 'policy.yaml'\n")
    write_starter(project / "notebooks" / "untitled.ipynb")
    env = {k: v for k, v in os.environ.items() if k not in ("NB_ASSETS_WAREHOUSE", "DAGSTER_HOME", "JPY_SESSION_NAME")}

    with lab_server(project, tmp_path, env) as lab:
        session = _api(lab, "POST", "/api/sessions", {"path": "notebooks/untitled.ipynb", "name": "untitled.ipynb",
                                                       "type": "notebook", "kernel": {"name": "python3"}})
        # JupyterLab's rename: the file, then the session's path; the kernel keeps the name it started with.
        _api(lab, "PATCH", "/api/contents/notebooks/untitled.ipynb", {"path": "notebooks/top_orders.ipynb"})
        _api(lab, "PATCH", f"/api/sessions/{session['id']}", {"path": "notebooks/top_orders.ipynb", "name": "top_orders.ipynb"})
        client = BlockingKernelClient(connection_file=str(tmp_path / "runtime_dir" / f"kernel-{session['kernel']['id']}.json"))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            told, _ = _run(client, "import os; print(os.environ['JPY_SESSION_NAME'])")
            assert told.strip() == str(project / "notebooks" / "untitled.ipynb")  # stale: the file is gone

            shown, error = _run(client, "%load_ext nb_assets.notebook\n%nb_context")
            assert not error, f"{error}\n{lab.log_tail()}"
            assert shown.splitlines()[0] == f"top_orders ({project / 'notebooks' / 'top_orders.ipynb'})", shown
            shown, error = _run(client, "form = __import__('nb_assets.jupyter.schedule_form', fromlist=['x'])"
                                        ".show_schedule_form(None, {}); print('FORM', form.notebook)")
            assert not error and f"FORM {project / 'notebooks' / 'top_orders.ipynb'}" in shown, (error, shown)

            # No server to ask (none listed in its runtime folder): the kernel's name, and the hint.
            said, _ = _run(client, f"os.environ['JUPYTER_RUNTIME_DIR'] = {str(tmp_path / 'nowhere')!r}\n%nb_context")
            # IPython prints a magic's UsageError (on stderr), without a traceback
            assert said.startswith(f"UsageError: no such notebook: {project / 'notebooks' / 'untitled.ipynb'} "
                                   "(its name when its kernel started: renamed since?)"), said
            assert "%nb_context notebooks/top_orders.ipynb" in said  # the folder's notebook, named
        finally:
            client.stop_channels()
