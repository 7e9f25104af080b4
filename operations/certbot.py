"""TLS certificates for the app domains: certbot (ACME http-01 via a webroot) or self-signed."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from io import StringIO

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.operations import files, systemd

from .render import render
from .snapshot import facts_through_snapshot, snapshot_fact

LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
ACME_WEBROOT = "/var/www/acme"
DEPLOY_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/vpskit-reload-nginx"
CERTBOT_ENV_DROPIN = "/etc/systemd/system/certbot.service.d/vpskit-acme-ca.conf"
SELFSIGNED_DIR = "/etc/ssl/vpskit"


@dataclass(frozen=True)
class Issuer:
    """Where certificates come from: an ACME CA through certbot, or self-signed on the host."""

    # "letsencrypt" (certbot, ACME http-01 via webroot) or "selfsigned" (hosts without public DNS).
    mode: str = "letsencrypt"
    # Account e-mail for expiry notices; empty: register without e-mail.
    email: str = ""
    # Let's Encrypt's staging server (untrusted test certificates).
    staging: bool = False
    # ACME directory URL of another CA; overrides staging.
    acme_server: str = ""
    # CA bundle file on the host that certbot trusts for the ACME server's own TLS.
    acme_ca_bundle: str = ""


@dataclass(frozen=True)
class CertFiles:
    """Where one app's certificate and key are."""

    cert: str
    key: str
    renewal: str = ""  # certbot's renewal config; '' for self-signed


def cert_files(name: str, tls: Issuer) -> CertFiles:
    if tls.mode == "selfsigned":
        return CertFiles(f"{SELFSIGNED_DIR}/{name}/fullchain.pem", f"{SELFSIGNED_DIR}/{name}/privkey.pem")
    return CertFiles(
        f"/etc/letsencrypt/live/{name}/fullchain.pem",
        f"/etc/letsencrypt/live/{name}/privkey.pem",
        f"/etc/letsencrypt/renewal/{name}.conf",
    )


def acme_server(tls: Issuer) -> str:
    """The ACME directory certbot talks to."""
    return tls.acme_server or (LETSENCRYPT_STAGING if tls.staging else LETSENCRYPT)


class Certificate(FactBase):
    """
    Returns the names a certificate covers and the ACME server it renews from, or None without one.

    .. code:: python

        {"domains": ["a.example.com", "www.a.example.com"], "server": "https://…/directory"}
    """

    def command(self, cert, renewal=""):
        c = shlex.quote(cert)
        server = f"sed -n 's/^server *= *//p' {shlex.quote(renewal)} 2>/dev/null | sed 's/^/server=/'" if renewal else "true"
        return (
            f"if [ -f {c} ]; then openssl x509 -noout -ext subjectAltName -in {c} | tr ',' '\\n' "
            f"| sed -n 's/^ *DNS:/domain=/p'; {server}; fi"
        )

    def process(self, output):
        if not output:
            return None
        data = {"domains": [], "server": ""}
        for line in output:
            key, _, value = line.strip().partition("=")
            if key == "domain":
                data["domains"].append(value)
            elif key == "server":
                data["server"] = value
        return data


def certificate_current(state, domains, server: str = "") -> bool:
    """Whether the certificate on the host covers exactly ``domains`` (and comes from ``server``)."""
    if not state:
        return False
    if sorted(d.lower() for d in state["domains"]) != sorted(d.lower() for d in domains):
        return False
    return not server or state["server"] == server


def certbot_command(name: str, domains, tls: Issuer, webroot: str = ACME_WEBROOT) -> str:
    """certbot certonly for one certificate, answered from the webroot nginx serves."""
    args = ["certbot", "certonly", "--non-interactive", "--agree-tos", "--webroot", "-w", webroot, "--cert-name", name]
    for d in domains:
        args += ["-d", d]
    args += ["--email", tls.email] if tls.email else ["--register-unsafely-without-email"]
    # The certificate is only asked for when it is missing or wrong, so always issue.
    args += ["--server", acme_server(tls), "--force-renewal", "--quiet"]
    command = " ".join(shlex.quote(a) for a in args)
    if tls.acme_ca_bundle:
        command = f"REQUESTS_CA_BUNDLE={shlex.quote(tls.acme_ca_bundle)} {command}"
    return command


