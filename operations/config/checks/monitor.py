"""[monitor]: the load threshold is above zero."""

from __future__ import annotations

from .base import Checker


def check(c: Checker, config) -> None:
    m = config.monitor
    if m.max_load_per_core <= 0:
        c.add("monitor.max_load_per_core", f"must be more than 0, got {m.max_load_per_core}")
