"""vpskit's operations in a user's own pyinfra deploy: examples/reuse/deploy.py, with no vpskit.toml anywhere.

The deploy file (the one docs/reuse.md shows) imports the firewall, sshd hardening,
an nginx site, a PostgreSQL app database and a systemd timer, and runs against a
fresh target with pyinfra's docker connector from a directory holding nothing else.
The result is checked from inside the target; a second run must change nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import DISTROS
from tests.rig import PYINFRA, ROOT, Run, parse_results, start_target

DEPLOY = ROOT / "examples" / "reuse" / "deploy.py"


def run_own_deploy(workdir, target, public_key: str) -> Run:
    """``pyinfra -y --data public_key=... @docker/ID deploy.py`` in ``workdir``, without vpskit's inventory or config."""
    env = {k: v for k, v in os.environ.items() if k != "VPSKIT_CONFIG"}
    cmd = [PYINFRA, "-y", "--data", f"public_key={public_key}", target.connector, "deploy.py"]
    proc = subprocess.run(cmd, cwd=workdir, env={**env, "NO_COLOR": "1"}, capture_output=True, text=True, timeout=1500)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return Run(proc.returncode, output, *parse_results(output))


@pytest.fixture(scope="module", params=DISTROS)
def reused(request, docker_engine, images, keys, tmp_path_factory):
    distro = request.param
    workdir = tmp_path_factory.mktemp(f"own-deploy-{distro}")
    shutil.copy(DEPLOY, workdir / "deploy.py")
    target = start_target(docker_engine, images[distro], distro)
    try:
        key = keys["deploy_pub"].read_text().strip()
        first = run_own_deploy(workdir, target, key)
        second = run_own_deploy(workdir, target, key)
        yield target, first, second, workdir
    finally:
        target.remove()


def test_the_own_deploy_runs_without_any_vpskit_config(reused):
    _target, first, _second, workdir = reused
    assert sorted(p.name for p in workdir.iterdir()) == ["deploy.py"]
    assert "vpskit.toml" not in first.output and first.changed > 0


def test_firewall_allows_ssh_web_and_the_extra_port_only(reused):
    t = reused[0]
    status = t.out("ufw status verbose")
    assert "Status: active" in status and "Default: deny (incoming)" in status
    for port in ("22/tcp", "80/tcp", "443/tcp", "8443/tcp"):
        assert port in status, status


def test_sshd_is_hardened_for_the_admin_user(reused):
    t = reused[0]
    effective = t.out("sshd -T 2>/dev/null")
    for line in ("permitrootlogin no", "passwordauthentication no", "maxauthtries 2", "allowusers ops", "port 22"):
        assert line in effective.splitlines(), line
    assert t.out("grep -c ssh-ed25519 /home/ops/.ssh/authorized_keys") == "1"
    assert "sudo" in t.out("id -nG ops").split()


def test_the_nginx_site_proxies_to_the_app_over_https(reused):
    t = reused[0]
    t.exec("mkdir -p /tmp/hello && echo hello-ok > /tmp/hello/index.html")
    t.exec("systemd-run --unit hello-app python3 -m http.server 8080 --bind 127.0.0.1 --directory /tmp/hello")
    try:
        body = t.out(
            "for i in $(seq 20); do curl -sfk --resolve hello.test:443:127.0.0.1 https://hello.test/ && exit 0; sleep 0.5; done; exit 1"
        )
        assert body == "hello-ok"
        assert t.out("curl -s -o /dev/null -w '%{http_code}' -H 'Host: hello.test' http://127.0.0.1/") == "301"
    finally:
        t.exec("systemctl stop hello-app", check=False)


def test_the_app_database_takes_its_own_login_and_the_timer_job_uses_it(reused):
    t = reused[0]
    assert t.out("stat -c '%a %U' /etc/hello/db.env") == "600 root"
    who = t.out("set -a && . /etc/hello/db.env && psql \"$DATABASE_URL\" -tAc 'SELECT current_user, current_database()'")
    assert who == "hello|hello"
    assert t.out("systemctl is-enabled hello-vacuum.timer; systemctl is-active hello-vacuum.timer") == "enabled\nactive"
    t.exec("systemctl start hello-vacuum.service")  # oneshot: returns when the job is done, fails if it failed
    assert t.out("systemctl show -p Result --value hello-vacuum.service") == "success"


def test_a_second_run_changes_nothing(reused):
    second = reused[2]
    assert second.changed == 0 and second.errors == 0, second.changed_ops
