"""Base system: packages, upgrades, hostname, timezone, unattended security updates."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, deploy, operation
from pyinfra.facts.files import File
from pyinfra.facts.server import OsRelease
from pyinfra.operations import files, server

from .batched import apt_updated, packages_installed, unsafe_io_apt
from .deploylock import LOG_FILE as DEPLOYS_LOG
from .distro import Distro, UnsupportedDistro, distro_from_os_release
from .facts import AptLockHolders, AptUpgradable, FileState
from .render import render
from .snapshot import facts_through_snapshot, planned, snapshot_fact
from .validated import checked_file

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


@dataclass(frozen=True)
class BaseSettings:
    """The base system's settings (vpskit's defaults)."""

    hostname: str = ""  # empty: left as it is
    timezone: str = "Etc/UTC"
    # More packages to install.
    packages: tuple[str, ...] = ()
    # "full" (apt dist-upgrade), "safe" (apt upgrade) or "none".
    upgrade: str = "full"
    apt_cache_hours: int = 24
    unattended_upgrades: bool = True
    unattended_reboot: bool = False
    unattended_reboot_time: str = "04:00"
    # Seconds apt waits for a dpkg lock held by the VPS's own first-boot upgrades.
    apt_lock_timeout: int = 600
    # apt's caching proxy (apt-cacher-ng), "http://host:port"; empty: none.
    apt_proxy: str = ""


APT_LOCK_CONF = "/etc/apt/apt.conf.d/90vpskit-lock-timeout"
# Early in the order apt reads apt.conf.d in: a later file that sets a proxy too wins.
APT_PROXY_CONF = "/etc/apt/apt.conf.d/01vpskit-proxy"
UNATTENDED_CONF = "/etc/apt/apt.conf.d/52vpskit-unattended-upgrades"
AUTO_UPGRADES_CONF = "/etc/apt/apt.conf.d/20auto-upgrades"


def host_distro() -> Distro:
    """The target's distro, from /etc/os-release; fails the run for unsupported hosts."""
    try:
        return distro_from_os_release(snapshot_fact(OsRelease))
    except UnsupportedDistro as e:
        raise OperationError(str(e)) from None


@planned(lambda **_: [(AptLockHolders, {})])
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
    holders = snapshot_fact(AptLockHolders)
    if not holders:
        host.noop("apt and dpkg locks are free")
        return
    loop = f'while [ -n "$({AptLockHolders().command()})" ]; do sleep 2; done'
    yield StringCommand(
        f"timeout {int(timeout)} sh -c {shlex.quote(loop)}"
        f" || {{ echo 'vpskit: apt is still locked by another process after {int(timeout)}s' >&2; exit 1; }}"
    )


@planned(lambda **_: [(FileState, {"path": APT_PROXY_CONF})])
@operation()
def apt_proxy_set(url: str = ""):
    """
    Ensure apt fetches http:// package sources through the caching proxy ``url`` (``Acquire::http::Proxy``), or without one.

    Run before the first apt command, so that command uses it already. https:// sources
    connect directly: a caching proxy such as apt-cacher-ng cannot cache them.

    + url: the proxy, ``http://host:port`` (no user or password: the file is world-readable); empty: the file is removed

    **Example:**

    .. code:: python

        apt_proxy_set(name="apt through the office cache", url="http://10.0.0.5:3142")
    """
    if url:
        yield from checked_file._inner(dest=APT_PROXY_CONF, content=render("apt-proxy.conf.j2", url=url), mode="644")
        return
    if snapshot_fact(FileState, path=APT_PROXY_CONF) is None:
        host.noop(f"{APT_PROXY_CONF} is absent")
        return
    yield StringCommand(f"rm -f {APT_PROXY_CONF}")


def _upgrade_facts(full: bool = True, lists_refreshed: bool = False, **_) -> list:
    """The simulation is planned only where its answer decides: not right after new lists."""
    return [] if lists_refreshed else [(AptUpgradable, {"full": full})]


