"""From [[apps.routes]] to the operations' plain arguments: the proxy's site specs, the route checks of the health
report, the route upstreams checked before `up`, and compose jobs run in their service."""

from __future__ import annotations

import importlib.machinery
import importlib.util

import operations.fail2ban as fail2ban_mod
from operations.appspecs import compose_spec
from operations.checkout import AppPaths
from operations.compose import up_command
from operations.config import parse_config
from operations.distro import Distro
from operations.plan import Plan
from operations.render import FILES_DIR
from operations.routes import Cors, Route
from operations.sites import Site
from tests.unit.test_routes_config import LEARNUP, ZONES

UBUNTU = Distro("ubuntu", "24.04", "noble")
DEBIAN13 = Distro("debian", "13", "trixie")
_loader = importlib.machinery.SourceFileLoader("vpskit_compose_check", str(FILES_DIR / "vpskit-compose-check"))
_spec = importlib.util.spec_from_loader("vpskit_compose_check", _loader)
check = importlib.util.module_from_spec(_spec)
_loader.exec_module(check)


def plan_of(minimal_raw, tmp_path, monkeypatch, app, distro=UBUNTU, web=None) -> Plan:
    monkeypatch.setattr(fail2ban_mod, "snapshot_fact", lambda *a, **k: {"mtime": 0})
    raw = {**minimal_raw, "apps": [app], "web": ZONES if web is None else web}
    return Plan(parse_config(raw, base_dir=str(tmp_path)), distro)


def test_the_proxy_gets_plain_site_specs_with_resolved_routes(minimal_raw, tmp_path, monkeypatch):
    app = {**LEARNUP, "headers": {"Referrer-Policy": "no-referrer"}}
    args = plan_of(minimal_raw, tmp_path, monkeypatch, app).front_proxy
    (site,) = args["sites"]
    assert isinstance(site, Site) and site.headers == (("Referrer-Policy", "no-referrer"),)
    assert site.routes[1] == Route(
        "/api/", upstream="127.0.0.1:5000", rate_limit="api", burst=20, headers=(("X-Frame-Options", "DENY"),),
        cors=Cors(("https://learnup.example.test",)), read_timeout="3600s",
    )  # fmt: skip
    assert site.routes[2].read_timeout == "24h" and site.routes[2].websocket
    uploads = site.routes[4]
    assert (uploads.upstream, uploads.static, uploads.cache_control) == (
        "",
        "/var/www/learnup/uploads",
        "public, max-age=2592000, immutable",
    )
    assert site.zones == (("api", "10r/s"), ("general", "30r/s"))


def test_the_release_decides_what_nginx_can_say_in_the_plan(minimal_raw, tmp_path, monkeypatch):
    old = plan_of(minimal_raw, tmp_path, monkeypatch, LEARNUP).front_proxy
    new = plan_of(minimal_raw, tmp_path, monkeypatch, LEARNUP, distro=DEBIAN13).front_proxy
    assert (old["http2_on"], new["http2_on"]) == (False, True) and old["reject_handshake"]


def test_the_health_report_asks_every_route_with_an_upstream(minimal_raw, tmp_path, monkeypatch):
    checks = plan_of(minimal_raw, tmp_path, monkeypatch, LEARNUP).health["apps"]
    assert [(c["name"], c["url"], c["host"]) for c in checks] == [
        ("learnup", "https://127.0.0.1/", "learnup.example.test"),
        ("learnup /", "https://127.0.0.1/", "api.learnup.example.test"),
        ("learnup /api/", "https://127.0.0.1/api/", "learnup.example.test"),
        ("learnup /socket.io/", "https://127.0.0.1/socket.io/", "learnup.example.test"),
        ("learnup /face/", "https://127.0.0.1/face/", "learnup.example.test"),
        ("learnup /health", "https://127.0.0.1/health", "learnup.example.test"),
    ]


