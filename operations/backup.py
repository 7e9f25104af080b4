"""Backups: verified dumps on a schedule, retention by age, restore and a restore drill.

The host gets one script, ``vpskit-backup`` (files/vpskit-backup), and its
config /etc/vpskit/backup.conf listing the items: each app's PostgreSQL
database or SQLite file, and the directories the app lists under
``backup.paths``. A systemd timer runs ``vpskit-backup run`` (the guide's
daily 02:00) and another ``vpskit-backup drill`` (weekly), which restores each
newest backup into a scratch place and records the result for the health report.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import StringCommand, deploy, operation
from pyinfra.facts.files import FindFiles

from .batched import directory_present
from .config import App
from .contribution import Contribution
from .render import FILES_DIR, render
from .schedule import timer_service
from .snapshot import planned, snapshot_fact
from .validated import checked_file

BACKUP_SCRIPT = "/usr/local/sbin/vpskit-backup"
CONFIG_DIR = "/etc/vpskit"
BACKUP_CONF = f"{CONFIG_DIR}/backup.conf"
# Per item: backup/<name>.status and drill/<name>.status, read by the health report.
STATUS_DIR = "/var/lib/vpskit"
BACKUP_UNIT = "vpskit-backup"
DRILL_UNIT = "vpskit-restore-drill"


@dataclass(frozen=True)
class BackupItem:
    """One thing backed up: ``kind`` pg (a database), sqlite (a file), files (a directory), or a database in a
    compose app's container: docker_pg / docker_mysql, whose ``source`` is "PROJECT SERVICE DATABASE USER"."""

    kind: str
    name: str
    source: str


def backup_items(apps: tuple[App, ...] | list[App]) -> list[BackupItem]:
    """What the configured apps want backed up, each with a unique item name.

    An app's database is the item named after the app; each directory in
    ``backup.paths`` is ``<app>-files-<dir name>``.
    """
    items: list[BackupItem] = []
    for app in apps:
        if app.state != "present" or not app.backup.enabled:
            continue
        if app.database.uses_postgres:
            items.append(BackupItem("pg", app.name, app.db_name))
        elif app.database.engine == "sqlite":
            items.append(BackupItem("sqlite", app.name, app.database.path))
        for db in app.container_databases:
            name = _unique(items, f"{app.name}-{db.service}-{db.name}".lower().replace("_", "-"))
            kind = "docker_pg" if db.engine == "postgresql" else "docker_mysql"
            items.append(BackupItem(kind, name, f"{app.name} {db.service} {db.name} {db.user}"))
        for path in app.backup.paths:
            base = re.sub(r"[^a-z0-9-]+", "-", path.rstrip("/").rsplit("/", 1)[-1].lower()).strip("-") or "root"
            items.append(BackupItem("files", _unique(items, f"{app.name}-files-{base}"), path.rstrip("/")))
    return items


def contribution(items: list[BackupItem], drill: bool) -> Contribution:
    """The backup timer (and the drill's), for the health report, when anything is backed up."""
    if not items:
        return Contribution()
    return Contribution(units=(f"{BACKUP_UNIT}.timer", *((f"{DRILL_UNIT}.timer",) if drill else ())))


def _unique(items: list[BackupItem], name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... if an item already has it."""
    candidate, n = name, 2
    while any(i.name == candidate for i in items):
        candidate, n = f"{name}-{n}", n + 1
    return candidate


@deploy("Backups")
def backups(
    items: list[BackupItem],
    backup_dir: str = "/var/backups/vpskit",
    schedule: str = "*-*-* 02:00:00",
    keep_days: int = 7,
    drill_schedule: str = "Sun *-*-* 04:00:00",
    pg_port: int = 5432,
):
    """
    Ensure scheduled, verified backups of ``items``, a restore command and a restore drill.

    + items: what to back up (``BackupItem``: a database, an SQLite file, a directory, a container's database)
    + backup_dir: root-only directory holding one sub-directory per item
    + schedule: systemd OnCalendar of the backup run
    + keep_days: backups older than this are deleted; the newest good one never is
    + drill_schedule: systemd OnCalendar of the restore drill into scratch databases ('' for none)
    + pg_port: PostgreSQL's port

    **Example:**

    .. code:: python

        backups([BackupItem("pg", "shop", "shop"), BackupItem("files", "shop-files-media", "/srv/media")], keep_days=14)
    """
    directory_present(name="vpskit config directory", path=CONFIG_DIR, mode="755", user="root", group="root")
    checked_file(
        name="Backup, restore and drill command",
        content=(FILES_DIR / "vpskit-backup").read_bytes(),
        dest=BACKUP_SCRIPT,
        mode="755",
    )
    directory_present(name="Backup directory (root only)", path=backup_dir, mode="700", user="root", group="root")
    checked_file(
        name="What is backed up",
        dest=BACKUP_CONF,
        content=render(
            "backup.conf.j2",
            dir=shlex.quote(backup_dir),
            keep_days=keep_days,
            status_dir=shlex.quote(STATUS_DIR),
            pg_port=pg_port,
            items=items,
        ),
        validate="bash -n {path}",
        mode="600",
    )
    uses_pg = any(i.kind == "pg" for i in items)
    uses_docker = any(i.kind.startswith("docker_") for i in items)
    after = (*(("postgresql.service",) if uses_pg else ()), *(("docker.service",) if uses_docker else ()))
    timer_service(
        unit=BACKUP_UNIT,
        description="vpskit backup of databases and app files",
        schedule=schedule,
        exec_start=f"{BACKUP_SCRIPT} run",
        after=after,
    )
    if drill_schedule:
        timer_service(
            unit=DRILL_UNIT,
            description="vpskit restore drill: newest backups restored into scratch databases and checked",
            schedule=drill_schedule,
            exec_start=f"{BACKUP_SCRIPT} drill",
            after=(f"{BACKUP_UNIT}.service", *after),
        )
    first_backup_made(name="First backup of new items", items=[i.name for i in items])


@planned(lambda *_, **__: [(FindFiles, {"path": f"{STATUS_DIR}/backup", "quote_path": True})])
@operation()
def first_backup_made(items: list[str]):
    """
    Ensure every item has been backed up at least once, running the backup service if not.

    A new host (or a newly configured item) would otherwise have no backup until the
    first scheduled run, and the health report would say so.

    + items: the backup item names

    **Example:**

    .. code:: python

        first_backup_made(items=["dibby", "grades"])
    """
    found = snapshot_fact(FindFiles, path=f"{STATUS_DIR}/backup", quote_path=True) or []
    have = {p.rsplit("/", 1)[-1].removesuffix(".status") for p in found}
    missing = [i for i in items if i not in have]
    if not missing:
        host.noop("every item has a backup status")
        return
    yield StringCommand(f"systemctl start {BACKUP_UNIT}.service")
