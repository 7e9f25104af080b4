"""The web stack: Python runtimes, the venv apps, the front proxy (nginx or Caddy) and the certificates.

web_apps(apps, absent, user, distro)    # after base_system and deploy_user: the venv apps
front_proxy(sites, absent, "nginx")     # after every app (compose apps too): nginx + certbot, or Caddy
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra.api import OperationError, deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from .app import HostSize, VenvAppSpec, app_absent, app_present, default_workers
from .batched import packages_installed
from .caddy import caddy_proxy, caddy_stopped
from .certbot import Certificate, Issuer, cert_files, certbot_installed, certificate, certificate_absent
from .checkout import AppPaths
from .config import App
from .contribution import Contribution
from .distro import Distro
from .nginx import nginx_base, nginx_site, nginx_site_absent, site_text
from .nodejs import nodejs_runtime
from .python import PythonPlan, PythonUnavailable, python_plan, python_runtime
from .releases import app_command_installed
from .sites import Site
from .snapshot import facts_through_snapshot, snapshot_fact

# What every host with apps gets: log rotation for the apps, openssl for self-signed certificates.
BASE_PACKAGES = ["logrotate", "openssl"]


@dataclass(frozen=True)
class VenvApp:
    """One venv app to deploy: its spec, where it lives, the Python it runs on and its deploy key's text."""

    app: VenvAppSpec
    paths: AppPaths
    python: PythonPlan
    deploy_key: str = ""
    # The app's secrets_from values, read on the controller, and PostgreSQL's port (for ${DB_PORT}).
    brought: dict | None = None
    db_port: int = 5432
    # The package index its venv is installed from ('' for PyPI).
    pip_index_url: str = ""


def python_plans(apps: list[App], default_version: str, distro: Distro) -> dict[str, PythonPlan]:
    """Each app's Python plan (its own version, else ``default_version``); raises ``OperationError`` naming every app the host cannot serve."""
    plans, problems = {}, []
    for app in apps:
        try:
            plans[app.name] = python_plan(app.python or default_version, distro)
        except PythonUnavailable as e:
            problems.append(f"app {app.name}: {e}")
    if problems:
        raise OperationError("\n".join(problems))
    return plans


def proxy_packages(proxy: str, letsencrypt: bool) -> list[str]:
    """nginx, and certbot for Let's Encrypt, when nginx is the front proxy (Caddy installs its own)."""
    if proxy != "nginx":
        return []
    return ["nginx", *(["certbot"] if letsencrypt else [])]


def contribution(proxy: str, letsencrypt: bool, runtimes: list[PythonPlan] = (), nodejs: list[str] = ()) -> Contribution:
    """
    The web stack's packages that come from the distro's own archive, for a host with apps.

    The base system installs them in its one apt run (a separate ``apt-get install``
    per step costs seconds of apt and dpkg start-up each); every step still ensures
    its own. Packages from third-party repositories (deadsnakes, NodeSource) wait
    for their repository: give ``nodejs`` only for the distro's Node.js.

    + proxy: "nginx" or "caddy"
    + letsencrypt: certificates come from certbot
    + runtimes: the venv apps' Python plans
    + nodejs: the distro's Node.js packages, when an app has a front-end build
    """
    python = sorted({pkg for p in runtimes if not p.deadsnakes for pkg in p.packages})
    return Contribution(packages=(*BASE_PACKAGES, *proxy_packages(proxy, letsencrypt), *python, *nodejs))


@deploy("Web apps")
def web_apps(
    apps: list[VenvApp],
    absent: list[tuple[AppPaths, bool]],
    user: str,
    distro: Distro,
    nodejs: dict | None = None,
    app_command: bool = False,
):
    """
    Ensure every venv app is deployed and running, with its Python (and Node.js for a build), and absent apps are gone.

    Compose apps are deployed by ``compose.compose_app``; the front proxy by ``front_proxy``.

    + apps: the venv apps to deploy (``VenvApp``)
    + absent: ``(paths, purge)`` of each app to remove
    + user: the deploy user who owns the apps
    + distro: the host's distro
    + nodejs: ``nodejs_runtime`` arguments, used when an app has a front-end build
    + app_command: install ``vpskit-app`` (releases and rollback on the host), which compose apps use too

    **Example:**

    .. code:: python

        shop = VenvAppSpec("shop", "https://git.example.com/shop.git", port=5001)
        web_apps([VenvApp(shop, AppPaths("shop", "/srv/apps", "/var/log/apps"), python_plan("", distro))], [], "appuser", distro)
    """
    packages_installed(name="Install logrotate, openssl", packages=BASE_PACKAGES)
    if app_command or apps:
        app_command_installed()
    if apps:
        python_runtime(list({a.python.version: a.python for a in apps}.values()), distro)
    if any(a.app.build for a in apps):
        nodejs_runtime(**(nodejs or {}))

    size = snapshot_fact(HostSize)
    for a in apps:
        workers = default_workers(size["cpus"], size["memory_mb"], len(apps), a.app.worker_class)
        app_present(
            a.app,
            a.paths,
            user,
            a.python.binary,
            a.python.version,
            workers,
            a.deploy_key,
            brought=a.brought,
            db_port=a.db_port,
            pip_index_url=a.pip_index_url,
        )
    for paths, purge in absent:
        app_absent(paths, purge)


