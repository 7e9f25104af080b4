"""Caddy as the front proxy (``[web] proxy = "caddy"``): one Caddyfile, one site block per app.

Caddy gets and renews the certificates itself (ACME, the ``[tls]`` server, e-mail and CA
bundle), so certbot is not used. The Caddyfile is checked with ``caddy validate`` before
it replaces the live one; a rejected file fails the run and the running Caddy keeps
serving the previous one.
"""

from __future__ import annotations

from pathlib import Path

from pyinfra.api import deploy
from pyinfra.operations import apt, server, systemd

from .certbot import acme_server
from .config import App, TLS
from .distro import Distro
from .render import render, render_text
from .validated import checked_file

CADDYFILE = "/etc/caddy/Caddyfile"
LOG_DIR = "/var/log/caddy"
CHECK = "caddy validate --adapter caddyfile --config {path}"


def caddyfile_text(sites: list[App], tls: TLS, template: str = "") -> str:
    """The Caddyfile for ``sites`` (apps with domains); ``template`` is a user's own template text ('' for vpskit's)."""
    letsencrypt = tls.mode == "letsencrypt"
    context = dict(
        sites=[{"app": app} for app in sites],
        email=tls.email if letsencrypt else "",
        acme_ca=acme_server(tls) if letsencrypt and (tls.acme_server or tls.staging) else "",
        acme_ca_root=tls.acme_ca_bundle if letsencrypt else "",
        selfsigned=not letsencrypt,
        hsts_max_age=tls.hsts_max_age,
        log_dir=LOG_DIR,
    )
    return render_text(template, **context) if template else render("Caddyfile.j2", **context)


def caddy_problem(proxy: str, distro: Distro) -> str:
    """Why Caddy cannot be the front proxy on this release ('' when it can); decided before anything changes."""
    if proxy != "caddy" or distro.has_caddy:
        return ""
    return f'[web].proxy = "caddy": {distro.name} has no caddy package. Set [web] proxy = "nginx" for this host. Nothing was changed.'


def read_template(path: str | Path | None) -> str:
    return Path(path).read_text() if path else ""


@deploy("Caddy")
def caddy_proxy(sites: list[App], tls: TLS, template: str = ""):
    """
    Ensure Caddy serves ``sites`` on 80/443 with certificates, and nginx does not hold those ports.

    + sites: the present apps with domains (venv and compose apps alike)
    + tls: the ``[tls]`` section (ACME server, e-mail, CA bundle; ``selfsigned`` uses Caddy's internal CA)
    + template: text of a user's own Caddyfile template ('' for vpskit's)

    **Example:**

    .. code:: python

        caddy_proxy([app for app in config.apps if app.domains], config.tls)
    """
    systemd.service(name="nginx stopped (Caddy serves 80/443)", service="nginx.service", running=False, enabled=False)
    apt.packages(name="Install Caddy", packages=["caddy"])
    caddyfile = checked_file(name="Caddyfile", dest=CADDYFILE, content=caddyfile_text(sites, tls, template), validate=CHECK)
    server.shell(
        name="Caddy loads the new Caddyfile",
        commands=["systemctl reload-or-restart caddy.service"],
        _if=caddyfile.did_change,
    )
    systemd.service(name="Caddy running", service="caddy.service", running=True, enabled=True)


@deploy("Caddy off")
def caddy_stopped():
    """
    Ensure Caddy (if installed) is stopped and disabled, so nginx alone serves 80/443.

    **Example:**

    .. code:: python

        caddy_stopped()
    """
    systemd.service(name="Caddy stopped (nginx serves 80/443)", service="caddy.service", running=False, enabled=False)
