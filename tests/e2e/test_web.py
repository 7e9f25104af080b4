"""The web stack end to end: the two sample apps behind nginx with certificates from a real ACME server.

One target per distro gets the example config's apps (dibby: Flask, grades:
FastAPI) from bare git repos inside it, certificates from pebble running in it,
and is deployed once; a second run must change nothing. The read-only checks
come first; the scenarios that change the host (an env change, a broken site
template, an app marked absent) run last, in that order, on the same target.
"""

from __future__ import annotations

import copy
import json
import re
import time
import tomllib

import pytest

from operations.app import default_workers
from tests.audit import PEBBLE_CERTIFICATE_ISSUES, sslyze_mozilla
from tests.conftest import DISTROS, distro_of
from tests.rig import ROOT, dump_toml, run_pyinfra, ssh_keypair, start_target, target_config
from tests.web_fixtures import PEBBLE_ROOT, https_get, prepare_web_target, venv_apps

pytestmark = pytest.mark.e2e

DOMAINS = {"dibby": "dibby.example.test", "grades": "grades.example.test"}


def example_raw() -> dict:
    """The example config, made quick to deploy: no upgrade run, Node.js without npm."""
    raw = tomllib.loads((ROOT / "examples" / "vpskit.toml").read_text())
    # The venv apps behind nginx; the compose app and Caddy are tests/e2e/test_containers.py's.
    raw["apps"] = venv_apps(raw)
    raw.pop("docker", None)
    raw["server"].update(upgrade="none", packages=[])
    raw["nodejs"] = {"source": "distro", "npm": False}
    raw["tls"].pop("email", None)
    raw["apps"][1].update(rate_limit="1r/s", rate_burst=5, max_body_size="1k")
    return raw


class Web:
    def __init__(self, target, raw, tmp):
        self.target, self.raw, self.tmp = target, raw, tmp
        self.runs: dict = {}
        self.outputs: list[str] = []
        self.private: list[str] = []  # other secret texts that must not show in any output

    def deploy(self, label: str, raw: dict | None = None, *extra: str, check: bool = True):
        path = self.tmp / f"{label}.toml"
        path.write_text(dump_toml(raw or self.raw))
        run = run_pyinfra(path, *extra, check=check)
        self.runs[label] = run
        self.outputs.append(run.output)
        return run

    def pid(self, app: str) -> str:
        return self.target.out(f"systemctl show -p MainPID --value app-{app}.service")

    def secrets(self) -> list[str]:
        out = self.target.out("grep -h '^SECRET_KEY=' /srv/apps/*/.env | cut -d= -f2-")
        return [s for s in out.splitlines() if s]


@pytest.fixture(scope="module", params=DISTROS)
def web(request, docker_engine, deployed_images, keys, tmp_path_factory):
    distro = request.param
    # 443 published on 127.0.0.1 for sslyze, which runs on the test machine.
    target = start_target(docker_engine, deployed_images(distro), distro, publish=(443,))
    try:
        raw = prepare_web_target(target, example_raw())
        w = Web(target, target_config(raw, target, keys, connector="docker"), tmp_path_factory.mktemp(f"web-{distro}"))
        first = w.deploy("first")
        assert first.errors == 0, first
        w.deploy("second", None, "-v")
        yield w
    finally:
        target.remove()


def curl_json(web, app: str, path: str = "/") -> dict:
    r = https_get(web.target, f"https://{DOMAINS[app]}{path}", "-f")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# ------------------------------------------------------------------ read-only checks


def test_second_run_changes_nothing(web):
    run = web.runs["second"]
    assert (run.changed, run.errors) == (0, 0), f"changed: {run.changed_ops}\n{run}"


