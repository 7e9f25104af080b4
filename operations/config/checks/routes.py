"""[[apps.routes]] and [web.rate_limits]: zones that exist, domains of the app, one upstream or directory per route,
and what the chosen front proxy cannot do."""

from __future__ import annotations

import re

from ..apps import HEADER_NAME
from .base import Checker, is_port

ZONE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
RATE = re.compile(r"^[1-9]\d*r/[sm]$")
HEADER_RE = re.compile(HEADER_NAME)
# Settings of a route that only mean something for an upstream.
UPSTREAM_ONLY = ("strip_prefix", "websocket", "read_timeout")


def check_zones(c: Checker, config) -> None:
    """``[web.rate_limits]``: names nginx accepts, rates like '10r/s'; none under Caddy."""
    for name, rate in config.web.rate_limits.items():
        where = f"web.rate_limits.{name}"
        if not ZONE_NAME.match(name):
            c.add(where, "a zone name must be lowercase letters, digits and _ (starting with a letter)")
        elif not isinstance(rate, str) or not RATE.match(rate):
            c.add(where, f"must be a rate like '10r/s' or '300r/m', got {rate!r}")
    if config.web.rate_limits and config.web.proxy == "caddy":
        c.add("web.rate_limits", 'needs [web] proxy = "nginx": the distro\'s Caddy has no rate limiting')


def check_headers(c: Checker, where: str, headers: dict) -> None:
    """Header names and one-line values without double quotes (both proxies quote them)."""
    for name, value in headers.items():
        if not HEADER_RE.match(name):
            c.add(f"{where}.{name}", "is not an HTTP header name (letters, digits, -)")
        elif not isinstance(value, str) or any(ch in value for ch in '"\\\n\r\0'):
            c.add(f"{where}.{name}", "must be one line of text without double quotes or backslashes")


def check(c: Checker, where: str, app, config) -> None:
    """One app's ``headers`` and ``routes``."""
    check_headers(c, f"{where}.headers", app.headers)
    if not app.routes:
        return
    proxy = config.web.proxy
    if not app.domains:
        c.add(f"{where}.routes", "need the app's domains (a site to be routes of)")
    if app.api_upstream:
        c.add(f"{where}.api_upstream", 'is replaced by routes: add a route path = "/api/" with strip_prefix = true')
    if app.rate_limit:
        c.add(f"{where}.rate_limit", 'is replaced by routes: name a [web.rate_limits] zone in a route path = "/"')
    seen: dict[tuple[str, str], int] = {}
    for j, route in enumerate(app.routes):
        w = f"{where}.routes[{j}]"
        for k, domain in enumerate(route.domains):
            if domain not in app.domains:
                c.add(f"{w}.domains[{k}]", f"{domain!r} is not one of the app's domains ({', '.join(app.domains) or 'none'})")
        clash = [(d, seen[(d, route.path)]) for d in route.domains or app.domains if (d, route.path) in seen]
        if clash:
            c.add(f"{w}.path", f"{route.path!r} on {clash[0][0]} is already routed by routes[{clash[0][1]}]")
        seen.update({(d, route.path): j for d in route.domains or app.domains if (d, route.path) not in seen})
        _check_target(c, w, app, route, config)
        _check_limits(c, w, route, config)
        check_headers(c, f"{w}.headers", route.headers)
        if route.basic_auth is not None and proxy != "caddy":
            c.add(f"{w}.basic_auth", 'is used only with [web] proxy = "caddy"')
        if route.cors is not None and route.cors.credentials and "*" in route.cors.origins:
            c.add(f"{w}.cors.credentials", 'cannot be true with origins = ["*"] (browsers refuse it)')


def _check_target(c: Checker, w: str, app, route, config) -> None:
    """An upstream or a directory (not both); a service only for compose apps; prefix settings on prefix paths."""
    if route.static and not route.path.endswith("/"):
        c.add(f"{w}.static", f"needs a prefix path ending in '/' (the directory is served below it), got {route.path!r}")
    if route.static:
        for name in ("upstream", *UPSTREAM_ONLY):
            if getattr(route, name):
                c.add(f"{w}.{name}", "is not used with static (the proxy serves the directory itself)")
    elif route.cache:
        c.add(f"{w}.cache", "is used only with static (a host directory)")
    if route.strip_prefix and (route.path == "/" or not route.path.endswith("/")):
        c.add(f"{w}.strip_prefix", f"needs a prefix path ending in '/' other than '/', got {route.path!r}")
    service, _, port = route.upstream.rpartition(":")
    if not port.isdigit():
        return
    if not is_port(int(port)):
        c.add(f"{w}.upstream", f"must name a port number 1-65535, got {route.upstream!r}")
    elif int(port) in (config.server.ssh_port, config.first_login.port, 80, 443):
        c.add(f"{w}.upstream", f"{port} is reserved for sshd or the front proxy")
    if service and not app.is_compose:
        c.add(f"{w}.upstream", f'{route.upstream!r} names a compose service, but app {app.name} is not kind = "compose"')


def _check_limits(c: Checker, w: str, route, config) -> None:
    zones = config.web.rate_limits
    if route.rate_limit and route.rate_limit not in zones:
        offer = ", ".join(zones) or "none defined"
        c.add(f"{w}.rate_limit", f"{route.rate_limit!r} is not a zone of [web.rate_limits] ({offer})")
    if route.burst and not route.rate_limit:
        c.add(f"{w}.burst", "is used only with rate_limit")
