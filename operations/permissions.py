"""File modes of system config that only root should read: the CIS benchmark's values."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import FactBase, operation

from .snapshot import planned, snapshot_fact
from .ssh import DROPIN

# CIS Ubuntu/Debian benchmarks: sshd's config (5.1.1) and cron's files (5.1.2-5.1.7), root-owned.
SSHD_MODES = {"/etc/ssh/sshd_config": "600", DROPIN: "600"}
CRON_MODES = {
    "/etc/crontab": "600",
    **{f"/etc/cron.{d}": "700" for d in ("d", "hourly", "daily", "weekly", "monthly")},
}
CIS_MODES = {**SSHD_MODES, **CRON_MODES}


class PathModes(FactBase):
    """
    Returns mode and owner of each of ``paths`` that exists.

    .. code:: python

        {"/etc/crontab": {"mode": "644", "user": "root", "group": "root"}}
    """

    def command(self, paths):
        quoted = " ".join(shlex.quote(p) for p in paths)
        return f'for p in {quoted}; do [ -e "$p" ] && stat -c \'%a %U %G %n\' "$p"; done; true'

    def process(self, output):
        modes = {}
        for line in output:
            parts = line.split(" ", 3)
            if len(parts) == 4:
                modes[parts[3]] = {"mode": parts[0], "user": parts[1], "group": parts[2]}
        return modes


def mode_commands(wanted: dict[str, str], current: dict[str, dict], user: str = "root", group: str = "root") -> list[str]:
    """chown/chmod for each existing path whose mode or owner is not the wanted one (missing paths are left missing)."""
    commands = []
    for path, mode in wanted.items():
        now = current.get(path)
        if now is None:
            continue
        if (now["user"], now["group"]) != (user, group):
            commands.append(f"chown {user}:{group} {shlex.quote(path)}")
        if now["mode"] != mode:
            commands.append(f"chmod {mode} {shlex.quote(path)}")
    return commands


@planned(lambda paths, **_: [(PathModes, {"paths": tuple(sorted(paths))})])
@operation()
def modes_restricted(paths: dict[str, str], user: str = "root", group: str = "root"):
    """
    Ensure each of ``paths`` that exists has its mode and owner; missing ones are not created.

    + paths: {path: octal mode as ``stat -c %a`` prints it}
    + user: owner
    + group: group

    **Example:**

    .. code:: python

        modes_restricted(name="CIS modes", paths={"/etc/crontab": "600", "/etc/cron.d": "700"})
    """
    commands = mode_commands(paths, snapshot_fact(PathModes, paths=tuple(sorted(paths))), user, group)
    if not commands:
        host.noop("modes and owners are already right")
        return
    yield " && ".join(commands)
