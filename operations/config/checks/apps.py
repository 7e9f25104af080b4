"""[[apps]]: names, ports and domains unique across apps; env and secrets; paths inside the repo.

The app's data (database, backup, jobs) and its compose and Caddy-only fields have their own modules.
"""

from __future__ import annotations

import re

from ..apps import DB_REFERENCES, REFERENCE
from ..schema import ENV_NAME
from . import app_compose, app_data, routes
from .base import Checker, is_domain, is_port, relative_path

ENV_NAME_RE = re.compile(ENV_NAME)
# Set by vpskit itself in every app's .env.
VPSKIT_ENV = ("DATA_DIR",)
# Names that break the process when .env sets them: how it finds programs, libraries, its own user.
BREAKS_PROCESS = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "PYTHONHOME", "IFS")
BREAKS_PROCESS_PREFIXES = ("LD_",)
# Harmless only when a value is chosen for them (env), never as a generated random secret.
ONLY_CHOSEN = ("PYTHONPATH",)


def breaks_process(name: str) -> bool:
    return name in BREAKS_PROCESS or name.startswith(BREAKS_PROCESS_PREFIXES)


def check(c: Checker, config) -> None:
    names: dict[str, str] = {}
    ports: dict[int, str] = {}
    domains: dict[str, str] = {}
    databases: dict[str, str] = {}
    roles: dict[str, str] = {}
    for i, app in enumerate(config.apps):
        where = f"apps[{i}]"
        c.unique(f"{where}.name", app.name, names, where)
        if is_port(app.port):
            ssh = (config.server.ssh_port, config.first_login.port)
            if app.port in (*ssh, 80, 443):
                c.add(f"{where}.port", f"{app.port} is reserved for {'sshd' if app.port in ssh else 'the front proxy'}")
            elif app.port in ports:
                c.add(f"{where}.port", f"{app.port} is already used by app {ports[app.port]!r}")
            ports.setdefault(app.port, app.name)
        for j, d in enumerate(app.domains):
            if not is_domain(d):
                c.add(f"{where}.domains[{j}]", f"{d!r} is not a valid domain name")
            elif d.lower() in domains:
                c.add(f"{where}.domains[{j}]", f"{d!r} is already used by app {domains[d.lower()]!r}")
            else:
                domains[d.lower()] = app.name
        app_data.check(c, where, app, databases, roles)
        _check_venv_fields(c, where, app)
        _check_brought(c, where, app)
        _check_references(c, where, app)
        app_compose.check(c, where, app, config.web.proxy)
        routes.check(c, where, app, config)


def _check_venv_fields(c: Checker, where: str, app) -> None:
    """The environment, secrets, key and repo paths of one app."""
    if app.deploy_key:
        c.key_file(f"{where}.deploy_key", app.deploy_key, public=False)
    for k, v in app.env.items():
        if not ENV_NAME_RE.match(k):
            c.add(f"{where}.env.{k}", "is not an environment variable name (letters, digits, _)")
        elif k in VPSKIT_ENV:
            c.add(f"{where}.env.{k}", "is set by vpskit (the app's data directory)")
        elif breaks_process(k):
            c.add(f"{where}.env.{k}", "would break the app's process (vpskit sets how it finds programs and libraries)")
        elif k == "DATABASE_URL" and app.database.uses_postgres:
            c.add(f"{where}.env.{k}", 'is set by vpskit from the app\'s database (engine = "postgresql")')
        elif any(ch in v for ch in "'\n\r\0"):
            c.add(f"{where}.env.{k}", "must not contain single quotes or line breaks")
    for j, name in enumerate(app.secrets):
        if breaks_process(name) or name in ONLY_CHOSEN:
            c.add(f"{where}.secrets[{j}]", f"{name!r} would break the app's process as a generated random value")
        elif name == "DATABASE_URL" and app.database.uses_postgres:
            c.add(f"{where}.secrets[{j}]", 'is set by vpskit from the app\'s database (engine = "postgresql")')
        elif name in app.env or name in VPSKIT_ENV:
            c.add(f"{where}.secrets[{j}]", f"{name!r} is also set in env: a secret is generated, not configured")
    for name in ("requirements", "build_dir", "static_dir", "app_dir"):
        value = getattr(app, name)
        if value and not relative_path(value):
            c.add(f"{where}.{name}", f"must be a path inside the repo, got {value!r}")
    if not app.requirements and app.install in ("auto", "requirements"):
        c.add(f"{where}.requirements", f"is required with install = {app.install!r} (the pip requirements file in the repo)")


def _check_brought(c: Checker, where: str, app) -> None:
    """``secrets_from``: names that fit in .env, sources that can be read now (their values never in a message)."""
    for name, source in app.secrets_from.items():
        w = f"{where}.secrets_from.{name}"
        if not ENV_NAME_RE.match(name):
            c.add(w, "is not an environment variable name (letters, digits, _)")
        elif breaks_process(name) or name in VPSKIT_ENV or name in DB_REFERENCES:
            c.add(w, f"{name!r} is set by vpskit or would break the app's process")
        elif name in app.env or name in app.secrets or (name == "DATABASE_URL" and app.database.uses_postgres):
            c.add(w, f"{name!r} is also set in env or secrets")
        elif not isinstance(source, str):
            c.add(w, "must be 'env:VARIABLE' or 'file:PATH'")
        else:
            try:
                value = c.config.brought_secret(source)
            except ValueError as e:
                c.add(w, f"app {app.name}: {e}")
                continue
            if any(ch in value for ch in "'\n\r\0"):
                c.add(w, f"app {app.name}: the value from {source} holds a single quote or line break, which .env cannot carry")


def _check_references(c: Checker, where: str, app) -> None:
    """``${NAME}`` in env values: each one a secret or database value of this app."""
    known = app.references()
    for k, v in app.env.items():
        if not isinstance(v, str):
            continue
        for name in re.findall(REFERENCE, v):
            if name not in known:
                offer = ", ".join(sorted(known)) or "none: the app has no secrets or PostgreSQL database"
                c.add(f"{where}.env.{k}", f"${{{name}}} is not a secret or database value of app {app.name} ({offer})")
