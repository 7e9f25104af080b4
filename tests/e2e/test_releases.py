"""Releases of a venv app, end to end: built beside the live one, switched health-gated, rolled back on the host.

One Ubuntu 24.04 target gets a small Flask app from a bare repo inside it. Its first
deploy is made by the previous vpskit (an in-place checkout with data in its instance
folder), so the first run of this one upgrades it to releases. The scenarios run in
order, each on what the one before left.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from tests.rig import PYINFRA, ROOT, dump_toml, run_pyinfra, start_target, target_config
from tests.web_fixtures import _git

pytestmark = pytest.mark.e2e

APP = "hello"
PORT = 5020
ROOT_DIR = f"/srv/apps/{APP}"
REPO = f"/srv/git/{APP}.git"
WORK = f"/tmp/{APP}-work"
GIT = "git -c safe.directory='*'"

APP_PY = """\
import os
from flask import Flask

VERSION = "{version}"
{extra}
app = Flask(__name__, instance_relative_config=True)
os.makedirs(app.instance_path, exist_ok=True)


@app.get("/")
def index():
    return {{"version": VERSION, "pid": os.getpid()}}


@app.get("/health")
def health():
    return "ok"


@app.post("/note")
def note():
    with open(os.path.join(app.instance_path, "notes.txt"), "a") as f:
        f.write(VERSION + "\\n")
    return "kept"
"""


def raw_config() -> dict:
    return {
        "server": {"address": "203.0.113.20", "hostname": "rel1", "upgrade": "none", "unattended_upgrades": False},
        "first_login": {"user": "root", "port": 22, "key": "~/.ssh/id_ed25519"},
        "deploy_user": {"name": "appuser", "public_keys": ["~/.ssh/id_ed25519.pub"], "passwordless_sudo": True},
        "firewall": {"enabled": False},
        "apps": [{"name": APP, "port": PORT, "repo": f"file://{REPO}", "health_path": "/health"}],
    }


class Host:
    def __init__(self, target, raw, tmp):
        self.target, self.raw, self.tmp = target, raw, tmp
        self.runs: dict = {}

    def config(self, label: str, **app) -> object:
        cfg = {**self.raw, "apps": [{**self.raw["apps"][0], **app}]}
        path = self.tmp / f"{label}.toml"
        path.write_text(dump_toml(cfg))
        return path

    def deploy(self, label: str, check: bool = True, **app):
        run = run_pyinfra(self.config(label, keep_releases=3, **app), check=check)
        self.runs[label] = run
        return run

    def commit(self, version: str, extra: str = "") -> str:
        """A new commit of the app on its repo; its SHA."""
        self.target.exec(f"[ -d {WORK} ] || git clone -q {REPO} {WORK}")
        self.target.put_file(f"{WORK}/app.py", APP_PY.format(version=version, extra=extra))
        self.target.exec(
            f"cd {WORK} && git add -A && git -c user.name=dev -c user.email=dev@example.test commit -qm '{version}' && git push -q origin main"
        )
        return self.target.out(f"{GIT} -C {WORK} rev-parse HEAD")

    def get(self, path: str = "/") -> str:
        return self.target.out(f"curl -sf http://127.0.0.1:{PORT}{path}")

    def version(self) -> str:
        return json.loads(self.get())["version"]

    def live(self) -> str:
        return self.target.out(f"readlink {ROOT_DIR}/current")


def first_repo(version: str) -> tuple[bytes, str]:
    """A tar of the app's bare repo with one commit, made on this machine (the target has no git yet); and its SHA."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        (work / "app.py").write_text(APP_PY.format(version=version, extra=""))
        (work / "requirements.txt").write_text("flask\n")
        (work / ".gitignore").write_text("instance/\n")
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", version]):
            _git(args, work)
        _git(["clone", "-q", "--bare", str(work), str(Path(tmp) / f"{APP}.git")], Path(tmp))
        sha = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(str(Path(tmp) / f"{APP}.git"), arcname=f"{APP}.git")
        return buf.getvalue(), sha


