"""fail2ban with an sshd jail on the port sshd really uses."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import systemd

from .batched import packages_installed, unit_running
from .config import Fail2ban
from .render import render
from .snapshot import snapshot_fact
from .validated import checked_file

JAIL_LOCAL = "/etc/fail2ban/jail.local"
AUTH_LOG = "/var/log/auth.log"
LOOPBACK = ("127.0.0.1/8", "::1")


def jail_backend(auth_log_exists: bool) -> str:
    """Read sshd's log from auth.log where syslog writes one, else from the journal."""
    return "auto" if auth_log_exists else "systemd"


def fail2ban_packages(f2b: Fail2ban) -> list[str]:
    """The packages fail2ban needs on this host (none when disabled)."""
    if not f2b.enabled:
        return []
    backend = jail_backend(bool(snapshot_fact(File, path=AUTH_LOG)))
    return ["fail2ban", "iptables"] + (["python3-systemd"] if backend == "systemd" else [])


def render_jail(f2b: Fail2ban, port: int, backend: str, sshd_commands=("sshd",)) -> str:
    return render(
        "fail2ban-jail.local.j2",
        f2b=f2b,
        port=port,
        backend=backend,
        sshd_commands=sshd_commands,
        ignoreip=[*LOOPBACK, *f2b.ignoreip],
    )


@deploy("fail2ban")
def fail2ban_jails(f2b: Fail2ban, ssh_port: int, sshd_commands=("sshd",)):
    """
    Ensure fail2ban runs with an sshd jail on ``ssh_port``.

    + f2b: the ``[fail2ban]`` section of the config
    + ssh_port: the port sshd listens on
    + sshd_commands: the processes sshd logs as (``Distro.sshd_log_commands``), for the journal backend

    **Example:**

    .. code:: python

        fail2ban_jails(config.fail2ban, ssh_port=2222)
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
