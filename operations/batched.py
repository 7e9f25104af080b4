"""pyinfra's apt.update, apt.packages, systemd.service and files.directory, with their facts read through the run's snapshot.

They do what the built-in operations do (same checks, same commands, via
pyinfra's own helpers); only their facts are planned, so a re-run that changes
nothing reads the packages and the state of every unit together with vpskit's
other facts, in one round trip (see ``operations.snapshot``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyinfra import host
from pyinfra.api import OperationError, QuoteString, StringCommand, operation
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import Directory, File
from pyinfra.facts.server import Date
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus
from pyinfra.operations.apt import APT_UPDATE_FILENAME, noninteractive_apt
from pyinfra.operations.util import files as file_utils
from pyinfra.operations.util.files import ensure_mode_int
from pyinfra.operations.util.packaging import ensure_packages
from pyinfra.operations.util.service import handle_service_control

from .snapshot import planned, snapshot_fact

# dpkg without an fsync per file it unpacks, as Docker's own Debian and Ubuntu images set it for
# their builds: a first deploy's upgrade and installs took 133.6 and 131.5 s with it, 149.4 and
# 167.7 s without (fresh Ubuntu 24.04 targets, turn about). A
# crash of the host during such a run can leave files of the packages it was installing empty, so
# vpskit asks for it only on a host it never finished a deploy on, and syncs after it.
UNSAFE_IO = "-o Dpkg::Options::=--force-unsafe-io"


@planned(lambda *_, **__: [(File, {"path": APT_UPDATE_FILENAME}), (Date, {})])
@operation()
def apt_updated(cache_time: int):
    """
    Ensure apt's package lists were updated at most ``cache_time`` seconds ago (``apt.update(cache_time=...)``).

    + cache_time: seconds an update stays good

    **Example:**

    .. code:: python

        apt_updated(name="Update apt cache", cache_time=86400)
    """
    stamp = snapshot_fact(File, path=APT_UPDATE_FILENAME)
    if cache_time and stamp and stamp["mtime"]:
        # As apt.update: the host's clock read as UTC, like the stamp's mtime.
        now = datetime.fromtimestamp(snapshot_fact(Date).timestamp(), UTC).replace(tzinfo=None)
        if stamp["mtime"] > now - timedelta(seconds=cache_time):
            host.noop("apt is already up to date")
            return
    yield "apt-get update"
    if cache_time:
        yield f"touch {APT_UPDATE_FILENAME}"


def unsafe_io_apt(command: str, unsafe_io: bool) -> str:
    """pyinfra's non-interactive ``apt-get`` command; with ``unsafe_io``, dpkg skips its fsync per file (``UNSAFE_IO``)."""
    return noninteractive_apt(f"{UNSAFE_IO} {command}" if unsafe_io else command)


@planned(lambda packages, **_: [(DebPackages, {})])
@operation()
def packages_installed(packages: list[str], unsafe_io: bool = False):
    """
    Ensure these Debian/Ubuntu packages are installed (``apt.packages(packages=...)``).

    + packages: package names
    + unsafe_io: dpkg writes without an fsync per file, then one ``sync`` (for a host with nothing on it yet)

    **Example:**

    .. code:: python

        packages_installed(name="Install ufw", packages=["ufw"])
    """
    commands = list(
        ensure_packages(
            host,
            list(packages),
            snapshot_fact(DebPackages),
            True,
            install_command=unsafe_io_apt("install", unsafe_io),
            uninstall_command=noninteractive_apt("remove"),
            upgrade_command=unsafe_io_apt("install", unsafe_io),
            version_join="=",
        )
    )
    yield from commands
    if commands and unsafe_io:
        yield "sync"


def _unit_facts(unit: str, **_):
    return [(SystemdStatus, {"services": (unit,)}), (SystemdEnabled, {"services": (unit,)})]


@planned(_unit_facts)
@operation()
def unit_running(unit: str, restarted: bool = False, reloaded: bool = False, daemon_reload: bool = False):
    """
    Ensure a systemd unit is enabled and running; restart or reload it when asked (only if it already ran).

    ``systemd.service(service=unit, running=True, enabled=True, restarted=..., reloaded=..., daemon_reload=...)``.

    + unit: full unit name (``fail2ban.service``, ``vpskit-backup.timer``)
    + restarted: restart it if it was running (pass ``op.will_change`` of its config)
    + reloaded: reload it if it was running
    + daemon_reload: reload systemd's unit files first (pass ``op.will_change`` of the unit file)

    **Example:**

    .. code:: python

        unit_running(name="fail2ban running", unit="fail2ban.service", restarted=jail.will_change)
    """
    if daemon_reload:
        yield "systemctl daemon-reload"
    yield from handle_service_control(
        host,
        unit,
        snapshot_fact(SystemdStatus, services=(unit,)),
        "systemctl {1} {0}",
        running=True,
        restarted=restarted,
        reloaded=reloaded,
    )
    if not snapshot_fact(SystemdEnabled, services=(unit,)).get(unit, False):
        yield StringCommand("systemctl", "enable", unit)


@planned(lambda path, **_: [(Directory, {"path": path})])
@operation()
def directory_present(path: str, user: str, group: str, mode: str):
    """
    Ensure a directory exists with this owner and mode (``files.directory(path=..., user=..., group=..., mode=...)``).

    + path: the directory
    + user: its owner
    + group: its group
    + mode: its mode ("750")

    **Example:**

    .. code:: python

        directory_present(name="App data", path="/srv/apps/shop/data", user="appuser", group="appuser", mode="750")
    """
    want = ensure_mode_int(mode)
    info = snapshot_fact(Directory, path=path)
    if info is False:
        raise OperationError(f"{path} exists and is not a directory")
    if info is None:
        yield StringCommand("mkdir", "-p", QuoteString(path))
        yield file_utils.chmod(path, want)
        yield file_utils.chown(path, user, group)
        return
    changed = False
    if info["mode"] != want:
        yield file_utils.chmod(path, want)
        changed = True
    if (info["user"], info["group"]) != (user, group):
        yield file_utils.chown(path, user, group)
        changed = True
    if not changed:
        host.noop(f"directory {path} already exists")
