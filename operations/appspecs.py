"""One app of vpskit's config as the specs its operations take: paths, code, venv or compose app, site and routes.

``Plan`` uses these for every app of the config; a test or a tool may use them for one.
"""

from __future__ import annotations

import dataclasses

from .app import VenvAppSpec, pip_packages, worker_class
from .checkout import AppPaths
from .compose import ComposeSpec
from .config import App, Web
from .monitor import AppCheck
from .routes import DEFAULT_READ_TIMEOUT, Cors, Route, cache_control
from .sites import Login, Site


def app_paths(app: App, web_cfg: Web) -> AppPaths:
    """Where ``app`` lives on the host, by the ``[web]`` section."""
    return AppPaths(app.name, web_cfg.apps_dir, web_cfg.log_dir, app.app_dir, released=bool(app.repo) and not app.is_compose)


def code_of(app: App) -> dict:
    """The ``checkout.Code`` fields of ``app``: repo, deploy key, what its ``.env`` holds."""
    return dict(
        name=app.name,
        repo=app.repo,
        ref=app.ref,
        deploy_key=bool(app.deploy_key),
        env=dict(app.env),
        secrets=app.secrets,
        postgres=app.database.uses_postgres,
        db_name=app.db_name,
        db_role=app.db_role,
    )


def venv_spec(app: App) -> VenvAppSpec:
    """``app_present``'s spec of a venv app: the worker class and pip packages its config implies."""
    same = ("port", "entry", "workers", "threads", "timeout", "health_path", "health_timeout", "app_dir")
    same += ("install", "requirements")
    same += ("build", "build_dir", "migrate", "seed", "keep_releases", "shared_paths")
    fields = {name: getattr(app, name) for name in same}
    return VenvAppSpec(**code_of(app), **fields, worker_class=worker_class(app), packages=tuple(pip_packages(app)))


def compose_spec(app: App) -> ComposeSpec:
    """``compose_app``'s spec of a compose app; its port is proxied when it has domains."""
    same = ("compose_file", "port", "public_services", "health_timeout", "service", "migrate", "seed")
    routes = tuple(r.upstream for r in app.routes)
    return ComposeSpec(**code_of(app), **{name: getattr(app, name) for name in same}, proxied=bool(app.domains), route_upstreams=routes)


def spec(cls, section, **given):
    """A ``cls`` spec with every other field copied from the config ``section`` (same names)."""
    names = [f.name for f in dataclasses.fields(cls) if f.name not in given]
    return cls(**{name: getattr(section, name) for name in names}, **given)


def login(auth) -> Login | None:
    return Login(auth.user, auth.hash) if auth is not None else None


def upstream_address(app: App, upstream: str) -> str:
    """A route's ``upstream`` ('5000', or a compose 'service:5000' published on loopback) as the proxy dials it."""
    return f"127.0.0.1:{upstream.rpartition(':')[2] if upstream else app.port}"


def route_spec(app: App, r) -> Route:
    """One ``[[apps.routes]]`` entry as the proxies' route model."""
    return Route(
        path=r.path,
        domains=r.domains,
        upstream="" if r.static else upstream_address(app, r.upstream),
        strip_prefix=r.strip_prefix,
        websocket=r.websocket,
        read_timeout=r.read_timeout or DEFAULT_READ_TIMEOUT,
        rate_limit=r.rate_limit,
        burst=r.burst,
        max_body_size=r.max_body_size,
        headers=tuple(r.headers.items()),
        cors=spec(Cors, r.cors) if r.cors is not None else None,
        static=r.static.rstrip("/"),
        cache_control=cache_control(r.cache),
        basic_auth=login(r.basic_auth),
    )


def site_spec(app: App, rate_limits: dict[str, str]) -> Site:
    """What the front proxy serves for ``app``: its names, port, limits, headers, routes and the zones they use."""
    used = dict.fromkeys(r.rate_limit for r in app.routes if r.rate_limit)
    return spec(
        Site,
        app,
        basic_auth=login(app.basic_auth),
        headers=tuple(app.headers.items()),
        routes=tuple(route_spec(app, r) for r in app.routes),
        zones=tuple((name, rate_limits[name]) for name in used),
    )


def route_checks(app: App) -> list[AppCheck]:
    """One check through the proxy per route with an upstream: its path, on the first of its domains."""
    return [
        AppCheck(
            f"{app.name} {r.path}",
            "",
            f"https://127.0.0.1{r.path}",
            (r.domains or app.domains)[0],
            basic_auth=r.basic_auth is not None or app.basic_auth is not None,
        )
        for r in app.routes
        if not r.static
    ]
