"""The container path end to end: Docker Engine, a compose app, Caddy as the front proxy.

Ubuntu 24.04 (its archive has docker.io and docker-compose-v2): one target runs a nested
Docker Engine (vfs storage: the target itself lives on overlayfs). A first run installs
the engine alone; the compose sample's images are then `docker load`ed into it (there is
no registry); the next run deploys the compose sample (examples/apps/memo: a web service
and its PostgreSQL) behind nginx, and a second identical run changes nothing. Then the
host switches to Caddy, a broken Caddyfile template fails a run while Caddy keeps
serving, and a commit publishing a port on every address is refused before `up`.

Debian 13: the distro's docker.io with daemon.json and Caddy in front of a venv app (basic
auth, an /api upstream). Debian 12's refusal of a compose app with source = "distro" (its
docker.io has no compose v2) is the smoke suite's (tests/e2e/test_smoke.py).
"""

from __future__ import annotations

import json
import re
import time
import tomllib

import pytest

from tests.audit import PEBBLE_CERTIFICATE_ISSUES, sslyze_mozilla
from tests.images import build_compose_base
from tests.rig import ROOT, start_target
from tests.web_fixtures import GIT_DIR, Host, https_get, load_images, prepare_web_target, use_local_images, wait_https, with_caddy

pytestmark = pytest.mark.e2e

MEMO = "memo.example.test"
DIBBY = "dibby.example.test"
# bcrypt of "s3cret" (made with crypt(3)); the password itself is in no config.
BCRYPT = "$2b$12$ChBjZsb984XAItIy6xfW.uFtcPmGr3tnjlks/Jf1Ft6DX7NVQtWjK"


def example() -> dict:
    raw = tomllib.loads((ROOT / "examples" / "vpskit.toml").read_text())
    raw["server"].update(upgrade="none", packages=[])
    raw["tls"].pop("email", None)
    return raw


def app_of(raw: dict, name: str) -> dict:
    return json.loads(json.dumps(next(a for a in raw["apps"] if a["name"] == name)))


def only_proxy_on_80_443(t, name: str) -> None:
    other = {"nginx": "caddy", "caddy": "nginx"}[name]
    listeners = t.out("ss -Hltnp '( sport = :80 or sport = :443 )'")
    assert name in listeners and other not in listeners, listeners
    assert t.exec(f"systemctl is-active {other}", check=False).stdout.strip() in ("inactive", "failed", "unknown")
    assert t.exec(f"systemctl is-enabled {other}", check=False).stdout.strip() != "enabled"


def security_headers_present(headers: str) -> None:
    h = headers.lower()
    for name in ("strict-transport-security: max-age=63072000", "x-content-type-options: nosniff", "x-frame-options: sameorigin",
                 "referrer-policy: strict-origin-when-cross-origin"):  # fmt: skip
        assert name in h, headers


# ------------------------------------------------------------------ Ubuntu: compose app


@pytest.fixture(scope="module", params=["ubuntu2404"])
def ubuntu(request, docker_engine, deployed_images, keys, tmp_path_factory):
    distro = request.param
    base = build_compose_base(docker_engine)
    target = start_target(docker_engine, deployed_images(distro), distro, publish=(), nested_docker=True)
    try:
        h = Host(target, keys, tmp_path_factory.mktemp(f"containers-{distro}"))
        raw = example()
        raw["apps"] = [app_of(raw, "memo")]
        raw = use_local_images(prepare_web_target(target, raw), base)
        raw["docker"]["deploy_user_in_group"] = True
        h.raw = raw
        engine_only = json.loads(json.dumps(raw))
        engine_only["apps"] = []
        engine_only["docker"]["enabled"] = True
        started = time.time()
        h.deploy("engine", engine_only)
        # No registry: the images the sample needs are loaded into the new engine.
        load_images(target, [base])
        h.deploy("compose", raw)
        h.deploy("compose-again", raw)
        h.seconds = time.time() - started
        yield h
    finally:
        target.remove()