@deploy("Front proxy")
def front_proxy(
    sites: list[Site],
    absent: list[str] = (),
    proxy: str = "nginx",
    tls: Issuer = Issuer(),
    hsts_max_age: int = 63072000,
    ipv6: bool = True,
    template: str = "",
    static_paths: dict[str, str] | None = None,
    reject_handshake: bool = True,
    http2_on: bool = False,
):
    """
    Ensure the front proxy serves every site's domains over HTTPS, and the other proxy is off.

    + sites: the sites to serve (``Site``, or anything with its attributes: the templates read it as ``app``)
    + absent: names of removed apps whose site and certificate go
    + proxy: "nginx" (with certbot or self-signed certificates) or "caddy" (its own ACME client)
    + tls: where certificates come from (``Issuer``)
    + hsts_max_age: Strict-Transport-Security max-age in seconds (0: no header)
    + ipv6: also listen on IPv6 (nginx)
    + template: text of a user's own nginx site or Caddyfile template ('' for vpskit's)
    + static_paths: app name -> directory on the host nginx serves at the site's ``static_url``
    + reject_handshake: this nginx has ``ssl_reject_handshake`` (``Distro.nginx_rejects_handshake``)
    + http2_on: this nginx wants ``http2 on;`` (``Distro.nginx_http2_directive``)

    **Example:**

    .. code:: python

        front_proxy([Site("shop", ("shop.example.com",), 5001)], proxy="nginx", tls=Issuer(mode="selfsigned"))
    """
    if proxy == "caddy":
        caddy_proxy(sites, tls, template, hsts_max_age)
        return
    caddy_stopped()
    nginx_proxy(sites, absent, tls, hsts_max_age, ipv6, template, static_paths or {}, reject_handshake, http2_on)


def nginx_proxy(
    sites: list[Site],
    absent: list[str],
    tls: Issuer,
    hsts_max_age: int,
    ipv6: bool,
    template: str,
    static_paths: dict[str, str],
    reject_handshake: bool,
    http2_on: bool,
):
    """nginx in front of ``sites`` with certbot's (or self-signed) certificates; ``absent`` apps lose theirs."""
    letsencrypt = tls.mode == "letsencrypt"
    packages_installed(name="Install nginx" + (", certbot" if letsencrypt else ""), packages=proxy_packages("nginx", letsencrypt))

    # nginx, phase 1: every site as far as its certificate allows (HTTP only
    # until it has one), so the ACME challenges can be answered.
    changes = nginx_base(ipv6=ipv6, reject_handshake=reject_handshake)
    if letsencrypt:
        certbot_installed(tls)

    def site(app: Site, with_tls: bool) -> str:
        files_ = cert_files(app.name, tls) if with_tls else None
        return site_text(app, files_, static_paths.get(app.name, ""), hsts_max_age, ipv6, template, http2_on)

    had_cert = {}
    for app in sites:
        files_ = cert_files(app.name, tls)
        had_cert[app.name] = snapshot_fact(Certificate, cert=files_.cert, renewal=files_.renewal) is not None
        changes.append(nginx_site(app.name, site(app, had_cert[app.name])))
    for name in absent:
        changes.append(nginx_site_absent(name))
    facts_through_snapshot(systemd.service)(
        name="nginx running",
        service="nginx",
        running=True,
        enabled=True,
        reloaded=any(op.will_change for op in changes),
    )

    # Certificates, then phase 2: HTTPS for the sites that just got their first one.
    certs = [
        certificate(name=f"{app.name}: certificate for {', '.join(app.domains)}", cert_name=app.name, domains=list(app.domains), tls=tls)
        for app in sites
    ]
    for name in absent:
        certificate_absent(name=f"{name}: remove certificate", cert_name=name, tls=tls)
    second = []
    for app, cert_op in zip(sites, certs, strict=True):
        if had_cert[app.name] or not cert_op.will_change:
            continue
        second.append(nginx_site(app.name, site(app, True), label="site with HTTPS"))
    if certs:
        systemd.service(
            name="nginx serves the new certificates",
            service="nginx",
            reloaded=True,
            _if=any_changed(*certs, *second),
        )
