"""vpskit: take one Ubuntu 22.04/24.04/26.04 or Debian 12/13 VPS to the configured state.

    pyinfra inventory.py deploy.py          # apply
    pyinfra inventory.py deploy.py --dry    # show what would change
"""

from pyinfra import host
from pyinfra.api import OperationError
from pyinfra.operations import server

from operations.backup import BACKUP_UNIT, DRILL_UNIT, backup_items, backups
from operations.config import load_config
from operations.connect import login_prover
from operations.fail2ban import fail2ban_jails, fail2ban_packages
from operations.firewall import PACKAGES as FIREWALL_PACKAGES
from operations.firewall import firewall
from operations.ssh import SshdState, sshd_hardened
from operations.monitor import AppCheck, health_report, health_settings
from operations.postgres import PACKAGES as POSTGRES_PACKAGES
from operations.postgres import app_database, pg_version, postgres_server, secret_env_path
from operations.schedule import CRON_PACKAGES, AppJobFiles, app_job, app_jobs_pruned, cron_ready, job_unit
from operations.system import base_system, host_distro
from operations.users import deploy_user
from operations.app import app_paths
from operations.web import distro_packages, front_proxy, web_apps
from operations.docker import compose_problem, docker_engine
from operations.caddy import caddy_problem
from operations.compose import compose_app, compose_app_absent

config = load_config(host.data.vpskit_config)
distro = host_distro()
# Decided before anything changes: compose apps need `docker compose`, which not every source has.
problem = compose_problem(config.docker, distro, config.compose_apps) or caddy_problem(config.web.proxy, distro)
if problem:
    raise OperationError(problem)

apps = [a for a in config.apps if a.state == "present"]
pg_apps = [a for a in apps if a.database.uses_postgres]
cron_jobs = any(job.kind == "cron" for app in apps for job in app.jobs)

# Every package the steps below need, in one apt run (each step still ensures its own).
base_system(
    config.server,
    packages=[
        *(FIREWALL_PACKAGES if config.firewall.enabled else []),
        *fail2ban_packages(config.fail2ban),
        *(POSTGRES_PACKAGES if pg_apps else []),
        *(CRON_PACKAGES if cron_jobs else []),
        *distro_packages(config, distro),
    ],
)
docker_group = config.wants_docker and config.docker.deploy_user_in_group
if docker_group:
    # Made before the engine's package (which then keeps it), so the deploy user can join it now.
    server.group(name="docker group", group="docker", system=True)
deploy_user(config.deploy_user, config.public_keys(), sudo_group=distro.sudo_group, extra_groups=["docker"] if docker_group else [])

# Hardening: firewall rules first (old and new SSH port open), then the sshd move
# proven by a fresh login, then fail2ban on the port sshd really uses.
sshd = host.get_fact(SshdState)
if sshd is None:
    raise OperationError("sshd is not installed on this host (package openssh-server)")
if config.firewall.enabled:
    firewall(
        ssh_port=config.server.ssh_port,
        ssh_ports_in_use=sshd["ports"],
        ssh_limit=config.firewall.ssh_limit,
        extra=config.firewall.allow,
    )
sshd_hardened(
    config.ssh,
    port=config.server.ssh_port,
    deploy_user=config.deploy_user.name,
    prove=login_prover(config),
    firewall=config.firewall.enabled,
    state=sshd,
)
fail2ban_jails(config.fail2ban, ssh_port=config.server.ssh_port, sshd_commands=distro.sshd_log_commands)

# ------------------------------------------------------------ data and schedules
units = []

if pg_apps:
    postgres_server(config.postgres, pg_version(distro), [(a.db_name, a.db_role) for a in pg_apps])
    for app in pg_apps:
        app_database(
            name=f"Database {app.db_name} and role {app.db_role} of app {app.name}",
            db=app.db_name,
            role=app.db_role,
            secret_path=secret_env_path(app.name),
            port=config.postgres.port,
        )
    units.append("postgresql.service")

# Apps start with their database (and its secret env file) in place.
web_apps(config, distro)

# Containers: the engine, then the compose apps, then the proxy in front of all apps.
if config.wants_docker:
    docker_engine(config.docker, distro, config.compose_apps)
    units.append("docker.service")
for app in config.compose_apps:
    compose_app(app, config.web, config.deploy_user.name, config.path(app.deploy_key).read_text() if app.deploy_key else "")
for app in config.apps:
    if app.is_compose and app.state != "present":
        compose_app_absent(app, config.web)
front_proxy(config)
if config.web.proxy == "caddy" and any(app.domains for app in apps):
    units.append("caddy.service")

items = backup_items(apps)
if items:
    backups(config.backups, items, pg_port=config.postgres.port)
    units.append(f"{BACKUP_UNIT}.timer")
    if config.backups.drill_schedule:
        units.append(f"{DRILL_UNIT}.timer")

if cron_jobs:
    cron_ready()
    units.append("cron.service")
for app in apps:
    # Where the web layer deploys each app: its checkout, venv and .env.
    paths = app_paths(app, config.web)
    for job in app.jobs:
        app_job(
            app.name,
            job,
            user=config.deploy_user.name,
            workdir=paths.src,
            venv=paths.venv,
            env_file=paths.env,
            secret_env_file=secret_env_path(app.name) if app.database.uses_postgres else "",
        )
        if job.kind == "timer":
            units.append(f"{job_unit(app.name, job)}.timer")
# Jobs taken out of the config, and all jobs of apps marked absent, stop and go.
installed_jobs = host.get_fact(AppJobFiles)
for app in config.apps:
    app_jobs_pruned(app.name, {j.name for j in app.jobs} if app.state == "present" else set(), installed_jobs)

health_report(
    health_settings(
        config.monitor,
        apps=[
            AppCheck(
                app.name,
                "" if app.is_compose else app_paths(app, config.web).unit,
                "https://127.0.0.1/" if app.domains else "",
                app.domains[0] if app.domains else "",
            )
            for app in apps
            if app.repo and (app.domains or not app.is_compose)
        ],
        units=units,
        backup_items=[i.name for i in items],
        drill_items=[i.name for i in items] if config.backups.drill_schedule else [],
    )
)
