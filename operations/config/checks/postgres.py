"""[postgres]: its port is not taken by sshd, the proxy or an app."""

from __future__ import annotations

from .base import Checker


def check(c: Checker, config) -> None:
    port = config.postgres.port
    if port in (config.server.ssh_port, 80, 443) or port in {a.port for a in config.apps}:
        c.add("postgres.port", f"{port} is already used by sshd, nginx or an app")
