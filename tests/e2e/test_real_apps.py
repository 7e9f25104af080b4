"""Repos shaped like the ones people have, end to end: each installed the way its repo says.

journal: a pyproject-only Flask package with an app factory and SQLite in its
instance folder (``pip install .``); ledger: a FastAPI API in ``backend/`` with a
``uv.lock`` (``uv sync --frozen``); pollster: a Flask app with a ``poetry.lock``.
One target per distro gets all three from bare repos inside it, behind nginx with
certificates from pebble; a second run must change nothing. The scenarios that
change the host run last, in order.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets

import pytest

from operations.install import TOOLS
from tests.conftest import DISTROS
from tests.rig import dump_toml, run_pyinfra, start_target, target_config
from tests.web_fixtures import GIT_DIR, https_get, prepare_web_target

pytestmark = pytest.mark.e2e

APPS = {
    "journal": dict(
        port=5011,
        entry="journal:create_app()",
        migrate="flask --app journal init-db",
        env={"GREETING": "hello from journal"},
    ),
    "ledger": dict(
        kind="fastapi",
        port=5012,
        app_dir="backend",
        entry="app.main:app",
        health_path="/api/v1/utils/health-check/",
        health_timeout=30,  # the failing health check below waits this long, twice
        database={"engine": "postgresql", "driver": ""},  # psycopg is in its uv.lock
        env={
            "GREETING": "hello from ledger",
            "PROJECT_NAME": "ledger",
            "POSTGRES_SERVER": "${DB_HOST}",
            "POSTGRES_PORT": "${DB_PORT}",
            "POSTGRES_USER": "${DB_USER}",
            "POSTGRES_PASSWORD": "${DB_PASSWORD}",
            "POSTGRES_DB": "${DB_NAME}",
        },
        secrets_from={"PAYMENTS_API_KEY": "env:LEDGER_PAYMENTS_KEY"},
    ),
    "pollster": dict(port=5013, entry="pollster.web:app", install="poetry", env={"GREETING": "hello from pollster"}),
}
DOMAINS = {name: f"{name}.example.test" for name in APPS}
# Where each app answers with JSON naming itself.
PAGES = {"journal": "/", "ledger": "/api/v1/info", "pollster": "/"}


def real_apps_raw() -> dict:
    return {
        "server": {"address": "203.0.113.10", "hostname": "apps1", "upgrade": "none", "unattended_upgrades": False},
        "first_login": {"user": "root", "port": 22, "key": "~/.ssh/id_ed25519"},
        "deploy_user": {"name": "appuser", "public_keys": ["~/.ssh/id_ed25519.pub"], "passwordless_sudo": True},
        "tls": {"mode": "letsencrypt"},
        "apps": [
            {"name": name, "domains": [DOMAINS[name]], "repo": "https://git.example.test/x.git", "secrets": ["SECRET_KEY"], **cfg}
            for name, cfg in APPS.items()
        ],
    }


class Host:
    def __init__(self, target, raw, tmp):
        self.target, self.raw, self.tmp = target, raw, tmp
        self.runs: dict = {}
        self.brought = [os.environ["LEDGER_PAYMENTS_KEY"]]  # every value the brought secret had

    def deploy(self, label: str, raw: dict | None = None, *extra: str, check: bool = True):
        path = self.tmp / f"{label}.toml"
        path.write_text(dump_toml(raw or self.raw))
        run = run_pyinfra(path, *extra, check=check)
        self.runs[label] = run
        return run

    def pid(self, app: str) -> str:
        return self.target.out(f"systemctl show -p MainPID --value app-{app}.service")

    def commit(self, app: str, shell: str, message: str) -> None:
        """A new commit on the app's bare repo: ``shell`` run in a fresh clone of it."""
        work = f"/tmp/edit-{app}"
        self.target.exec(
            f"rm -rf {work} && git clone -q {GIT_DIR}/{app}.git {work} && cd {work} && {shell} && "
            f"git -c user.name=dev -c user.email=dev@example.test commit -qam '{message}' && git push -q origin main"
        )