def under_load(t, action) -> dict[str, int]:
    """The HTTP codes (000: refused) of a loop of requests inside the target while ``action`` runs: at most 20000 or 240 s."""
    t.exec(
        "rm -f /tmp/load.log /tmp/load.stop; nohup sh -c 'i=0; end=$(($(date +%s)+240)); "
        f"while [ $i -lt 20000 ] && [ $(date +%s) -lt $end ] && [ ! -e /tmp/load.stop ]; do "
        f'curl -s -o /dev/null -w "%{{http_code}}\\n" --max-time 10 http://127.0.0.1:{PORT}/ >> /tmp/load.log; i=$((i+1)); done\' '
        ">/dev/null 2>&1 &"
    )
    time.sleep(1)
    action()
    time.sleep(2)
    t.exec("touch /tmp/load.stop; sleep 1")
    counts = {}
    for code in t.out("cat /tmp/load.log").split():
        counts[code] = counts.get(code, 0) + 1
    return counts


def before_releases() -> str:
    """The last commit of vpskit without releases: the parent of the one that added operations/releases.py."""
    git = ["git", "log", "--diff-filter=A", "--format=%H", "--", "operations/releases.py"]
    added = subprocess.run(git, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert added, "the history that added operations/releases.py is missing (a shallow clone?): `git fetch --unshallow`"
    return f"{added[-1]}^"


def legacy_deploy(cfg_path: Path) -> None:
    """Deploy with vpskit as it was before releases, from an exported copy of that commit."""
    base = before_releases()
    old = cfg_path.parent / "vpskit-before-releases"
    old.mkdir()
    tar = subprocess.run(["git", "archive", base], cwd=ROOT, capture_output=True, check=True).stdout
    tarfile.open(fileobj=io.BytesIO(tar)).extractall(old)
    env = {**os.environ, "VPSKIT_CONFIG": str(cfg_path), "NO_COLOR": "1"}
    run = subprocess.run([PYINFRA, "-y", "inventory.py", "deploy.py"], cwd=old, env=env, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]


@pytest.fixture(scope="module", params=["ubuntu2404"])
def rel(request, docker_engine, images, keys, tmp_path_factory):
    target = start_target(docker_engine, images[request.param], request.param, publish=())
    try:
        repo, sha = first_repo("v1")
        target.exec("mkdir -p /srv/git")
        target.container.put_archive("/srv/git", repo)
        h = Host(target, target_config(raw_config(), target, keys, connector="docker"), tmp_path_factory.mktemp("releases"))
        h.shas = {"v1": sha}
        target.exec(f"chown -R root:root /srv/git && chmod -R a+rX /srv/git && printf '[safe]\\n\\tdirectory = {REPO}\\n' > /etc/gitconfig")
        legacy_deploy(h.config("legacy"))
        # Data the in-place install wrote into its instance folder.
        target.exec(f"curl -sf -X POST http://127.0.0.1:{PORT}/note")
        h.deploy("upgrade")
        h.deploy("second")
        yield h
    finally:
        target.remove()


def test_an_in_place_install_moves_to_releases_keeping_its_instance_data(rel):
    t = rel.target
    assert rel.live() == f"releases/{rel.shas['v1'][:12]}"
    assert rel.version() == "v1"
    assert t.out(f"cat {ROOT_DIR}/shared/instance/notes.txt") == "v1"
    assert t.out(f"readlink {ROOT_DIR}/current/instance") == f"{ROOT_DIR}/shared/instance"
    assert (
        t.out(f"test -d {ROOT_DIR}/src.before-releases && test ! -e {ROOT_DIR}/src && test ! -e {ROOT_DIR}/venv && echo moved") == "moved"
    )
    assert "moving the in-place checkout to releases" in rel.runs["upgrade"].output


def test_second_run_changes_nothing(rel):
    run = rel.runs["second"]
    assert (run.changed, run.errors) == (0, 0), f"changed: {run.changed_ops}\n{run}"


def test_a_new_commit_is_built_beside_the_live_one_and_served_without_a_lost_request(rel):
    t = rel.target
    pid = t.out(f"systemctl show -p MainPID --value app-{APP}.service")
    venv = t.out(f"readlink -f {ROOT_DIR}/current/.venv")
    rel.shas["v2"] = rel.commit("v2")
    codes = under_load(t, lambda: rel.deploy("v2"))
    assert rel.version() == "v2"
    assert rel.live() == f"releases/{rel.shas['v2'][:12]}"
    print(f"responses during the deploy of a changed commit: {codes}")
    assert set(codes) == {"200"} and codes["200"] > 20, f"responses during the deploy: {codes}"
    # Same requirements: the venv is reused and gunicorn reloaded gracefully (same master).
    assert t.out(f"readlink -f {ROOT_DIR}/current/.venv") == venv
    assert t.out(f"systemctl show -p MainPID --value app-{APP}.service") == pid
    assert t.out(f"tail -n 1 {ROOT_DIR}/releases.log").endswith(f"{rel.shas['v2']} deploy reload")


def test_a_commit_that_crashes_on_import_is_switched_back_and_the_old_release_keeps_serving(rel):
    broken = rel.commit("v3-broken", extra='raise RuntimeError("boom at import")')
    run = rel.deploy("broken", check=False)
    assert run.returncode != 0
    assert f"app {APP}: release {broken[:12]} does not answer on /health" in run.output
    assert "boom at import" in run.output
    assert rel.version() == "v2"
    assert rel.live() == f"releases/{rel.shas['v2'][:12]}"


def test_pin_to_an_older_commit_and_back(rel):
    rel.shas["v4"] = rel.commit("v4")
    rel.deploy("v4")
    assert rel.version() == "v4"
    rel.deploy("pinned", revision=rel.shas["v1"][:10])
    assert rel.version() == "v1" and rel.live() == f"releases/{rel.shas['v1'][:12]}"
    again = rel.deploy("pinned-again", revision=rel.shas["v1"][:10])
    assert (again.changed, again.errors) == (0, 0), f"changed: {again.changed_ops}"
    rel.deploy("unpinned")
    assert rel.version() == "v4"


def test_rollback_on_the_host_is_kept_by_the_next_run_until_the_branch_moves(rel):
    t = rel.target
    started = time.time()
    out = t.out(f"vpskit-app rollback {APP}")
    took = time.time() - started
    assert rel.version() == "v1", out  # the release live before v4
    print(f"vpskit-app rollback took {took:.1f}s")
    assert took < 5, f"rollback took {took:.1f}s"
    listing = t.out(f"vpskit-app releases {APP}")
    assert f"live   {rel.shas['v1'][:12]}" in listing and rel.shas["v4"][:12] in listing
    run = rel.deploy("after-rollback")
    assert rel.version() == "v1"
    assert "was rolled back on the host; keeping it until main moves" in run.output
    assert (run.changed, run.errors) == (0, 0), f"changed: {run.changed_ops}"
    rel.shas["v5"] = rel.commit("v5")
    run = rel.deploy("v5")
    assert "main now points at " + rel.shas["v5"][:12] + ": deploying it" in run.output
    assert rel.version() == "v5"


def test_only_the_newest_releases_are_kept(rel):
    kept = rel.target.out(f"ls {ROOT_DIR}/releases").split()
    assert len(kept) == 3 and rel.shas["v5"][:12] in kept, kept


def test_the_load_check_sees_the_requests_a_plain_restart_refuses(rel):
    """What the graceful reload avoids, measured the same way: a restart leaves the port closed while gunicorn starts."""
    codes = under_load(rel.target, lambda: rel.target.exec(f"systemctl restart app-{APP}.service && sleep 3"))
    print(f"responses during a restart: {codes}")
    assert set(codes) - {"200"}, f"responses during a restart: {codes}"
