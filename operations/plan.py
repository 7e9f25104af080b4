"""Where vpskit's config meets the operations: each step's plain arguments, read from one host's ``Config``.

The operations take plain arguments (or a small spec of their own module), so
any pyinfra deploy can use them without a ``vpskit.toml``; ``Plan`` is the one
place that maps vpskit's config onto them. It also adds up what every concern
contributes (``contribution()`` of each module: packages for the base system's
one apt run, units the health report watches).

    plan = Plan(load_config(host.data.vpskit_config), host_distro())
    base_system(plan.base_system, packages=plan.contribution.packages)
"""

from __future__ import annotations

import os
from functools import cached_property

from pyinfra.api import OperationError

from . import backup, caddy, docker, fail2ban, firewall, monitor, offsite, postgres, prometheus, schedule, web
from .appspecs import app_paths, compose_spec, route_checks, site_spec, spec, venv_spec
from .backup import backup_items
from .caddy import caddy_problem
from .certbot import Issuer
from .checkout import AppPaths
from .compose import exec_command
from .config import App, Config
from .connect import known_hosts_entry, login_prover
from .contribution import Contribution, combined
from .distro import Distro
from .docker import Engine
from .fail2ban import Jail
from .firewall import UfwRule
from .monitor import AppCheck, Thresholds, health_settings, notifier_settings
from .nginx import read_template
from .nodejs import nodejs_packages
from .offsite import OffsiteSpec, recovery_guards, repository_password
from .postgres import SECRETS_DIR, pg_version, secret_env_path
from .prometheus import METRICS_FILE, POSTGRES_ROLE, AlertLimits, PrometheusSpec
from .schedule import Job
from .ssh import SshdPolicy, supported_algorithms
from .sshpolicy import release_policy
from .sysctl import sysctl_settings
from .system import BaseSettings
from .web import VenvApp, python_plans


