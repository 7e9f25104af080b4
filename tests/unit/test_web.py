"""The web stack's pure logic: app config checks, workers, .env, units, nginx sites, certbot commands, facts."""

from __future__ import annotations

import base64
import json
import math
import subprocess
from dataclasses import replace
from fractions import Fraction

import pytest

from operations.app import answer_command, app_settings, default_workers, pip_packages, unit_text
from operations.appspecs import code_of, venv_spec
from operations.certbot import (
    LETSENCRYPT,
    LETSENCRYPT_STAGING,
    CertFiles,
    Certificate,
    acme_server,
    cert_files,
    certbot_command,
    certificate_current,
    selfsigned_command,
)
from operations.checkout import AppPaths, Code, EnvSecrets, GitCheckout, env_file_text, env_value
from operations.config import TLS, App, ConfigError, parse_config
from operations.distro import Distro
from operations.nginx import CIPHERS, DHPARAM_CHECK, main_text, site_text
from operations.plan import Plan
from operations.render import FILES_DIR, render
from operations.stamped import Stamps, as_user, stamped_command

PATHS = AppPaths("shop", "/srv/apps", "/var/log/apps")


def app(**kw) -> App:
    return App(**{"name": "shop", "port": 8000, "domains": ("shop.example.com",), "repo": "https://g.example/s.git", **kw})


def parse_app(minimal_raw, tmp_path, **fields):
    minimal_raw["apps"] = [{"name": "shop", "port": 8000, "repo": "https://git.example.com/shop.git", **fields}]
    return parse_config(minimal_raw, base_dir=str(tmp_path))


# ------------------------------------------------------------------------ config


def test_app_defaults(minimal_raw, tmp_path):
    a = parse_app(minimal_raw, tmp_path).apps[0]
    assert (a.entry, a.worker_class, a.workers, a.threads, a.timeout) == ("app:app", "", 0, 1, 30)
    assert (a.secrets, a.env, a.requirements, a.static_url, a.max_body_size) == (("SECRET_KEY",), {}, "requirements.txt", "/static/", "10m")
    cfg = parse_app(minimal_raw, tmp_path)
    assert (cfg.python.version, cfg.nodejs.source, cfg.nodejs.version, cfg.tls.mode, cfg.tls.hsts_max_age) == (
        "",
        "distro",
        22,
        "letsencrypt",
        63072000,
    )
    assert (cfg.web.apps_dir, cfg.web.log_dir, cfg.web.ipv6) == ("/srv/apps", "/var/log/apps", True)


def test_pythonpath_chosen_in_env_is_allowed(minimal_raw, tmp_path):
    assert parse_app(minimal_raw, tmp_path, env={"PYTHONPATH": "src"}).apps[0].env == {"PYTHONPATH": "src"}


def test_an_app_port_on_the_first_login_ssh_port_is_refused(minimal_raw, tmp_path):
    minimal_raw["server"]["ssh_port"] = 2222
    minimal_raw["first_login"] = {"port": 2200}
    with pytest.raises(ConfigError) as exc:
        parse_app(minimal_raw, tmp_path, port=2200)
    assert exc.value.problems == ["apps[0].port: 2200 is reserved for sshd"]


def test_app_env_table_is_read(minimal_raw, tmp_path):
    assert parse_app(minimal_raw, tmp_path, env={"A": "1", "B_2": "x y"}).apps[0].env == {"A": "1", "B_2": "x y"}


