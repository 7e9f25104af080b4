"""fail2ban with an sshd jail on the port sshd really uses."""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import systemd

from .batched import packages_installed, unit_running
from .contribution import Contribution
from .render import render
from .snapshot import snapshot_fact
from .validated import checked_file

JAIL_LOCAL = "/etc/fail2ban/jail.local"
AUTH_LOG = "/var/log/auth.log"
LOOPBACK = ("127.0.0.1/8", "::1")


@dataclass(frozen=True)
class Jail:
    """fail2ban's sshd jail (the guide's values by default)."""

    enabled: bool = True
    bantime: int = 86400
    findtime: int = 600
    maxretry: int = 5
    # Addresses never banned besides loopback.
    ignoreip: tuple[str, ...] = ()


def jail_backend(auth_log_exists: bool) -> str:
    """Read sshd's log from auth.log where syslog writes one, else from the journal."""
    return "auto" if auth_log_exists else "systemd"


def fail2ban_packages(f2b: Jail) -> list[str]:
    """The packages fail2ban needs on this host (none when disabled)."""
    if not f2b.enabled:
        return []
    backend = jail_backend(bool(snapshot_fact(File, path=AUTH_LOG)))
    return ["fail2ban", "iptables"] + (["python3-systemd"] if backend == "systemd" else [])


def contribution(jail: Jail) -> Contribution:
    """fail2ban's packages (none when disabled); the health report checks fail2ban.service wherever it is installed."""
    return Contribution(packages=tuple(fail2ban_packages(jail)))


def render_jail(f2b: Jail, port: int, backend: str, sshd_commands=("sshd",)) -> str:
    return render(
        "fail2ban-jail.local.j2",
        f2b=f2b,
        port=port,
        backend=backend,
        sshd_commands=sshd_commands,
        ignoreip=[*LOOPBACK, *f2b.ignoreip],
    )


@deploy("fail2ban")
def fail2ban_jails(f2b: Jail = Jail(), ssh_port: int = 22, sshd_commands=("sshd",)):
    """
    Ensure fail2ban runs with an sshd jail on ``ssh_port``.

    + f2b: the jail's settings (``Jail``; disabled: fail2ban is stopped)
    + ssh_port: the port sshd listens on
    + sshd_commands: the processes sshd logs as (``Distro.sshd_log_commands``), for the journal backend

    **Example:**

    .. code:: python

        fail2ban_jails(Jail(maxretry=3), ssh_port=2222)
    """
    if not f2b.enabled:
        systemd.service(name="Stop fail2ban (disabled in config)", service="fail2ban", running=False, enabled=False)
        return
    backend = jail_backend(bool(snapshot_fact(File, path=AUTH_LOG)))
    packages_installed(name="Install fail2ban", packages=fail2ban_packages(f2b))
    jail = checked_file(
        name="fail2ban jail.local",
        dest=JAIL_LOCAL,
        content=render_jail(f2b, ssh_port, backend, sshd_commands),
        validate="fail2ban-client -t >/dev/null",
    )
    unit_running(name="fail2ban running", unit="fail2ban.service", restarted=jail.will_change)
