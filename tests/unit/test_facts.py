"""Facts quote the paths they are given, and checked_file acts on what FileState reports (paths with spaces too)."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from operations.appspecs import compose_spec
from operations.checkout import AppPaths
from operations.compose import compose_stamp_keys
from operations.config import App
from operations.facts import FileState
from operations.render import sha256
from operations.stamped import Stamps
from operations.validated import checked_file
from tests.unit.hoststub import fact, run_op

ODD_PATH = "/etc/my app/it's.conf"


def bash(command: str, cwd) -> list[str]:
    proc = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_file_state_quotes_its_path():
    command = FileState().command(ODD_PATH)
    assert command.count(shlex.quote(ODD_PATH)) == 3
    assert FileState().process(["ab12", "640 root adm"]) == {"sha256": "ab12", "mode": "640", "user": "root", "group": "adm"}


@pytest.mark.parametrize("name", ["a file.conf", "it's here.conf", "back\\slash.conf", "$(touch pwned).conf"])
def test_file_state_reads_a_file_whose_name_needs_quoting(tmp_path, name):
    """Run for real: the hash and mode of the file come back, and nothing in its name is executed."""
    path = tmp_path / "my dir" / name
    path.parent.mkdir()
    path.write_bytes(b"content\n")
    os.chmod(path, 0o640)
    state = FileState().process(bash(FileState().command(str(path)), tmp_path))
    assert state is not None and state["sha256"] == hashlib.sha256(b"content\n").hexdigest() and state["mode"] == "640"
    assert not (tmp_path / "pwned").exists()
    assert FileState().process(bash(FileState().command(str(tmp_path / "my dir" / "missing file")), tmp_path)) is None


# ---------------------------------------------------------------- checked_file

CONTENT = "listen 80;\n"


def file_state(content: str = CONTENT, mode: str = "644", user: str = "root", group: str = "root") -> dict:
    return {"sha256": sha256(content), "mode": mode, "user": user, "group": group}


def test_checked_file_leaves_an_identical_file_alone():
    done = run_op(checked_file, {fact(FileState, path=ODD_PATH): file_state()}, dest=ODD_PATH, content=CONTENT)
    assert done.is_noop and done.asked == ["Facts"]  # read through the run's snapshot


def test_checked_file_only_fixes_mode_and_owner_of_an_identical_file():
    done = run_op(checked_file, {FileState: file_state(mode="600")}, dest=ODD_PATH, content=CONTENT, mode="0640", user="www-data")
    q = shlex.quote(ODD_PATH)
    assert done.commands == [f"chmod 640 {q} && chown www-data:root {q}"]


@pytest.mark.parametrize("current", [None, file_state("listen 81;\n")], ids=["missing", "different"])
def test_checked_file_stages_then_installs_a_new_or_changed_file(current):
    done = run_op(checked_file, {FileState: current}, dest=ODD_PATH, content=CONTENT, validate="nginx -t")
    (upload, install) = done.commands
    assert upload[0] == "upload" and upload[1] == CONTENT.encode()
    staged = upload[2]
    assert install.startswith(f"chmod 644 {shlex.quote(staged)} && chown root:root {shlex.quote(staged)} && ")
    assert f"mv -f {shlex.quote(staged)} {shlex.quote(ODD_PATH)}" in install and "if nginx -t; then" in install


# ---------------------------------------------------------------- Stamps


def test_stamps_read_each_steps_stored_and_current_key_under_an_apps_dir_with_a_space(tmp_path):
    """Run for real: the stamp files and the git checkout sit below "my apps"; every key comes back whole."""
    paths = AppPaths("shop", str(tmp_path / "my apps"), str(tmp_path / "logs"))
    src = Path(paths.src)
    src.mkdir(parents=True)
    (src / "requirements.txt").write_text("flask\n")
    Path(paths.env).write_text("A=1\n")
    git = ["git", "-C", str(src), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "x"]):
        subprocess.run([*git, *args], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    app = App(name="shop", port=8000, domains=("shop.example.com",), repo="https://g.example/s.git", migrate="flask db upgrade",
              kind="compose", compose_file="compose.yaml", service="web")  # fmt: skip
    keys = compose_stamp_keys(compose_spec(app), paths)
    Path(keys["migrate"][0]).write_text("stored key\n")

    stamps = Stamps().process(bash(Stamps().command(keys), tmp_path))
    assert stamps["migrate"][0] == "stored key"
    assert stamps["migrate"][1].startswith(head + " ")