BAD_APPS = [
    ({"repo": "github.com/x"}, "apps[0].repo", "not a git URL"),
    ({"branch": "-x"}, "apps[0].branch", "not a git branch"),
    ({"python": "3"}, "apps[0].python", "Python version"),
    ({"entry": "app app"}, "apps[0].entry", "module:variable"),
    ({"worker_class": "tornado"}, "apps[0].worker_class", "must be one of"),
    ({"threads": 0}, "apps[0].threads", "1 or more"),
    ({"env": {"bad-name": "x"}}, "apps[0].env.bad-name", "environment variable name"),
    ({"env": {"A": "it's"}}, "apps[0].env.A", "single quotes"),
    ({"env": {"DATA_DIR": "/x"}}, "apps[0].env.DATA_DIR", "set by vpskit"),
    ({"env": {"A": 1}}, "apps[0].env.A", "must be str"),
    ({"database": {"engine": "postgresql"}, "env": {"DATABASE_URL": "x"}}, "apps[0].env.DATABASE_URL", "from the app's database"),
    ({"database": {"engine": "postgresql"}, "secrets": ["DATABASE_URL"]}, "apps[0].secrets[0]", "from the app's database"),
    ({"secrets": ["SECRET_KEY"], "env": {"SECRET_KEY": "x"}}, "apps[0].secrets[0]", "generated, not configured"),
    ({"static_dir": "../etc"}, "apps[0].static_dir", "inside the repo"),
    ({"app_dir": "/srv/backend"}, "apps[0].app_dir", "inside the repo"),
    ({"install": "pipenv"}, "apps[0].install", "must be one of"),
    ({"env": {"PATH": "/opt/bin"}}, "apps[0].env.PATH", "break the app's process"),
    ({"env": {"LD_PRELOAD": "/x.so"}}, "apps[0].env.LD_PRELOAD", "break the app's process"),
    ({"secrets": ["PYTHONPATH"]}, "apps[0].secrets[0]", "generated random value"),
    ({"secrets": ["LD_LIBRARY_PATH"]}, "apps[0].secrets[0]", "generated random value"),
    ({"port": 22}, "apps[0].port", "reserved for sshd"),
    ({"install": "requirements", "requirements": ""}, "apps[0].requirements", "is required with install = 'requirements'"),
    ({"static_url": "static"}, "apps[0].static_url", "start and end"),
    ({"max_body_size": "ten"}, "apps[0].max_body_size", "size like"),
    ({"rate_limit": "10/s"}, "apps[0].rate_limit", "rate like"),
    ({"migrate": "a\nb"}, "apps[0].migrate", "one command line"),
]


@pytest.mark.parametrize("fields, where, fragment", BAD_APPS, ids=[b[1] + ":" + b[2] for b in BAD_APPS])
def test_bad_app_fields_are_rejected_naming_the_field(minimal_raw, tmp_path, fields, where, fragment):
    with pytest.raises(ConfigError) as exc:
        parse_app(minimal_raw, tmp_path, **fields)
    assert [p for p in exc.value.problems if p.startswith(f"{where}: ")], exc.value.problems
    assert len(exc.value.problems) == 1 and fragment in exc.value.problems[0], exc.value.problems


def test_bad_web_sections_are_rejected(minimal_raw, tmp_path):
    minimal_raw.update(
        python={"version": "python3"},
        nodejs={"source": "snap", "version": 16},
        tls={"mode": "acme", "email": "nobody", "acme_server": "http://x", "acme_ca_bundle": "ca.pem", "hsts_max_age": -1},
        web={"apps_dir": "/etc", "log_dir": "logs", "site_template": "missing.j2"},
    )
    with pytest.raises(ConfigError) as exc:
        parse_config(minimal_raw, base_dir=str(tmp_path))
    fields = sorted(p.split(": ", 1)[0] for p in exc.value.problems)
    assert fields == sorted([
        "python.version", "nodejs.source", "nodejs.version", "tls.mode", "tls.email", "tls.acme_server",
        "tls.acme_ca_bundle", "tls.hsts_max_age", "web.apps_dir", "web.log_dir", "web.site_template",
    ])  # fmt: skip