def selfsigned_command(files_: CertFiles, domains, days: int = 825) -> str:
    d = shlex.quote(files_.cert.rsplit("/", 1)[0])
    san = ",".join(f"DNS:{x}" for x in domains)
    return (
        f"mkdir -p {d} && chmod 700 {d} && "
        f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days {days} "
        f"-subj {shlex.quote('/CN=' + domains[0])} -addext {shlex.quote('subjectAltName=' + san)} "
        f"-keyout {shlex.quote(files_.key)} -out {shlex.quote(files_.cert)} 2>/dev/null && chmod 600 {shlex.quote(files_.key)}"
    )


@operation()
def certificate(cert_name: str, domains: list[str], tls: Issuer):
    """
    Ensure a certificate named ``cert_name`` covers exactly ``domains``.

    With ``tls.mode = "letsencrypt"`` certbot answers the ACME http-01 challenge
    from the webroot that the app's plain-HTTP site already serves; otherwise a
    self-signed certificate is made on the host. No-op when the certificate on
    the host already covers these names (and comes from the configured ACME server).

    + cert_name: certificate name (the app's name)
    + domains: the names, the first one is the subject
    + tls: where certificates come from (``Issuer``)

    **Example:**

    .. code:: python

        certificate(name="Certificate", cert_name="shop", domains=["shop.example.com"], tls=Issuer(email="ops@example.com"))
    """
    name = cert_name
    paths = cert_files(name, tls)
    state = snapshot_fact(Certificate, cert=paths.cert, renewal=paths.renewal)
    server = acme_server(tls) if tls.mode == "letsencrypt" else ""
    if certificate_current(state, domains, server):
        host.noop(f"certificate {name} covers {', '.join(domains)}")
        return
    if tls.mode == "letsencrypt":
        yield StringCommand(certbot_command(name, domains, tls))
    else:
        yield StringCommand(selfsigned_command(paths, domains))


@operation()
def certificate_absent(cert_name: str, tls: Issuer):
    """
    Ensure the certificate ``cert_name`` is gone (no renewals for a removed app).

    + cert_name: certificate name
    + tls: where certificates come from (``Issuer``)

    **Example:**

    .. code:: python

        certificate_absent(name="Remove certificate", cert_name="oldapp", tls=Issuer())
    """
    name = cert_name
    paths = cert_files(name, tls)
    if snapshot_fact(Certificate, cert=paths.cert, renewal=paths.renewal) is None:
        host.noop(f"no certificate {name}")
        return
    if tls.mode == "letsencrypt":
        yield StringCommand(f"certbot delete --non-interactive --cert-name {shlex.quote(name)}")
    else:
        yield StringCommand(f"rm -rf {shlex.quote(paths.cert.rsplit('/', 1)[0])}")


@deploy("Certbot")
def certbot_installed(tls: Issuer):
    """
    Ensure certbot renews certificates on its timer and reloads nginx after a renewal.

    + tls: where certificates come from (``Issuer``; its CA bundle is passed to renewals too)

    **Example:**

    .. code:: python

        certbot_installed(Issuer(email="ops@example.com"))
    """
    # Read with the run's other facts while nothing has changed: a no-change re-run asks nothing of its own here.
    put, file, service = (facts_through_snapshot(op) for op in (files.put, files.file, systemd.service))
    facts_through_snapshot(files.directory)(name="ACME challenge webroot", path=ACME_WEBROOT, user="root", group="root", mode="755")
    put(
        name="Reload nginx after a renewal",
        src=StringIO(render("certbot-deploy-hook.sh.j2")),
        dest=DEPLOY_HOOK,
        mode="755",
    )
    if tls.acme_ca_bundle:
        dropin = put(
            name="Trust the ACME server's CA in renewals",
            src=StringIO(render("certbot-env.conf.j2", ca_bundle=tls.acme_ca_bundle)),
            dest=CERTBOT_ENV_DROPIN,
            mode="644",
        )
    else:
        dropin = file(name="No extra CA for renewals", path=CERTBOT_ENV_DROPIN, present=False)
    service(
        name="Renew certificates on certbot.timer",
        service="certbot.timer",
        running=True,
        enabled=True,
        daemon_reload=dropin.will_change,
    )