@pytest.fixture(scope="module", params=DISTROS)
def apps_host(request, docker_engine, deployed_images, keys, tmp_path_factory):
    distro = request.param
    os.environ["LEDGER_PAYMENTS_KEY"] = f"pk-{secrets.token_hex(16)}"
    target = start_target(docker_engine, deployed_images(distro), distro, publish=())
    try:
        raw = prepare_web_target(target, real_apps_raw())
        h = Host(target, target_config(raw, target, keys, connector="docker"), tmp_path_factory.mktemp(f"apps-{distro}"))
        first = h.deploy("first")
        assert first.errors == 0, first
        h.deploy("second")
        yield h
    finally:
        target.remove()


def page(h: Host, app: str) -> dict:
    r = https_get(h.target, f"https://{DOMAINS[app]}{PAGES[app]}", "-f")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_second_run_changes_nothing(apps_host):
    run = apps_host.runs["second"]
    assert (run.changed, run.errors) == (0, 0), f"changed: {run.changed_ops}\n{run}"


def test_each_app_answers_over_https(apps_host):
    for app in APPS:
        assert page(apps_host, app)["greeting"] == f"hello from {app}"
    r = https_get(apps_host.target, "https://ledger.example.test/api/v1/utils/health-check/", "-f")
    assert r.stdout.strip() == "true", r


def test_pyproject_app_is_installed_and_keeps_sqlite_in_its_instance_folder(apps_host):
    t = apps_host.target
    body = json.dumps({"body": "first entry"})
    r = https_get(t, "https://journal.example.test/entries", "-f -X POST -H 'Content-Type: application/json'", f"-d '{body}'")
    assert r.returncode == 0, r.stderr
    assert page(apps_host, "journal")["entries"] == ["first entry"]
    assert t.exec("test -s /srv/apps/journal/shared/instance/journal.sqlite", check=False).returncode == 0
    assert "journal" in t.out("/srv/apps/journal/current/.venv/bin/pip list --format=freeze")


def test_locked_apps_get_their_runtime_dependencies_only(apps_host):
    t = apps_host.target
    for app in ("ledger", "pollster"):
        installed = t.out(f"/srv/apps/{app}/current/.venv/bin/pip list --format=freeze").lower()
        assert "gunicorn==" in installed and "pytest" not in installed, installed
    assert "fastapi==" in t.out("/srv/apps/ledger/current/.venv/bin/pip list --format=freeze").lower()
    # The locked versions, not the newest.
    lock = t.out("git -c safe.directory='*' -C /srv/apps/pollster/current show HEAD:poetry.lock")
    flask = lock.split('name = "flask"\nversion = "')[1].split('"')[0]
    assert f"flask=={flask}" in t.out("/srv/apps/pollster/current/.venv/bin/pip list --format=freeze").lower()
    # The tools are vpskit's pinned ones, outside the apps' venvs.
    assert TOOLS["uv"] in t.out(f"/opt/vpskit/tools/uv-{TOOLS['uv']}/bin/uv --version")


def test_app_dir_is_the_working_directory(apps_host):
    t = apps_host.target
    assert "ledger: switch to release" in apps_host.runs["first"].output
    assert "health-gated: switched back if it does not answer on /api/v1/utils/health-check/" in apps_host.runs["first"].output
    assert t.out("systemctl show -p WorkingDirectory --value app-ledger.service") == "/srv/apps/ledger/current/backend"


def test_changed_lock_file_reinstalls_and_restarts_only_that_app(apps_host):
    h = apps_host
    before = {app: h.pid(app) for app in APPS}
    h.commit("ledger", "printf '\\n' >> backend/uv.lock", "relock")
    run = h.deploy("relock", None, "-v")
    assert run.errors == 0, run
    # Operation names carry their deploys' names first ("Web apps | App | ledger: ...").
    steps = [op.rsplit(" | ", 1)[-1] for op in run.changed_ops]
    assert any(step.startswith("ledger: release ") for step in steps), run.changed_ops
    # A new venv for the new lock file beside the live one's: the switch restarts (the master cannot load it).
    assert len(h.target.out("ls /srv/apps/ledger/venvs").split()) == 2
    assert not any(step.startswith(("journal:", "pollster:")) for step in steps), run.changed_ops
    assert h.pid("ledger") != before["ledger"]
    assert (h.pid("journal"), h.pid("pollster")) == (before["journal"], before["pollster"])
    assert page(h, "ledger")["app"] == "ledger"
    again = h.deploy("relock-again")
    assert (again.changed, again.errors) == (0, 0), again.changed_ops


