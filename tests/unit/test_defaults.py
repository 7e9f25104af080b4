"""Each default is said twice and agrees: the config schema's, and the operation's or spec's it is mapped onto.

The operations keep defaults of their own (they run without a vpskit.toml, docs/reuse.md), and the config
schema keeps the user's (operations/config/). Where operations/plan.py or operations/appspecs.py hands a
config field to an operation's parameter or a spec's field, ``PAIRS`` names the two and what the mapping
does to the value, and the defaults must agree. Every defaulted parameter or field the mapping fills is
either a pair or in ``ELSEWHERE``, saying where its value comes from instead; a new one fails the test
until it is placed.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import os
import types
from pathlib import Path

import pytest

from operations import firewall as firewall_ops
from operations import web as web_ops
from operations.app import VenvAppSpec, app_present, pip_packages, worker_class
from operations.appspecs import login, spec
from operations.backup import backups
from operations.certbot import Issuer
from operations.checkout import AppPaths
from operations.compose import ComposeSpec, compose_app, compose_app_absent, exec_command
from operations.config import App, Config
from operations.config.apps import Cors as CorsConfig
from operations.config.apps import Job as JobConfig
from operations.config.apps import Route as RouteConfig
from operations.config.host import DeployUser, Fail2ban, Firewall, FirewallRule, Server, Ssh, Sysctl
from operations.config.schema import default_of, has_default
from operations.config.stack import TLS, Alerts, Backups, DockerEngine, Monitor, NodeJS, Offsite, Postgres, Web
from operations.deploylock import deploy_lock_taken
from operations.docker import Engine, docker_engine
from operations.fail2ban import Jail, fail2ban_jails
from operations.firewall import UfwRule, firewall
from operations.hostkeys import host_keys_hardened
from operations.install import tool_installed
from operations.monitor import AppCheck, Thresholds, health_settings, notifier_settings
from operations.nodejs import nodejs_packages, nodejs_runtime
from operations.offsite import OffsiteSpec, offsite_databases_recovered
from operations.postgres import app_database, postgres_server
from operations.prometheus import AlertLimits, PrometheusSpec, prometheus_monitoring
from operations.releases import Build
from operations.routes import DEFAULT_READ_TIMEOUT, Cors, Route, cache_control
from operations.schedule import Job, app_job
from operations.sites import Site
from operations.ssh import SshdPolicy, sshd_hardened, supported_algorithms
from operations.sysctl import sysctl_settings
from operations.system import BaseSettings, apt_proxy_set, base_system
from operations.users import deploy_user
from operations.web import VenvApp, front_proxy, web_apps

ROOT = Path(__file__).resolve().parents[2]
# The code that maps the config onto the operations, and the deploy that hands them their arguments.
MAPPING = ("operations/plan.py", "operations/appspecs.py")
DEPLOY = "deploy.py"
# An app of nothing but its required fields: what the app-wide defaults give.
APP = App(name="app", port=8000)


def defaulted(target) -> list[str]:
    """The parameters of an operation, or the fields of a spec, that have a default."""
    if dataclasses.is_dataclass(target):
        return [f.name for f in dataclasses.fields(target) if f.init and has_default(f)]
    params = inspect.signature(getattr(target, "_inner", target)).parameters.values()
    return [p.name for p in params if p.default is not p.empty]


def default(target, name: str):
    """The default of an operation's parameter or a spec's field."""
    if dataclasses.is_dataclass(target):
        return default_of(next(f for f in dataclasses.fields(target) if f.name == name))
    return inspect.signature(getattr(target, "_inner", target)).parameters[name].default


def same(value):
    """A config value the mapping hands on as it is."""
    return value


def items(mapping: dict) -> tuple:
    """A config table as the specs' tuple of pairs (headers)."""
    return tuple(mapping.items())


def spec_of(cls):
    """The mapping of a whole config section onto ``cls`` by ``appspecs.spec``."""
    return lambda section: spec(cls, section)


def app_with(**fields):
    """What ``APP`` with ``fields`` changed maps to, for a pair whose value depends on the whole app."""
    return dataclasses.replace(APP, **fields)


def copied(target, section, but=()) -> dict:
    """A pair for every defaulted field of ``target`` that ``appspecs.spec`` copies from ``section`` by name."""
    return {(target, name): (section, name, same) for name in defaulted(target) if name not in but}