def test_each_domain_serves_its_own_app_over_https_with_a_pebble_certificate(web):
    dibby, grades = curl_json(web, "dibby"), curl_json(web, "grades")
    assert (dibby["app"], dibby["greeting"]) == ("dibby", "hello from dibby")
    assert (grades["app"], grades["greeting"]) == ("grades", "hello from grades")
    issuer = web.target.out(
        "echo | openssl s_client -connect 127.0.0.1:443 -servername grades.example.test 2>/dev/null"
        " | openssl x509 -noout -issuer -ext subjectAltName"
    )
    assert "Pebble" in issuer and "DNS:grades.example.test" in issuer, issuer
    # The certificate is trusted only through pebble's root: without it curl refuses.
    assert web.target.exec("curl -s https://dibby.example.test/ -o /dev/null", check=False).returncode == 60


def test_apps_listen_on_loopback_ports_only(web):
    listening = web.target.out("ss -Hltn")
    assert "127.0.0.1:5001" in listening and "127.0.0.1:5002" in listening
    assert "0.0.0.0:5001" not in listening and "*:5002" not in listening


def test_migrations_and_seed_ran_once(web):
    assert curl_json(web, "dibby")["notes"][0] == "first note"
    assert curl_json(web, "dibby")["notes"].count("first note") == 1  # the seed ran once
    assert {"maths", "physics"} <= set(curl_json(web, "grades")["courses"])


def test_each_app_reads_and_writes_its_own_postgres_database_through_nginx(web):
    """The migration and seed ran as the deploy user with the URL from the root-only secret file."""
    t = web.target
    assert curl_json(web, "dibby")["database"] == "postgresql"
    body = json.dumps({"text": "written through nginx"})
    r = https_get(t, "https://dibby.example.test/notes", "-f -X POST -H 'Content-Type: application/json'", f"-d '{body}'")
    assert r.returncode == 0, r.stderr
    assert curl_json(web, "dibby")["notes"][-1] == "written through nginx"
    rows = t.out("runuser -u postgres -- psql -X -t -A -d dibby -c 'SELECT text FROM notes ORDER BY id'")
    assert rows.splitlines()[-1] == "written through nginx"
    assert t.out("stat -c '%a %U' /etc/vpskit/secrets/dibby.env") == "600 root"
    assert curl_json(web, "grades")["database"] == "postgresql"
    r = https_get(
        t, "https://grades.example.test/courses", "-f -X POST -H 'Content-Type: application/json'", '-d \'{"name": "chemistry"}\''
    )
    assert r.returncode == 0, r.stderr
    assert "chemistry" in curl_json(web, "grades")["courses"]
    assert "chemistry" in t.out("runuser -u postgres -- psql -X -t -A -d grades -c 'SELECT name FROM courses'").split()