def test_an_app_without_repo_gets_no_code_deployed(minimal_raw, tmp_path):
    """A present app without a repo is valid (a database or jobs only); the web stack plans nothing for it."""
    minimal_raw["apps"] = [{"name": "db-only", "port": 8001}, {"name": "shop", "port": 8000, "repo": "https://g.example/s.git"}]
    config = parse_config(minimal_raw, base_dir=str(tmp_path))
    assert list(Plan(config, Distro("debian", "12", "bookworm")).python) == ["shop"]


def test_distro_packages_of_the_web_stack_go_into_the_base_systems_one_apt_run(minimal_raw, tmp_path):
    """nginx/certbot, the distro's Python and Node.js come from the archive; deadsnakes and NodeSource wait for their repo."""
    ubuntu = Distro("ubuntu", "24.04", "noble")

    def distro_packages(config, distro):
        return list(Plan(config, distro).web_contribution.packages)

    assert distro_packages(parse_config(minimal_raw, base_dir=str(tmp_path)), ubuntu) == []  # no apps, no web stack
    config = parse_app(minimal_raw, tmp_path, build="node build.js")
    assert distro_packages(config, ubuntu) == [
        "logrotate",
        "openssl",
        "nginx",
        "certbot",
        "python3",
        "python3-dev",
        "python3-venv",
        "python3.12-venv",
        "nodejs",
        "npm",
    ]
    minimal_raw["nodejs"] = {"source": "nodesource"}
    minimal_raw["python"] = {"version": "3.13"}
    minimal_raw["tls"] = {"mode": "selfsigned"}
    assert distro_packages(parse_app(minimal_raw, tmp_path, build="node build.js"), ubuntu) == ["logrotate", "openssl", "nginx"]
    minimal_raw["web"] = {"proxy": "caddy"}
    assert "nginx" not in distro_packages(parse_app(minimal_raw, tmp_path), ubuntu)


def test_absent_app_needs_no_repo(minimal_raw, tmp_path):
    minimal_raw["apps"] = [{"name": "old", "port": 8000, "state": "absent", "purge": True}]
    assert parse_config(minimal_raw, base_dir=str(tmp_path)).apps[0].purge


# ----------------------------------------------------------------------- workers


@pytest.mark.parametrize(
    "cpus, memory_mb, apps, kind, expected",
    [
        (1, 1024, 1, "sync", 3),  # 2x1+1, memory allows 4
        (2, 1024, 2, "sync", 2),  # 2x2+1=5, memory: 1024 / (2 apps x 256) = 2
        (2, 1024, 6, "sync", 1),  # never below one
        (4, 16384, 3, "gthread", 9),
        (8, 16384, 1, "eventlet", 1),  # Flask-SocketIO needs a single worker
        (2, 512, 1, "uvicorn", 2),
    ],
)
def test_default_workers_follow_cores_capped_by_memory(cpus, memory_mb, apps, kind, expected):
    assert default_workers(cpus, memory_mb, apps, kind) == expected


def test_worker_classes_bring_their_packages():
    assert pip_packages(app(kind="flask")) == ["gunicorn"]
    assert pip_packages(app(kind="fastapi")) == ["gunicorn", "uvicorn-worker"]
    assert pip_packages(app(worker_class="eventlet")) == ["gunicorn", "eventlet"]


# ------------------------------------------------------------------ env and unit


def test_env_values_read_back_unchanged_by_sh():
    """Every quoting env_value picks is read back by sh exactly as given."""
    for value in ["plain", "two words", "a$b", 'x"y', "back\\slash", "", "postgres://u:p@h/db", "semi;colon", "`cmd`"]:
        out = subprocess.run(["sh", "-c", f"V={env_value(value)}; printf '%s' \"$V\""], capture_output=True, text=True).stdout
        assert out == value, (value, env_value(value))