# (operation or spec, its parameter or field) -> (config section, its field, what the mapping does to the value).
PAIRS = {
    # base system, users, hardening
    **copied(BaseSettings, Server),
    (apt_proxy_set, "url"): (Server, "apt_proxy", same),
    (deploy_user, "shell"): (DeployUser, "shell", same),
    (deploy_user, "groups"): (DeployUser, "groups", list),
    (deploy_user, "passwordless_sudo"): (DeployUser, "passwordless_sudo", same),
    (deploy_lock_taken, "wait"): (Server, "deploy_lock_wait", same),
    (firewall, "ssh_limit"): (Firewall, "ssh_limit", same),
    (firewall, "extra"): (Firewall, "allow", list),
    (firewall_ops.contribution, "enabled"): (Firewall, "enabled", same),
    (UfwRule, "proto"): (FirewallRule, "proto", same),
    (UfwRule, "source"): (FirewallRule, "source", same),
    **copied(SshdPolicy, Ssh),
    (sshd_hardened, "policy"): (Config, "ssh", spec_of(SshdPolicy)),
    (sshd_hardened, "firewall"): (Firewall, "enabled", same),
    **copied(Jail, Fail2ban),
    (fail2ban_jails, "f2b"): (Config, "fail2ban", spec_of(Jail)),
    (fail2ban_jails, "ssh_port"): (Server, "ssh_port", same),
    (sysctl_settings, "enabled"): (Sysctl, "enabled", same),
    (sysctl_settings, "disable"): (Sysctl, "disable", same),
    # None there is the config's {}: no values of the user's.
    (sysctl_settings, "values"): (Sysctl, "values", lambda values: values or None),
    # data
    (postgres_server, "port"): (Postgres, "port", same),
    (app_database, "port"): (Postgres, "port", same),
    (backups, "backup_dir"): (Backups, "dir", same),
    (backups, "schedule"): (Backups, "schedule", same),
    (backups, "keep_days"): (Backups, "keep_days", same),
    (backups, "drill_schedule"): (Backups, "drill_schedule", same),
    (backups, "pg_port"): (Postgres, "port", same),
    (offsite_databases_recovered, "pg_port"): (Postgres, "port", same),
    (OffsiteSpec, "credentials"): (Offsite, "env", lambda names: tuple((name, os.environ[name]) for name in names)),
    **copied(OffsiteSpec, Offsite, but=("credentials", "ssh_key", "paths", "excludes")),
    # apps
    (VenvAppSpec, "ref"): (App, "branch", same),
    (VenvAppSpec, "deploy_key"): (App, "deploy_key", bool),
    (VenvAppSpec, "postgres"): (App, "database", lambda database: database.uses_postgres),
    (VenvAppSpec, "worker_class"): (App, "worker_class", lambda name: worker_class(app_with(worker_class=name))),
    (VenvAppSpec, "packages"): (App, "worker_class", lambda name: tuple(pip_packages(app_with(worker_class=name)))),
    **copied(VenvAppSpec, App, but=("ref", "deploy_key", "postgres", "db_name", "db_role", "port", "worker_class", "packages")),
    (ComposeSpec, "ref"): (App, "branch", same),
    (ComposeSpec, "deploy_key"): (App, "deploy_key", bool),
    (ComposeSpec, "postgres"): (App, "database", lambda database: database.uses_postgres),
    (ComposeSpec, "proxied"): (App, "domains", bool),
    (ComposeSpec, "route_upstreams"): (App, "routes", lambda routes: tuple(r.upstream for r in routes)),
    **copied(
        ComposeSpec, App, but=("ref", "deploy_key", "postgres", "db_name", "db_role", "compose_file", "port", "proxied", "route_upstreams")
    ),
    (AppPaths, "app_dir"): (App, "app_dir", same),
    (VenvApp, "db_port"): (Postgres, "port", same),
    (VenvApp, "pip_index_url"): (Server, "pip_index_url", same),
    (app_present, "pip_index_url"): (Server, "pip_index_url", same),
    (tool_installed, "index_url"): (Server, "pip_index_url", same),
    (Build, "index_url"): (Server, "pip_index_url", same),
    (app_present, "db_port"): (Postgres, "port", same),
    (compose_app, "db_port"): (Postgres, "port", same),
    (compose_app_absent, "purge"): (App, "purge", same),
    (nodejs_runtime, "source"): (NodeJS, "source", same),
    (nodejs_runtime, "version"): (NodeJS, "version", same),
    (nodejs_runtime, "npm"): (NodeJS, "npm", same),
    (nodejs_packages, "source"): (NodeJS, "source", same),
    (nodejs_packages, "npm"): (NodeJS, "npm", same),
    (Job, "kind"): (JobConfig, "kind", same),
    (Job, "user"): (JobConfig, "user", same),
    (exec_command, "user"): (JobConfig, "user", same),
    # the front proxy
    (front_proxy, "proxy"): (Web, "proxy", same),
    (front_proxy, "tls"): (Config, "tls", spec_of(Issuer)),
    (front_proxy, "hsts_max_age"): (TLS, "hsts_max_age", same),
    (front_proxy, "ipv6"): (Web, "ipv6", same),
    **copied(Issuer, TLS),
    (Site, "basic_auth"): (App, "basic_auth", login),
    (Site, "headers"): (App, "headers", items),
    (Site, "routes"): (App, "routes", tuple),
    **copied(Site, App, but=("basic_auth", "headers", "routes", "zones")),
    (Route, "read_timeout"): (RouteConfig, "read_timeout", lambda timeout: timeout or DEFAULT_READ_TIMEOUT),
    (Route, "headers"): (RouteConfig, "headers", items),
    (Route, "static"): (RouteConfig, "static", lambda path: path.rstrip("/")),
    (Route, "cache_control"): (RouteConfig, "cache", cache_control),
    (Route, "basic_auth"): (RouteConfig, "basic_auth", login),
    **copied(Route, RouteConfig, but=("upstream", "read_timeout", "headers", "removed", "static", "cache_control", "basic_auth", "key")),
    **copied(Cors, CorsConfig),
    (AppCheck, "basic_auth"): (App, "basic_auth", lambda auth: auth is not None),
    # containers
    (docker_engine, "cfg"): (Config, "docker", spec_of(Engine)),
    **copied(Engine, DockerEngine),
    # health report and Prometheus
    (health_settings, "limits"): (Config, "monitor", spec_of(Thresholds)),
    (health_settings, "caddy"): (Web, "proxy", lambda proxy: proxy == "caddy"),
    **copied(Thresholds, Monitor),
    (PrometheusSpec, "retention"): (Monitor, "prometheus_retention", same),
    (PrometheusSpec, "retention_size"): (Monitor, "prometheus_retention_size", same),
    (PrometheusSpec, "postgres_port"): (Postgres, "port", same),
    (PrometheusSpec, "notifiers"): (Monitor, "notify", lambda notify: tuple(notifier_settings(notify))),
    (PrometheusSpec, "repeat_hours"): (Monitor, "remind_hours", same),
    (AlertLimits, "backup_age_hours"): (Monitor, "max_backup_age_hours", same),
    (AlertLimits, "cert_days"): (Monitor, "min_cert_days", same),
    (AlertLimits, "disks"): (Monitor, "disks", same),
    **copied(AlertLimits, Alerts, but=("backup_age_hours", "cert_days", "disks")),
}

