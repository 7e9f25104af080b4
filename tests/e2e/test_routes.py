"""Routes end to end: the example's learnup app (examples/apps/learnup, three stand-in services in one compose
project) behind nginx, then behind Caddy, with the routes of examples/vpskit.toml.

Ubuntu 24.04 with a nested Docker Engine, as tests/e2e/test_containers.py. Each path and host name reaches its
service; /api/ loses its prefix and /face/ keeps it; a WebSocket through /socket.io/ stays open past nginx's
default 60 s read timeout; a burst on /api/ gets 429s while / answers; the CORS preflight, the overridden headers
and the /uploads/ cache header are what the config says; the compose job runs in the api container; the health
report asks every route; a second run changes nothing. Under Caddy the same, less rate limiting, which the
distro's Caddy cannot do and the config refuses before the host is touched.
"""

from __future__ import annotations

import json
import re
import time
import tomllib

import pytest

from tests.images import build_compose_base
from tests.rig import ROOT, start_target
from tests.web_fixtures import Host, https_get, load_images, prepare_web_target, use_local_images, with_caddy

pytestmark = pytest.mark.e2e

SITE, API = "learnup.example.test", "api.learnup.example.test"
ORIGIN = f"https://{SITE}"
UPLOADS = "/var/www/learnup/uploads"
PROBE = "/root/ws_probe.py"
# Longer than nginx's default proxy_read_timeout (60 s), which the /socket.io/ route's 24 h replaces.
IDLE = 65


def learnup_config() -> dict:
    raw = tomllib.loads((ROOT / "examples" / "vpskit.toml").read_text())
    raw["server"].update(upgrade="none", packages=[])
    raw["tls"].pop("email", None)
    raw["apps"] = [a for a in raw["apps"] if a["name"] == "learnup"]
    return raw


