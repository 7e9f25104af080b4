"""Data and schedules, end to end: PostgreSQL, backups, restore, drill, timers, cron, health report.

One target per distro is deployed once (docker connector) with three apps: two on
PostgreSQL (the guide's Dibby Dollars with its two timers and a cron entry, and
grades) and one on SQLite. No app code is deployed here: the tests write the
tables, the app directory, its .env and venv commands the jobs run.
"""

from __future__ import annotations

import json
import re
import time
import tomllib

import pytest

from tests.conftest import DISTROS, distro_of
from tests.rig import dump_toml, run_pyinfra, start_target, target_config

pytestmark = pytest.mark.e2e

APP_DIR = "/srv/apps/dibby"  # the web layer's layout: src/ (checkout, the jobs' workdir), venv/, .env
SRC = f"{APP_DIR}/src"
BACKUPS = "/var/backups/vpskit"

CONFIG = {
    "server": {"hostname": "data1", "upgrade": "none"},
    "deploy_user": {"name": "appuser"},
    "monitor": {"max_load_per_core": 100},  # the test machine is shared: load is not this host's health
    "apps": [
        {
            "name": "dibby",
            "port": 5001,
            "database": {"engine": "postgresql"},
            "backup": {"paths": ["/srv/dibby/uploads"]},
            "jobs": [
                # The guide's Dibby Dollars jobs: a daily balance snapshot and weekly interest.
                {"name": "snapshot", "schedule": "*-*-* 23:55:00", "command": "dibby-snapshot --daily"},
                {"name": "interest", "schedule": "Sun *-*-* 23:59:00", "command": "dibby-interest"},
                # A cron entry, every minute here so the test sees it run; % must reach the shell as %.
                {"name": "ping", "kind": "cron", "schedule": "* * * * *", "command": "date +%s >> cron.out && id -un >> cron.out"},
            ],
        },
        {"name": "grades", "port": 5002, "database": {"engine": "postgresql", "name": "grades_db", "role": "grades_app"}},
        {"name": "notes", "port": 5003, "database": {"engine": "sqlite", "path": "/srv/notes/notes.sqlite3"}},
    ],
}


class Deployed:
    def __init__(self, target, first, second, config):
        self.target, self.first, self.second, self.config = target, first, second, config


# One target per distro for the whole run, deployed once.
@pytest.fixture(scope="module", params=DISTROS)
def deployed(request, docker_engine, deployed_images, keys, tmp_path_factory):
    distro = request.param
    target = start_target(docker_engine, deployed_images(distro), distro, publish=())
    try:
        cfg = tmp_path_factory.mktemp(f"data-{distro}") / "vpskit.toml"
        cfg.write_text(dump_toml(target_config(CONFIG, target, keys, connector="docker")))
        first = run_pyinfra(cfg)
        second = run_pyinfra(cfg)
        yield Deployed(target, first, second, cfg)
    finally:
        target.remove()


def psql(t, sql: str, db: str = "postgres", check: bool = True):
    return t.exec(f'runuser -u postgres -- psql -X -q -t -A -v ON_ERROR_STOP=1 -d {db} -c "{sql}"', check=check)


def app_psql(t, app: str, sql: str, db: str | None = None, check: bool = True):
    """psql as the app's own role over loopback TCP, with the URL from its secret file."""
    url = '"$DATABASE_URL"' if db is None else f'"${{DATABASE_URL%/*}}/{db}"'
    return t.exec(f'set -a; . /etc/vpskit/secrets/{app}.env; psql -X -q -t -A -v ON_ERROR_STOP=1 {url} -c "{sql}"', check=check)


def newest_dump(t, item="dibby") -> str:
    return t.out(f"ls -1 {BACKUPS}/{item}/{item}-*.dump | sort | tail -n 1")


def run_backup(t):
    """Exactly what the timer runs: the backup service."""
    return t.exec("systemctl start vpskit-backup.service", check=False)


# ------------------------------------------------------------------ idempotence


def stop_postgres(t):
    """Stop PostgreSQL and wait until the cluster refuses connections.

    ``systemctl stop postgresql`` returns once the wrapper unit is down; the cluster
    unit (postgresql@VERSION-main) may still accept a connection for a moment.
    """
    t.exec("systemctl stop postgresql 'postgresql@*'")
    t.exec("for i in $(seq 1 60); do pg_isready -q || exit 0; sleep 0.5; done; exit 1")


