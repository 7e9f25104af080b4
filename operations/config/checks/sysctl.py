"""[sysctl]: only vpskit's own keys can be left out; added keys are well formed, values one line."""

from __future__ import annotations

from .base import Checker


def check(c: Checker, config) -> None:
    from ...sysctl import HARDENING, KEY_RE

    sysctl = config.sysctl
    for i, key in enumerate(sysctl.disable):
        if key not in HARDENING:
            c.add(f"sysctl.disable[{i}]", f"{key!r} is not one of vpskit's sysctl settings")
    for key, value in sysctl.values.items():
        if not KEY_RE.match(key):
            c.add(f"sysctl.values.{key}", "is not a sysctl key like 'net.ipv4.tcp_syncookies'")
        elif not value.strip() or any(ch in value for ch in "\n\r="):
            c.add(f"sysctl.values.{key}", "must be a one-line value")