# Defaulted parameters and fields the mapping fills from something other than one config field's value.
ELSEWHERE = {
    (base_system, "settings"): "BaseSettings of [server], which the config requires; its fields are pairs",
    (base_system, "packages"): "every concern's packages (Plan.contribution)",
    (deploy_user, "sudo_group"): "the distro's sudo group",
    (deploy_user, "extra_groups"): "docker, when the deploy user joins the Docker group",
    (deploy_lock_taken, "apps"): "the apps' checkouts",
    (deploy_lock_taken, "dry"): "pyinfra's --dry",
    (deploy_lock_taken, "pause"): "how often a waiting run looks again",
    (UfwRule, "action"): "always allow: the config opens ports only",
    (sshd_hardened, "prove"): "a login test built from the connection settings",
    (sshd_hardened, "state"): "sshd's state read from the host",
    (sshd_hardened, "release"): "the host's release",
    (supported_algorithms, "policy"): "the release's ssh-audit policy",
    (host_keys_hardened, "rsa_bits"): "the release's ssh-audit policy",
    (host_keys_hardened, "min_modulus_bits"): "the release's ssh-audit policy",
    (host_keys_hardened, "host_key_algorithms"): "[ssh] host_key_algorithms as far as the host's OpenSSH knows them",
    (host_keys_hardened, "known_hosts"): "the controller's known_hosts file",
    (host_keys_hardened, "names"): "the names the controller dials the host by",
    (host_keys_hardened, "socket_mode"): "sshd's state read from the host",
    (fail2ban_jails, "sshd_commands"): "the names the release's sshd logs as",
    (postgres_server, "monitor_role"): "the metrics exporter's role, with Prometheus and a database",
    (OffsiteSpec, "ssh_key"): "the text of [backups.offsite] ssh_key's file",
    (OffsiteSpec, "paths"): "the backups, secrets and apps' directories",
    (OffsiteSpec, "excludes"): "what of the apps' directories is rebuilt, not restored",
    (VenvAppSpec, "db_name"): "the app's database name, [apps.database] name or its own",
    (VenvAppSpec, "db_role"): "the app's database role, [apps.database] role or its database name",
    (VenvAppSpec, "port"): "[[apps]] port, which the config requires",
    (ComposeSpec, "db_name"): "the app's database name, [apps.database] name or its own",
    (ComposeSpec, "db_role"): "the app's database role, [apps.database] role or its database name",
    (ComposeSpec, "compose_file"): "[[apps]] compose_file, which a compose app requires",
    (ComposeSpec, "port"): "[[apps]] port, which the config requires",
    (AppPaths, "released"): "whether the app is a venv app with code",
    (VenvApp, "deploy_key"): "the text of [[apps]] deploy_key's file",
    (VenvApp, "brought"): "secrets brought from other apps (secrets_from)",
    (compose_app, "deploy_key"): "the text of [[apps]] deploy_key's file",
    (compose_app, "brought"): "secrets brought from other apps (secrets_from)",
    (web_apps, "nodejs"): "nodejs_runtime's arguments, whose defaults are pairs",
    (web_apps, "app_command"): "whether any app is deployed with releases",
    (exec_command, "service"): "the job's service, else the app's",
    (app_job, "venv"): "the app's paths",
    (app_job, "env_file"): "the app's paths",
    (app_job, "secret_env_file"): "the app's database secrets, for a PostgreSQL app",
    (app_job, "after"): "docker.service for a compose app's job",
    (front_proxy, "absent"): "the apps marked absent",
    (front_proxy, "template"): "the text of the [web] template file",
    (front_proxy, "static_paths"): "each app's static_dir inside its checkout",
    (front_proxy, "reject_handshake"): "what the release's nginx can do",
    (front_proxy, "http2_on"): "what the release's nginx can do",
    (Site, "zones"): "the [web.rate_limits] zones its routes use",
    (Route, "upstream"): "the route's upstream, else the app's port",
    (Route, "removed"): "the headers the proxy drops, worked out with the site's (routes.site_servers)",
    (Route, "key"): "the route's name in the proxy's config (routes.site_servers)",
    (AppCheck, "url"): "the app's health_path or route, on loopback",
    (AppCheck, "host"): "the app's or route's first domain",
    (docker_engine, "compose_apps"): "the compose apps",
    (health_settings, "offsite"): "whether off-host copies run",
    (health_settings, "metrics_file"): "Prometheus' textfile, when it is on",
    (PrometheusSpec, "postgres"): "whether an app has a PostgreSQL database",
    (PrometheusSpec, "nginx"): "whether nginx fronts apps",
    (PrometheusSpec, "nginx_exporter"): "whether the release packages the nginx exporter",
    (PrometheusSpec, "probes"): "the health checks with a URL",
    (PrometheusSpec, "backup_items"): "what is backed up",
    (PrometheusSpec, "alerts"): "AlertLimits of [monitor] and [monitor.alerts]; its fields are pairs",
    (prometheus_monitoring, "flags_changed"): "which daemons' listen flags this run changed",
    (web_ops.contribution, "runtimes"): "the apps' Python runtimes",
    (web_ops.contribution, "nodejs"): "Node.js packages, for a build",
}


