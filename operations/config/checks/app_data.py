"""[apps.database], [apps.backup], [[apps.jobs]]: PostgreSQL names unique and not reserved, SQLite's file, job schedules."""

from __future__ import annotations

import re

from .base import SAFE_PATH_RE, Checker, is_cron_schedule

PG_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
PG_RESERVED = ("postgres", "template0", "template1", "public", "pg_signal_backend")


def check(c: Checker, where: str, app, databases: dict[str, str], roles: dict[str, str]) -> None:
    """The database and jobs of one app; ``databases``/``roles`` collect names across apps."""
    db = app.database
    if db.uses_postgres:
        checks = [("name", app.db_name, databases), ("role", app.db_role, roles)]
        if not db.role:  # derived from the name: a problem there is already reported
            checks = checks[:1] if not PG_NAME_RE.match(app.db_name) else checks
        for key, value, seen in checks:
            if not PG_NAME_RE.match(value):
                c.add(f"{where}.database.{key}", f"{value!r} must be lowercase letters, digits and _ (max 63)")
            elif value in PG_RESERVED:
                c.add(f"{where}.database.{key}", f"{value!r} is reserved by PostgreSQL")
            elif value in seen:
                c.add(f"{where}.database.{key}", f"{value!r} is already used by app {seen[value]!r}")
            else:
                seen[value] = app.name
    elif db.engine == "sqlite" and not (SAFE_PATH_RE.match(db.path) and not db.path.endswith("/")):
        c.add(f"{where}.database.path", f"engine sqlite needs the absolute path of the database file, got {db.path!r}")

    job_names: dict[str, str] = {}
    for j, job in enumerate(app.jobs):
        jw = f"{where}.jobs[{j}]"
        c.unique(f"{jw}.name", job.name, job_names, jw)
        if job.kind == "timer":
            c.calendar(f"{jw}.schedule", job.schedule)
        elif job.kind == "cron" and not is_cron_schedule(job.schedule):
            c.add(f"{jw}.schedule", f"{job.schedule!r} is not a cron schedule: five fields like '*/5 * * * *' or @daily")
        if not job.command.strip() or "\n" in job.command:
            c.add(f"{jw}.command", "must be one non-empty line")
