"""[fail2ban]: each never-banned entry is an address or network."""

from __future__ import annotations

from .base import Checker


def check(c: Checker, config) -> None:
    for i, addr in enumerate(config.fail2ban.ignoreip):
        c.network(f"fail2ban.ignoreip[{i}]", addr)