def test_engine_runs_with_the_log_limits_of_daemon_json(ubuntu):
    t = ubuntu.target
    assert json.loads(t.out("cat /etc/docker/daemon.json")) == {
        "log-driver": "json-file", "log-opts": {"max-file": "3", "max-size": "100m"}, "storage-driver": "vfs",
    }  # fmt: skip
    assert t.out("docker info --format '{{.LoggingDriver}} {{.Driver}}'") == "json-file vfs"
    cid = t.out("docker ps -q --filter label=com.docker.compose.project=memo --filter label=com.docker.compose.service=web")
    assert t.out(f"docker inspect --format '{{{{json .HostConfig.LogConfig}}}}' {cid}") == (
        '{"Type":"json-file","Config":{"max-file":"3","max-size":"100m"}}'
    )
    assert "docker" in t.out("id -nG appuser").split()
    assert t.out("docker compose version --short")


def test_engine_run_restarted_docker_once_and_compose_run_changed_no_engine_op(ubuntu):
    assert "Docker Engine running" in " ".join(ubuntu.runs["engine"].changed_ops)
    assert not [op for op in ubuntu.runs["compose"].changed_ops if "daemon.json" in op or "Docker Engine" in op]


def test_second_compose_run_changes_nothing(ubuntu):
    run = ubuntu.runs["compose-again"]
    assert (run.changed, run.errors) == (0, 0), f"changed: {run.changed_ops}\n{run}"


def test_the_deploy_log_names_the_commit_each_run_brought_the_compose_app_to(ubuntu):
    t = ubuntu.target
    head = t.out("git -c safe.directory='*' -C /srv/apps/memo/src rev-parse HEAD")
    runs = [line.split(" result=", 1)[1] for line in t.out("cat /var/log/vpskit/deploys.log").splitlines()]
    # The engine alone, the compose app's first deploy (no checkout before it), the same again
    # (after the runs that deployed the host this one started from).
    assert runs[-3:] == ["ok apps=none", f"ok apps=memo:-..{head[:12]}", "ok apps=none"]


def test_compose_sample_answers_through_nginx_over_https_with_a_pebble_certificate(ubuntu):
    t = ubuntu.target
    r = https_get(t, f"https://{MEMO}/", "-f")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert (body["app"], body["greeting"], body["database"]) == ("memo", "hello from memo", "postgresql")
    assert body["memos"] == ["first memo"]  # migrate ran, and seed ran once
    issuer = t.out(f"echo | openssl s_client -connect 127.0.0.1:443 -servername {MEMO} 2>/dev/null | openssl x509 -noout -issuer")
    assert "Pebble" in issuer, issuer
    only_proxy_on_80_443(t, "nginx")
    report = t.exec("vpskit-health", check=False).stdout
    assert re.search(r"(?m)^ok +app memo http +https://127\.0\.0\.1/ \(Host: memo\.example\.test\): HTTP 200$", report), report
    assert re.search(r"(?m)^ok +docker\.service +active$", report), report


def test_compose_ports_are_on_loopback_only_and_env_is_private(ubuntu):
    t = ubuntu.target
    ports = t.out("docker ps --format '{{.Names}} {{.Ports}}'")
    assert "127.0.0.1:5003->8000/tcp" in ports and "0.0.0.0:" not in ports and ":::" not in ports, ports
    assert t.out("stat -c '%a %U' /srv/apps/memo/.env") == "600 appuser"
    secrets = t.out("grep -E '^(SECRET_KEY|POSTGRES_PASSWORD)=' /srv/apps/memo/.env | cut -d= -f2-").split()
    assert len(secrets) == 2 and all(len(s) >= 40 for s in secrets)
    for run in ubuntu.runs.values():
        assert not any(s in run.output for s in secrets)


def test_container_database_backup_restores_into_a_scratch_database(ubuntu):
    t = ubuntu.target
    r = https_get(t, f"https://{MEMO}/memos", "-f -X POST -H 'Content-Type: application/json'", '-d \'{"text": "kept by the backup"}\'')
    assert r.returncode == 0, r.stderr
    t.exec("vpskit-backup run")
    newest = t.out("vpskit-backup list memo-db-memo | head -n 1")
    assert newest.endswith(".dump"), newest
    t.exec("vpskit-backup restore memo-db-memo --into scratch")
    db = "docker ps -q --filter label=com.docker.compose.project=memo --filter label=com.docker.compose.service=db"
    rows = t.out(f"docker exec $({db}) psql -X -t -A -U memo -d scratch -c 'SELECT text FROM memos ORDER BY id'")
    assert rows.splitlines() == ["first memo", "kept by the backup"]
    t.exec("systemctl start vpskit-restore-drill.service")
    assert "state=ok" in t.out("cat /var/lib/vpskit/drill/memo-db-memo.status")