def test_env_file_keeps_existing_secrets_and_generates_missing_ones():
    a = app(env={"GREETING": "hi there"}, secrets=("SECRET_KEY", "API_TOKEN"))
    text = env_file_text(Code(**code_of(a)), PATHS, {"SECRET_KEY": "kept-value"}, new_secret=lambda: "fresh-value")
    assert text.splitlines()[1:] == [
        "DATA_DIR=/srv/apps/shop/data",
        "GREETING='hi there'",
        "SECRET_KEY=kept-value",
        "API_TOKEN=fresh-value",
    ]
    generated = env_file_text(Code(**code_of(a)), PATHS, {})
    assert len(generated.split("SECRET_KEY=")[1].split("\n")[0]) == 64


def test_unit_runs_gunicorn_on_loopback_sandboxed_without_env_values():
    spec = venv_spec(app(kind="fastapi", env={"GREETING": "hello-unit"}, timeout=60))
    text = unit_text(spec, replace(PATHS, released=True), "appuser", 3)
    assert "User=appuser\n" in text and "EnvironmentFile=/srv/apps/shop/.env\n" in text
    # Through the current release, so a graceful reload's new workers load the code it points at now.
    assert (
        "ExecStart=/srv/apps/shop/current/.venv/bin/gunicorn --workers 3 --worker-class uvicorn_worker.UvicornWorker"
        " --bind 127.0.0.1:8000 --timeout 60 --chdir /srv/apps/shop/current --access-logfile /var/log/apps/shop/access.log"
        " --error-logfile /var/log/apps/shop/error.log app:app\n"
    ) in text
    for line in (
        "Restart=always",
        "RestartSec=10",
        "NoNewPrivileges=yes",
        "ProtectSystem=full",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RuntimeDirectory=app-shop",
        "Environment=XDG_RUNTIME_DIR=/run/app-shop",
    ):
        assert f"\n{line}\n" in text
    assert "hello-unit" not in text and "SECRET_KEY" not in text


def test_health_timeout_reaches_the_release_switch_and_the_answer_check():
    paths = AppPaths("shop", "/srv/apps", "/var/log/apps")
    assert json.loads(app_settings(venv_spec(app()), paths, "appuser"))["health_timeout"] == 60
    spec = venv_spec(app(health_timeout=15))
    assert json.loads(app_settings(spec, paths, "appuser"))["health_timeout"] == 15
    assert "within 15s" in answer_command("shop", "python3", 8000, "/", "/var/log/apps/shop/error.log", spec.health_timeout)


def test_unit_under_home_does_not_hide_home():
    assert "ProtectHome" not in unit_text(venv_spec(app()), AppPaths("shop", "/home/appuser/apps", "/var/log/apps"), "appuser", 2)


def test_stamped_command_runs_once_per_key(tmp_path):
    """The command runs when the stamp differs from the key, records it, and is skipped while the key stays."""
    key = tmp_path / "key"
    key.write_text("v1")
    stamp, count = tmp_path / "stamp", tmp_path / "count"
    cmd = stamped_command(f"echo x >> {count}", f"cat {key}", str(stamp), str(tmp_path))
    for _ in range(2):
        subprocess.run(["sh", "-c", cmd], check=True)
    assert count.read_text() == "x\n" and stamp.read_text() == "v1\n"
    key.write_text("v2")
    subprocess.run(["sh", "-c", cmd], check=True)
    assert count.read_text() == "x\nx\n"


def test_stamped_command_failure_keeps_the_old_stamp(tmp_path):
    stamp = tmp_path / "stamp"
    stamp.write_text("old\n")
    proc = subprocess.run(["sh", "-c", stamped_command("false", "echo new", str(stamp), str(tmp_path))])
    assert proc.returncode != 0 and stamp.read_text() == "old\n"


def test_stamps_fact_reads_stored_and_current_keys(tmp_path):
    (tmp_path / "s1").write_text("abc\n")
    fact = Stamps()
    cmd = fact.command({"one": (str(tmp_path / "s1"), "echo abc"), "two": (str(tmp_path / "none"), "cat /nonexistent")})
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True)
    assert out.stderr == ""
    assert fact.process(out.stdout.splitlines()) == {"one": ("abc", "abc"), "two": ("", "")}


