"""[server]: the address must be reachable; the hardened SSH port must not be the proxy's; package sources are plain http(s) URLs."""

from __future__ import annotations

from .base import Checker, is_domain, is_ip, url_problem


def check(c: Checker, config) -> None:
    s = config.server
    if not s.address or any(ch.isspace() for ch in s.address):
        c.add("server.address", f"must be an IP address, a host name or a pyinfra connector, got {s.address!r}")
    elif s.uses_ssh and not is_ip(s.address) and not is_domain(s.address) and s.address != "localhost":
        c.add("server.address", f"{s.address!r} is neither an IP address nor a valid host name")
    if s.ssh_port in (80, 443):
        c.add("server.ssh_port", f"{s.ssh_port} is nginx's port")
    problem = s.apt_proxy and url_problem(s.apt_proxy, address_only=True)
    if problem:
        c.add("server.apt_proxy", problem)
    problem = s.pip_index_url and url_problem(s.pip_index_url)
    if problem:
        c.add("server.pip_index_url", problem)
