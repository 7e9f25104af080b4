"""Schedules: systemd timers with oneshot services, and cron.d entries.

Both the apps' own background tasks (``app_job``) and vpskit's backup runs use
``timer_service``; cron entries are files in /etc/cron.d (root-owned, 644, names
without dots, ``%`` escaped, with a user field), as cron requires.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from pyinfra.api import FactBase, deploy
from pyinfra.operations import files, systemd

from .batched import packages_installed, unit_running
from .contribution import Contribution
from .render import render
from .snapshot import snapshot_fact
from .validated import checked_file

UNIT_DIR = "/etc/systemd/system"
CRON_DIR = "/etc/cron.d"
CRON_PACKAGES = ["cron"]
# The first lines vpskit writes into an app job's files (oneshot.service.j2, cron-job.j2).
TIMER_JOB_RE = re.compile(r"^(?P<path>.+\.service):# Managed by vpskit: (?P<app>\S+) job (?P<job>\S+): ")
CRON_JOB_RE = re.compile(r"^(?P<path>[^:]+):# Managed by vpskit: job (?P<job>\S+) of app (?P<app>\S+)$")


@dataclass(frozen=True)
class Job:
    """A scheduled task of one app: a systemd timer + oneshot service, or a cron entry."""

    # Short name, unique within the app: the unit is <app>-<name>.timer / the cron file vpskit-<app>-<name>.
    name: str
    # timer: systemd OnCalendar ("Sun *-*-* 23:59:00"); cron: five fields ("*/5 * * * *") or @daily & co.
    schedule: str
    # Shell command, run by /bin/sh in the app's directory.
    command: str
    # "timer" or "cron".
    kind: str = "timer"
    # Unix user the command runs as; empty: the app's user.
    user: str = ""


def contribution(jobs: list[tuple[str, Job]]) -> Contribution:
    """For ``(app name, job)`` pairs: cron's package and unit when any job is a cron job, and each timer."""
    cron = any(job.kind == "cron" for _, job in jobs)
    return Contribution(
        packages=tuple(CRON_PACKAGES) if cron else (),
        units=(*(("cron.service",) if cron else ()), *(f"{job_unit(app, job)}.timer" for app, job in jobs if job.kind == "timer")),
    )


class AppJobFiles(FactBase):
    """
    Returns every app job vpskit has installed on the host, read from the files' first lines.

    .. code:: python

        {("dibby", "snapshot"): ("timer", "dibby-snapshot"), ("dibby", "ping"): ("cron", "/etc/cron.d/vpskit-dibby-ping")}
    """

    def command(self):
        return f"grep -H -m1 '^# Managed by vpskit: ' {UNIT_DIR}/*.service {CRON_DIR}/vpskit-* 2>/dev/null || true"

    @staticmethod
    def default():
        return {}

    def process(self, output):
        jobs = {}
        for line in output:
            if m := TIMER_JOB_RE.match(line):
                unit = m["path"].rsplit("/", 1)[-1].removesuffix(".service")
                jobs[(m["app"], m["job"])] = ("timer", unit)
            elif m := CRON_JOB_RE.match(line.rstrip()):
                jobs[(m["app"], m["job"])] = ("cron", m["path"])
        return jobs


def installed_app_jobs() -> dict:
    """The ``AppJobFiles`` fact: every app job vpskit has installed, read with the run's other facts."""
    return snapshot_fact(AppJobFiles)


def systemd_exec_quote(command: str) -> str:
    """``command`` as one ``ExecStart=`` argument: systemd's double quotes, with ``%`` and ``$`` kept literal."""
    escaped = command.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def cron_escape(command: str) -> str:
    """``command`` for a crontab line: cron turns an unescaped ``%`` into a newline."""
    return command.replace("%", "\\%")


def job_unit(app_name: str, job: Job) -> str:
    """The systemd unit name (without suffix) of an app's timer job."""
    return f"{app_name}-{job.name}"


def cron_file(app_name: str, job: Job) -> str:
    """The /etc/cron.d file of an app's cron job (cron skips names with dots)."""
    return f"{CRON_DIR}/vpskit-{app_name}-{job.name}"


@deploy("Timer")
def timer_service(
    unit: str,
    description: str,
    schedule: str,
    exec_start: str,
    user: str = "root",
    workdir: str = "",
    env_files: tuple[str, ...] = (),
    environment: dict[str, str] | None = None,
    after: tuple[str, ...] = (),
    accuracy: str = "",
):
    """
    Ensure a oneshot service runs ``exec_start`` on ``schedule`` via a persistent systemd timer.

    + unit: unit name without suffix (``dibby-snapshot`` makes dibby-snapshot.service/.timer)
    + description: what the job does, for ``systemctl status``
    + schedule: systemd OnCalendar expression (checked with ``systemd-analyze calendar``)
    + exec_start: the ExecStart= line (absolute program and its arguments)
    + user: the Unix user the service runs as (its group: the user's primary group)
    + workdir: WorkingDirectory=, empty for none
    + env_files: EnvironmentFile= entries (prefix ``-`` for optional files)
    + environment: extra Environment= variables
    + after: units to order the run after (``postgresql.service``)
    + accuracy: AccuracySec= (how late systemd may start it, to batch wake-ups); empty: systemd's 1 min

    **Example:**

    .. code:: python

        timer_service(
            unit="vpskit-backup", description="vpskit backup", schedule="*-*-* 02:00:00",
            exec_start="/usr/local/sbin/vpskit-backup run",
        )
    """
    service = checked_file(
        name=f"Service {unit}",
        dest=f"{UNIT_DIR}/{unit}.service",
        content=render(
            "oneshot.service.j2",
            description=description,
            user=user,
            group=user,
            workdir=workdir,
            env_files=list(env_files),
            environment=environment or {},
            exec_start=exec_start,
            after=list(after),
        ),
    )
    timer = checked_file(
        name=f"Timer {unit} ({schedule})",
        dest=f"{UNIT_DIR}/{unit}.timer",
        content=render("oneshot.timer.j2", unit=f"{unit}.service", schedule=schedule, accuracy=accuracy),
        validate=f"systemd-analyze calendar {shlex.quote(schedule)} >/dev/null",
    )
    systemd.daemon_reload(
        name=f"Reload systemd for {unit}",
        _if=lambda: service.did_change() or timer.did_change(),
    )
    unit_running(name=f"Timer {unit} enabled and started", unit=f"{unit}.timer")