def test_scheduled_jobs_of_an_app_use_its_database(web):
    t = web.target
    before = curl_json(web, "dibby", "/balances")
    t.exec("systemctl start dibby-snapshot.service dibby-interest.service")
    after = curl_json(web, "dibby", "/balances")
    assert after["snapshots"] == before["snapshots"] + 1
    assert after["balances"] == {k: v + v // 100 for k, v in before["balances"].items()}
    # The cron job's endpoint answers on the app's loopback port, not through nginx.
    assert t.exec("curl -fsS -X POST http://127.0.0.1:5001/internal/cleanup", check=False).returncode == 0
    assert https_get(t, "https://dibby.example.test/internal/cleanup", "-s -o /dev/null -w '%{http_code}' -X POST").stdout == "404"


def test_http_redirects_to_https_keeping_path_and_query(web):
    r = web.target.exec("curl -s -o /dev/null -w '%{http_code} %{redirect_url}' 'http://dibby.example.test/a/b?x=1&y=2'")
    assert r.stdout in ("301 https://dibby.example.test/a/b?x=1&y=2", "308 https://dibby.example.test/a/b?x=1&y=2")


def test_acme_challenge_path_is_served_over_http(web):
    web.target.exec("mkdir -p /var/www/acme/.well-known/acme-challenge && echo token-ok > /var/www/acme/.well-known/acme-challenge/probe")
    try:
        r = web.target.exec("curl -s -w ' %{http_code}' http://grades.example.test/.well-known/acme-challenge/probe")
        assert r.stdout == "token-ok\n 200"
    finally:
        web.target.exec("rm -f /var/www/acme/.well-known/acme-challenge/probe")


def test_proxy_passes_forwarding_and_upgrade_headers(web):
    # (Flask refuses a websocket upgrade on a plain route; any other protocol name shows the pass-through.)
    r = https_get(
        web.target, "https://dibby.example.test/headers", "-f --http1.1", "-H 'Upgrade: vpskit-probe'", "-H 'Connection: Upgrade'"
    )
    headers = json.loads(r.stdout)
    assert headers["Upgrade"] == "vpskit-probe"
    assert headers["Connection"].lower() == "upgrade"
    assert headers["X-Forwarded-Proto"] == "https"
    assert headers["Host"] == headers["X-Forwarded-Host"] == "dibby.example.test"
    assert headers["X-Real-IP"] == "127.0.0.1" and headers["X-Forwarded-For"] == "127.0.0.1"
    plain = json.loads(https_get(web.target, "https://dibby.example.test/headers", "-f --http1.1").stdout)
    assert plain["Upgrade"] is None and plain["Connection"] == "close"


def test_websocket_handshake_reaches_the_fastapi_app(web):
    r = web.target.exec(
        f"curl -sS --cacert {PEBBLE_ROOT} --http1.1 -i --max-time 5 -H 'Connection: Upgrade' -H 'Upgrade: websocket'"
        " -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' https://grades.example.test/ws"
        " | tr -c '[:print:]\\r\\n' '.'",
        check=False,
    )
    assert r.stdout.startswith("HTTP/1.1 101"), r.stdout + r.stderr
    assert "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in r.stdout  # the accept key for that nonce
    assert "grades websocket" in r.stdout  # the app's first message


def test_static_files_are_served_by_nginx(web):
    r = https_get(web.target, "https://dibby.example.test/static/style.css", "-f -i")
    assert "font-family: sans-serif" in r.stdout
    assert re.search(r"(?im)^cache-control: max-age=2592000", r.stdout)  # nginx's `expires 30d`
    # The Flask app has no static route of its own: only nginx can have answered.
    assert "/static/style.css" not in web.target.out("cat /var/log/apps/dibby/access.log")
    built = https_get(web.target, "https://grades.example.test/static/app.js", "-f")
    assert built.stdout.startswith("/* built by node v"), built.stdout


def test_hsts_and_security_headers_on_200_and_404(web):
    for path in ("/", "/no-such-page", "/static/no-such-file.css"):
        r = https_get(web.target, f"https://dibby.example.test{path}", "-i -o /dev/stdout")
        status = r.stdout.split()[1]
        assert status == ("200" if path == "/" else "404"), r.stdout
        assert re.search(r"(?im)^strict-transport-security: max-age=63072000", r.stdout), (path, r.stdout)
        assert re.search(r"(?im)^x-content-type-options: nosniff", r.stdout), (path, r.stdout)
        assert re.search(r"(?im)^server: nginx\s*$", r.stdout), "nginx must not show its version"


def _handshake(web, *args: str) -> bool:
    r = web.target.exec(
        f"echo | openssl s_client -connect 127.0.0.1:{args[0]} -servername dibby.example.test {' '.join(args[1:])} 2>&1",
        check=False,
    )
    return r.returncode == 0 and "Cipher is (NONE)" not in r.stdout and "New, " in r.stdout


def test_tls_1_0_and_1_1_and_non_aead_suites_are_refused(web):
    low = "-cipher DEFAULT@SECLEVEL=0"
    # The client can speak TLS 1.1 and CBC suites: a server that allows them accepts it.
    web.target.exec(
        "cd /tmp && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=old -keyout old.key -out old.pem -days 1 2>/dev/null;"
        " (timeout 20 openssl s_server -accept 127.0.0.1:8443 -cert old.pem -key old.key -tls1_1 -cipher DEFAULT@SECLEVEL=0"
        " -www >/dev/null 2>&1 &) ; sleep 1"
    )
    assert _handshake(web, "8443", "-tls1_1", low)
    assert not _handshake(web, "443", "-tls1_1", low)
    assert not _handshake(web, "443", "-tls1", low)
    cbc = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:AES128-SHA:AES256-SHA256"
    assert not _handshake(web, "443", "-tls1_2", f"-cipher '{cbc}'")
    assert _handshake(web, "443", "-tls1_2", "-cipher ECDHE-ECDSA-AES128-GCM-SHA256")
    assert _handshake(web, "443", "-tls1_3")


def test_tls_is_mozillas_intermediate_profile_by_sslyze(web):
    """Only the pebble certificate's trust and five-year lifetime may fail sslyze's check."""
    for name in DOMAINS.values():
        result = sslyze_mozilla(web.target.ports[443], name)
        print(f"\n[{web.target.distro}] sslyze intermediate {name}: {result.failures or 'compliant'}")
        assert set(result.failures) <= PEBBLE_CERTIFICATE_ISSUES, f"{result.failures}\n{result}"
        assert "X448" not in result.output.split("Rejected curves")[0].split("Supported curves")[-1]


def test_rate_limit_and_body_size_limit(web):
    """grades allows 1 request/s (burst 5) per client and 1 KiB bodies; dibby has no rate limit."""
    big = https_get(web.target, "https://grades.example.test/", "-o /dev/null -w '%{http_code}' --data-binary @/etc/services")
    assert big.stdout == "413"

    def burst(domain: str) -> list[str]:
        curl = f"curl -s -o /dev/null -w '%{{http_code}}\\n' --cacert {PEBBLE_ROOT} https://{domain}/"
        return web.target.out(f"seq 20 | xargs -P 4 -I NUM {curl}").split()

    codes = burst("grades.example.test")
    assert codes.count("200") >= 5 and codes.count("503") >= 5, codes
    assert set(burst("dibby.example.test")) == {"200"}
    time.sleep(6)  # let grades' bucket refill for the tests after this one


def test_unknown_names_get_no_site(web):
    r = web.target.exec("curl -s -H 'Host: other.example.test' http://127.0.0.1/", check=False)
    assert r.returncode == 52  # nginx closed the connection (444)
    r = web.target.exec("curl -sk --resolve other.example.test:443:127.0.0.1 https://other.example.test/", check=False)
    assert r.returncode != 0  # handshake rejected
    assert not web.target.exec("test -e /etc/nginx/sites-enabled/default", check=False).returncode == 0


def test_units_run_as_the_deploy_user_sandboxed_and_without_secrets(web):
    t = web.target
    for app, port in (("dibby", 5001), ("grades", 5002)):
        props = t.out(
            f"systemctl show app-{app}.service -p User -p NoNewPrivileges -p ProtectSystem -p Restart -p RestartUSec -p ActiveState"
        )
        assert {
            "User=appuser",
            "NoNewPrivileges=yes",
            "ProtectSystem=full",
            "Restart=always",
            "RestartUSec=10s",
            "ActiveState=active",
        } <= set(props.splitlines()), props
        unit = t.out(f"cat /etc/systemd/system/app-{app}.service")
        assert f"--bind 127.0.0.1:{port}" in unit and f"EnvironmentFile=/srv/apps/{app}/.env" in unit
        for secret in web.secrets():
            assert secret not in unit
    cpus, mem = (int(x) for x in t.out("nproc; awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo").split())
    assert f"--workers {default_workers(cpus, mem, 2)} --worker-class sync" in t.out("cat /etc/systemd/system/app-dibby.service")
    assert "--worker-class uvicorn_worker.UvicornWorker" in t.out("cat /etc/systemd/system/app-grades.service")


def test_app_files_have_safe_owners_and_modes(web):
    t = web.target
    assert t.out("stat -c '%a %U %G' /srv/apps/dibby") == "750 appuser www-data"
    assert t.out("stat -c '%a %U %G' /srv/apps/dibby/.env") == "600 appuser appuser"
    assert (
        t.out("stat -L -c '%U' /srv/apps/dibby/current /srv/apps/dibby/current/.venv /srv/apps/dibby/data") == "appuser\nappuser\nappuser"
    )
    env = t.out("cat /srv/apps/grades/.env")
    assert "GREETING='hello from grades'" in env and "DATA_DIR=/srv/apps/grades/data" in env
    assert re.search(r"(?m)^SECRET_KEY=[A-Za-z0-9_-]{64}$", env)


def test_logrotate_and_certbot_renewal_are_set_up(web):
    t = web.target
    t.exec("logrotate -d /etc/logrotate.d/app-dibby")
    assert t.out("systemctl is-enabled certbot.timer; systemctl is-active certbot.timer") == "enabled\nactive"
    assert t.out("test -x /etc/letsencrypt/renewal-hooks/deploy/vpskit-reload-nginx && echo ok") == "ok"
    assert "server = https://localhost:14000/dir" in t.out("cat /etc/letsencrypt/renewal/dibby.conf")
    assert "REQUESTS_CA_BUNDLE=/etc/pebble/listener.pem" in t.out("systemctl show certbot.service -p Environment")


def test_python_version_beyond_the_distro(web):
    """Where deadsnakes builds for the release (Ubuntu 24.04) another Python comes from it (shown by --dry: the PPA is
    out of reach here); elsewhere (Debian) the run stops before any change, naming the versions the release can have."""
    distro = distro_of(web.target.distro)
    version = next(v for v in ("3.13", "3.12") if v != distro.python)
    raw = copy.deepcopy(web.raw)
    raw["python"] = {"version": version}
    snapshot = "dpkg -l | md5sum; ls /etc/apt/sources.list.d /etc/apt/keyrings 2>&1; ls -la /srv/apps/*/current/.venv/bin/python"
    before = web.target.out(snapshot)
    if distro.python_from_deadsnakes(version):
        run = web.deploy("python-other-dry", raw, "--dry")
        wanted = ["Signing key of deadsnakes", "Apt source deadsnakes", f"Install Python {version}", "dibby: rebuild release"]
        for name in wanted:
            assert any(name in op for op in run.changed_ops), (name, run.changed_ops)
    else:
        run = web.deploy("python-other", raw, check=False)
        assert run.returncode != 0
        assert f"Python {version} is not available on {distro.name}: it can have Python {distro.python} (its own)" in run.output
        assert "Starting operation" not in run.output
    assert web.target.out(snapshot) == before


# ---------------------------------------------------------- scenarios that change the host


def test_env_change_restarts_only_that_app_and_keeps_secrets(web):
    before = {app: web.pid(app) for app in DOMAINS}
    secrets = web.secrets()
    raw = copy.deepcopy(web.raw)
    raw["apps"][0]["env"]["GREETING"] = "changed greeting"
    dry = web.deploy("env-dry", raw, "--dry", "--diff", "-v")
    assert any("dibby: environment" in op for op in dry.changed_ops), dry.changed_ops
    run = web.deploy("env", raw, "--diff", "-v")
    assert run.errors == 0
    assert web.pid("grades") == before["grades"]
    assert web.pid("dibby") != before["dibby"]
    assert curl_json(web, "dibby")["greeting"] == "changed greeting"
    assert web.secrets() == secrets
    web.raw = raw
    again = web.deploy("env-again")
    assert (again.changed, again.errors) == (0, 0), again.changed_ops


def test_private_repo_over_ssh_with_a_deploy_key(web):
    """dibby moves to an SSH remote that only its deploy key opens (the target's own sshd); grades is untouched."""
    key, pub = ssh_keypair(web.tmp, "id_app_deploy")
    port = "2222" if ":2222 " in web.target.out("ss -Hltn") else "22"
    raw = copy.deepcopy(web.raw)
    raw["deploy_user"]["public_keys"].append(str(pub))
    dibby = raw["apps"][0]
    dibby.update(repo=f"ssh://appuser@localhost:{port}/srv/git/dibby.git", deploy_key=str(key))
    grades_pid = web.pid("grades")
    run = web.deploy("deploy-key", raw)
    assert run.errors == 0
    t = web.target
    assert t.out("stat -c '%a %U' /srv/apps/dibby/.ssh/deploy_key") == "600 appuser"
    assert t.out("git -c safe.directory='*' --git-dir=/srv/apps/dibby/repo.git remote get-url origin") == dibby["repo"]
    assert curl_json(web, "dibby")["app"] == "dibby"
    assert web.pid("grades") == grades_pid
    again = web.deploy("deploy-key-again", raw)
    assert (again.changed, again.errors) == (0, 0), again.changed_ops
    web.raw = raw
    web.private.append(key.read_text().strip().splitlines()[1])


def test_no_secret_appears_in_any_run_output(web):
    secrets = web.secrets()
    assert len(secrets) == len(web.raw["apps"]) and len(web.private) == 1  # one SECRET_KEY per app
    assert len(web.outputs) >= 5  # normal, -v, --dry --diff -v, --diff -v, normal
    for output in web.outputs:
        for secret in secrets + web.private:
            assert secret not in output


def test_broken_site_template_fails_with_nginx_error_and_sites_keep_serving(web):
    t = web.target
    before = t.out("sha256sum /etc/nginx/sites-enabled/*")
    broken = web.tmp / "broken-site.conf.j2"
    broken.write_text(
        (ROOT / "templates" / "nginx-site.conf.j2")
        .read_text()
        .replace("proxy_redirect off;", "proxy_redirect off;\n        no_such_directive on;")
    )
    raw = copy.deepcopy(web.raw)
    raw.setdefault("web", {})["site_template"] = str(broken)
    run = web.deploy("broken", raw, check=False)
    assert run.returncode != 0
    assert 'unknown directive "no_such_directive"' in run.output
    assert t.out("sha256sum /etc/nginx/sites-enabled/*") == before
    assert curl_json(web, "dibby")["app"] == "dibby" and curl_json(web, "grades")["app"] == "grades"
    t.exec("nginx -t")


def test_app_marked_absent_is_removed_and_its_data_kept(web):
    t = web.target
    raw = copy.deepcopy(web.raw)
    raw["apps"][1]["state"] = "absent"
    run = web.deploy("absent", raw)
    assert run.errors == 0
    assert t.exec("test -e /etc/systemd/system/app-grades.service", check=False).returncode != 0
    assert t.exec("test -e /etc/nginx/sites-enabled/app-grades.conf", check=False).returncode != 0
    assert t.exec("test -e /etc/logrotate.d/app-grades", check=False).returncode != 0
    assert "grades" not in t.out("certbot certificates 2>/dev/null | grep 'Certificate Name' || true")
    assert t.out("systemctl is-active app-grades.service || true") == "inactive"
    assert t.out("test -d /srv/apps/grades/releases && echo kept") == "kept"  # code and data stay without purge
    assert int(t.out("runuser -u postgres -- psql -X -t -A -d grades -c 'SELECT count(*) FROM courses'")) >= 2
    assert https_get(t, "https://grades.example.test/").returncode != 0
    assert curl_json(web, "dibby")["app"] == "dibby"
    again = web.deploy("absent-again", raw)
    assert (again.changed, again.errors) == (0, 0), again.changed_ops