@planned(_upgrade_facts)
@operation()
def apt_upgraded(full: bool = True, lists_refreshed: bool = False, unsafe_io: bool = False):
    """
    Ensure no package has a pending upgrade.

    Unlike ``apt.upgrade`` this is a no-op when apt has nothing to install, also
    while packages are kept back (Ubuntu's phased updates), so re-runs stay quiet.
    Right after new package lists, it upgrades without first simulating the upgrade:
    the simulation costs seconds, and a run that refreshed the lists already changed the host.

    + full: ``dist-upgrade`` (may add/remove packages) instead of ``upgrade``
    + lists_refreshed: this run updates apt's package lists first (``apt_updated(...).will_change``)
    + unsafe_io: dpkg writes without an fsync per file, then one ``sync`` (for a host with nothing on it yet)

    **Example:**

    .. code:: python

        updated = apt_updated(name="Update apt cache", cache_time=86400)
        apt_upgraded(name="Upgrade packages", full=True, lists_refreshed=updated.will_change)
    """
    if not lists_refreshed and not snapshot_fact(AptUpgradable, full=full):
        host.noop("no package upgrades pending")
        return
    yield unsafe_io_apt("dist-upgrade" if full else "upgrade", unsafe_io)
    if unsafe_io:
        yield "sync"


@deploy("Base system")
def base_system(settings: BaseSettings = BaseSettings(), packages: list[str] = ()):
    """
    Bring a fresh VPS of a supported release to vpskit's base state.

    + settings: hostname, timezone, upgrades, apt settings and proxy (``BaseSettings``)
    + packages: more packages the later steps need, installed in the same apt run
      (one run instead of one per step: dpkg's triggers run once)

    **Example:**

    .. code:: python

        base_system(BaseSettings(timezone="Europe/Berlin"), packages=["ufw", "fail2ban"])
    """
    distro = host_distro()
    # A host vpskit never finished a deploy on holds nothing yet: its package installs skip dpkg's fsyncs.
    fresh = snapshot_fact(File, path=DEPLOYS_LOG) is None

    apt_proxy_set(name="apt's caching proxy" if settings.apt_proxy else "No apt caching proxy", url=settings.apt_proxy)
    checked_file(
        name="Make apt wait for locks held by other apt runs",
        content=render("apt-lock-timeout.conf.j2", timeout=settings.apt_lock_timeout),
        dest=APT_LOCK_CONF,
    )
    apt_unlocked(name="Wait for apt locks", timeout=settings.apt_lock_timeout)
    updated = apt_updated(name="Update apt cache", cache_time=settings.apt_cache_hours * 3600)
    if settings.upgrade != "none":
        apt_upgraded(name="Upgrade packages", full=settings.upgrade == "full", lists_refreshed=updated.will_change, unsafe_io=fresh)
    packages_installed(
        name="Install essential packages",
        packages=sorted(set(ESSENTIAL_PACKAGES) | set(settings.packages) | set(packages)),
        unsafe_io=fresh,
    )
    # pyinfra's own operations, their facts read with the run's others.
    if settings.hostname:
        facts_through_snapshot(server.hostname)(name="Set hostname", hostname=settings.hostname)
        facts_through_snapshot(files.line)(
            name="Resolve the hostname locally (sudo asks for it)",
            path="/etc/hosts",
            line=r"^127\.0\.1\.1\s",
            replace=f"127.0.1.1 {settings.hostname}",
        )
    facts_through_snapshot(server.timezone)(name="Set timezone", timezone=settings.timezone)

    checked_file(
        name="Schedule unattended upgrades",
        content=render("auto-upgrades.conf.j2", enabled=settings.unattended_upgrades),
        dest=AUTO_UPGRADES_CONF,
    )
    checked_file(
        name="Allow security updates in unattended-upgrades",
        content=render(
            "unattended-upgrades.conf.j2",
            origins=distro.security_origins,
            reboot=settings.unattended_reboot,
            reboot_time=settings.unattended_reboot_time,
        ),
        dest=UNATTENDED_CONF,
    )
