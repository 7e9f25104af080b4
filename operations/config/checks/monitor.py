"""[monitor]: the load threshold is above zero; each notifier has what its kind needs; Prometheus's ports are free."""

from __future__ import annotations

import re

from ..stack import PROMETHEUS_PORTS
from .base import Checker, is_domain, is_ip

URL_RE = re.compile(r"^https?://[^\s/]+\S*$")
EMAIL_RE = re.compile(r"^[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+$")
EMAIL_ONLY = ("smtp_host", "smtp_user", "password_env", "mail_from", "mail_to")


def check(c: Checker, config) -> None:
    m = config.monitor
    if m.max_load_per_core <= 0:
        c.add("monitor.max_load_per_core", f"must be more than 0, got {m.max_load_per_core}")
    if m.prometheus:
        for i, app in enumerate(config.apps):
            if app.port in PROMETHEUS_PORTS:
                c.add(
                    f"apps[{i}].port",
                    f"{app.port} is taken by Prometheus on this host (prometheus = true uses {', '.join(map(str, PROMETHEUS_PORTS))})",
                )
    for i, n in enumerate(m.notify):
        where = f"monitor.notify[{i}]"
        if n.kind == "email":
            _email(c, where, n)
        else:
            if not URL_RE.match(n.url):
                c.add(f"{where}.url", f"must be an http:// or https:// URL, got {n.url!r}")
            for name in EMAIL_ONLY:
                if getattr(n, name):
                    c.add(f"{where}.{name}", 'is used only by kind = "email"')


def _email(c: Checker, where: str, n) -> None:
    if n.url:
        c.add(f"{where}.url", 'is not used by kind = "email" (smtp_host is)')
    if not (is_domain(n.smtp_host) or is_ip(n.smtp_host) or n.smtp_host == "localhost"):
        c.add(f"{where}.smtp_host", f"must be the SMTP relay's host name or address, got {n.smtp_host!r}")
    if not EMAIL_RE.match(n.mail_from):
        c.add(f"{where}.mail_from", f"must be an e-mail address, got {n.mail_from!r}")
    if not n.mail_to:
        c.add(f"{where}.mail_to", "list at least one e-mail address")
    for j, addr in enumerate(n.mail_to):
        if not EMAIL_RE.match(addr):
            c.add(f"{where}.mail_to[{j}]", f"{addr!r} is not an e-mail address")
    if bool(n.smtp_user) != bool(n.password_env):
        c.add(f"{where}.password_env" if n.smtp_user else f"{where}.smtp_user", "smtp_user and password_env go together (the relay login)")
    elif n.password_env and not n.password():
        c.add(f"{where}.password_env", f"environment variable {n.password_env} is not set (the SMTP relay password)")
    if n.smtp_user and n.smtp_security == "none":
        c.add(f"{where}.smtp_security", '"none" would send the relay password in clear: use starttls or ssl')
