"""[first_login]: its key file must be a private key."""

from __future__ import annotations

from .base import Checker


def check(c: Checker, config) -> None:
    if config.first_login.key:
        c.key_file("first_login.key", config.first_login.key, public=False)
