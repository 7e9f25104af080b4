"""[backups]: the backup directory is one of its own, since vpskit makes it root-only; the schedules parse."""

from __future__ import annotations

from .base import SAFE_PATH_RE, Checker


def check(c: Checker, config) -> None:
    d = config.backups.dir
    if not SAFE_PATH_RE.match(d) or d.rstrip("/") in ("", "/etc", "/var", "/home", "/root", "/tmp"):
        c.add("backups.dir", f"must be an absolute directory of its own (vpskit sets it to mode 700), got {d!r}")
    for name in ("schedule", "drill_schedule"):
        value = getattr(config.backups, name)
        if value:
            c.calendar(f"backups.{name}", value)