def config_field(section, name: str) -> dataclasses.Field:
    """Field ``name`` of a config section."""
    return next(f for f in dataclasses.fields(section) if f.name == name)


def plain(value):
    """Lists as tuples: an operation's ``()`` default and the mapping's ``[]`` say the same."""
    return tuple(value) if isinstance(value, list) else value


def label(target, name: str) -> str:
    """``SshdPolicy.max_auth_tries``: a pair's side in a message."""
    return f"{getattr(target, '__qualname__', target)}.{name}"


@pytest.mark.parametrize(("target", "name"), list(PAIRS), ids=[label(*key) for key in PAIRS])
def test_the_config_default_mapped_onto_a_default_is_that_default(target, name):
    """The config field's default, as the mapping hands it on, is the operation's or spec's default."""
    section, field_name, mapping = PAIRS[target, name]
    field = config_field(section, field_name)
    assert has_default(field), f"{section.__name__}.{field_name} is required: {label(target, name)} belongs in ELSEWHERE"
    want, got = default(target, name), mapping(default_of(field))
    assert plain(got) == plain(want), (
        f"{label(target, name)} defaults to {want!r}; {section.__name__}.{field_name}'s default maps to {got!r}"
    )


def test_every_pair_and_exception_names_a_defaulted_parameter_or_field():
    """No stale entry: each names something that exists and has a default."""
    keys = [*PAIRS, *ELSEWHERE]
    assert [label(*k) for k in keys if k[1] not in defaulted(k[0])] == []
    assert [label(*k) for k in set(PAIRS) & set(ELSEWHERE)] == []


