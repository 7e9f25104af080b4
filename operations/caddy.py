"""Caddy as the front proxy (``[web] proxy = "caddy"``): one Caddyfile, one site block per app.

Caddy gets and renews the certificates itself (ACME, the ``[tls]`` server, e-mail and CA
bundle), so certbot is not used. The Caddyfile is checked with ``caddy validate`` before
it replaces the live one; a rejected file fails the run and the running Caddy keeps
serving the previous one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pyinfra.api import deploy
from pyinfra.operations import apt, server, systemd

from .certbot import Issuer, acme_server
from .contribution import Contribution
from .distro import Distro
from .render import render, render_text
from .routes import caddy_size, security_headers, site_servers
from .sites import Site
from .snapshot import facts_through_snapshot
from .validated import checked_file

CADDYFILE = "/etc/caddy/Caddyfile"
LOG_DIR = "/var/log/caddy"
CHECK = "caddy validate --adapter caddyfile --config {path}"
# Mozilla's "intermediate" TLS 1.2 suites (Go's names, Mozilla's order) and curves; TLS 1.3
# suites are not configurable in Go and are Mozilla's three.
TLS_CIPHERS = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)
TLS_CURVES = ("x25519", "secp256r1", "secp384r1")


def contribution(serves_sites: bool) -> Contribution:
    """Caddy's unit, for the health report, when Caddy is the front proxy of any site."""
    return Contribution(units=("caddy.service",) if serves_sites else ())


def caddyfile_text(sites: list[Site], tls: Issuer, template: str = "", hsts_max_age: int = 63072000) -> str:
    """The Caddyfile for ``sites``; ``template`` is a user's own template text ('' for vpskit's)."""
    letsencrypt = tls.mode == "letsencrypt"
    context = dict(
        sites=[site_context(app, hsts_max_age) for app in sites],
        email=tls.email if letsencrypt else "",
        acme_ca=acme_server(tls) if letsencrypt and (tls.acme_server or tls.staging) else "",
        acme_ca_root=tls.acme_ca_bundle if letsencrypt else "",
        selfsigned=not letsencrypt,
        hsts_max_age=hsts_max_age,
        log_dir=LOG_DIR,
        tls_ciphers=TLS_CIPHERS,
        tls_curves=TLS_CURVES,
    )
    return render_text(template, **context) if template else render("Caddyfile.j2", **context)


def site_context(site: Site, hsts_max_age: int) -> dict:
    """What the Caddyfile says of one site: the app, its headers and the server blocks of its routes."""
    headers, removed = security_headers(hsts_max_age, getattr(site, "headers", ()))
    servers = tuple(
        replace(server, routes=tuple(replace(r, max_body_size=caddy_size(r.max_body_size)) for r in server.routes))
        for server in site_servers(site, hsts_max_age)
    )
    return {"app": site, "headers": headers, "removed": removed, "servers": servers}


def caddy_problem(proxy: str, distro: Distro) -> str:
    """Why Caddy cannot be the front proxy on this release ('' when it can); decided before anything changes."""
    if proxy != "caddy" or distro.has_caddy:
        return ""
    return f'[web].proxy = "caddy": {distro.name} has no caddy package. Set [web] proxy = "nginx" for this host. Nothing was changed.'


def read_template(path: str | Path | None) -> str:
    return Path(path).read_text() if path else ""


@deploy("Caddy")
def caddy_proxy(sites: list[Site], tls: Issuer = Issuer(), template: str = "", hsts_max_age: int = 63072000):
    """
    Ensure Caddy serves ``sites`` on 80/443 with certificates, and nginx does not hold those ports.

    + sites: the sites to serve (``Site``, or anything with its attributes)
    + tls: where certificates come from (``Issuer``: ACME server, e-mail, CA bundle; ``selfsigned`` uses Caddy's internal CA)
    + template: text of a user's own Caddyfile template ('' for vpskit's)
    + hsts_max_age: Strict-Transport-Security max-age in seconds (0: no header)

    **Example:**

    .. code:: python

        caddy_proxy([Site("shop", ("shop.example.com",), 5001)], Issuer(email="ops@example.com"))
    """
    facts_through_snapshot(systemd.service)(
        name="nginx stopped (Caddy serves 80/443)", service="nginx.service", running=False, enabled=False
    )
    apt.packages(name="Install Caddy", packages=["caddy"])
    caddyfile = checked_file(name="Caddyfile", dest=CADDYFILE, content=caddyfile_text(sites, tls, template, hsts_max_age), validate=CHECK)
    server.shell(
        name="Caddy loads the new Caddyfile",
        commands=["systemctl reload-or-restart caddy.service"],
        _if=caddyfile.did_change,
    )
    facts_through_snapshot(systemd.service)(name="Caddy running", service="caddy.service", running=True, enabled=True)


@deploy("Caddy off")
def caddy_stopped():
    """
    Ensure Caddy (if installed) is stopped and disabled, so nginx alone serves 80/443.

    **Example:**

    .. code:: python

        caddy_stopped()
    """
    facts_through_snapshot(systemd.service)(
        name="Caddy stopped (nginx serves 80/443)", service="caddy.service", running=False, enabled=False
    )
