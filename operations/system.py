"""Base system: packages, upgrades, hostname, timezone, unattended security updates."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, deploy, operation
from pyinfra.facts.server import OsRelease
from pyinfra.operations import apt, files, server

from .config import Server
from .distro import Distro, UnsupportedDistro, distro_from_os_release
from .facts import AptLockHolders, AptUpgradable
from .render import render

# The guide's essentials, plus what vpskit itself relies on.
ESSENTIAL_PACKAGES = [
    "curl",
    "wget",
    "git",
    "nano",
    "htop",
    "build-essential",
    "libssl-dev",
    "libffi-dev",
    "ca-certificates",
    "gnupg",
    "sudo",
    "tzdata",
    "unattended-upgrades",
]

APT_LOCK_CONF = "/etc/apt/apt.conf.d/90vpskit-lock-timeout"
UNATTENDED_CONF = "/etc/apt/apt.conf.d/52vpskit-unattended-upgrades"
AUTO_UPGRADES_CONF = "/etc/apt/apt.conf.d/20auto-upgrades"


def host_distro() -> Distro:
    """The target's distro, from /etc/os-release; fails the run for unsupported hosts."""
    try:
        return distro_from_os_release(host.get_fact(OsRelease))
    except UnsupportedDistro as e:
        raise OperationError(str(e)) from None


@operation()
def apt_unlocked(timeout: int = 600):
    """
    Wait until no other process holds apt's or dpkg's locks.

    A fresh VPS runs its own unattended-upgrades at first boot; apt commands
    started meanwhile fail. No-op when the locks are free.

    + timeout: seconds to wait before failing

    **Example:**

    .. code:: python

        apt_unlocked(name="Wait for first-boot upgrades", timeout=600)
    """
    holders = host.get_fact(AptLockHolders)
    if not holders:
        host.noop("apt and dpkg locks are free")
        return
    loop = f'while [ -n "$({AptLockHolders().command()})" ]; do sleep 2; done'
    yield StringCommand(
        f"timeout {int(timeout)} sh -c {shlex.quote(loop)}"
        f" || {{ echo 'vpskit: apt is still locked by another process after {int(timeout)}s' >&2; exit 1; }}"
    )


@operation()
def apt_upgraded(full: bool = True):
    """
    Ensure no package has a pending upgrade.

    Unlike ``apt.upgrade`` this is a no-op when apt has nothing to install, also
    while packages are kept back (Ubuntu's phased updates), so re-runs stay quiet.

    + full: ``dist-upgrade`` (may add/remove packages) instead of ``upgrade``

    **Example:**

    .. code:: python

        apt_upgraded(name="Upgrade packages", full=True)
    """
    pending = host.get_fact(AptUpgradable, full=full)
    if not pending:
        host.noop("no package upgrades pending")
        return
    verb = "dist-upgrade" if full else "upgrade"
    yield (
        "DEBIAN_FRONTEND=noninteractive apt-get -y "
        "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold " + verb
    )


@deploy("Base system")
def base_system(server_cfg: Server):
    """
    Bring a fresh Ubuntu 24.04 / Debian 12 VPS to vpskit's base state.

    + server_cfg: the ``[server]`` section of the config

    **Example:**

    .. code:: python

        base_system(config.server)
    """
    distro = host_distro()

    files.put(
        name="Make apt wait for locks held by other apt runs",
        src=_text(render("apt-lock-timeout.conf.j2", timeout=server_cfg.apt_lock_timeout)),
        dest=APT_LOCK_CONF,
        mode="644",
    )
    apt_unlocked(name="Wait for apt locks", timeout=server_cfg.apt_lock_timeout)
    apt.update(name="Update apt cache", cache_time=server_cfg.apt_cache_hours * 3600)
    if server_cfg.upgrade != "none":
        apt_upgraded(name="Upgrade packages", full=server_cfg.upgrade == "full")
    apt.packages(
        name="Install essential packages",
        packages=sorted(set(ESSENTIAL_PACKAGES) | set(server_cfg.packages)),
    )
    if server_cfg.hostname:
        server.hostname(name="Set hostname", hostname=server_cfg.hostname)
        files.line(
            name="Resolve the hostname locally (sudo asks for it)",
            path="/etc/hosts",
            line=r"^127\.0\.1\.1\s",
            replace=f"127.0.1.1 {server_cfg.hostname}",
        )
    server.timezone(name="Set timezone", timezone=server_cfg.timezone)

    files.put(
        name="Schedule unattended upgrades",
        src=_text(render("auto-upgrades.conf.j2", enabled=server_cfg.unattended_upgrades)),
        dest=AUTO_UPGRADES_CONF,
        mode="644",
    )
    files.put(
        name="Allow security updates in unattended-upgrades",
        src=_text(
            render(
                "unattended-upgrades.conf.j2",
                origins=distro.security_origins,
                reboot=server_cfg.unattended_reboot,
                reboot_time=server_cfg.unattended_reboot_time,
            )
        ),
        dest=UNATTENDED_CONF,
        mode="644",
    )


def _text(s: str):
    from io import StringIO

    return StringIO(s)
