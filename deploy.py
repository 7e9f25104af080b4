"""vpskit: one Ubuntu or Debian VPS to the configured state (`pyinfra inventory.py deploy.py [--dry]`).

Each step is an operation of its own module; ``operations.plan`` reads its arguments from the config.
"""

from pyinfra import host

from operations.backup import backups
from operations.compose import compose_app, compose_app_absent
from operations.config import load_config
from operations.connect import commands_sent_at_once
from operations.deploylock import deploy_lock_released, deploy_lock_taken, is_dry_run
from operations.docker import docker_engine
from operations.fail2ban import fail2ban_jails
from operations.firewall import firewall
from operations.hostkeys import host_keys_hardened
from operations.monitor import health_monitoring
from operations.offsite import offsite_copies, offsite_databases_recovered, offsite_files_recovered
from operations.permissions import CIS_MODES, modes_restricted
from operations.plan import Plan
from operations.postgres import app_database, postgres_server
from operations.prometheus import prometheus_listen_flags, prometheus_monitoring
from operations.schedule import app_job, cron_ready, jobs_pruned
from operations.ssh import sshd_hardened, sshd_state
from operations.sysctl import kernel_hardened
from operations.system import base_system, host_distro
from operations.users import deploy_user
from operations.web import front_proxy, web_apps

# Each command leaves at once: over SSH, Nagle's algorithm made every one wait up to 40 ms.
commands_sent_at_once(host.connector)
plan = Plan(load_config(host.data.vpskit_config), host_distro())

# One run at a time: the host's deploy lock, taken before any fact decides anything (none for --dry).
lock = deploy_lock_taken(**plan.deploy_lock, dry=is_dry_run())

# Prometheus' listen flags before its packages: each daemon's first start is on loopback only.
prometheus_flags = prometheus_listen_flags(plan.prometheus) if plan.prometheus else None
# Every package the steps below need, in one apt run (each step still ensures its own).
base_system(plan.base_system, packages=plan.contribution.packages)
deploy_user(**plan.deploy_user)

# Hardening: firewall (old and new SSH port open), the sshd move proven by a login, fail2ban on its port.
sshd = sshd_state()
if plan.firewall:
    firewall(**plan.firewall, ssh_ports_in_use=sshd["ports"] if sshd else [])
sshd_hardened(**plan.sshd, state=sshd)
# ssh-audit's hardened policy for this release: a 4096-bit RSA host key, no small DH moduli.
host_keys_hardened(**plan.host_keys(sshd))
kernel_hardened(plan.sysctl)
fail2ban_jails(**plan.fail2ban_jails)

# Off-host copies; recovering a lost host brings its secrets back before anything would make new ones.
if plan.offsite:
    offsite_copies(plan.offsite)
if plan.recovering:
    offsite_files_recovered(name="Restore the newest off-host snapshot (a host without data only)", guards=plan.recovery_guards)

# Data: PostgreSQL and each app's database; the apps start with their secret env file in place.
if plan.databases:
    postgres_server(**plan.postgres)
for database in plan.databases:
    app_database(**database)
if plan.recovering:
    offsite_databases_recovered(name="Load the restored databases", **plan.offsite_databases)
if plan.has_apps:
    web_apps(**plan.web_apps)

# Containers: the engine (it refuses compose apps its source cannot run), the compose apps, the proxy.
if plan.docker:
    docker_engine(**plan.docker)
for app in plan.compose_apps:
    compose_app(**app)
for paths, purge in plan.compose_absent:
    compose_app_absent(paths, purge)
if plan.has_apps:
    front_proxy(**plan.front_proxy)

# Backups and the apps' jobs; jobs taken out of the config (or of absent apps) stop and go.
if plan.backups:
    backups(**plan.backups)
if plan.cron:
    cron_ready()
for job in plan.jobs:
    app_job(**job)
jobs_pruned(plan.jobs_kept)

# Root-only config files (CIS) now that every package is in; the health report; Prometheus on or off.
modes_restricted(name="Root-only modes of sshd and cron config (CIS)", paths=CIS_MODES)
health_monitoring(**plan.health_monitoring)
prometheus_monitoring(plan.prometheus, prometheus_flags)

# Last: this run's line in /var/log/vpskit/deploys.log (which apps moved to which commit); the lock goes.
deploy_lock_released(name="Log the deploy and release its lock", lock=lock)