def test_env_references_reach_the_database_and_the_brought_secret_is_in_env_only(apps_host):
    h, t = apps_host, apps_host.target
    info = page(h, "ledger")
    assert info["database"] == ["ledger", "ledger"]  # logged in with ${DB_USER} / ${DB_PASSWORD} from POSTGRES_*
    assert info["payments_key_sha256"] == hashlib.sha256(h.brought[0].encode()).hexdigest()
    assert t.out("stat -c '%a %U' /srv/apps/ledger/.env") == "600 appuser"
    assert f"PAYMENTS_API_KEY={h.brought[0]}" in t.out("cat /srv/apps/ledger/.env").splitlines()


def test_a_changed_brought_secret_restarts_only_that_app_and_is_never_printed(apps_host):
    h = apps_host
    before = {app: h.pid(app) for app in APPS}
    os.environ["LEDGER_PAYMENTS_KEY"] = f"pk-{secrets.token_hex(16)}"
    h.brought.append(os.environ["LEDGER_PAYMENTS_KEY"])
    dry = h.deploy("secret-dry", None, "--dry", "--diff", "-v")
    assert any("ledger: environment" in op for op in dry.changed_ops), dry.changed_ops
    run = h.deploy("secret", None, "--diff", "-vv")
    assert run.errors == 0, run
    assert h.pid("ledger") != before["ledger"]
    assert (h.pid("journal"), h.pid("pollster")) == (before["journal"], before["pollster"])
    assert page(h, "ledger")["payments_key_sha256"] == hashlib.sha256(h.brought[-1].encode()).hexdigest()
    again = h.deploy("secret-again", None, "-v")
    assert (again.changed, again.errors) == (0, 0), again.changed_ops
    password = h.target.out("sed -n 's|^DATABASE_URL=postgresql://[^:]*:\\([^@]*\\)@.*|\\1|p' /etc/vpskit/secrets/ledger.env")
    assert len(password) >= 20
    for label, done in h.runs.items():
        for value in (*h.brought, password):
            assert value not in done.output, f"a secret shows in the output of run {label!r}"


def test_a_commit_failing_its_health_check_fails_every_run_and_the_live_release_keeps_serving(apps_host):
    """A new commit whose health path answers 500 never goes live: each run fails naming the app and its output, until a fix."""
    h, t = apps_host, apps_host.target
    before = {app: h.pid(app) for app in APPS}
    health = "https://ledger.example.test/api/v1/utils/health-check/"
    broken = 'raise RuntimeError("payments provider unreachable")'
    h.commit("ledger", f"sed -i 's/^    return True$/    {broken}/' backend/app/main.py", "check the payments provider")
    for label in ("unhealthy", "unhealthy-again"):
        run = h.deploy(label, check=False)
        assert run.returncode != 0, run.output[-4000:]
        said = run.output.split("app ledger: release ", 1)[-1]
        assert "does not answer on /api/v1/utils/health-check/" in said and "the live release keeps serving" in said, run.output[-4000:]
        assert "RuntimeError: payments provider unreachable" in said, said[:3000]
        # The release that answered before still serves, unrestarted; the other apps are untouched.
        assert https_get(t, health, "-f").stdout.strip() == "true"
        assert {app: h.pid(app) for app in APPS} == before

    h.commit("ledger", f"sed -i 's/^    {broken}$/    return True/' backend/app/main.py", "the health check answers again")
    fixed = h.deploy("healthy-again")
    assert fixed.errors == 0, fixed.output[-4000:]
    assert https_get(t, health, "-f").stdout.strip() == "true"
    again = h.deploy("healthy-second")
    assert (again.changed, again.errors) == (0, 0), again.changed_ops


def test_commit_without_install_files_stops_before_the_running_version_is_touched(apps_host):
    h = apps_host
    before = h.pid("pollster")
    head = h.target.out("git -c safe.directory='*' -C /srv/apps/pollster/current rev-parse HEAD")
    h.commit("pollster", "git rm -q poetry.lock", "drop the lock")
    run = h.deploy("nolock", check=False)
    assert run.returncode != 0
    assert "app pollster: install = 'poetry' needs poetry.lock and pyproject.toml in the repo" in run.output, run
    assert h.target.out("git -c safe.directory='*' -C /srv/apps/pollster/current rev-parse HEAD") == head
    assert h.pid("pollster") == before
    assert page(h, "pollster")["app"] == "pollster"
