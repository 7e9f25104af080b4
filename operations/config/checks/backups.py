"""[backups]: the backup directory is one of its own, since vpskit makes it root-only; the schedules parse;
[backups.offsite]: a repository vpskit can reach, credentials present in this environment, and a password to read it with."""

from __future__ import annotations

import os
import re

from .base import SAFE_PATH_RE, Checker

# sftp:[user@]host:/path  or  sftp://[user@]host[:port]//path (restic's two forms).
SFTP_RE = re.compile(
    r"^sftp:(//(?:(?P<user2>[A-Za-z0-9._-]+)@)?(?P<host2>[A-Za-z0-9.-]+)(?::(?P<port>\d{1,5}))?/(?P<path2>.+)"
    r"|(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>.+))$"
)


def check(c: Checker, config) -> None:
    d = config.backups.dir
    if not SAFE_PATH_RE.match(d) or d.rstrip("/") in ("", "/etc", "/var", "/home", "/root", "/tmp"):
        c.add("backups.dir", f"must be an absolute directory of its own (vpskit sets it to mode 700), got {d!r}")
    _check_offsite(c, config)


def _check_offsite(c: Checker, config) -> None:
    o = config.backups.offsite
    if not o.enabled:
        if o.restore:
            c.add("backups.offsite.restore", "needs backups.offsite.repository, the repository to restore from")
        return
    repo = o.repository
    if repo.startswith("sftp:") and not SFTP_RE.match(repo):
        c.add("backups.offsite.repository", f"{repo!r} is not sftp:user@host:/path or sftp://user@host:port//path")
    elif repo.startswith("/"):
        if not SAFE_PATH_RE.match(repo):
            c.add("backups.offsite.repository", f"must be an absolute path of plain characters, got {repo!r}")
        elif (repo.rstrip("/") + "/").startswith(config.backups.dir.rstrip("/") + "/"):
            c.add("backups.offsite.repository", f"{repo!r} is inside backups.dir, which is copied into it")
    for i, name in enumerate(o.env):
        if not os.environ.get(name):
            c.add(f"backups.offsite.env[{i}]", f"${name} is not set in the environment running pyinfra")
    if o.ssh_key:
        if not repo.startswith("sftp:"):
            c.add("backups.offsite.ssh_key", "is used only with an sftp: repository")
        else:
            c.key_file("backups.offsite.ssh_key", o.ssh_key, public=False)
    password = config.path(o.password_file)
    if password.is_dir():
        c.add("backups.offsite.password_file", f"{str(password)!r} is a directory")
    elif password.exists() and not password.read_text(errors="replace").strip():
        c.add("backups.offsite.password_file", f"{str(password)!r} is empty")
    elif o.restore and not password.exists():
        c.add(
            "backups.offsite.restore",
            f"needs the repository password: {str(password)!r} does not exist (put the copy you kept there)",
        )