@deploy("App job")
def app_job(
    app_name: str,
    job: Job,
    user: str,
    workdir: str,
    venv: str = "",
    env_file: str = "",
    secret_env_file: str = "",
    after: tuple[str, ...] = ("postgresql.service",),
):
    """
    Ensure one scheduled task of an app: a systemd timer + oneshot service, or a cron.d entry.

    A timer job runs ``job.command`` with /bin/sh in ``workdir`` as ``user``, with the
    app's venv first on PATH and the app's env files loaded; a cron job runs it with
    /bin/sh in ``workdir`` as ``user`` (call ``cron_ready()`` once for cron jobs).

    + app_name: the app the job belongs to
    + job: the job (``Job``: name, kind, schedule, command, user)
    + user: the Unix user when the job names none (the deploy user)
    + workdir: the app's directory
    + venv: the app's virtualenv, first on PATH ('' for none: a compose app's job is a ``docker compose exec``)
    + env_file: the app's .env (EnvironmentFile=), optional
    + secret_env_file: the app's root-only secrets (DATABASE_URL), optional
    + after: units a timer job's run is ordered after

    **Example:**

    .. code:: python

        app_job("dibby", Job("snapshot", "*-*-* 23:55:00", "flask snapshot"), user="appuser",
                workdir="/home/appuser/apps/dibby", venv="/home/appuser/apps/dibby/venv",
                env_file="/home/appuser/apps/dibby/.env")
    """
    run_as = job.user or user
    if job.kind == "cron":
        checked_file(
            name=f"Cron job {app_name}/{job.name} ({job.schedule})",
            dest=cron_file(app_name, job),
            content=render(
                "cron-job.j2",
                description=f"job {job.name} of app {app_name}",
                schedule=job.schedule,
                user=run_as,
                command=cron_escape(f"cd {shlex.quote(workdir)} && {job.command}"),
            ),
            mode="644",
        )
        return
    timer_service(
        unit=job_unit(app_name, job),
        description=f"{app_name} job {job.name}: {job.command}",
        schedule=job.schedule,
        exec_start=f"/bin/sh -c {systemd_exec_quote(job.command)}",
        user=run_as,
        workdir=workdir,
        env_files=(*([env_file] if env_file else []), *([f"-{secret_env_file}"] if secret_env_file else [])),
        environment={"PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": venv} if venv else {},
        after=after,
    )


@deploy("Cron")
def cron_ready():
    """
    Ensure cron is installed, enabled and running.

    **Example:**

    .. code:: python

        cron_ready()
    """
    packages_installed(name="Install cron", packages=CRON_PACKAGES)
    unit_running(name="cron runs at boot", unit="cron.service")


def jobs_pruned(kept: list[tuple[str, set[str]]]):
    """
    Ensure no app job runs that the config no longer lists, for every app: installed jobs read once.

    + kept: ``(app name, names of the jobs it keeps)`` of every app vpskit knows, absent ones with an empty set

    **Example:**

    .. code:: python

        jobs_pruned([("dibby", {"snapshot"}), ("old-shop", set())])
    """
    installed = installed_app_jobs()
    for app_name, keep in kept:
        app_jobs_pruned(app_name, keep, installed)


@deploy("Removed jobs")
def app_jobs_pruned(app_name: str, keep: set[str], installed: dict):
    """
    Ensure no job of ``app_name`` runs that the config no longer lists: timers stopped, files removed.

    + app_name: the app
    + keep: the names of the jobs it still has (empty for an app marked absent)
    + installed: the ``AppJobFiles`` fact, read once for all apps

    **Example:**

    .. code:: python

        app_jobs_pruned("dibby", {"snapshot"}, installed_app_jobs())
    """
    gone = sorted((job, where) for (app, job), where in installed.items() if app == app_name and job not in keep)
    removed = []
    for job, (kind, ref) in gone:
        if kind == "cron":
            files.file(name=f"Remove cron job {app_name}/{job}", path=ref, present=False)
            continue
        systemd.service(name=f"Stop timer {ref}", service=f"{ref}.timer", running=False, enabled=False)
        for suffix in ("timer", "service"):
            removed.append(files.file(name=f"Remove {ref}.{suffix}", path=f"{UNIT_DIR}/{ref}.{suffix}", present=False))
    if removed:
        systemd.daemon_reload(name=f"Reload systemd after removing jobs of {app_name}", _if=lambda: any(op.did_change() for op in removed))
