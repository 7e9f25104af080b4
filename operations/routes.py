"""What a multi-service site is made of: routes (a path to an upstream or a host directory, with its own limits and
headers) grouped into the server blocks of one site, proxy-neutral.

The nginx site template and the Caddyfile both render from these specs, so one config gives the same behaviour
under either proxy. A path ending in ``/`` is a prefix; any other path matches itself only.

    servers = site_servers(Site("a", ("a.example.com",), 3000, routes=(Route("/api/", upstream="127.0.0.1:5000"),)), 63072000)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .sites import Login, Site

# Idle time the proxy allows an upstream when a route does not say (what vpskit's site has always used).
DEFAULT_READ_TIMEOUT = "3600s"
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ONE_YEAR = 31536000


@dataclass(frozen=True)
class Cors:
    """Cross-origin requests a route allows; preflights (OPTIONS from an allowed origin) are answered 204 by the proxy."""

    origins: tuple[str, ...]
    methods: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    headers: tuple[str, ...] = ("Authorization", "Content-Type")
    credentials: bool = False
    max_age: int = 86400

    @property
    def any_origin(self) -> bool:
        return "*" in self.origins

    @property
    def response_headers(self) -> tuple[tuple[str, str], ...]:
        """What every answer of the route carries; only an allowed origin also gets ``Access-Control-Allow-Origin``."""
        headers = [
            ("Access-Control-Allow-Methods", ", ".join(self.methods)),
            ("Access-Control-Allow-Headers", ", ".join(self.headers)),
            ("Access-Control-Max-Age", str(self.max_age)),
        ]
        if self.credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return (*headers, ("Vary", "Origin"))


@dataclass(frozen=True)
class Route:
    """One path of a site: proxied to ``upstream`` (``127.0.0.1:PORT``) or served from the host directory ``static``.

    ``headers`` are the route's own response headers over the site's (a ``""`` value removes one); in a ``Server``
    they are the whole set, and ``removed`` names the headers it must not carry, the upstream's own included.
    """

    path: str
    # Which of the site's domains the route is on; empty: all.
    domains: tuple[str, ...] = ()
    upstream: str = ""
    strip_prefix: bool = False
    websocket: bool = False
    read_timeout: str = DEFAULT_READ_TIMEOUT
    # A zone of the proxy's rate limits (nginx), and the requests allowed above its rate before 429s.
    rate_limit: str = ""
    burst: int = 0
    # Largest request body; empty: the site's.
    max_body_size: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    removed: tuple[str, ...] = ()
    cors: Cors | None = None
    static: str = ""
    cache_control: str = ""
    basic_auth: Login | None = None
    # Set in a ``Server``: names what the proxy's config keeps for this route (``<block>_<route>``, from 1).
    key: str = ""

    @property
    def prefix(self) -> bool:
        """Whether the path is a prefix (ends in ``/``) rather than one exact path."""
        return self.path.endswith("/")

    @property
    def hidden(self) -> tuple[str, ...]:
        """Headers of the upstream's answer replaced or removed by the proxy."""
        return tuple(dict.fromkeys([*(name for name, _ in self.headers), *self.removed]))


@dataclass(frozen=True)
class Server:
    """One server (site) block: the domains that share the same routes, longest path first."""

    domains: tuple[str, ...]
    routes: tuple[Route, ...]


def security_headers(hsts_max_age: int, overrides: tuple[tuple[str, str], ...] = ()) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """vpskit's security headers (HSTS when ``hsts_max_age``) with ``overrides`` over them: (headers, names removed)."""
    headers = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "SAMEORIGIN"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ]
    if hsts_max_age:
        headers.insert(0, ("Strict-Transport-Security", f"max-age={hsts_max_age}; includeSubDomains"))
    return merged_headers(tuple(headers), (), overrides)


def merged_headers(
    headers: tuple[tuple[str, str], ...], removed: tuple[str, ...], overrides: tuple[tuple[str, str], ...]
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """``headers`` (and ``removed``) with ``overrides`` over them; a ``""`` value removes that header."""
    by_name = {name.lower(): (name, value) for name, value in headers}
    gone = {name.lower(): name for name in removed}
    for name, value in overrides:
        key = name.lower()
        if value == "":
            by_name.pop(key, None)
            gone[key] = name
        else:
            by_name[key] = (name, value)
            gone.pop(key, None)
    return tuple(by_name.values()), tuple(gone.values())


def seconds(duration: str) -> int:
    """``"30d"`` -> 2592000."""
    return int(duration[:-1]) * SECONDS[duration[-1]]


def cache_control(cache: str) -> str:
    """The ``Cache-Control`` of a static route's files: ``"30d"``, ``"immutable"`` (one year) or ``"30d immutable"``."""
    if not cache:
        return ""
    parts = cache.split()
    age = next((seconds(p) for p in parts if p != "immutable"), ONE_YEAR)
    return f"public, max-age={age}" + (", immutable" if "immutable" in parts else "")


def caddy_size(size: str) -> str:
    """An nginx size (``"50m"``: binary units, bytes without one) as Caddy writes it (``"50MiB"``)."""
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", size).groups()
    return number + {"": "B", "k": "KiB", "m": "MiB", "g": "GiB"}[unit.lower()]


def site_servers(site: Site, hsts_max_age: int) -> tuple[Server, ...]:
    """The server blocks of a site with routes (none without): each domain gets the routes on all domains or naming
    it, and the app's ``port`` at ``/`` where no route takes ``/`` (WebSockets passed, as a site without routes);
    domains with the same routes share a block. Each route's headers become its whole set.
    """
    if not site.routes:
        return ()
    base, removed = security_headers(hsts_max_age, site.headers)
    default = Route("/", upstream=f"127.0.0.1:{site.port}", websocket=True)
    groups: dict[tuple[Route, ...], list[str]] = {}
    for domain in site.domains:
        mine = [route for route in site.routes if not route.domains or domain in route.domains]
        if not any(route.path == "/" for route in mine):
            mine.append(default)
        groups.setdefault(tuple(sorted(mine, key=lambda r: (-len(r.path), r.path))), []).append(domain)
    servers = []
    for i, (routes, names) in enumerate(groups.items(), 1):
        resolved = []
        for j, route in enumerate(routes, 1):
            cache = (("Cache-Control", route.cache_control),) if route.cache_control else ()
            cors = route.cors.response_headers if route.cors else ()
            headers, gone = merged_headers(base, removed, (*route.headers, *cache, *cors))
            size = route.max_body_size or site.max_body_size
            resolved.append(replace(route, domains=(), headers=headers, removed=gone, max_body_size=size, key=f"{i}_{j}"))
        servers.append(Server(tuple(names), tuple(resolved)))
    return tuple(servers)
