"""Foundation, end to end: the real deploy on fresh Ubuntu 24.04 and Debian 12 targets.

The ``deployed`` host (tests/e2e/conftest.py) was deployed over SSH as root, then
re-deployed with the same command; these tests inspect it from inside with
``docker exec`` and log in over its published SSH port.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import DISTROS
from tests.e2e.conftest import SSH_PORT, example_config, write
from tests.rig import run_pyinfra, ssh, start_target, target_config

pytestmark = pytest.mark.e2e


def test_first_run_logs_in_as_root_and_changes_the_host(deployed):
    first = deployed.runs["first"]
    assert first.errors == 0
    assert first.changed > 0, first


def test_second_run_over_ssh_changes_nothing(deployed):
    run = deployed.runs["second_ssh"]
    assert (run.changed, run.errors) == (0, 0), f"changed: {run.changed_ops}\n{run}"
    assert run.unchanged > 5


def test_docker_connector_run_changes_nothing(deployed):
    run = deployed.runs["third_docker"]
    assert (run.changed, run.errors) == (0, 0), f"changed: {run.changed_ops}\n{run}"


def test_second_run_came_in_as_the_deploy_user(deployed):
    t = deployed.target
    # sshd logs every accepted login; the re-run must have used appuser's key.
    log = t.out("journalctl -q --no-pager -o cat | grep 'Accepted publickey' || true")
    assert "for root" in log
    assert "for appuser" in log


def test_deploy_user_logs_in_with_its_key_and_can_sudo(deployed, keys):
    t = deployed.target
    r = ssh(t.ports[SSH_PORT], "appuser", keys["deploy"], "sudo -n id -u && id -nG", keys["dir"] / "known_hosts")
    assert r.returncode == 0, r.stderr
    uid, groups = r.stdout.split("\n")[:2]
    assert uid == "0"
    assert {"appuser", "sudo", "adm"} <= set(groups.split())


def test_deploy_user_files_have_safe_modes(deployed, keys):
    t = deployed.target
    assert t.out("stat -c '%a %U %G' /home/appuser/.ssh") == "700 appuser appuser"
    assert t.out("stat -c '%a %U %G' /home/appuser/.ssh/authorized_keys") == "600 appuser appuser"
    assert t.out("cat /home/appuser/.ssh/authorized_keys") == keys["deploy_pub"].read_text().strip()
    assert t.out("getent passwd appuser | cut -d: -f7") == "/bin/bash"
    assert t.out("stat -c '%a %U' /etc/sudoers.d/90-vpskit-appuser") == "440 root"
    t.exec("visudo -c")


def test_base_packages_hostname_and_timezone(deployed):
    t = deployed.target
    for pkg in ("curl", "wget", "git", "nano", "htop", "build-essential", "libssl-dev", "libffi-dev", "jq"):
        assert t.exec(f"dpkg-query -W -f='${{Status}}' {pkg}").stdout == "install ok installed", pkg
    assert t.out("hostname") == "web1"
    assert t.out("cat /etc/hostname") == "web1"
    assert "web1" in t.out("getent hosts web1")
    assert t.out("readlink -f /etc/localtime") == "/usr/share/zoneinfo/Europe/Berlin"


def test_no_package_upgrade_is_left_pending(deployed):
    t = deployed.target
    assert t.out("apt-get -s -o Debug::NoLocking=1 dist-upgrade | grep -c '^Inst ' || true") == "0"


def test_unattended_upgrades_allow_the_security_suite(deployed):
    t = deployed.target
    dump = t.out("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump
    assert 'APT::Periodic::Update-Package-Lists "1";' in dump
    allowed = t.out("unattended-upgrade --dry-run -d 2>&1 | grep -i 'allowed origins'")
    codename = t.out(". /etc/os-release && echo $VERSION_CODENAME")
    if t.distro.startswith("ubuntu"):
        assert f"archive={codename}-security" in allowed
    else:
        assert f"codename={codename}-security" in allowed and "label=Debian-Security" in allowed


def test_apt_waits_for_a_lock_held_by_another_apt_run(deployed):
    """A fresh VPS upgrades itself at first boot: the deploy waits instead of failing."""
    t = deployed.target
    t.exec(
        'systemd-run --unit=hold-dpkg-lock python3 -c "import fcntl,time;'
        "f=open('/var/lib/dpkg/lock-frontend','w');fcntl.lockf(f,fcntl.LOCK_EX);time.sleep(12)\""
    )
    time.sleep(1)
    start = time.time()
    run = run_pyinfra(deployed.config)
    assert run.errors == 0
    assert set(run.changed_ops) == {"Base system | Wait for apt locks"}
    assert "Base system | Wait for apt locks" in run.changed_ops
    assert time.time() - start >= 8


@pytest.mark.parametrize("distro", DISTROS)
def test_dry_run_on_a_fresh_host_changes_nothing(distro, docker_engine, images, keys, tmp_path):
    target = start_target(docker_engine, images[distro], distro, publish=())
    try:
        before = target.out("dpkg -l | md5sum; ls -la /etc/apt/apt.conf.d /home; getent passwd | md5sum; hostname")
        cfg = write(tmp_path / "docker.toml", target_config(example_config(), target, keys, connector="docker"))
        run = run_pyinfra(cfg, "--dry")
        assert run.errors == 0
        assert run.changed > 0  # it reports what it would do ...
        after = target.out("dpkg -l | md5sum; ls -la /etc/apt/apt.conf.d /home; getent passwd | md5sum; hostname")
        assert after == before  # ... and does none of it
        assert target.exec("id appuser", check=False).returncode != 0
    finally:
        target.remove()