def test_compose_jobs_run_in_their_service_by_root(minimal_raw, tmp_path, monkeypatch):
    app = {**LEARNUP, "service": "api", "jobs": [
        {"name": "cleanup", "schedule": "*-*-* 03:00:00", "command": "node dist/cleanup.js"},
        {"name": "faces", "kind": "cron", "schedule": "@daily", "command": "python3 prune.py", "service": "frs", "user": "app"},
    ]}  # fmt: skip
    jobs = plan_of(minimal_raw, tmp_path, monkeypatch, app).jobs
    cleanup, faces = jobs
    assert cleanup["job"].command.endswith(" exec -T api sh -c 'node dist/cleanup.js'")
    assert cleanup["job"].command.startswith("docker compose --project-name learnup --project-directory /srv/apps/learnup/src")
    assert (cleanup["user"], cleanup["job"].user, cleanup["venv"], cleanup["env_file"], cleanup["after"]) == (
        "root",
        "root",
        "",
        "",
        ("docker.service",),
    )
    assert faces["job"].command.endswith(" exec -T --user app frs sh -c 'python3 prune.py'") and faces["job"].kind == "cron"


def test_after_up_each_route_upstream_must_answer(monkeypatch, capsys):
    """The post-deploy wait: the services run, then each route's loopback port answers HTTP, or the run fails naming it."""
    import subprocess

    ps = '{"Service": "api", "State": "running", "Health": "healthy"}'
    monkeypatch.setattr(check.time, "sleep", lambda s: None)
    monkeypatch.setattr(
        subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0, "api\n" if "--services" in cmd else ps, "")
    )
    monkeypatch.setattr(check, "answers", lambda port: "" if port == "5000" else "ConnectionRefusedError: refused")
    assert check.cmd_wait(["learnup", "0", "--answer", "api:5000", "--", "docker", "compose"]) == 0
    assert check.cmd_wait(["learnup", "0", "--answer", "api:5000", "frs:8000", "--", "docker", "compose"]) == 1
    assert "route upstream frs:8000 (ConnectionRefusedError: refused) does not answer" in capsys.readouterr().err


def test_route_upstreams_are_checked_before_up(minimal_raw, tmp_path, monkeypatch):
    app = compose_spec(plan_of(minimal_raw, tmp_path, monkeypatch, LEARNUP).config.apps[0])
    up = up_command(app, AppPaths("learnup", "/srv/apps", "/var/log/apps"))
    assert "ports learnup 3000 --route api:5000 frs:8000 && " in up
    assert "wait learnup 60 --answer api:5000 frs:8000 -- docker compose" in up
    config = {"services": {
        "frontend": {"ports": [{"host_ip": "127.0.0.1", "published": "3000", "target": 3000}]},
        "api": {"ports": [{"host_ip": "127.0.0.1", "published": "5000", "target": 5000}]},
        "frs": {"ports": [{"host_ip": "127.0.0.1", "published": "8001", "target": 8000}]},
    }}  # fmt: skip
    assert check.port_problems(config, 3000, set(), ["api:5000"]) == []
    assert check.port_problems(config, 3000, set(), ["frs:8000", "face:8000"]) == [
        "route upstream frs:8000: service frs does not publish 127.0.0.1:8000",
        "route upstream face:8000: the project has no service face (api, frontend, frs)",
    ]


def test_a_route_to_a_missing_service_is_one_line_without_the_firewall_advice(monkeypatch, capsys):
    import io
    import json

    config = {"services": {"web": {"ports": [{"host_ip": "127.0.0.1", "published": "3000", "target": 3000}]}}}
    monkeypatch.setattr(check.sys, "stdin", io.StringIO(json.dumps(config)))
    assert check.cmd_ports(["learnup", "3000", "--route", "api:5000"]) == 1
    err = capsys.readouterr().err
    assert err == "vpskit: app learnup: route upstream api:5000: the project has no service api (web). Nothing was started.\n"
