"""[[apps.routes]] and [web.rate_limits]: what the config accepts, and the one line each mistake gets."""

from __future__ import annotations

import pytest

from operations.config import ConfigError, parse_config
from operations.config.apps import Cors, Route

LEARNUP = {
    "name": "learnup",
    "kind": "compose",
    "port": 3000,
    "repo": "https://g.example/learnup.git",
    "compose_file": "compose.yaml",
    "domains": ["learnup.example.test", "api.learnup.example.test"],
    "routes": [
        {"path": "/", "domains": ["api.learnup.example.test"], "upstream": "api:5000", "rate_limit": "api", "burst": 20},
        {"path": "/api/", "upstream": "api:5000", "rate_limit": "api", "burst": 20, "headers": {"X-Frame-Options": "DENY"},
         "cors": {"origins": ["https://learnup.example.test"]}},
        {"path": "/socket.io/", "upstream": "api:5000", "websocket": True, "read_timeout": "24h"},
        {"path": "/face/", "upstream": "frs:8000", "read_timeout": "60s", "rate_limit": "general", "burst": 10},
        {"path": "/uploads/", "static": "/var/www/learnup/uploads", "cache": "30d immutable"},
        {"path": "/health", "upstream": "api:5000"},
    ],
}  # fmt: skip
ZONES = {"rate_limits": {"api": "10r/s", "general": "30r/s"}}


def parse(minimal_raw, tmp_path, app, web=None):
    minimal_raw["apps"] = [app]
    minimal_raw["web"] = ZONES if web is None else web
    return parse_config(minimal_raw, base_dir=str(tmp_path))


def problems(minimal_raw, tmp_path, app, web=None) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse(minimal_raw, tmp_path, app, web)
    return e.value.problems


def test_routes_and_zones_are_read(minimal_raw, tmp_path):
    cfg = parse(minimal_raw, tmp_path, LEARNUP)
    routes = cfg.apps[0].routes
    assert cfg.web.rate_limits == {"api": "10r/s", "general": "30r/s"}
    assert routes[0] == Route(path="/", domains=("api.learnup.example.test",), upstream="api:5000", rate_limit="api", burst=20)
    assert routes[1].cors == Cors(origins=("https://learnup.example.test",))
    assert routes[1].cors.methods == ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    assert (routes[4].static, routes[4].cache) == ("/var/www/learnup/uploads", "30d immutable")


def test_an_app_without_routes_has_none(minimal_raw, tmp_path):
    app = {k: v for k, v in LEARNUP.items() if k != "routes"}
    cfg = parse(minimal_raw, tmp_path, app, web={})
    assert (cfg.apps[0].routes, cfg.apps[0].headers, cfg.web.rate_limits) == ((), {}, {})


def with_route(j, **change):
    routes = [dict(r) for r in LEARNUP["routes"]]
    routes[j].update(change)
    routes[j] = {k: v for k, v in routes[j].items() if v is not None}
    return {**LEARNUP, "routes": routes}


@pytest.mark.parametrize(
    "app, web, where, fragment",
    [
        (with_route(1, rate_limit="apii"), None, "apps[0].routes[1].rate_limit", "'apii' is not a zone of [web.rate_limits] (api, general)"),
        (with_route(1, rate_limit=None), None, "apps[0].routes[1].burst", "only with rate_limit"),
        (LEARNUP, {"proxy": "caddy", **ZONES}, "web.rate_limits", "Caddy has no rate limiting"),
        (LEARNUP, {"rate_limits": {"api": "ten per second", "general": "30r/s"}}, "web.rate_limits.api", "a rate like '10r/s'"),
        (LEARNUP, {"rate_limits": {"Api-1": "10r/s"}}, "web.rate_limits.Api-1", "zone name"),
        (with_route(2, domains=["socket.example.test"]), None, "apps[0].routes[2].domains[0]", "not one of the app's domains"),
        (with_route(2, path="/api/"), None, "apps[0].routes[2].path", "'/api/' on learnup.example.test is already routed by routes[1]"),
        (with_route(2, path="api"), None, "apps[0].routes[2].path", "a URL path starting with '/'"),
        (with_route(4, upstream="api:5000"), None, "apps[0].routes[4].upstream", "not used with static"),
        (with_route(3, cache="30d"), None, "apps[0].routes[3].cache", "only with static"),
        (with_route(4, path="/logo.png"), None, "apps[0].routes[4].static", "needs a prefix path ending in '/'"),
        (with_route(4, cache="forever"), None, "apps[0].routes[4].cache", "a duration like '30d'"),
        (with_route(5, strip_prefix=True), None, "apps[0].routes[5].strip_prefix", "a prefix path ending in '/'"),
        (with_route(3, upstream="frs:99999"), None, "apps[0].routes[3].upstream", "1-65535"),
        (with_route(3, upstream="http://frs:8000"), None, "apps[0].routes[3].upstream", "'service:port'"),
        (with_route(3, upstream="443"), None, "apps[0].routes[3].upstream", "reserved"),
        (with_route(3, read_timeout="1 day"), None, "apps[0].routes[3].read_timeout", "a duration like '60s'"),
        (with_route(1, headers={"X Frame": "DENY"}), None, "apps[0].routes[1].headers.X Frame", "not an HTTP header name"),
        (with_route(1, headers={"X-Note": 'say "hi"'}), None, "apps[0].routes[1].headers.X-Note", "without double quotes"),
        (with_route(1, cors={"origins": ["learnup.example.test"]}), None, "apps[0].routes[1].cors.origins[0]", "an origin like"),
        (with_route(1, cors={"origins": ["*"], "credentials": True}), None, "apps[0].routes[1].cors.credentials", "origins = [\"*\"]"),
        (with_route(1, cors={"origins": ["*"], "methods": ["FETCH"]}), None, "apps[0].routes[1].cors.methods[0]", "must be one of"),
        (with_route(5, basic_auth={"user": "admin", "hash": "$2a$14$" + "a" * 53}), None, "apps[0].routes[5].basic_auth",
         'only with [web] proxy = "caddy"'),
        (with_route(5, max_body_size="50 MB"), None, "apps[0].routes[5].max_body_size", "a size like '10m'"),
        ({**LEARNUP, "kind": "flask", "compose_file": ""}, None, "apps[0].routes[0].upstream", 'is not kind = "compose"'),
        ({**LEARNUP, "domains": []}, None, "apps[0].routes", "need the app's domains"),
        ({**LEARNUP, "headers": {"Content-Security-Policy": "a\nb"}}, None, "apps[0].headers.Content-Security-Policy", "one line"),
        ({**LEARNUP, "api_upstream": "127.0.0.1:5010"}, {"proxy": "caddy"}, "apps[0].api_upstream", "replaced by routes"),
        ({**LEARNUP, "rate_limit": "10r/s"}, None, "apps[0].rate_limit", "replaced by routes"),
    ],
)  # fmt: skip
def test_route_mistakes_are_one_line_naming_the_field(minimal_raw, tmp_path, app, web, where, fragment):
    if web and web.get("proxy") == "caddy":
        app = {**app, "routes": [{k: v for k, v in r.items() if k not in ("rate_limit", "burst")} for r in app["routes"]]}
    found = [p for p in problems(minimal_raw, tmp_path, app, web) if p.startswith(where + ":")]
    assert len(found) == 1 and fragment in found[0], found
