"""nginx in front of the apps: one main config, a catch-all default server, one site per app.

Every file is checked with ``nginx -t`` as it goes live; a config nginx rejects is
replaced by the previous one and the run fails with nginx's error, while the
running nginx keeps serving the old config.
"""

from __future__ import annotations

import re
from pathlib import Path

from pyinfra.api import deploy
from pyinfra.operations import files

from .certbot import ACME_WEBROOT, CertFiles, Issuer, cert_files, certificate
from .render import FILES_DIR, render, render_text
from .routes import security_headers, site_servers
from .sites import Site
from .snapshot import facts_through_snapshot
from .validated import checked_file

# Mozilla's "intermediate" TLS configuration (guidelines 5.7): its TLS 1.2 suites in its order, its
# curves, and for the DHE suites the ffdhe2048 group of RFC 7919 (nginx offers DHE only with an
# ssl_dhparam file; a published constant, shipped as files/ffdhe2048.pem, never generated on the host).
CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-CHACHA20-POLY1305",
    ]
)
CURVES = "X25519:prime256v1:secp384r1"
DHPARAM = "/etc/nginx/ffdhe2048.pem"
DHPARAM_CHECK = "openssl pkeyparam -noout -check -in {path}"
NGINX_CONF = "/etc/nginx/nginx.conf"
SITES_DIR = "/etc/nginx/sites-enabled"
DEFAULT_SITE = f"{SITES_DIR}/000-vpskit-default"
STOCK_DEFAULT_SITE = f"{SITES_DIR}/default"
CHECK = "nginx -t"
# The catch-all HTTPS server's certificate where nginx cannot refuse the handshake.
DEFAULT_CERT = "_default"
SELFSIGNED = Issuer(mode="selfsigned")


def site_path(app_name: str) -> str:
    return f"{SITES_DIR}/app-{app_name}.conf"


def site_text(
    app: Site,
    tls: CertFiles | None,
    static_path: str = "",
    hsts_max_age: int = 0,
    ipv6: bool = True,
    template: str = "",
    http2_on: bool = False,
) -> str:
    """One app's site: HTTP (ACME challenges, redirect to HTTPS) and, once ``tls`` exists, the HTTPS proxy.

    ``app`` is a ``Site`` or anything with its attributes; ``template`` is the text of a
    user's own site template ('' for vpskit's), which reads ``app`` as given. ``http2_on``: nginx
    1.25.1+ syntax (``http2 on;``, ``Distro.nginx_http2_directive``) instead of ``listen ... http2``.
    """
    headers, _ = security_headers(hsts_max_age, getattr(app, "headers", ()))
    context = dict(
        app=app,
        servers=site_servers(app, hsts_max_age),
        zones=getattr(app, "zones", ()) if getattr(app, "routes", ()) else (),
        headers=headers,
        hidden=[name for name, _ in getattr(app, "headers", ())],
        id=re.sub(r"[^a-z0-9_]", "_", app.name),
        tls=tls,
        static_path=static_path,
        hsts_max_age=hsts_max_age,
        ipv6=ipv6,
        acme_root=ACME_WEBROOT,
        http2_on=http2_on,
    )
    return render_text(template, **context) if template else render("nginx-site.conf.j2", **context)


def main_text() -> str:
    """nginx.conf: TLS settings, no version banner, the JSON log format of sites with routes."""
    return render("nginx.conf.j2", ciphers=CIPHERS, curves=CURVES, dhparam=DHPARAM)


def read_template(path: str | Path | None) -> str:
    return Path(path).read_text() if path else ""


@deploy("nginx")
def nginx_base(ipv6: bool = True, reject_handshake: bool = True):
    """
    Ensure nginx's main config (TLS settings, no version banner) and a catch-all default server.

    Returns the operations that change nginx's config, for the reload.

    + ipv6: also listen on IPv6
    + reject_handshake: nginx has ``ssl_reject_handshake`` (1.19.4+, ``Distro.nginx_rejects_handshake``);
      without it the catch-all HTTPS server gets a self-signed certificate for no name and answers nothing

    **Example:**

    .. code:: python

        changes = nginx_base(ipv6=True)
    """
    dhparam = checked_file(
        name="DH group ffdhe2048 (RFC 7919) for the DHE suites",
        dest=DHPARAM,
        content=(FILES_DIR / "ffdhe2048.pem").read_text(),
        validate=DHPARAM_CHECK,
    )
    main = checked_file(name="nginx.conf", dest=NGINX_CONF, content=main_text(), validate=CHECK)
    stock = facts_through_snapshot(files.link)(name="Remove the stock default site", path=STOCK_DEFAULT_SITE, present=False)
    changes = [dhparam, main, stock]
    default_cert = None
    if not reject_handshake:
        default_cert = cert_files(DEFAULT_CERT, SELFSIGNED)
        changes.append(
            certificate(
                name="Certificate of the catch-all HTTPS server", cert_name=DEFAULT_CERT, domains=["default.invalid"], tls=SELFSIGNED
            )
        )
    default = checked_file(
        name="Catch-all default server",
        dest=DEFAULT_SITE,
        content=render("nginx-default.conf.j2", ipv6=ipv6, default_cert=default_cert),
        validate=CHECK,
    )
    return [*changes, default]


def nginx_site(app_name: str, content: str, label: str = "site"):
    """
    Ensure the app's site file has ``content``, checked by ``nginx -t`` before it stays.

    + app_name: the app (names the file, ``app-<name>.conf``)
    + content: the site, from ``site_text``
    + label: what this version is, for the operation's name

    **Example:**

    .. code:: python

        nginx_site("shop", site_text(Site("shop", ("shop.example.com",), 5001), None))
    """
    return checked_file(name=f"{app_name}: nginx {label}", dest=site_path(app_name), content=content, validate=CHECK)


def nginx_site_absent(app_name: str):
    """
    Ensure an absent app has no site.

    + app_name: the app

    **Example:**

    .. code:: python

        nginx_site_absent("oldapp")
    """
    return files.file(name=f"{app_name}: remove nginx site", path=site_path(app_name), present=False)
