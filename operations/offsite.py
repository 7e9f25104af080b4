"""Off-host copies: the backups, the apps' data and vpskit's host secrets in an encrypted restic repository.

After each local backup run ``vpskit-backup run`` copies the dump directory, each
app's directory (its ``.env``, data and stamps; not its checkout or venv), the
apps' ``backup.paths`` and the database password files to the repository, then
forgets snapshots beyond the keep rules. A weekly timer reads a sample of the
data back (``restic check --read-data-subset``).

The repository password is made on the machine running pyinfra, kept in a file
beside the config, and uploaded root-only; like the credentials it only ever
travels as file content, never on a command line, so no output shows it.

On a brand-new host ``restore`` brings everything back from the newest snapshot
in two steps: the files (secrets first, so vpskit keeps them instead of making
new ones) before PostgreSQL is set up, and the databases once their roles exist,
both before the apps start. A host that already has data is never restored over.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import FactBase, OperationError, StringCommand, deploy, operation

from .backup import BACKUP_SCRIPT, CONFIG_DIR, STATUS_DIR, BackupItem
from .batched import directory_present, packages_installed
from .config.checks.backups import SFTP_RE
from .contribution import Contribution
from .postgres import SECRETS_DIR
from .render import render
from .schedule import timer_service
from .snapshot import planned, snapshot_fact
from .validated import checked_file

PACKAGES = ["restic"]
OFFSITE_DIR = f"{CONFIG_DIR}/offsite"
PASSWORD_FILE = f"{OFFSITE_DIR}/password"
ENV_FILE = f"{OFFSITE_DIR}/env"
SSH_KEY = f"{OFFSITE_DIR}/ssh_key"
KNOWN_HOSTS = f"{OFFSITE_DIR}/known_hosts"
OFFSITE_CONF = f"{CONFIG_DIR}/offsite.conf"
RESTIC = "/usr/local/sbin/vpskit-restic"
CHECK_UNIT = "vpskit-offsite-check"
# "files" once the snapshot's files are back, "done" once the databases are too.
RECOVERY_MARK = f"{STATUS_DIR}/offsite/recovered"
TAG = "vpskit"
# Printed by restic when there is no repository at the location (0.12 to 0.18).
NO_REPOSITORY = "Is there a repository at the following location?"


@dataclass(frozen=True)
class OffsiteSpec:
    """What the off-host copies need, in plain values (secrets are left out of its repr)."""

    repository: str
    password: str = field(repr=False)
    # Variables the repository needs on the host: (name, value).
    credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # Private key text for an sftp: repository ('' for root's own keys).
    ssh_key: str = field(default="", repr=False)
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 6
    check_schedule: str = "Sun *-*-* 05:00:00"
    check_subset: str = "5%"
    # What goes off-host, and what under it does not.
    paths: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    restore: bool = False


# ------------------------------------------------------------------ pure logic


def shown_repository(repository: str) -> str:
    """The repository as messages show it: a password in its URL (``rest:https://user:pw@host/``) masked."""
    return re.sub(r"(://[^/:@]+:)[^/@]+@", r"\1***@", repository)


def forget_flags(keep_daily: int, keep_weekly: int, keep_monthly: int) -> list[str]:
    """``restic forget`` keep options; empty (keep everything) when every rule is 0."""
    flags = []
    for name, n in (("daily", keep_daily), ("weekly", keep_weekly), ("monthly", keep_monthly)):
        if n > 0:
            flags += [f"--keep-{name}", str(n)]
    return flags


def sftp_command(repository: str, key_file: str = "", known_hosts: str = KNOWN_HOSTS) -> str:
    """The ``sftp.command`` restic runs for an ``sftp:`` repository: ssh in batch mode, its own known_hosts; '' otherwise."""
    m = SFTP_RE.match(repository)
    if not repository.startswith("sftp:") or not m:
        return ""
    user, address, port = m["user"] or m["user2"], m["host"] or m["host2"], m["port"]
    args = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={known_hosts}"]
    if key_file:
        args += ["-i", key_file, "-o", "IdentitiesOnly=yes"]
    if port:
        args += ["-p", port]
    args += [f"{user}@{address}" if user else address, "-s", "sftp"]
    return " ".join(args)


def restic_env_text(repository: str, credentials) -> str:
    """The root-only env file the ``vpskit-restic`` wrapper reads: the repository and its credentials."""
    return render(
        "restic.env.j2",
        repository=shlex.quote(repository),
        credentials=[(name, shlex.quote(value)) for name, value in credentials],
    )


def offsite_conf_text(spec: OffsiteSpec) -> str:
    """/etc/vpskit/offsite.conf: what ``vpskit-backup`` copies, excludes, keeps and checks."""
    return render(
        "offsite.conf.j2",
        paths=spec.paths,
        excludes=spec.excludes,
        keep=shlex.quote(" ".join(forget_flags(spec.keep_daily, spec.keep_weekly, spec.keep_monthly))),
        check_subset=shlex.quote(spec.check_subset),
    )


def newest_file(directory: str, pattern: str) -> str:
    """Shell setting ``$f`` to the newest (by name: names carry the time) file matching ``pattern``."""
    return f"f=$(ls -1 {shlex.quote(directory)}/{pattern} 2>/dev/null | sort | tail -n 1)"


def database_recovery_commands(items: list[BackupItem], backup_dir: str, pg_port: int) -> list[str]:
    """Shell loading each PostgreSQL and SQLite item's newest restored dump; an item without one is said and skipped.

    Directories come back with the snapshot's files; databases in compose apps' containers
    need their containers (``vpskit-backup restore ITEM`` once they run).
    """
    commands = []
    for item in items:
        where = f"{backup_dir.rstrip('/')}/{item.name}"
        missing = shlex.quote(f"vpskit: no backup of {item.name} in the snapshot; left as it is")
        if item.kind == "pg":
            load = (
                f"runuser -u postgres -- pg_restore -p {int(pg_port)} --exit-on-error --single-transaction --clean"
                f' --if-exists -d {shlex.quote(item.source)} < "$f"'
            )
        elif item.kind == "sqlite":
            dest = shlex.quote(item.source)
            parent = shlex.quote(item.source.rsplit("/", 1)[0] or "/")
            load = f'install -d {parent} && cp -- "$f" {dest} && chown --reference={parent} {dest} && chmod 640 {dest}'
        else:
            continue
        pattern = f"{shlex.quote(item.name)}-*.{'dump' if item.kind == 'pg' else 'sqlite3'}"
        commands.append(f'{newest_file(where, pattern)} && if [ -n "$f" ]; then {load}; else echo {missing}; fi')
    return commands


def repository_password(path: Path) -> str:
    """The repository password kept in ``path`` (mode 600), generated once when the file is missing."""
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    logger.warning(
        f"vpskit: generated the off-host backup password in {path} (mode 600). KEEP A COPY somewhere other than "
        "this machine and the VPS: without it the off-host copies cannot be read or restored."
    )
    return password


# ------------------------------------------------------------------------ facts


class ResticRepository(FactBase):
    """
    Returns whether the off-host repository opens with the host's password: ``{"state": "ok"}``,
    ``"missing"`` (nothing there yet), ``"absent"`` (restic or its wrapper not installed yet) or
    ``"error"`` with restic's ``message`` (wrong password, unreachable).
    """

    slow = True  # asks the off-host repository: not read again with the others after a change (snapshot.py)

    @staticmethod
    def default():
        return {"state": "absent", "message": ""}

    def command(self, wrapper):
        w = shlex.quote(wrapper)
        return (
            f"if [ -x {w} ] && command -v restic >/dev/null; then "
            f"out=$({w} cat config 2>&1 >/dev/null); echo status=$?; printf '%s\\n' \"$out\" | tail -n 4; "
            "else echo status=absent; fi"
        )

    def process(self, output):
        status = output[0].partition("=")[2].strip() if output else "absent"
        message = " ".join(line.strip() for line in output[1:] if line.strip())
        if status == "absent":
            return {"state": "absent", "message": ""}
        if status == "0":
            return {"state": "ok", "message": ""}
        return {"state": "missing" if NO_REPOSITORY in message else "error", "message": message}


class RecoveryState(FactBase):
    """
    Returns the recovery mark (``""``, ``"files"`` or ``"done"``) and which of ``guards`` hold data
    (a file, or a directory that is not empty).

    .. code:: python

        {"mark": "", "data": ["/etc/vpskit/secrets"]}
    """

    @staticmethod
    def default():
        return {"mark": "", "data": []}

    def command(self, mark, guards):
        checks = "".join(
            f'p={shlex.quote(g)}; if [ -f "$p" ] || {{ [ -d "$p" ] && [ -n "$(ls -A "$p")" ]; }}; then echo "data=$p"; fi; ' for g in guards
        )
        return f"[ -f {shlex.quote(mark)} ] && sed 's/^/mark=/' {shlex.quote(mark)}; {checks}true"

    def process(self, output):
        state: dict = {"mark": "", "data": []}
        for line in output:
            key, _, value = line.partition("=")
            if key == "mark":
                state["mark"] = value.strip()
            elif key == "data":
                state["data"].append(value.strip())
        return state


# ------------------------------------------------------------------- operations


@deploy("Off-host copies")
def offsite_copies(spec: OffsiteSpec):
    """
    Ensure restic, the repository's password and credentials (root only), the ``vpskit-restic`` wrapper,
    an initialised repository and the weekly data check.

    + spec: the repository, password, credentials, keep rules, check schedule and paths (``OffsiteSpec``)

    **Example:**

    .. code:: python

        offsite_copies(OffsiteSpec("sftp:backup@backup.example.net:/srv/restic/web1", password="...",
                                   paths=("/var/backups/vpskit", "/etc/vpskit/secrets")))
    """
    packages_installed(name="Install restic", packages=PACKAGES)
    directory_present(name="Off-host copy settings (root only)", path=OFFSITE_DIR, mode="700", user="root", group="root")
    checked_file(
        name="Off-host repository and its credentials",
        dest=ENV_FILE,
        content=restic_env_text(spec.repository, spec.credentials),
        validate="sh -n {path}",
        mode="600",
    )
    if spec.ssh_key:
        checked_file(name="SSH key for the SFTP repository", dest=SSH_KEY, content=spec.ssh_key, mode="600")
    checked_file(
        name="restic on the off-host repository (vpskit-restic)",
        dest=RESTIC,
        content=render(
            "vpskit-restic.j2",
            env_file=ENV_FILE,
            password_file=PASSWORD_FILE,
            sftp_command=shlex.quote(sftp) if (sftp := sftp_command(spec.repository, SSH_KEY if spec.ssh_key else "")) else "",
        ),
        validate="sh -n {path}",
        mode="700",
    )
    # A new password goes live only if the repository opens with it (or is not there yet).
    checked_file(
        name="Off-host repository password",
        dest=PASSWORD_FILE,
        content=spec.password + "\n",
        validate=(
            f"out=$(RESTIC_PASSWORD_FILE={{path}} {RESTIC} cat config 2>&1 >/dev/null) || "
            f"{{ printf '%s\\n' \"$out\" | grep -qF {shlex.quote(NO_REPOSITORY)} || {{ printf '%s\\n' \"$out\" >&2; false; }}; }}"
        ),
        mode="600",
    )
    offsite_repository(name="Off-host repository", repository=spec.repository, create=not spec.restore)
    checked_file(
        name="What goes off-host",
        dest=OFFSITE_CONF,
        content=offsite_conf_text(spec),
        validate="bash -n {path}",
        mode="600",
    )
    timer_service(
        unit=CHECK_UNIT,
        description="vpskit check of the off-host repository, reading a sample of its data back",
        schedule=spec.check_schedule,
        exec_start=f"{BACKUP_SCRIPT} offsite-check",
    )


@planned(lambda *_, **__: [(ResticRepository, {"wrapper": RESTIC})])
@operation()
def offsite_repository(repository: str, create: bool = True):
    """
    Ensure the off-host repository opens with the host's password, initialising it when there is none.

    A wrong password or an unreachable repository stops the run with restic's own words.

    + repository: the repository (for messages)
    + create: initialise a missing repository (off when restoring: an empty one has nothing to restore)

    **Example:**

    .. code:: python

        offsite_repository(repository="sftp:backup@backup.example.net:/srv/restic/web1")
    """
    state = snapshot_fact(ResticRepository, wrapper=RESTIC)
    repository = shown_repository(repository)
    if state["state"] == "ok":
        host.noop(f"{repository} opens with the host's password")
        return
    if state["state"] == "error":
        raise OperationError(f"off-host repository {repository}: {state['message']}")
    if state["state"] == "missing" and not create:
        raise OperationError(f"off-host repository {repository}: there is none to restore from ({state['message']})")
    yield StringCommand(f"{RESTIC} init")


@operation()
def offsite_files_recovered(guards: list[str]):
    """
    Ensure a brand-new host has the files of the newest off-host snapshot: secrets, ``.env`` files, app data, dumps.

    Nothing is restored on a host where any of ``guards`` holds data, nor twice.

    + guards: files and directories that only a host with data has (secrets, backups, ``.env`` files)

    **Example:**

    .. code:: python

        offsite_files_recovered(guards=["/etc/vpskit/secrets", "/var/backups/vpskit", "/srv/apps/dibby/.env"])
    """
    state = host.get_fact(RecoveryState, mark=RECOVERY_MARK, guards=tuple(guards))
    if state["mark"]:
        host.noop("restored from the off-host copy on an earlier run")
        return
    if state["data"]:
        logger.warning(f"vpskit: not restoring from the off-host copy: this host already has data ({state['data'][0]})")
        host.noop("this host already has data: not restored over")
        return
    mark = shlex.quote(RECOVERY_MARK)
    yield StringCommand(
        f"{RESTIC} restore latest --tag {TAG} --target / && "
        f"install -d -m 755 {shlex.quote(RECOVERY_MARK.rsplit('/', 1)[0])} && echo files > {mark}"
    )


@operation()
def offsite_databases_recovered(items: list[BackupItem], backup_dir: str, pg_port: int = 5432):
    """
    Ensure the databases restored files were waiting for are loaded: each item's newest dump from the snapshot.

    Acts only between ``offsite_files_recovered`` and the first start of the apps (the mark says "files").

    + items: the backup items (``backup_items(apps)``)
    + backup_dir: where the snapshot brought the dumps back
    + pg_port: PostgreSQL's port

    **Example:**

    .. code:: python

        offsite_databases_recovered(items=backup_items(apps), backup_dir="/var/backups/vpskit")
    """
    state = host.get_fact(RecoveryState, mark=RECOVERY_MARK, guards=())
    if state["mark"] != "files":
        host.noop("no restored files wait for their databases")
        return
    commands = database_recovery_commands(items, backup_dir, pg_port)
    yield StringCommand(" && ".join([*commands, f"echo done > {shlex.quote(RECOVERY_MARK)}"]))


# ------------------------------------------------------------- from the config


def recovery_guards(backup_dir: str, env_files: list[str]) -> list[str]:
    """What only a host with data has: the secrets, the local backups and the apps' ``.env`` files."""
    return [SECRETS_DIR, backup_dir, *env_files]


def contribution(spec: OffsiteSpec | None) -> Contribution:
    """The weekly check's timer, for the health report, when copies go off-host."""
    return Contribution(units=(f"{CHECK_UNIT}.timer",)) if spec else Contribution()