def test_switching_to_caddy_serves_the_app_with_pebble_certificates_and_headers(ubuntu):
    raw = with_caddy(ubuntu.raw)
    ubuntu.raw_caddy = raw
    run = ubuntu.deploy("caddy", raw)
    assert run.errors == 0
    t = ubuntu.target
    r = wait_https(t, f"https://{MEMO}/")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["app"] == "memo"
    security_headers_present(https_get(t, f"https://{MEMO}/", "-s -o /dev/null -D -").stdout)
    issuer = t.out(f"echo | openssl s_client -connect 127.0.0.1:443 -servername {MEMO} 2>/dev/null | openssl x509 -noout -issuer")
    assert "Pebble" in issuer, issuer
    only_proxy_on_80_443(t, "caddy")
    log = t.out("tail -n 1 /var/log/caddy/memo.access.log")
    assert json.loads(log)["request"]["host"] == MEMO
    again = ubuntu.deploy("caddy-again", raw)
    assert (again.changed, again.errors) == (0, 0), f"changed: {again.changed_ops}\n{again}"


def test_a_broken_caddyfile_fails_the_run_while_caddy_keeps_serving(ubuntu):
    bad = ubuntu.tmp / "Caddyfile.bad.j2"
    bad.write_text(
        "{% for site in sites %}{{ site.app.domains[0] }} {\n\treverse_proxy 127.0.0.1:{{ site.app.port }}\n\tno_such_directive\n}\n{% endfor %}"
    )
    raw = json.loads(json.dumps(ubuntu.raw_caddy))
    raw["web"]["caddyfile_template"] = str(bad)
    t = ubuntu.target
    before = t.out("sha256sum /etc/caddy/Caddyfile")
    run = ubuntu.deploy("caddy-broken", raw, check=False)
    assert run.returncode != 0
    assert "no_such_directive" in run.output, run.output[-3000:]
    assert t.out("sha256sum /etc/caddy/Caddyfile") == before
    assert t.out("systemctl is-active caddy") == "active"
    assert https_get(t, f"https://{MEMO}/", "-f").returncode == 0


def test_switching_back_to_nginx_stops_caddy(ubuntu):
    run = ubuntu.deploy("nginx-again", ubuntu.raw)
    assert run.errors == 0
    t = ubuntu.target
    only_proxy_on_80_443(t, "nginx")
    assert json.loads(https_get(t, f"https://{MEMO}/", "-f").stdout)["app"] == "memo"


def test_a_port_published_on_every_address_is_refused_before_up(ubuntu):
    t = ubuntu.target
    running = t.out("docker ps -q --filter label=com.docker.compose.project=memo | sort")
    work = "/tmp/memo-work"
    t.exec(
        f"rm -rf {work} && git clone -q {GIT_DIR}/memo.git {work} && cd {work} && "
        'sed -i \'s/"127.0.0.1:5003:8000"/"5003:8000"/\' compose.yaml && '
        "git -c user.name=t -c user.email=t@example.test commit -qam 'publish on every address' && git push -q origin main"
    )
    run = ubuntu.deploy("public-port", ubuntu.raw, check=False)
    assert run.returncode != 0
    assert "app memo: service web: port 5003->8000 is published on every address" in run.output, run.output[-3000:]
    assert t.out("docker ps -q --filter label=com.docker.compose.project=memo | sort") == running
    assert https_get(t, f"https://{MEMO}/", "-f").returncode == 0


def test_ubuntu_container_runs_took(ubuntu):
    print(f"ubuntu container deploys (engine, compose, compose again): {ubuntu.seconds:.0f} s")


# ------------------------------------------------------------------ Debian: engine + Caddy


