"""What the front proxy (nginx or Caddy) serves for one app: its names, its loopback port, its limits.

The site templates read these attributes as ``app`` (a user's own template too); vpskit's
plan fills them from each app's config, its routes resolved (``operations.routes``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Login:
    """HTTP basic auth in front of a site (Caddy only): a user and the bcrypt hash of the password."""

    user: str
    hash: str


@dataclass(frozen=True)
class Site:
    """One app behind the proxy: ``domains`` (the first is the main one) -> 127.0.0.1:``port``."""

    name: str
    domains: tuple[str, ...]
    port: int
    # nginx client_max_body_size.
    max_body_size: str = "10m"
    # URL path nginx serves the app's static directory at (with ``static_path`` given to ``site_text``).
    static_url: str = "/static/"
    # nginx request rate limit per client address, e.g. "10r/s"; empty: none.
    rate_limit: str = ""
    rate_burst: int = 20
    # Caddy only: a second upstream ("127.0.0.1:5003") serving /api/* with the prefix stripped.
    api_upstream: str = ""
    # Caddy only: HTTP basic auth for the whole site.
    basic_auth: Login | None = None
    # Response headers over vpskit's security headers (a "" value removes one), for sites with routes.
    headers: tuple[tuple[str, str], ...] = ()
    # Paths served by other upstreams or host directories (``operations.routes.Route``); the app's port serves the rest.
    routes: tuple = ()
    # The request-rate zones its routes name: (name, rate like "10r/s"), each counted per client address for this site.
    zones: tuple[tuple[str, str], ...] = ()