# ------------------------------------------------------------------------- facts


def test_git_checkout_fact_prefers_the_peeled_tag_and_ignores_ssh_chatter():
    fact = GitCheckout()
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    out = ["head=" + a, "url=file:///r.git", "remote=Warning: Permanently added 'h' (ED25519) to the list of known hosts.",
           f"remote={b}\trefs/tags/v1", f"remote={c}\trefs/tags/v1^{{}}"]  # fmt: skip
    assert fact.process(out) == {"head": a, "url": "file:///r.git", "remote": c, "error": "", "skipped": False}
    assert fact.process(["head=" + a, "url=u", f"remote={b}\trefs/heads/main"])["remote"] == b
    assert fact.process([]) is None


def test_git_checkout_fact_reports_an_unreadable_remote_and_a_key_not_yet_there():
    fact = GitCheckout()
    failed = fact.process(["head=" + "a" * 40, "url=u", "error=fatal: could not read from remote", "error=check access"])
    assert (failed["remote"], failed["error"]) == ("", "fatal: could not read from remote\ncheck access")
    assert fact.process(["head=" + "a" * 40, "url=u", "skipped=1"])["skipped"] is True
    assert "skipped=1" in fact.command("/srv/apps/x/src", "ssh://h/r.git", "main", "appuser", "", "/srv/apps/x/.ssh/deploy_key")
    assert "skipped" not in fact.command("/srv/apps/x/src", "ssh://h/r.git", "main", "appuser")


def test_env_secrets_fact_reads_plain_and_quoted_values():
    assert EnvSecrets().process(["SECRET_KEY=abc-_1", "TOKEN='x y'"]) == {"SECRET_KEY": "abc-_1", "TOKEN": "x y"}


def test_certificate_fact_reads_names_and_server():
    out = ["domain=a.example.com", "domain=www.a.example.com", "server=https://acme.example/dir"]
    assert Certificate().process(out) == {"domains": ["a.example.com", "www.a.example.com"], "server": "https://acme.example/dir"}
    assert Certificate().process([]) is None


# ------------------------------------------------------------------------ certbot


def test_certificate_is_current_only_for_the_same_names_and_server():
    state = {"domains": ["b.example.com", "a.example.com"], "server": LETSENCRYPT}
    assert certificate_current(state, ["a.example.com", "B.example.com"], LETSENCRYPT)
    assert not certificate_current(state, ["a.example.com"], LETSENCRYPT)
    assert not certificate_current(state, ["a.example.com", "b.example.com"], LETSENCRYPT_STAGING)
    assert not certificate_current(None, ["a.example.com"])


def test_acme_server_choice():
    assert acme_server(TLS()) == LETSENCRYPT
    assert acme_server(TLS(staging=True)) == LETSENCRYPT_STAGING
    assert acme_server(TLS(staging=True, acme_server="https://pebble:14000/dir")) == "https://pebble:14000/dir"


def test_certbot_command_uses_the_webroot_and_configured_server():
    cmd = certbot_command("shop", ["shop.example.com", "www.shop.example.com"], TLS(email="me@example.com"))
    assert cmd == (
        "certbot certonly --non-interactive --agree-tos --webroot -w /var/www/acme --cert-name shop"
        " -d shop.example.com -d www.shop.example.com --email me@example.com"
        f" --server {LETSENCRYPT} --force-renewal --quiet"
    )
    custom = certbot_command("shop", ["shop.example.com"], TLS(acme_server="https://localhost:14000/dir", acme_ca_bundle="/etc/ca.pem"))
    assert custom.startswith("REQUESTS_CA_BUNDLE=/etc/ca.pem certbot certonly")
    assert "--register-unsafely-without-email" in custom and "--server https://localhost:14000/dir" in custom


