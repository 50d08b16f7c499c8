"""Unpacking what a sandbox sends back: hostile tar streams, real files, nothing leaves the run folder."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from nb_assets.inbox.supervisor import END, FACTS
from nb_assets.sandbox.base import RunFolder
from nb_assets.sandbox.transfer import pack_job, unpack_copy_out

MB = 1 << 20


def _archive(path: Path, *members: tuple[str, bytes | None, bytes], end: bool = True) -> Path:
    """members: (name, data or None for a symlink, symlink target)."""
    with tarfile.open(path, "w") as tar:
        facts = json.dumps({"runner_exit_code": 0}).encode()
        info = tarfile.TarInfo(FACTS)
        info.size = len(facts)
        tar.addfile(info, io.BytesIO(facts))
        for name, data, target in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, target.decode()
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        if end:
            tar.addfile(tarfile.TarInfo(END))
    return path


@pytest.fixture
def folder(tmp_path: Path) -> RunFolder:
    return RunFolder(tmp_path / "run").create()


def test_outputs_and_the_runners_record_files_are_unpacked(folder: RunFolder, tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "a.tar",
        ("output/mart.x.parquet", b"PAR1", b""),
        ("record/executed.ipynb", b"{}", b""),
        ("record/result.json", b'{"status": "success", "error": null}', b""),
        ("record/planted.html", b"<script>", b""),
    )
    copy = unpack_copy_out(archive, folder, output_max_bytes=MB, record_max_bytes=MB)
    assert copy.complete and copy.problem is None and copy.refused == []
    assert copy.facts == {"runner_exit_code": 0}
    assert (folder.output_dir / "mart.x.parquet").read_bytes() == b"PAR1"
    assert sorted(p.name for p in folder.record_dir.iterdir()) == ["executed.ipynb", "result.json"]


def test_links_and_odd_names_never_land_outside_or_through_anything(folder: RunFolder, tmp_path: Path) -> None:
    decoy = tmp_path / "decoy.txt"
    decoy.write_text("decoy")
    archive = _archive(
        tmp_path / "a.tar",
        ("output/mart.x.parquet", None, str(decoy).encode()),
        ("output/../escaped.parquet", b"x", b""),
        ("output/sub/deep.parquet", b"x", b""),
        ("/etc/evil", b"x", b""),
        ("record/result.json", None, str(decoy).encode()),
    )
    copy = unpack_copy_out(archive, folder, output_max_bytes=MB, record_max_bytes=MB)
    assert copy.refused == ["'mart.x.parquet' is not a regular file"]
    assert list(folder.output_dir.iterdir()) == [] and list(folder.record_dir.iterdir()) == []
    assert not (folder.root / "escaped.parquet").exists() and decoy.read_text() == "decoy"


def test_a_name_sent_twice_is_malformed_not_overwritten(folder: RunFolder, tmp_path: Path) -> None:
    archive = _archive(tmp_path / "a.tar", ("output/mart.x.parquet", b"first", b""), ("output/mart.x.parquet", b"second", b""))
    copy = unpack_copy_out(archive, folder, output_max_bytes=MB, record_max_bytes=MB)
    assert copy.problem and "malformed" in copy.problem
    assert (folder.output_dir / "mart.x.parquet").read_bytes() == b"first"


def test_sizes_are_capped(folder: RunFolder, tmp_path: Path) -> None:
    big = _archive(tmp_path / "a.tar", ("output/a.parquet", b"x" * 600, b""), ("output/b.parquet", b"x" * 600, b""))
    copy = unpack_copy_out(big, folder, output_max_bytes=1000, record_max_bytes=MB)
    assert copy.problem == "the outputs went over their limit of 0 MB"
    assert [p.name for p in folder.output_dir.iterdir()] == ["a.parquet"]


def test_a_stream_cut_short_is_incomplete(folder: RunFolder, tmp_path: Path) -> None:
    whole = _archive(tmp_path / "a.tar", ("output/a.parquet", b"x" * 5000, b""))
    assert unpack_copy_out(whole, folder, output_max_bytes=MB, record_max_bytes=MB).complete
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[:3000])
    copy = unpack_copy_out(cut, RunFolder(tmp_path / "again").create(), output_max_bytes=MB, record_max_bytes=MB)
    assert not copy.complete
    no_end = _archive(tmp_path / "no_end.tar", ("output/a.parquet", b"x", b""), end=False)
    assert not unpack_copy_out(no_end, RunFolder(tmp_path / "third").create(), output_max_bytes=MB, record_max_bytes=MB).complete


def test_the_job_goes_in_as_roots_read_only_files(folder: RunFolder, tmp_path: Path) -> None:
    (folder.input_dir / "orders.parquet").write_bytes(b"PAR1")
    folder.install_inbox_files()
    folder.parameterized_notebook.write_text("{}")
    folder.parameters_file.write_text("{}")
    (folder.input_dir / "link").symlink_to(tmp_path)
    spool = io.BytesIO()
    pack_job(folder, spool)
    spool.seek(0)
    with tarfile.open(fileobj=spool) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert {"input/orders.parquet", "runtime/inbox_papermill.py", "runtime/inbox_supervisor.py",
            "runtime/nb_assets/notebook.py", "runtime/nb_assets/inbox/__init__.py", "runtime/nb_assets/inbox/contract.py",
            "job/parameterized.ipynb", "job/parameters.json"} <= set(members)
    assert "input/link" not in members
    assert all(m.uid == 0 and m.gid == 0 and not m.mode & 0o222 for m in members.values())
