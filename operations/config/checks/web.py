"""[web]: app and log directories of their own, templates that exist, Caddy-only settings only with Caddy."""

from __future__ import annotations

from .base import Checker
from .routes import check_zones


def check(c: Checker, config) -> None:
    w = config.web
    for name in ("apps_dir", "log_dir"):
        value = getattr(w, name)
        if not value.startswith("/") or value.rstrip("/") in ("", "/etc", "/usr", "/var", "/home"):
            c.add(f"web.{name}", f"must be an absolute directory of its own, got {value!r}")
    for name in ("site_template", "caddyfile_template"):
        value = getattr(w, name)
        if value and not config.path(value).is_file():
            c.add(f"web.{name}", f"file {str(config.path(value))!r} does not exist")
        elif value and name == "caddyfile_template" and w.proxy != "caddy":
            c.add("web.caddyfile_template", 'is used only with proxy = "caddy"')
    check_zones(c, config)