class Plan:
    """The arguments of every step of vpskit's deploy for one host, from its config and distro."""

    def __init__(self, config: Config, distro: Distro):
        self.config = config
        self.distro = distro
        # Present apps; the ones with a PostgreSQL database; what gets backed up.
        self.apps = [a for a in config.apps if a.state == "present"]
        self.pg_apps = [a for a in self.apps if a.database.uses_postgres]
        self.items = backup_items(self.apps)
        self.has_apps = bool(config.apps)
        self.venv_apps = [a for a in self.apps if a.repo and not a.is_compose]
        # Decided before anything is queued: an app whose Python the host cannot have fails the run here.
        self.python = python_plans(self.venv_apps, config.python.version, distro)
        # Likewise a front proxy the release has no package for.
        problem = caddy_problem(config.web.proxy, distro) or self._alertmanager_problem()
        if problem:
            raise OperationError(problem)
        self.ssh_port = config.server.ssh_port

    def paths(self, app: App) -> AppPaths:
        return app_paths(app, self.config.web)

    def _key(self, app: App) -> str:
        return self.config.path(app.deploy_key).read_text() if app.deploy_key else ""

    # ------------------------------------------------------------ contributions

    @cached_property
    def contribution(self) -> Contribution:
        """What every concern adds: packages for the one apt run, units for the health report."""
        c = self.config
        jobs = [(app.name, self.job(job)) for app in self.apps for job in app.jobs]
        parts = [
            firewall.contribution(c.firewall.enabled),
            fail2ban.contribution(self.fail2ban),
            postgres.contribution(len(self.pg_apps)),
            docker.contribution(c.wants_docker),
            caddy.contribution(c.web.proxy == "caddy" and any(app.domains for app in self.apps)),
            backup.contribution(self.items, drill=bool(c.backups.drill_schedule)),
            schedule.contribution(jobs),
            self.web_contribution,
            monitor.contribution(),
            prometheus.contribution(self.prometheus),
            offsite.contribution(self.offsite),
        ]
        return combined(parts)

    @property
    def web_contribution(self) -> Contribution:
        """The web stack's distro packages, for a host with apps."""
        c = self.config
        if not self.has_apps:
            return Contribution()
        builds = any(a.build for a in self.venv_apps) and c.nodejs.source == "distro"
        return web.contribution(
            c.web.proxy,
            c.tls.mode == "letsencrypt",
            list(self.python.values()),
            nodejs_packages(c.nodejs.source, c.nodejs.npm) if builds else [],
        )

    # ------------------------------------------------------------ the run itself

    @property
    def deploy_lock(self) -> dict:
        """``deploy_lock_taken`` arguments: each configured app's checkout (the log compares their commits) and the wait."""
        apps = {a.name: self.paths(a).src for a in self.config.apps if a.repo}
        return dict(apps=apps, wait=self.config.server.deploy_lock_wait)

    # ------------------------------------------------------------ base and hardening

    @property
    def base_system(self) -> BaseSettings:
        return spec(BaseSettings, self.config.server)

    @property
    def deploy_user(self) -> dict:
        c = self.config
        user = c.deploy_user
        docker_group = c.wants_docker and c.docker.deploy_user_in_group
        return dict(
            user=user.name,
            public_keys=c.public_keys(),
            shell=user.shell,
            groups=list(user.groups),
            passwordless_sudo=user.passwordless_sudo,
            sudo_group=self.distro.sudo_group,
            extra_groups=["docker"] if docker_group else [],
        )

    @property
    def firewall(self) -> dict | None:
        """UFW's arguments (without the ports sshd uses now), or None when the firewall is not managed."""
        fw = self.config.firewall
        if not fw.enabled:
            return None
        return dict(ssh_port=self.ssh_port, ssh_limit=fw.ssh_limit, extra=[UfwRule(r.port, r.proto, "allow", r.source) for r in fw.allow])

    @property
    def sshd(self) -> dict:
        c = self.config
        return dict(
            port=self.ssh_port,
            deploy_user=c.deploy_user.name,
            policy=spec(SshdPolicy, c.ssh),
            prove=login_prover(c),
            firewall=c.firewall.enabled,
            release=self.distro.key,
        )

    def host_keys(self, sshd_state: dict) -> dict:
        """``host_keys_hardened`` arguments: the release's ssh-audit policy, and where the controller files host keys."""
        policy = release_policy(self.distro.key)
        known_hosts, names = known_hosts_entry(self.config)
        return dict(
            rsa_bits=policy.rsa_bits,
            min_modulus_bits=policy.min_modulus_bits,
            host_key_algorithms=supported_algorithms(spec(SshdPolicy, self.config.ssh), sshd_state["algorithms"], policy).host_key,
            known_hosts=known_hosts,
            names=names,
            socket_mode=sshd_state["socket_mode"],
        )

    @property
    def sysctl(self) -> dict[str, str]:
        """``kernel_hardened`` settings: vpskit's hardening as the ``[sysctl]`` section adjusts it."""
        s = self.config.sysctl
        return sysctl_settings(s.enabled, s.disable, s.values)

    @cached_property
    def fail2ban(self) -> Jail:
        return spec(Jail, self.config.fail2ban)

    @property
    def fail2ban_jails(self) -> dict:
        """``fail2ban_jails`` arguments: the jail, on the port sshd ends up on, matching the names this release's sshd logs as."""
        return dict(f2b=self.fail2ban, ssh_port=self.ssh_port, sshd_commands=self.distro.sshd_log_commands)

    # ------------------------------------------------------------ data

    @property
    def postgres(self) -> dict:
        return dict(
            version=pg_version(self.distro),
            clients=[(a.db_name, a.db_role) for a in self.pg_apps],
            port=self.config.postgres.port,
            monitor_role=POSTGRES_ROLE if self.prometheus and self.prometheus.postgres else "",
        )

    @property
    def databases(self) -> list[dict]:
        """``app_database`` arguments of each app with a PostgreSQL database."""
        return [
            dict(
                name=f"Database {a.db_name} and role {a.db_role} of app {a.name}",
                db=a.db_name,
                role=a.db_role,
                secret_path=secret_env_path(a.name),
                port=self.config.postgres.port,
            )
            for a in self.pg_apps
        ]

    @property
    def backups(self) -> dict | None:
        if not self.items:
            return None
        b = self.config.backups
        return dict(
            items=self.items,
            backup_dir=b.dir,
            schedule=b.schedule,
            keep_days=b.keep_days,
            drill_schedule=b.drill_schedule,
            pg_port=self.config.postgres.port,
        )

    # ------------------------------------------------------------ apps

    @property
    def web_apps(self) -> dict:
        c = self.config
        return dict(
            apps=[
                VenvApp(
                    venv_spec(a),
                    self.paths(a),
                    self.python[a.name],
                    self._key(a),
                    c.brought_secrets(a),
                    c.postgres.port,
                    pip_index_url=c.server.pip_index_url,
                )
                for a in self.venv_apps
            ],
            absent=[(self.paths(a), a.purge) for a in c.apps if a.state != "present" and not a.is_compose],
            user=c.deploy_user.name,
            distro=self.distro,
            nodejs=dict(source=c.nodejs.source, version=c.nodejs.version, npm=c.nodejs.npm),
            app_command=bool(self.venv_apps or self.compose_apps),
        )

    @property
    def docker(self) -> dict | None:
        c = self.config
        if not c.wants_docker:
            return None
        return dict(distro=self.distro, cfg=spec(Engine, c.docker), compose_apps=[a.name for a in c.compose_apps])

    @property
    def compose_apps(self) -> list[dict]:
        user = self.config.deploy_user.name
        c = self.config
        return [
            dict(
                app=compose_spec(a),
                paths=self.paths(a),
                user=user,
                deploy_key=self._key(a),
                brought=c.brought_secrets(a),
                db_port=c.postgres.port,
            )
            for a in c.compose_apps
        ]

    @property
    def compose_absent(self) -> list[tuple[AppPaths, bool]]:
        return [(self.paths(a), a.purge) for a in self.config.apps if a.is_compose and a.state != "present"]

    @property
    def front_proxy(self) -> dict:
        """The proxy's sites (present apps with domains and code), and what this release's nginx can say."""
        c = self.config
        template = c.web.caddyfile_template if c.web.proxy == "caddy" else c.web.site_template
        return dict(
            sites=[site_spec(a, c.web.rate_limits) for a in self.apps if a.domains and (a.repo or a.is_compose)],
            absent=[a.name for a in c.apps if a.state != "present"],
            proxy=c.web.proxy,
            tls=spec(Issuer, c.tls),
            hsts_max_age=c.tls.hsts_max_age,
            ipv6=c.web.ipv6,
            template=read_template(c.path(template) if template else None),
            static_paths={a.name: f"{self.paths(a).src}/{a.static_dir.strip('/')}" for a in self.apps if a.static_dir},
            reject_handshake=self.distro.nginx_rejects_handshake,
            http2_on=self.distro.nginx_http2_directive,
        )

    # ------------------------------------------------------------ off-host copies

    @cached_property
    def offsite(self) -> OffsiteSpec | None:
        """``[backups.offsite]`` as an ``OffsiteSpec``; None without a repository or anything backed up.

        Reads the credentials from this environment and the password file beside the config (made here the first time).
        """
        c = self.config
        o = c.backups.offsite
        # The copies follow the backup runs, which exist when some app is backed up.
        if not o.enabled or not self.items:
            return None
        roots = [self.paths(app) for app in self.apps]
        paths = [c.backups.dir, SECRETS_DIR, *(p.root for p in roots)]
        paths += [d for app in self.apps for d in app.backup.paths if not any(d.startswith(p.root + "/") for p in roots)]
        return OffsiteSpec(
            repository=o.repository,
            password=repository_password(c.path(o.password_file)),
            credentials=tuple((name, os.environ[name]) for name in o.env),
            ssh_key=c.path(o.ssh_key).read_text() if o.ssh_key else "",
            keep_daily=o.keep_daily,
            keep_weekly=o.keep_weekly,
            keep_monthly=o.keep_monthly,
            check_schedule=o.check_schedule,
            check_subset=o.check_subset,
            paths=tuple(dict.fromkeys(paths)),
            excludes=tuple(f"{p.root}/{sub}" for p in roots for sub in ("src", "venv", ".ssh", "repo.git", "releases", "venvs")),
            restore=o.restore,
        )

    @property
    def recovering(self) -> bool:
        """Off-host recovery of a lost host is asked for (it acts only on a host without data)."""
        return bool(self.offsite and self.offsite.restore)

    @property
    def recovery_guards(self) -> list[str]:
        """``offsite_files_recovered`` guards: what only a host with data has."""
        return recovery_guards(self.config.backups.dir, [self.paths(app).env for app in self.apps])

    @property
    def offsite_databases(self) -> dict:
        """``offsite_databases_recovered`` arguments: each item's newest restored dump."""
        return dict(items=self.items, backup_dir=self.config.backups.dir, pg_port=self.config.postgres.port)

    # ------------------------------------------------------------ schedules and health

    @staticmethod
    def job(job) -> Job:
        return spec(Job, job)

    @property
    def cron(self) -> bool:
        return any(job.kind == "cron" for app in self.apps for job in app.jobs)

    @property
    def jobs(self) -> list[dict]:
        """``app_job`` arguments of every job of the present apps."""
        user = self.config.deploy_user.name
        jobs = []
        for app in self.apps:
            paths = self.paths(app)
            secret = secret_env_path(app.name) if app.database.uses_postgres else ""
            for job in app.jobs:
                if app.is_compose:
                    # Run in the job's service container by root (the docker group is root's), from the checkout.
                    command = exec_command(compose_spec(app), paths, job.command, service=job.service or app.service, user=job.user)
                    jobs.append(
                        dict(
                            app_name=app.name,
                            job=spec(Job, job, command=command, user="root"),
                            user="root",
                            workdir=paths.src,
                            venv="",
                            env_file="",
                            after=("docker.service",),
                        )
                    )
                    continue
                jobs.append(
                    dict(
                        app_name=app.name,
                        job=self.job(job),
                        user=user,
                        workdir=paths.code,
                        venv=paths.venv,
                        env_file=paths.env,
                        secret_env_file=secret,
                    )
                )
        return jobs

    @property
    def jobs_kept(self) -> list[tuple[str, set[str]]]:
        """Each configured app and the jobs it keeps (none for an app marked absent)."""
        return [(a.name, {j.name for j in a.jobs} if a.state == "present" else set()) for a in self.config.apps]

    @property
    def health_checks(self) -> list[AppCheck]:
        """What the health report and the blackbox probes check: each app's unit and URL through the proxy, and its routes."""
        return [
            check
            for app in self.apps
            if app.repo and (app.domains or not app.is_compose)
            for check in [
                AppCheck(
                    app.name,
                    "" if app.is_compose else self.paths(app).unit,
                    f"https://127.0.0.1{app.health_path}" if app.domains else "",
                    app.domains[0] if app.domains else "",
                    basic_auth=app.basic_auth is not None,
                ),
                *route_checks(app),
            ]
        ]

    @property
    def health(self) -> dict:
        names = [i.name for i in self.items]
        return health_settings(
            apps=self.health_checks,
            units=list(self.contribution.units),
            backup_items=names,
            drill_items=names if self.config.backups.drill_schedule else [],
            offsite=self.offsite is not None,
            limits=spec(Thresholds, self.config.monitor),
            metrics_file=METRICS_FILE if self.prometheus else "",
            caddy=self.config.web.proxy == "caddy",
        )

    @property
    def notifiers(self) -> list[dict]:
        """``health_notifiers`` argument: where the scheduled check's messages go."""
        return notifier_settings(self.config.monitor.notify)

    @property
    def health_monitoring(self) -> dict:
        """``health_monitoring`` arguments: the report, where its notifications go, and when it runs."""
        return dict(settings=self.health, notifiers=self.notifiers, schedule=self.health_schedule)

    @property
    def health_schedule(self) -> str:
        return self.config.monitor.schedule

    # ------------------------------------------------------------ Prometheus

    @cached_property
    def prometheus(self) -> PrometheusSpec | None:
        """``prometheus_monitoring``'s spec; None when ``[monitor] prometheus`` is off."""
        m = self.config.monitor
        if not m.prometheus:
            return None
        return PrometheusSpec(
            retention=m.prometheus_retention,
            retention_size=m.prometheus_retention_size,
            postgres=bool(self.pg_apps),
            postgres_port=self.config.postgres.port,
            nginx=self.has_apps and self.config.web.proxy == "nginx",
            nginx_exporter=self.distro.release.nginx_exporter,
            probes=tuple(c for c in self.health_checks if c.url),
            backup_items=tuple(i.name for i in self.items),
            alerts=spec(AlertLimits, m.alerts, backup_age_hours=m.max_backup_age_hours, cert_days=m.min_cert_days, disks=m.disks),
            notifiers=tuple(self.notifiers),
            repeat_hours=m.remind_hours,
        )

    def _alertmanager_problem(self) -> str:
        """Why Alertmanager cannot reach a configured notifier on this release ('' when it can)."""
        m = self.config.monitor
        if not m.prometheus or self.distro.release.alertmanager_discord:
            return ""
        for i, n in enumerate(m.notify):
            if n.kind == "discord":
                return (
                    f"monitor.notify[{i}]: {self.distro.name}'s Alertmanager has no Discord receiver (0.25 and later have one): "
                    "use a webhook kind there, or prometheus = false. Nothing was changed."
                )
        return ""
