"""[firewall]: each rule's source is an address or network."""

from __future__ import annotations

from .base import Checker


def check(c: Checker, config) -> None:
    for i, rule in enumerate(config.firewall.allow):
        if rule.source:
            c.network(f"firewall.allow[{i}].source", rule.source)