def start_postgres(t):
    """Start PostgreSQL and wait until the cluster accepts connections."""
    t.exec("systemctl start postgresql")
    t.exec("for i in $(seq 1 60); do pg_isready -q && exit 0; sleep 0.5; done; exit 1")


def test_second_run_changes_nothing(deployed):
    run = deployed.second
    assert deployed.first.changed > 0
    assert (run.changed, run.errors) == (0, 0), f"changed: {run.changed_ops}\n{run}"


def test_passwords_never_appear_in_pyinfra_output_or_units(deployed):
    t = deployed.target
    for app in ("dibby", "grades"):
        url = t.out(f"sed -n 's/^DATABASE_URL=//p' /etc/vpskit/secrets/{app}.env")
        password = re.match(r"postgresql://[a-z_]+:([A-Za-z0-9]{40})@127\.0\.0\.1:5432/[a-z_]+$", url).group(1)
        assert password not in deployed.first.output and password not in deployed.second.output
        assert t.exec(f"grep -rqF {password} /etc/systemd/system /etc/cron.d /etc/vpskit/health.json", check=False).returncode == 1
        assert t.out(f"stat -c '%a %U' /etc/vpskit/secrets/{app}.env") == "600 root"
    assert t.out("stat -c '%a %U' /etc/vpskit/secrets") == "700 root"


# ------------------------------------------------------------------ PostgreSQL


def test_postgres_is_the_distros_listening_on_loopback_only_with_scram(deployed):
    t = deployed.target
    version = psql(t, "SHOW server_version_num").stdout.strip()[:2]
    assert version == distro_of(t.distro).postgres
    listeners = t.out("ss -Hltn 'sport = :5432' | awk '{print $4}' | sort")
    # ::1 only where the host has IPv6 (containers here may not).
    assert "127.0.0.1:5432" in listeners.split() and set(listeners.split()) <= {"127.0.0.1:5432", "[::1]:5432"}
    assert psql(t, "SHOW password_encryption").stdout.strip() == "scram-sha-256"
    assert t.out("systemctl is-enabled postgresql") == "enabled"
    rules = psql(t, "SELECT type, auth_method FROM pg_hba_file_rules WHERE error IS NULL").stdout.split()
    assert "host|trust" not in rules and all(r in ("local|peer", "host|scram-sha-256") for r in rules), rules