def test_cert_files_per_mode():
    assert cert_files("shop", TLS()) == CertFiles(
        "/etc/letsencrypt/live/shop/fullchain.pem", "/etc/letsencrypt/live/shop/privkey.pem", "/etc/letsencrypt/renewal/shop.conf"
    )
    assert cert_files("shop", TLS(mode="selfsigned")).cert == "/etc/ssl/vpskit/shop/fullchain.pem"


# -------------------------------------------------------------------------- nginx


def test_site_before_the_certificate_serves_only_challenges_and_the_redirect():
    text = site_text(app(domains=("shop.example.com", "www.shop.example.com")), None)
    assert "server_name shop.example.com www.shop.example.com;" in text
    assert "location ^~ /.well-known/acme-challenge/ {\n        root /var/www/acme;" in text
    assert "return 301 https://$host$request_uri;" in text
    assert "listen 443" not in text and "ssl_certificate" not in text


def test_site_with_certificate_proxies_with_headers_static_hsts_and_limits():
    a = app(rate_limit="10r/s", rate_burst=5, max_body_size="25m")
    text = site_text(a, CertFiles("/c/full.pem", "/c/key.pem"), "/srv/apps/shop/src/static", 63072000, ipv6=False)
    for line in [
        "upstream app_shop {\n    server 127.0.0.1:8000;\n}",
        "limit_req_zone $binary_remote_addr zone=app_shop:10m rate=10r/s;",
        "listen 443 ssl http2;",
        "ssl_certificate /c/full.pem;",
        "client_max_body_size 25m;",
        'add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;',
        'add_header X-Content-Type-Options "nosniff" always;',
        "location /static/ {\n        alias /srv/apps/shop/src/static/;\n        expires 30d;",
        "limit_req zone=app_shop burst=5 nodelay;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
    ]:
        assert line in text, line
    assert "[::]" not in text


def test_site_without_static_hsts_or_limits():
    text = site_text(app(), CertFiles("/c/f", "/c/k"), "", 0)
    assert "Strict-Transport-Security" not in text and "limit_req" not in text and "alias" not in text
    assert "listen [::]:443 ssl http2;" in text


def test_site_for_nginx_1_25_and_later_turns_http2_on_with_its_own_directive():
    """Debian 13 and Ubuntu 26.04 (nginx 1.26, 1.28): `http2 on;`, and no `listen ... http2` that nginx warns about."""
    old = site_text(app(), CertFiles("/c/f", "/c/k"), "", 0)
    new = site_text(app(), CertFiles("/c/f", "/c/k"), "", 0, http2_on=True)
    assert "listen 443 ssl;" in new and "listen [::]:443 ssl;" in new and "    http2 on;" in new
    assert " http2;" not in new and "http2 on" not in old
    assert new.replace("    http2 on;\n", "").replace("ssl;", "ssl http2;") == old


def test_site_from_a_users_own_template():
    assert site_text(app(), None, template="# {{ app.name }} on {{ app.port }}\n") == "# shop on 8000\n"


def test_main_config_is_mozillas_intermediate_profile():
    text = main_text()
    assert "\n    ssl_protocols TLSv1.2 TLSv1.3;\n" in text
    assert "\n    ssl_dhparam /etc/nginx/ffdhe2048.pem;\n" in text
    assert "server_tokens off;" in text and "TLSv1.1" not in text
    assert "\n    ssl_ecdh_curve X25519:prime256v1:secp384r1;\n" in text
    assert "\n    ssl_prefer_server_ciphers off;\n" in text
    # Mozilla's intermediate TLS 1.2 suites, in its order: forward secret and AEAD only.
    assert CIPHERS.split(":")[:2] == ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"]
    assert len(CIPHERS.split(":")) == 9
    assert all(("GCM" in c or "CHACHA20" in c) and c.startswith(("ECDHE-", "DHE-")) for c in CIPHERS.split(":"))


