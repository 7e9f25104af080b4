"""The web stack: Python runtimes, the apps, the front proxy (nginx or Caddy) and the certificates.

    web_apps(config, distro)    # after base_system and deploy_user: the venv apps
    front_proxy(config)         # after every app (compose apps too): nginx + certbot, or Caddy
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationError, deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from .app import HostSize, app_absent, app_paths, app_present, default_workers, worker_class
from .batched import packages_installed
from .caddy import caddy_proxy, caddy_stopped
from .caddy import read_template as read_caddy_template
from .certbot import Certificate, cert_files, certbot_installed, certificate, certificate_absent
from .config import App, Config
from .distro import Distro
from .nginx import nginx_base, nginx_site, nginx_site_absent, read_template, site_text
from .nodejs import nodejs_packages, nodejs_runtime
from .python import PythonPlan, PythonUnavailable, python_plan, python_runtime
from .system import host_distro


# What every host with apps gets: log rotation for the apps, openssl for self-signed certificates.
BASE_PACKAGES = ["logrotate", "openssl"]


def python_plans(config: Config, distro: Distro) -> dict[str, PythonPlan]:
    """Each present app's Python plan; raises ``OperationError`` (before anything runs) for one the host cannot have."""
    plans, problems = {}, []
    for app in config.apps:
        if app.state != "present" or not app.repo or app.is_compose:
            continue
        try:
            plans[app.name] = python_plan(app.python or config.python.version, distro)
        except PythonUnavailable as e:
            problems.append(f"app {app.name}: {e}")
    if problems:
        raise OperationError("\n".join(problems))
    return plans


def static_path(app: App, config: Config) -> str:
    if not app.static_dir:
        return ""
    return f"{app_paths(app, config.web).src}/{app.static_dir.strip('/')}"


@deploy("Web apps")
def web_apps(config: Config, distro: Distro):
    """
    Ensure every configured venv app is deployed and running, and absent apps are gone.

    Compose apps are deployed by ``compose.compose_app``; the front proxy by ``front_proxy``.

    + config: the whole config
    + distro: the host's distro

    **Example:**

    .. code:: python

        web_apps(config, host_distro())
    """
    if not config.apps:
        return
    present, absent = venv_apps(config)
    plans = python_plans(config, distro)
    user = config.deploy_user.name

    packages_installed(name="Install logrotate, openssl", packages=BASE_PACKAGES)
    if present:
        python_runtime(list({p.version: p for p in plans.values()}.values()), distro)
    if any(a.build for a in present):
        nodejs_runtime(config.nodejs)

    size = host.get_fact(HostSize)
    for app in present:
        plan = plans[app.name]
        key = config.path(app.deploy_key).read_text() if app.deploy_key else ""
        workers = default_workers(size["cpus"], size["memory_mb"], len(present), worker_class(app))
        app_present(app, config.web, user, plan.binary, plan.version, workers, deploy_key=key)
    for app in absent:
        app_absent(app, config.web)


def venv_apps(config: Config) -> tuple[list[App], list[App]]:
    """(present venv apps with code to deploy, absent venv apps); an app without a repo has only a database or jobs."""
    present = [a for a in config.apps if a.state == "present" and a.repo and not a.is_compose]
    absent = [a for a in config.apps if a.state != "present" and not a.is_compose]
    return present, absent


def proxy_packages(config: Config) -> list[str]:
    """nginx, and certbot for Let's Encrypt, when nginx is the front proxy (Caddy installs its own)."""
    if config.web.proxy != "nginx":
        return []
    return ["nginx", *(["certbot"] if config.tls.mode == "letsencrypt" else [])]


def distro_packages(config: Config, distro: Distro) -> list[str]:
    """
    The web stack's packages that come from the distro's own archive.

    The base system installs them in its one apt run (a separate ``apt-get install``
    per step costs seconds of apt and dpkg start-up each); every step still ensures
    its own. Packages from third-party repositories (deadsnakes, NodeSource) wait
    for their repository. Raises ``OperationError`` for a Python the host cannot have.
    """
    if not config.apps:
        return []
    present, _ = venv_apps(config)
    packages = [*BASE_PACKAGES, *proxy_packages(config)]
    if present:
        packages += sorted({pkg for p in python_plans(config, distro).values() if not p.deadsnakes for pkg in p.packages})
    if any(a.build for a in present) and config.nodejs.source == "distro":
        packages += nodejs_packages(config.nodejs)
    return packages


def proxied_apps(config: Config) -> tuple[list[App], list[App]]:
    """(present apps with a site, absent apps) the front proxy serves or drops."""
    sites = [a for a in config.apps if a.state == "present" and a.domains and (a.repo or a.is_compose)]
    absent = [a for a in config.apps if a.state != "present"]
    return sites, absent


@deploy("Front proxy")
def front_proxy(config: Config):
    """
    Ensure the configured front proxy serves every app's domains over HTTPS, and the other proxy is off.

    + config: the whole config (``[web] proxy``, ``[tls]``)

    **Example:**

    .. code:: python

        front_proxy(config)
    """
    if not config.apps:
        return
    sites, absent = proxied_apps(config)
    if config.web.proxy == "caddy":
        template = config.path(config.web.caddyfile_template) if config.web.caddyfile_template else None
        caddy_proxy(sites, config.tls, read_caddy_template(template))
        return
    caddy_stopped()
    nginx_proxy(config, sites, absent)


def nginx_proxy(config: Config, sites: list[App], absent: list[App]):
    """nginx in front of ``sites`` with certbot's (or self-signed) certificates; ``absent`` apps lose theirs."""
    tls = config.tls
    template = read_template(config.path(config.web.site_template) if config.web.site_template else None)
    packages_installed(name="Install nginx" + (", certbot" if tls.mode == "letsencrypt" else ""), packages=proxy_packages(config))

    # nginx, phase 1: every site as far as its certificate allows (HTTP only
    # until it has one), so the ACME challenges can be answered.
    distro = host_distro()
    changes = nginx_base(ipv6=config.web.ipv6, reject_handshake=distro.nginx_rejects_handshake)
    if tls.mode == "letsencrypt":
        certbot_installed(tls)
    http2_on = distro.nginx_http2_directive

    def site(app: App, with_tls: bool) -> str:
        files_ = cert_files(app.name, tls) if with_tls else None
        return site_text(app, files_, static_path(app, config), tls.hsts_max_age, config.web.ipv6, template, http2_on)

    had_cert = {}
    for app in sites:
        files_ = cert_files(app.name, tls)
        had_cert[app.name] = host.get_fact(Certificate, cert=files_.cert, renewal=files_.renewal) is not None
        changes.append(nginx_site(app, site(app, had_cert[app.name])))
    for app in absent:
        changes.append(nginx_site_absent(app))
    systemd.service(
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
    for app in absent:
        certificate_absent(name=f"{app.name}: remove certificate", cert_name=app.name, tls=tls)
    second = []
    for app, cert_op in zip(sites, certs):
        if had_cert[app.name] or not cert_op.will_change:
            continue
        second.append(nginx_site(app, site(app, True), label="site with HTTPS"))
    if certs:
        systemd.service(
            name="nginx serves the new certificates",
            service="nginx",
            reloaded=True,
            _if=any_changed(*certs, *second),
        )