def test_every_default_the_mapping_fills_is_a_pair_or_said_to_come_from_elsewhere():
    """A defaulted parameter or field that plan.py, appspecs.py or deploy.py fills from the config is placed above."""
    missing = sorted(label(*k) for k in filled() - {*PAIRS, *ELSEWHERE})
    assert missing == [], "add each to PAIRS (a config field's default) or ELSEWHERE (where its value comes from)"


def filled() -> set[tuple]:
    """(operation or spec, defaulted parameter or field) of every call the mapping and the deploy make from the config."""
    found = set()
    for path in MAPPING:
        found |= calls_in(path, plan_only=False)
    return found | calls_in(DEPLOY, plan_only=True)


def calls_in(path: str, plan_only: bool) -> set[tuple]:
    """The defaulted parameters one file's calls of vpskit's operations and specs give (only those of the plan's)."""
    tree = ast.parse((ROOT / path).read_text())
    names, planned = namespace(path, tree), plan_names(tree)
    found = set()
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        if plan_only and not gets_plan(call, planned):
            continue
        target = resolved(call.func, names)
        if target is spec:
            # spec(cls, section, **given): every field of cls, from the section or given.
            cls = resolved(call.args[0], names)
            found |= {(cls, name) for name in defaulted(cls)}
        elif is_vpskits(target):
            found |= {(target, name) for name in passed(call, target)}
    return found


def is_vpskits(target) -> bool:
    """An operation, function or spec of vpskit's package, not of its config schema."""
    module = getattr(target, "__module__", None) or ""
    return module.startswith("operations.") and not module.startswith("operations.config") and callable(target)


def namespace(path: str, tree: ast.Module) -> dict[str, object]:
    """What a file's names stand for: a module of the package's own globals, deploy.py's imports."""
    if path.startswith("operations/"):
        return vars(importlib.import_module(path.removesuffix(".py").replace("/", ".")))
    return imported(tree)


def imported(tree: ast.Module) -> dict[str, object]:
    """What a file's imports from vpskit's package bind: functions, classes, and modules (``from . import web``)."""
    names = {}
    for node in (n for n in tree.body if isinstance(n, ast.ImportFrom)):
        module = "operations" + (f".{node.module}" if node.module else "") if node.level else node.module
        if not module.startswith("operations"):
            continue
        for alias in node.names:
            try:
                names[alias.asname or alias.name] = getattr(importlib.import_module(module), alias.name)
            except AttributeError:
                names[alias.asname or alias.name] = importlib.import_module(f"{module}.{alias.name}")
    return names


def resolved(node: ast.expr, names: dict):
    """The object ``name`` or ``module.name`` stands for, or None."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        module = names.get(node.value.id)
        return getattr(module, node.attr, None) if isinstance(module, types.ModuleType) else None
    return None


def passed(call: ast.Call, target) -> list[str]:
    """The defaulted parameters a call gives: all of them through ``**``, else those it names or places."""
    options = defaulted(target)
    if any(k.arg is None for k in call.keywords):
        return options
    params = list(inspect.signature(getattr(target, "_inner", target)).parameters)
    given = {params[i] for i in range(min(len(call.args), len(params)))} | {k.arg for k in call.keywords}
    return [name for name in options if name in given]


def plan_names(tree: ast.Module) -> set[str]:
    """``plan`` and the names a loop over something of the plan binds (``for job in plan.jobs``)."""
    names = {"plan"}
    for loop in (n for n in ast.walk(tree) if isinstance(n, ast.For) and mentions(n.iter, names)):
        names |= {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
    return names


def mentions(node: ast.expr, names: set[str]) -> bool:
    """``node`` uses one of ``names``."""
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def gets_plan(call: ast.Call, planned: set[str]) -> bool:
    """A call in deploy.py given something of the plan (``**plan.sshd``, ``app_job(**job)``)."""
    return any(mentions(arg, planned) for arg in [*call.args, *(k.value for k in call.keywords)])