def test_the_dhe_group_is_rfc_7919s_ffdhe2048_and_passes_the_check_it_goes_live_with(tmp_path):
    """The shipped file holds p = 2^2048 - 2^1984 + (floor(2^1918 * e) + 560316) * 2^64 - 1, g = 2 (RFC 7919, A.1)."""
    e_scaled = sum(Fraction(2**1918, math.factorial(k)) for k in range(300))
    p = 2**2048 - 2**1984 + (math.floor(e_scaled) + 560316) * 2**64 - 1
    pem = FILES_DIR / "ffdhe2048.pem"
    der = base64.b64decode("".join(pem.read_text().splitlines()[1:-1]))
    parsed = subprocess.run(["openssl", "asn1parse", "-inform", "DER"], input=der, capture_output=True, check=True).stdout.decode()
    integers = [int(line.rsplit(":", 1)[1], 16) for line in parsed.splitlines() if "INTEGER" in line]
    assert integers == [p, 2]
    staged = tmp_path / "dh.pem"
    staged.write_bytes(pem.read_bytes())
    assert subprocess.run(["sh", "-c", DHPARAM_CHECK.replace("{path}", str(staged))], capture_output=True).returncode == 0
    staged.write_text(pem.read_text().replace("MIIBCAKCAQEA", "MIIBCAKCAQEB"))
    assert subprocess.run(["sh", "-c", DHPARAM_CHECK.replace("{path}", str(staged))], capture_output=True).returncode != 0


def test_selfsigned_certificate_covers_the_domains(tmp_path):
    """The self-signed fallback, run with openssl, makes a key (600) and a certificate the Certificate fact reads back."""
    files_ = CertFiles(str(tmp_path / "shop" / "fullchain.pem"), str(tmp_path / "shop" / "privkey.pem"))
    subprocess.run(["sh", "-c", selfsigned_command(files_, ["shop.example.com", "www.shop.example.com"])], check=True)
    out = subprocess.run(["sh", "-c", Certificate().command(files_.cert)], capture_output=True, text=True, check=True)
    state = Certificate().process(out.stdout.splitlines())
    assert certificate_current(state, ["www.shop.example.com", "shop.example.com"])
    assert oct((tmp_path / "shop" / "privkey.pem").stat().st_mode & 0o777) == "0o600"


def test_a_command_as_the_app_user_gets_the_database_url_from_the_root_only_file(tmp_path):
    """Migrations run as the deploy user, who cannot read the secret file: root passes the URL in the environment."""
    secret = tmp_path / "dibby.env"
    secret.write_text("DATABASE_URL=postgresql://dibby:s3cret@127.0.0.1:5432/dibby\n")
    cmd = as_user("appuser", 'echo "$DATABASE_URL"', secret_env=str(secret))
    assert "s3cret" not in cmd  # never on a command line
    assert cmd.startswith(f"set -a && . {secret} && set +a && sudo --preserve-env=DATABASE_URL -u appuser -H sh -c ")
    assert as_user("appuser", "true") == "sudo -u appuser -H sh -c true"


def test_catch_all_https_server_refuses_the_handshake_or_answers_nothing_on_old_nginx():
    """nginx 1.19.4+ refuses the TLS handshake for unknown names; Ubuntu 22.04's 1.18 gets a throwaway certificate and 444."""
    from operations.certbot import cert_files
    from operations.nginx import DEFAULT_CERT, SELFSIGNED

    new = render("nginx-default.conf.j2", ipv6=True, default_cert=None)
    assert "ssl_reject_handshake on;" in new and "ssl_certificate" not in new
    old = render("nginx-default.conf.j2", ipv6=True, default_cert=cert_files(DEFAULT_CERT, SELFSIGNED))
    assert "ssl_reject_handshake" not in old
    assert "ssl_certificate /etc/" in old and old.rstrip().endswith("return 444;\n}")