class Learnup(Host):
    """The target, and how the tests ask it through the front proxy."""

    def get(self, url: str, *args: str):
        return https_get(self.target, url, *args)

    def json(self, url: str, *args: str) -> dict:
        r = self.get(url, "-f", *args)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout)

    def headers(self, url: str, *args: str) -> dict[str, str]:
        """The response headers (names lowercased; repeated ones joined with ', ')."""
        r = self.get(url, "-s -o /dev/null -D -", *args)
        found: dict[str, str] = {}
        for line in r.stdout.splitlines()[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                key = name.strip().lower()
                found[key] = f"{found[key]}, {value.strip()}" if key in found else value.strip()
        found["status"] = r.stdout.split(" ", 2)[1] if r.stdout else ""
        return found

    def websocket(self, path: str, idle: float) -> dict:
        out = self.target.out(f"python3 {PROBE} {SITE} '{path}' {idle} /etc/pebble/issuing-root.pem")
        return json.loads(out)


@pytest.fixture(scope="module", params=["ubuntu2404"])
def learnup(request, docker_engine, deployed_images, keys, tmp_path_factory):
    base = build_compose_base(docker_engine)
    target = start_target(docker_engine, deployed_images(request.param), request.param, publish=(), nested_docker=True)
    try:
        h = Learnup(target, keys, tmp_path_factory.mktemp("routes"))
        raw = use_local_images(prepare_web_target(target, learnup_config()), base)
        h.raw = raw
        engine_only = json.loads(json.dumps(raw))
        engine_only["apps"] = []
        engine_only["docker"]["enabled"] = True
        h.deploy("engine", engine_only)
        load_images(target, [base])
        target.exec(f"mkdir -p {UPLOADS} && echo 'a picture' > {UPLOADS}/logo.txt && chmod -R a+rX /var/www/learnup")
        target.put_file(PROBE, (ROOT / "tests" / "ws_probe.py").read_text())
        h.deploy("nginx", raw)
        h.deploy("nginx-again", raw)
        yield h
    finally:
        target.remove()


def test_nginx_second_run_changes_nothing(learnup):
    run = learnup.runs["nginx-again"]
    assert (run.changed, run.errors) == (0, 0), f"changed: {run.changed_ops}\n{run}"


def paths_reach_their_services(h) -> None:
    assert h.json(f"https://{SITE}/")["service"] == "frontend"
    assert h.json(f"https://{SITE}/courses/7")["path"] == "/courses/7"
    api = h.json(f"https://{SITE}/api/courses?page=2")
    assert (api["service"], api["path"], api["proto"]) == ("api", "/courses?page=2", "https")  # strip_prefix
    face = h.json(f"https://{SITE}/face/match")
    assert (face["service"], face["path"]) == ("frs", "/face/match")  # no strip_prefix: the path as asked
    assert h.json(f"https://{SITE}/health")["service"] == "api"
    assert h.json(f"https://{SITE}/healthz")["service"] == "frontend"  # /health is one exact path
    on_api_host = h.json(f"https://{API}/courses")
    assert (on_api_host["service"], on_api_host["host"]) == ("api", API)
    assert h.json(f"https://{API}/socket.io/")["service"] == "api"


def test_nginx_each_path_and_host_reaches_its_service(learnup):
    paths_reach_their_services(learnup)


def websocket_outlives_the_default_timeout(h) -> None:
    ws = h.websocket("/socket.io/?EIO=4&transport=websocket", IDLE)
    assert ws["status"] == 101 and ws["error"] is None, ws
    assert ws["first"] == {"service": "api", "echo": "hello"}
    assert ws["after_idle"] == {"service": "api", "echo": "still here"} and ws["seconds"] >= IDLE, ws
    # A route without websocket = true passes no upgrade on: the API answers plain HTTP.
    assert h.websocket("/api/chat", 0)["status"] == 200


def test_nginx_websocket_stays_open_past_the_default_read_timeout(learnup):
    websocket_outlives_the_default_timeout(learnup)


def test_nginx_a_burst_on_the_api_gets_429_while_the_frontend_answers(learnup):
    t = learnup.target
    codes = t.out(
        "for i in $(seq 60); do curl -s -o /dev/null -w '%{http_code}\\n' --cacert /etc/pebble/issuing-root.pem "
        f"https://{SITE}/api/ping & done; wait"
    ).split()
    assert codes.count("429") >= 20 and codes.count("200") >= 20, codes
    assert learnup.get(f"https://{SITE}/", "-s -o /dev/null -w '%{http_code}'").stdout == "200"
    time.sleep(3)  # the zone drains: 10 r/s
    assert learnup.get(f"https://{SITE}/api/ping", "-s -o /dev/null -w '%{http_code}'").stdout == "200"


def headers_are_the_configs(h) -> None:
    pre = h.headers(f"https://{SITE}/api/courses", f"-X OPTIONS -H 'Origin: {ORIGIN}' -H 'Access-Control-Request-Method: POST'")
    assert pre["status"] == "204" and pre["access-control-allow-origin"] == ORIGIN, pre
    assert pre["access-control-allow-methods"] == "GET, POST, PUT, DELETE, OPTIONS"
    assert "Origin" in pre["vary"]
    other = h.headers(f"https://{SITE}/api/courses", "-X OPTIONS -H 'Origin: https://elsewhere.example'")
    assert other["status"] == "200" and "access-control-allow-origin" not in other, other  # the API's own answer
    api = h.headers(f"https://{SITE}/api/courses", f"-H 'Origin: {ORIGIN}'")
    assert api["x-frame-options"] == "DENY" and api["access-control-allow-origin"] == ORIGIN, api  # the API's own SAMEORIGIN replaced
    front = h.headers(f"https://{SITE}/")
    assert front["x-frame-options"] == "SAMEORIGIN" and front["x-content-type-options"] == "nosniff"
    assert front["content-security-policy"].startswith("default-src 'self'; connect-src"), front
    assert front["strict-transport-security"].startswith("max-age=63072000")
    assert "access-control-allow-origin" not in front
    uploads = h.headers(f"https://{SITE}/uploads/logo.txt")
    assert uploads["status"] == "200" and uploads["cache-control"] == "public, max-age=2592000, immutable", uploads
    assert h.get(f"https://{SITE}/uploads/logo.txt", "-f").stdout.strip() == "a picture"


def test_nginx_cors_preflight_overridden_headers_and_the_uploads_cache(learnup):
    headers_are_the_configs(learnup)


def health_follows_every_route(h) -> None:
    report = h.target.exec("vpskit-health", check=False).stdout
    for name, url, host in [
        ("learnup", "/", SITE),
        ("learnup /", "/", API),
        ("learnup /api/", "/api/", SITE),
        ("learnup /socket.io/", "/socket.io/", SITE),
        ("learnup /face/", "/face/", SITE),
        ("learnup /health", "/health", SITE),
    ]:
        line = rf"(?m)^ok +app {re.escape(name)} http +https://127\.0\.0\.1{re.escape(url)} \(Host: {re.escape(host)}\): HTTP 200$"
        assert re.search(line, report), f"{name}: {report}"


def test_nginx_health_report_follows_every_route(learnup):
    health_follows_every_route(learnup)


def test_nginx_json_access_log(learnup):
    entry = json.loads(learnup.target.out("tail -n 1 /var/log/nginx/learnup.access.log"))
    assert entry["host"] in (SITE, API) and entry["upstream"].startswith("127.0.0.1:")


def test_compose_job_runs_in_the_api_container(learnup):
    t = learnup.target
    assert t.out("systemctl is-active learnup-cleanup.timer") == "active"
    t.exec("systemctl start learnup-cleanup.service")
    assert "cleanup of expired sessions" in t.out("journalctl -u learnup-cleanup.service --no-pager -o cat")


def test_a_route_to_a_service_the_project_lacks_stops_the_run_before_up(learnup):
    raw = json.loads(json.dumps(learnup.raw))
    raw["apps"][0]["routes"][3]["upstream"] = "face:8000"
    t = learnup.target
    running = t.out("docker ps -q --filter label=com.docker.compose.project=learnup | sort")
    site = t.out("sha256sum /etc/nginx/sites-enabled/app-learnup.conf")
    run = learnup.deploy("no-such-service", raw, check=False)
    assert run.returncode != 0
    assert "route upstream face:8000: the project has no service face (api, frontend, frs)" in run.output, run.output[-3000:]
    assert t.out("docker ps -q --filter label=com.docker.compose.project=learnup | sort") == running
    assert t.out("sha256sum /etc/nginx/sites-enabled/app-learnup.conf") == site


# ------------------------------------------------------------------ the same routes behind Caddy


@pytest.fixture(scope="module")
def caddy(learnup):
    raw = with_caddy(learnup.raw)
    learnup.deploy("caddy", raw)
    deadline = time.time() + 90
    for name in (SITE, API):  # Caddy gets its certificates in the background after the reload
        while learnup.get(f"https://{name}/", "-f").returncode != 0 and time.time() < deadline:
            time.sleep(2)
    learnup.deploy("caddy-again", raw)
    return learnup


def test_caddy_refuses_rate_limits_before_touching_the_host(learnup):
    raw = json.loads(json.dumps(learnup.raw))
    raw["web"]["proxy"] = "caddy"
    run = learnup.deploy("caddy-rate-limits", raw, check=False)
    assert run.returncode != 0
    assert 'web.rate_limits: needs [web] proxy = "nginx": the distro\'s Caddy has no rate limiting' in run.output, run.output[-2000:]


def test_caddy_second_run_changes_nothing(caddy):
    assert caddy.target.out("systemctl is-active caddy") == "active"
    run = caddy.runs["caddy-again"]
    assert (run.changed, run.errors) == (0, 0), f"changed: {run.changed_ops}\n{run}"


def test_caddy_each_path_and_host_reaches_its_service(caddy):
    paths_reach_their_services(caddy)


def test_caddy_websocket_stays_open_past_60_seconds(caddy):
    websocket_outlives_the_default_timeout(caddy)


def test_caddy_cors_preflight_overridden_headers_and_the_uploads_cache(caddy):
    headers_are_the_configs(caddy)


def test_caddy_health_report_follows_every_route(caddy):
    health_follows_every_route(caddy)
