"""Off-host copies and the disaster drill, end to end (Ubuntu 24.04 only: one drill is enough).

Host A is deployed with one app on PostgreSQL and its off-host repository on an SFTP
server: a second container on a docker network this test creates. Data is written
through the app, backed up and copied off-host; then A is destroyed. A brand-new
host B, deployed with ``restore = true``, must serve the same rows with the same
secrets in its ``.env`` and the same database password, and a second run on B must
change nothing. A wrong password and an unreachable repository fail loudly and leave
the local backups as they were.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

import pytest

from tests.rig import Run, Target, dump_toml, run_pyinfra, ssh_keypair, start_target, target_config
from tests.web_fixtures import put_repos

pytestmark = pytest.mark.e2e

DISTRO = "ubuntu2404"
SFTP_USER = "offsite"  # not "backup": Debian and Ubuntu have that system user
REPO_DIR = "/srv/restic/shop1"
APP = "/srv/apps/dibby"
BACKUPS = "/var/backups/vpskit"
UPLOADS = f"{APP}/data/uploads"


def config(sftp_host: str, key, restore: bool = False, password_file: str = "vpskit-offsite.password") -> dict:
    return {
        "server": {"hostname": "shop1", "upgrade": "none"},
        "deploy_user": {"name": "appuser"},
        "monitor": {"max_load_per_core": 100},  # the test machine is shared: load is not this host's health
        "apps": [
            {
                "name": "dibby",
                "port": 5001,
                "repo": "file:///srv/git/dibby.git",
                "entry": "app:app",
                "migrate": "python migrate.py",
                "seed": "python seed.py",
                "env": {"GREETING": "hello from dibby"},
                "database": {"engine": "postgresql"},
                "backup": {"paths": [UPLOADS]},
            }
        ],
        "backups": {
            "offsite": {
                "repository": f"sftp:{SFTP_USER}@{sftp_host}:{REPO_DIR}",
                "ssh_key": str(key),
                "password_file": password_file,
                "restore": restore,
            }
        },
    }


def serve_sftp(server: Target, key_pub) -> None:
    """A plain systemd target's sshd lets the offsite user in by key (SFTP is sshd's own subsystem)."""
    server.exec(f"useradd -m -s /bin/bash {SFTP_USER} && install -d -o {SFTP_USER} -m 700 /srv/restic")
    server.put_file(f"/home/{SFTP_USER}/.ssh/authorized_keys", key_pub.read_text(), mode=0o600)
    server.exec(f"chown -R {SFTP_USER}: /home/{SFTP_USER}/.ssh && systemctl start ssh")


def write_config(tmp, name: str, raw: dict, target: Target, keys) -> object:
    path = tmp / name
    path.write_text(dump_toml(target_config(raw, target, keys, connector="docker")))
    return path


def app_get(t: Target, path: str) -> dict:
    return json.loads(t.out(f"curl -fsS --retry 10 --retry-connrefused --retry-delay 1 http://127.0.0.1:5001{path}"))


def env_secrets(t: Target) -> dict:
    lines = t.out(f"cat {APP}/.env /etc/vpskit/secrets/dibby.env").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def backup_listing(t: Target) -> str:
    return t.out(f"cd {BACKUPS} && find . -type f -name '*-*.*' ! -name '*.in-progress' | sort | xargs sha256sum")


@dataclass
class Drill:
    a_runs: dict[str, Run]
    b_runs: dict[str, Run]
    before: dict  # what A served and held before it was destroyed
    b: Target
    sftp: Target
    config_b: object
    tmp: object
    keys: dict
    password: str


@pytest.fixture(scope="module", params=[DISTRO])
def drill(request, docker_engine, images, deployed_images, keys, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("offsite")
    net = docker_engine.networks.create(f"vpskit-test-offsite-{uuid.uuid4().hex[:8]}", driver="bridge")
    started: list[Target] = []
    try:
        key, key_pub = ssh_keypair(tmp, "id_backup")
        sftp = start_target(docker_engine, images[DISTRO], DISTRO, publish=(), network=net.name)
        started.append(sftp)
        serve_sftp(sftp, key_pub)
        sftp_name = sftp.container.name

        # Host A: deployed, data written through the app, backed up and copied off-host.
        a = start_target(docker_engine, deployed_images(DISTRO), DISTRO, publish=(), network=net.name)
        started.append(a)
        put_repos(a, ["dibby"])
        cfg_a = write_config(tmp, "a.toml", config(sftp_name, key), a, keys)
        a_runs = {"first": run_pyinfra(cfg_a, stream=True)}
        a.exec("curl -fsS -X POST -H 'Content-Type: application/json' -d '{\"text\": \"written on A\"}' http://127.0.0.1:5001/notes")
        a.exec(f"install -d -o appuser {UPLOADS} && echo receipt-42 > {UPLOADS}/r42.txt && chown appuser {UPLOADS}/r42.txt")
        backup = a.exec("systemctl start vpskit-backup.service", check=False)
        assert backup.returncode == 0, a.out("journalctl -u vpskit-backup -n 40 --no-pager")
        before = {
            "notes": app_get(a, "/")["notes"],
            "balances": app_get(a, "/balances")["balances"],
            "secrets": env_secrets(a),
            "snapshots": a.out("vpskit-backup snapshots"),
            "health": a.exec("vpskit-health", check=False),
        }
        # A is lost.
        a.remove()
        started.remove(a)

        # Host B: brand new, the same config with restore on.
        b = start_target(docker_engine, images[DISTRO], DISTRO, publish=(), network=net.name)
        started.append(b)
        put_repos(b, ["dibby"])
        cfg_b = write_config(tmp, "b.toml", config(sftp_name, key, restore=True), b, keys)
        b_runs = {"first": run_pyinfra(cfg_b, stream=True)}
        b_runs["second"] = run_pyinfra(cfg_b, "-v", "--diff")
        password = (tmp / "vpskit-offsite.password").read_text().strip()
        yield Drill(a_runs, b_runs, before, b, sftp, cfg_b, tmp, keys, password)
    finally:
        for t in started:
            t.remove()
        net.remove()


def test_host_a_copied_its_backups_off_host(drill):
    assert drill.before["notes"] == ["first note", "written on A"]
    assert re.search(r"^[0-9a-f]{8}\s", drill.before["snapshots"], re.M), drill.before["snapshots"]
    health = drill.before["health"]
    assert re.search(r"^ok\s+off-host copy\s+newest snapshot 0\.\d h old", health.stdout, re.M), health.stdout
    assert drill.sftp.out(f"ls {REPO_DIR}").split() == ["config", "data", "index", "keys", "locks", "snapshots"]


def test_the_repository_password_is_kept_beside_the_config_and_root_only_on_the_host(drill):
    assert oct((drill.tmp / "vpskit-offsite.password").stat().st_mode & 0o777) == "0o600"
    assert "vpskit-offsite.password" in drill.a_runs["first"].output  # said once, when it was made
    assert "vpskit-offsite.password" not in drill.b_runs["first"].output
    assert drill.b.out("stat -c '%a %U' /etc/vpskit/offsite/password /etc/vpskit/offsite/env").split() == ["600", "root"] * 2
    assert drill.b.out("cat /etc/vpskit/offsite/password") == drill.password


def test_host_b_serves_the_same_rows_with_the_same_secrets(drill):
    b = drill.b
    assert app_get(b, "/")["notes"] == drill.before["notes"]  # the seed did not run again
    assert app_get(b, "/balances")["balances"] == drill.before["balances"]
    assert env_secrets(b) == drill.before["secrets"]
    assert set(drill.before["secrets"]) >= {"SECRET_KEY", "DATABASE_URL", "GREETING"}
    assert b.out(f"cat {UPLOADS}/r42.txt") == "receipt-42"
    assert b.out(f"stat -c '%a %U' {APP}/.env") == "600 appuser"


def test_second_run_on_b_changes_nothing(drill):
    run = drill.b_runs["second"]
    assert (run.changed, run.errors) == (0, 0), f"changed: {run.changed_ops}\n{run}"
    assert "restored from the off-host copy on an earlier run" in run.output


def test_no_secret_appears_in_any_output(drill):
    kept = drill.before["secrets"]
    db_password = re.match(r"postgresql://[^:]+:([^@]+)@", kept["DATABASE_URL"]).group(1)
    secrets = [drill.password, kept["SECRET_KEY"], db_password]
    for run in [*drill.a_runs.values(), *drill.b_runs.values()]:
        for secret in secrets:
            assert secret not in run.output


def test_snapshots_are_listed_and_the_health_report_checks_their_age(drill):
    b = drill.b
    listing = b.out("vpskit-backup snapshots")
    assert len(re.findall(r"^[0-9a-f]{8}\s", listing, re.M)) >= 2, listing  # A's, and B's first backup
    report = b.exec("vpskit-health", check=False).stdout
    assert re.search(r"^ok\s+off-host copy\s", report, re.M), report
    assert "vpskit-offsite-check.timer" in b.out("systemctl list-timers --all --no-pager")
    assert b.exec("systemctl start vpskit-offsite-check.service", check=False).returncode == 0
    assert "state=ok" in b.out("cat /var/lib/vpskit/offsite/check.status")


def test_restore_never_acts_on_a_host_that_has_data(drill):
    b = drill.b
    notes = app_get(b, "/")["notes"]
    b.exec("curl -fsS -X POST -H 'Content-Type: application/json' -d '{\"text\": \"written on B\"}' http://127.0.0.1:5001/notes")
    b.exec("mv /var/lib/vpskit/offsite/recovered /root/recovered.kept")  # as if it had never been restored
    try:
        run = run_pyinfra(drill.config_b)
        assert "not restoring from the off-host copy: this host already has data (/etc/vpskit/secrets)" in run.output
        assert (run.changed, run.errors) == (0, 0), run.changed_ops
        assert app_get(b, "/")["notes"] == [*notes, "written on B"]
    finally:
        b.exec("mv /root/recovered.kept /var/lib/vpskit/offsite/recovered")


def test_a_wrong_password_fails_loudly_and_keeps_the_local_backups(drill):
    b = drill.b
    wrong = drill.tmp / "wrong.password"
    wrong.write_text("not-the-password\n")
    raw = config(drill.sftp.container.name, drill.tmp / "id_backup", restore=True, password_file=str(wrong))
    run = run_pyinfra(write_config(drill.tmp, "wrong.toml", raw, b, drill.keys), check=False)
    assert run.returncode != 0
    assert "wrong password" in run.output, run.output[-3000:]
    assert b.out("cat /etc/vpskit/offsite/password") == drill.password  # the wrong one never went live
    # The same on the host itself: the nightly run keeps its local backups and says why the copy failed.
    before = backup_listing(b)
    b.exec("cp -p /etc/vpskit/offsite/password /root/password.kept && echo wrong > /etc/vpskit/offsite/password")
    try:
        failed = b.exec("systemctl start vpskit-backup.service", check=False)
        assert failed.returncode != 0
        log = b.out("journalctl -u vpskit-backup.service --no-pager -o cat -n 30")
        assert "offsite: copy FAILED, local backups kept as they are" in log and "wrong password" in log, log
        after = backup_listing(b)
        assert set(before.splitlines()) <= set(after.splitlines())  # nothing lost; this run's dumps added
        assert re.search(r"^FAIL\s+off-host copy\s+last copy failed", b.exec("vpskit-health", check=False).stdout, re.M)
    finally:
        b.exec("mv -f /root/password.kept /etc/vpskit/offsite/password && systemctl reset-failed vpskit-backup.service")


def test_an_unreachable_repository_fails_the_backup_loudly_and_keeps_the_local_backups(drill):
    b = drill.b
    drill.sftp.exec("systemctl stop ssh.socket ssh.service")
    try:
        before = backup_listing(b)
        failed = b.exec("systemctl start vpskit-backup.service", check=False)
        assert failed.returncode != 0
        log = b.out("journalctl -u vpskit-backup.service --no-pager -o cat -n 30")
        assert "offsite: copy FAILED, local backups kept as they are" in log, log
        assert set(before.splitlines()) <= set(backup_listing(b).splitlines())
        assert "state=failed" in b.out("cat /var/lib/vpskit/offsite/copy.status")
    finally:
        drill.sftp.exec("systemctl start ssh.socket")
        b.exec("systemctl reset-failed vpskit-backup.service")
    assert b.exec("systemctl start vpskit-backup.service", check=False).returncode == 0