@pytest.fixture(scope="module", params=["debian13"])
def debian(request, docker_engine, deployed_images, keys, tmp_path_factory):
    distro = request.param
    # 443 published on 127.0.0.1 for sslyze, which runs on the test machine.
    target = start_target(docker_engine, deployed_images(distro), distro, publish=(443,), nested_docker=True)
    try:
        h = Host(target, keys, tmp_path_factory.mktemp(f"containers-{distro}"))
        raw = example()
        dibby = app_of(raw, "dibby")
        dibby.pop("jobs", None)
        dibby["basic_auth"] = {"user": "alice", "hash": BCRYPT}
        dibby["api_upstream"] = "127.0.0.1:5009"
        raw["apps"] = [dibby]
        raw = prepare_web_target(target, raw)
        raw["docker"].update(source="distro", enabled=True, storage_driver="vfs")
        raw = with_caddy(raw)
        h.raw = raw
        started = time.time()
        h.deploy("first", raw)
        h.deploy("second", raw)
        h.seconds = time.time() - started
        yield h
    finally:
        target.remove()


def test_debian_second_run_changes_nothing(debian):
    run = debian.runs["second"]
    assert (run.changed, run.errors) == (0, 0), f"changed: {run.changed_ops}\n{run}"


def test_debian_engine_runs_with_daemon_json(debian):
    t = debian.target
    assert t.out("docker info --format '{{.LoggingDriver}} {{.Driver}}'") == "json-file vfs"
    assert json.loads(t.out("cat /etc/docker/daemon.json"))["log-opts"] == {"max-file": "3", "max-size": "100m"}
    # A container made now gets the daemon's log limits (an empty image: no registry needed to create one).
    t.exec("tar -cf - -T /dev/null | docker import - vpskit/empty >/dev/null")
    cid = t.out("docker create vpskit/empty /none")
    assert t.out(f"docker inspect --format '{{{{json .HostConfig.LogConfig}}}}' {cid}") == (
        '{"Type":"json-file","Config":{"max-file":"3","max-size":"100m"}}'
    )
    assert "docker" not in t.out("id -nG appuser").split()  # deploy_user_in_group is off


def test_debian_caddy_serves_the_venv_app_behind_basic_auth_with_a_pebble_certificate(debian):
    t = debian.target
    r = wait_https(t, f"https://{DIBBY}/", "-u alice:s3cret")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["greeting"] == "hello from dibby"
    security_headers_present(https_get(t, f"https://{DIBBY}/", "-s -o /dev/null -D - -u alice:s3cret").stdout)
    assert https_get(t, f"https://{DIBBY}/", "-s -o /dev/null -w '%{http_code}'").stdout == "401"
    assert https_get(t, f"https://{DIBBY}/", "-s -o /dev/null -w '%{http_code}' -u alice:wrong").stdout == "401"
    issuer = t.out(f"echo | openssl s_client -connect 127.0.0.1:443 -servername {DIBBY} 2>/dev/null | openssl x509 -noout -issuer")
    assert "Pebble" in issuer, issuer
    only_proxy_on_80_443(t, "caddy")


def test_debian_caddy_tls_is_mozillas_intermediate_profile_by_sslyze(debian):
    """Only the pebble certificate's trust and five-year lifetime may fail sslyze's check."""
    result = sslyze_mozilla(debian.target.ports[443], DIBBY)
    print(f"\n[{debian.target.distro}] sslyze intermediate {DIBBY} (Caddy): {result.failures or 'compliant'}")
    assert set(result.failures) <= PEBBLE_CERTIFICATE_ISSUES, f"{result.failures}\n{result}"


def test_debian_api_prefix_goes_to_the_second_upstream_without_the_prefix(debian):
    t = debian.target
    t.exec("mkdir -p /tmp/api/items && echo api-ok > /tmp/api/items/index.html")
    t.exec("systemd-run --unit vpskit-test-api --property=WorkingDirectory=/tmp/api python3 -m http.server 5009 --bind 127.0.0.1")
    try:
        time.sleep(1)
        r = https_get(t, f"https://{DIBBY}/api/items/", "-f -u alice:s3cret")
        assert r.stdout.strip() == "api-ok", r.stdout + r.stderr
    finally:
        t.exec("systemctl stop vpskit-test-api", check=False)


def test_debian_container_runs_took(debian):
    print(f"debian container deploys (first, second): {debian.seconds:.0f} s")