def test_app_roles_have_least_privilege_and_own_their_database_and_schema(deployed):
    t = deployed.target
    for db, role in (("dibby", "dibby"), ("grades_db", "grades_app")):
        flags = psql(
            t,
            f"SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = '{role}'",
        )
        assert flags.stdout.strip() == "f|f|f|f|f|t"
        assert psql(t, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'").stdout.strip() == role
        assert psql(t, "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'public'", db=db).stdout.strip() == role
        assert psql(t, f"SELECT has_database_privilege('public', '{db}', 'CONNECT')").stdout.strip() == "f"


def test_each_app_reads_and_writes_its_own_database(deployed):
    t = deployed.target
    app_psql(t, "dibby", "CREATE TABLE IF NOT EXISTS probe (n int); INSERT INTO probe VALUES (7)")
    assert app_psql(t, "dibby", "SELECT sum(n) FROM probe").stdout.strip().isdigit()
    app_psql(t, "grades", "CREATE TABLE IF NOT EXISTS probe (n int); INSERT INTO probe VALUES (1)")


def test_an_app_role_cannot_read_another_apps_database(deployed):
    t = deployed.target
    denied = app_psql(t, "dibby", "SELECT 1", db="grades_db", check=False)
    assert denied.returncode != 0
    assert re.search(r"no pg_hba.conf entry|permission denied", denied.stderr), denied.stderr
    assert psql(t, "SELECT has_database_privilege('dibby', 'grades_db', 'CONNECT')").stdout.strip() == "f"
    assert app_psql(t, "grades", "SELECT 1", db="dibby", check=False).returncode != 0


def test_a_password_changed_by_hand_is_set_back_from_the_kept_secret(deployed):
    t = deployed.target
    before = t.out("sha256sum /etc/vpskit/secrets/grades.env")
    psql(t, "ALTER ROLE grades_app PASSWORD 'changed-by-hand'")
    assert app_psql(t, "grades", "SELECT 1", check=False).returncode != 0
    run = run_pyinfra(deployed.config, "-v", "--diff")
    assert run.changed_ops == ["Database grades_db and role grades_app of app grades"], run.changed_ops
    password = t.out("sed -n 's|^DATABASE_URL=postgresql://[^:]*:\\([^@]*\\)@.*|\\1|p' /etc/vpskit/secrets/grades.env")
    assert len(password) == 40 and password not in run.output
    assert app_psql(t, "grades", "SELECT 1").stdout.strip() == "1"
    assert t.out("sha256sum /etc/vpskit/secrets/grades.env") == before


# ------------------------------------------------------------------ backups


def _seed_accounts(t):
    app_psql(
        t,
        "dibby",
        "DROP TABLE IF EXISTS accounts, probe; CREATE TABLE accounts (id serial PRIMARY KEY, name text, balance numeric);"
        " INSERT INTO accounts (name, balance) SELECT 'student ' || i, i * 1.5 FROM generate_series(1, 50) i",
    )


def test_backup_job_makes_a_verified_dump_that_restores_the_same_rows(deployed):
    t = deployed.target
    _seed_accounts(t)
    r = run_backup(t)
    assert r.returncode == 0, t.out("journalctl -u vpskit-backup -n 30 --no-pager")
    dump = newest_dump(t)
    assert t.out(f"stat -c '%a %U' {dump}") == "600 root"
    assert t.out(f"stat -c '%a' {BACKUPS} {BACKUPS}/dibby").split() == ["700", "700"]
    t.exec(f"pg_restore --list {dump} | grep -q 'TABLE DATA public accounts'")
    t.exec("vpskit-backup restore dibby --into scratch_dibby")
    rows = "SELECT id, name, balance FROM accounts ORDER BY id"
    restored = psql(t, rows, db="scratch_dibby").stdout
    assert restored == psql(t, rows, db="dibby").stdout and restored.count("\n") == 50
    psql(t, "DROP DATABASE scratch_dibby")
    status = t.out("cat /var/lib/vpskit/backup/dibby.status")
    assert "state=ok" in status and f"file={dump}" in status


def _write_notes_db(t):
    """The SQLite app's database file, as the app would write it."""
    t.exec(
        "mkdir -p /srv/notes && python3 -c \"import sqlite3; c=sqlite3.connect('/srv/notes/notes.sqlite3'); "
        "c.execute('create table if not exists n (t text)'); c.execute(\\\"insert into n values ('hi')\\\"); c.commit()\""
    )


def test_sqlite_file_and_upload_dir_are_backed_up_and_restored(deployed):
    t = deployed.target
    _write_notes_db(t)
    t.exec("mkdir -p /srv/dibby/uploads && echo receipt > /srv/dibby/uploads/r1.txt")
    assert run_backup(t).returncode == 0
    assert t.out(f"ls {BACKUPS}/notes | grep -c '\\.sqlite3$'") >= "1"
    assert t.out(f"ls {BACKUPS}/dibby-files-uploads | grep -c '\\.tar\\.gz$'") >= "1"
    t.exec("rm /srv/dibby/uploads/r1.txt && rm /srv/notes/notes.sqlite3")
    t.exec("vpskit-backup restore dibby-files-uploads && vpskit-backup restore notes")
    assert t.out("cat /srv/dibby/uploads/r1.txt") == "receipt"
    assert (
        t.out(
            "python3 -c \"import sqlite3; print(sqlite3.connect('/srv/notes/notes.sqlite3').execute('select count(*) from n').fetchone()[0])\""
        )
        >= "1"
    )


def test_backup_fails_loudly_without_postgres_and_keeps_the_good_backup(deployed):
    t = deployed.target
    assert run_backup(t).returncode == 0
    good = newest_dump(t)
    before = t.out(f"ls -1 {BACKUPS}/dibby {BACKUPS}/grades | sort; sha256sum {good}")
    stop_postgres(t)
    try:
        for _ in range(2):
            r = run_backup(t)
            assert r.returncode != 0
            t.exec("systemctl reset-failed vpskit-backup.service")
        assert t.out(f"ls -1 {BACKUPS}/dibby {BACKUPS}/grades | sort; sha256sum {good}") == before
        assert t.out(f"find {BACKUPS} -name '*.in-progress' | wc -l") == "0"
        log = t.out("journalctl -u vpskit-backup.service --no-pager -o cat -n 200")
        assert log.count("backup FAILED for 2 of 4 items: dibby grades") >= 2, log
        assert "state=failed" in t.out("cat /var/lib/vpskit/backup/dibby.status")
        t.exec(f"pg_restore --file=/dev/null {good}")
    finally:
        start_postgres(t)


def test_retention_never_deletes_the_newest_good_backup(deployed):
    t = deployed.target
    assert run_backup(t).returncode == 0
    t.exec(f"find {BACKUPS} -type f -name '*-*.*' -exec touch -d '400 days ago' {{}} +")
    old = t.out(f"ls -1 {BACKUPS}/dibby").split()
    stop_postgres(t)
    try:
        assert run_backup(t).returncode != 0
        t.exec("systemctl reset-failed vpskit-backup.service")
        assert t.out(f"ls -1 {BACKUPS}/dibby").split() == old  # a failed run deletes nothing
    finally:
        start_postgres(t)
    assert run_backup(t).returncode == 0
    left = t.out(f"ls -1 {BACKUPS}/dibby").split()
    assert len(left) == 1 and left[0] not in old  # the old ones went, the new good one stays


def test_restore_drill_restores_into_a_scratch_database_and_records_it(deployed):
    t = deployed.target
    _seed_accounts(t)
    _write_notes_db(t)
    assert run_backup(t).returncode == 0
    t.exec("systemctl start vpskit-restore-drill.service")
    status = t.out("cat /var/lib/vpskit/drill/dibby.status")
    assert "state=ok" in status and "tables=1 rows=50" in status, status
    assert psql(t, "SELECT count(*) FROM pg_database WHERE datname LIKE 'vpskit_drill_%'").stdout.strip() == "0"
    assert "state=ok" in t.out("cat /var/lib/vpskit/drill/notes.status")


# ------------------------------------------------------------------ timers and cron


def _write_app_dir(t):
    """A stand-in for the web layer's app checkout: a .env and the venv's commands."""
    t.exec(
        f"mkdir -p {APP_DIR}/venv/bin {SRC} && printf 'GREETING=hello from .env\\n' > {APP_DIR}/.env && "
        f"printf '#!/bin/sh\\necho \"$GREETING|$(id -un)|$(pwd)|$VIRTUAL_ENV|${{DATABASE_URL%%%%:*}}|$*\" > snapshot.out\\n'"
        f" > {APP_DIR}/venv/bin/dibby-snapshot && chmod 755 {APP_DIR}/venv/bin/dibby-snapshot && "
        f"chown -R appuser:appuser {APP_DIR}"
    )


def test_app_timers_are_listed_and_run_the_command_in_the_app_venv(deployed):
    t = deployed.target
    timers = t.out("systemctl list-timers --all --no-pager")
    for unit in ("dibby-snapshot.timer", "dibby-interest.timer", "vpskit-backup.timer", "vpskit-restore-drill.timer"):
        assert unit in timers
    assert t.out("systemctl show -p TimersCalendar --value dibby-interest.timer").count("Sun *-*-* 23:59:00") == 1
    assert t.out("systemctl show -p Persistent --value dibby-snapshot.timer") == "yes"
    _write_app_dir(t)
    t.exec("systemctl start dibby-snapshot.service")
    out = t.out(f"cat {SRC}/snapshot.out")
    assert out == f"hello from .env|appuser|{SRC}|{APP_DIR}/venv|postgresql|--daily"
    assert t.out(f"stat -c %U {SRC}/snapshot.out") == "appuser"


def test_cron_entry_is_installed_for_the_user_and_runs(deployed):
    t = deployed.target
    _write_app_dir(t)
    path = "/etc/cron.d/vpskit-dibby-ping"
    assert t.out(f"stat -c '%a %U' {path}") == "644 root"
    line = t.out(f"grep -v '^#' {path} | tail -n 1")
    assert line.startswith("* * * * * appuser cd ") and "+\\%s" in line
    deadline = time.time() + 75
    while time.time() < deadline and t.exec(f"test -s {SRC}/cron.out", check=False).returncode:
        time.sleep(3)
    stamp, user = t.out(f"head -n 2 {SRC}/cron.out").split()
    assert stamp.isdigit() and user == "appuser"
    assert "vpskit" not in t.out("journalctl -u cron --no-pager -o cat | grep -i error || true")


# ------------------------------------------------------------------ health report


def test_health_report_is_healthy_and_fails_when_an_app_stops(deployed):
    t = deployed.target
    assert run_backup(t).returncode == 0
    ok = t.exec("vpskit-health", check=False)
    assert ok.returncode == 0, ok.stdout
    assert re.search(r"^ok\s+postgresql.service\s+active", ok.stdout, re.M)
    # A stand-in app service answering HTTP, added to a copy of the report's config.
    t.exec(
        "systemd-run --unit=standin-app python3 -m http.server --bind 127.0.0.1 8099 && "
        "for i in $(seq 50); do curl -fs -o /dev/null http://127.0.0.1:8099/ && break; sleep 0.2; done"
    )
    conf = json.loads(t.out("cat /etc/vpskit/health.json"))
    conf["apps"] = [{"name": "standin", "unit": "standin-app.service", "url": "http://127.0.0.1:8099/", "host": ""}]
    t.put_file("/tmp/health.json", json.dumps(conf))
    up = t.exec("VPSKIT_HEALTH_CONF=/tmp/health.json vpskit-health", check=False)
    assert up.returncode == 0, up.stdout
    assert "HTTP 200" in up.stdout
    t.exec("systemctl stop standin-app")
    down = t.exec("VPSKIT_HEALTH_CONF=/tmp/health.json vpskit-health", check=False)
    assert down.returncode == 1, down.stdout
    assert re.search(r"^FAIL\s+app standin\s", down.stdout, re.M) and "UNHEALTHY" in down.stdout


def test_health_report_fails_when_postgres_is_down(deployed):
    t = deployed.target
    stop_postgres(t)
    try:
        r = t.exec("vpskit-health", check=False)
        assert r.returncode == 1 and re.search(r"^FAIL\s+postgresql.service", r.stdout, re.M), r.stdout
    finally:
        start_postgres(t)


# ------------------------------------------------------------------ jobs taken out of the config (changes the host: last)


def test_jobs_taken_out_of_the_config_stop_and_their_files_go(deployed, tmp_path):
    t = deployed.target
    raw = tomllib.loads(deployed.config.read_text())
    raw["apps"][0]["jobs"] = [j for j in raw["apps"][0]["jobs"] if j["name"] == "snapshot"]
    smaller = tmp_path / "fewer-jobs.toml"
    smaller.write_text(dump_toml(raw))
    first = run_pyinfra(smaller)
    assert first.errors == 0
    assert {"Removed jobs | Remove dibby-interest.timer", "Removed jobs | Remove cron job dibby/ping"} <= set(first.changed_ops), (
        first.changed_ops
    )
    assert t.out("ls /etc/systemd/system/dibby-interest.* /etc/cron.d/vpskit-dibby-ping 2>/dev/null | wc -l") == "0"
    timers = t.out("systemctl list-timers --all --no-pager")
    assert "dibby-interest.timer" not in timers and "dibby-snapshot.timer" in timers
    again = run_pyinfra(smaller)
    assert again.changed == 0, again.changed_ops


def test_an_apt_proxy_in_the_config_carries_apt_from_the_next_run_and_goes_when_emptied(deployed, tmp_path):
    """[server] apt_proxy, with the tests' apt-cacher-ng as the proxy a user with several servers runs."""
    from tests.pkgcache import APT_CONF, APT_PROXY

    t = deployed.target
    if t.exec(f"curl -s -o /dev/null -m 3 {APT_PROXY}/acng-report.html", check=False).returncode != 0:
        pytest.fail(f"the test package cache does not answer at {APT_PROXY}: `make test` starts it (python -m tests.pkgcache)")
    raw = tomllib.loads(deployed.config.read_text())
    raw["server"]["apt_proxy"] = APT_PROXY
    with_proxy = tmp_path / "apt-proxy.toml"
    with_proxy.write_text(dump_toml(raw))
    assert run_pyinfra(with_proxy).errors == 0
    assert f'Acquire::http::Proxy "{APT_PROXY}";' in t.out("cat /etc/apt/apt.conf.d/01vpskit-proxy").splitlines()
    assert t.out("stat -c '%U %a' /etc/apt/apt.conf.d/01vpskit-proxy") == "root 644"
    # apt takes it (the tests' own auto-detect file set aside): the lists come through the proxy.
    t.exec(f"mv {APT_CONF} /root/test-proxy.conf")
    try:
        assert f'Acquire::http::Proxy "{APT_PROXY}";' in t.out("apt-config dump Acquire::http::Proxy")
        t.exec("apt-get update -qq")
    finally:
        t.exec(f"mv /root/test-proxy.conf {APT_CONF}")
    run_pyinfra(with_proxy).assert_quiet()
    # Emptied: the file goes, and nothing else changes.
    emptied = run_pyinfra(deployed.config)
    assert len(emptied.changed_ops) == 1 and "apt caching proxy" in emptied.changed_ops[0], emptied.changed_ops
    assert t.out("ls /etc/apt/apt.conf.d/01vpskit-proxy 2>/dev/null | wc -l") == "0"
