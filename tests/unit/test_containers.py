"""The container path's pure pieces: [docker]/compose/Caddy config checks, daemon.json, the Caddyfile,
the compose commands and checks, the container database backup items, and what the operations yield."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import subprocess

import pytest

import operations.docker as docker_mod
from operations.appspecs import compose_spec
from operations.aptrepo import source_file_text
from operations.backup import BackupItem, backup_items
from operations.caddy import caddyfile_text
from operations.certbot import Issuer
from operations.checkout import AppPaths
from operations.compose import ComposeProject, compose_command, compose_down, compose_stamp_keys, exec_command, up_command
from operations.config import App, BasicAuth, ConfigError, ContainerDatabase, DockerEngine, parse_config
from operations.distro import Distro
from operations.docker import DOCKER_FINGERPRINT, compose_problem, daemon_json_text, docker_packages, has_compose
from operations.render import FILES_DIR, render
from operations.sites import Login, Site
from tests.unit.hoststub import check_spec, fact

UBUNTU = Distro("ubuntu", "24.04", "noble")
DEBIAN = Distro("debian", "12", "bookworm")
BCRYPT = "$2a$14$" + "a" * 53
PATHS = AppPaths("memo", "/srv/apps", "/var/log/apps")

_loader = importlib.machinery.SourceFileLoader("vpskit_compose_check", str(FILES_DIR / "vpskit-compose-check"))
_spec = importlib.util.spec_from_loader("vpskit_compose_check", _loader)
check = importlib.util.module_from_spec(_spec)
_loader.exec_module(check)


def compose_app(**kw) -> App:
    fields = {"name": "memo", "port": 5003, "kind": "compose", "domains": ("memo.example.com",), "repo": "https://g.example/m.git",
              "compose_file": "compose.yaml", "service": "web", "migrate": "python3 migrate.py", "seed": "python3 seed.py"}  # fmt: skip
    return App(**{**fields, **kw})


def parse(minimal_raw, tmp_path, apps=(), **sections):
    minimal_raw["apps"] = list(apps)
    minimal_raw.update(sections)
    return parse_config(minimal_raw, base_dir=str(tmp_path))


COMPOSE = {"name": "memo", "port": 5003, "kind": "compose", "repo": "https://g.example/m.git", "compose_file": "compose.yaml"}


# ------------------------------------------------------------------------ config


def test_defaults_change_nothing_for_configs_without_containers(minimal_raw, tmp_path):
    cfg = parse(minimal_raw, tmp_path)
    assert (cfg.web.proxy, cfg.web.caddyfile_template) == ("nginx", "")
    assert cfg.docker == DockerEngine(
        enabled=False, source="docker", log_max_size="100m", log_max_file=3, storage_driver="", deploy_user_in_group=False
    )
    assert not cfg.wants_docker and cfg.compose_apps == []


def test_a_compose_app_wants_the_engine(minimal_raw, tmp_path):
    cfg = parse(minimal_raw, tmp_path, apps=[{**COMPOSE, "container_databases": [{"service": "db", "name": "memo"}]}])
    assert cfg.wants_docker and [a.name for a in cfg.compose_apps] == ["memo"]
    app = cfg.apps[0]
    assert (app.health_timeout, app.public_services) == (60, ())
    assert app.container_databases == (ContainerDatabase("db", "memo", "postgresql", "postgres"),)


def test_basic_auth_table_is_read(minimal_raw, tmp_path):
    cfg = parse(minimal_raw, tmp_path, apps=[{**COMPOSE, "basic_auth": {"user": "alice", "hash": BCRYPT}}], web={"proxy": "caddy"})
    assert cfg.apps[0].basic_auth == BasicAuth("alice", BCRYPT)


BAD = [
    ({"web": {"proxy": "traefik"}}, [], "web.proxy", "must be one of nginx, caddy"),
    ({"docker": {"source": "snap"}}, [], "docker.source", "must be one of docker, distro"),
    ({"docker": {"storage_driver": "aufs"}}, [], "docker.storage_driver", "must be empty"),
    ({"docker": {"log_max_size": "100MB"}}, [], "docker.log_max_size", "size like '100m'"),
    ({"docker": {"log_max_file": 0}}, [], "docker.log_max_file", "1 or more"),
    ({}, [{**COMPOSE, "compose_file": ""}], "apps[0].compose_file", "is required for kind = \"compose\""),
    ({}, [{**COMPOSE, "compose_file": "../compose.yaml"}], "apps[0].compose_file", "inside the repo"),
    ({}, [{**COMPOSE, "migrate": "x"}], "apps[0].service", "required with migrate or seed"),
    ({}, [{**COMPOSE, "public_services": ["Web!"]}], "apps[0].public_services[0]", "not a compose service name"),
    ({}, [{**COMPOSE, "health_timeout": 0}], "apps[0].health_timeout", "1 or more seconds"),
    ({}, [{**COMPOSE, "static_dir": "static"}], "apps[0].static_dir", "not used by kind = \"compose\""),
    ({}, [{**COMPOSE, "revision": "3f2c0a1"}], "apps[0].revision", "pin a tag (commit SHAs are for venv apps)"),
    ({}, [{**COMPOSE, "database": {"engine": "postgresql"}}], "apps[0].database.engine", "container_databases"),
    ({}, [{**COMPOSE, "container_databases": [{"service": "db", "name": "m", "engine": "mongo"}]}],
     "apps[0].container_databases[0].engine", "postgresql, mysql"),
    ({}, [{**COMPOSE, "kind": "flask"}], "apps[0].compose_file", "only by apps with kind = \"compose\""),
    ({}, [{**COMPOSE, "api_upstream": "127.0.0.1:5010"}], "apps[0].api_upstream", "only with [web] proxy = \"caddy\""),
    ({"web": {"proxy": "caddy"}}, [{**COMPOSE, "api_upstream": "10.0.0.5:80"}], "apps[0].api_upstream", "loopback address"),
    ({"web": {"proxy": "caddy"}}, [{**COMPOSE, "basic_auth": {"user": "alice", "hash": "s3cret"}}], "apps[0].basic_auth.hash",
     "is not a bcrypt hash"),
    ({}, [{**COMPOSE, "basic_auth": {"user": "alice", "hash": BCRYPT}}], "apps[0].basic_auth", "only with [web] proxy = \"caddy\""),
    ({"web": {"caddyfile_template": "missing.j2", "proxy": "caddy"}}, [], "web.caddyfile_template", "does not exist"),
]  # fmt: skip


@pytest.mark.parametrize("sections, apps, where, fragment", BAD, ids=[f"{b[2]}:{b[3]}" for b in BAD])
def test_each_bad_container_field_gives_one_error_naming_it(minimal_raw, tmp_path, sections, apps, where, fragment):
    with pytest.raises(ConfigError) as exc:
        parse(minimal_raw, tmp_path, apps=apps, **sections)
    assert len(exc.value.problems) == 1, exc.value.problems
    assert exc.value.problems[0].startswith(f"{where}: ") and fragment in exc.value.problems[0], exc.value.problems


def test_the_example_config_is_valid(keys, tmp_path):
    import tomllib

    from tests.rig import ROOT

    raw = tomllib.loads((ROOT / "examples" / "vpskit.toml").read_text())
    raw["first_login"]["key"] = raw["deploy_user"]["private_key"] = str(keys / "id_ed25519")
    raw["deploy_user"]["public_keys"] = [str(keys / "id_ed25519.pub")]
    cfg = parse_config(raw, base_dir=str(tmp_path))
    assert [a.name for a in cfg.compose_apps] == ["memo", "learnup"] and cfg.web.proxy == "nginx"


# ------------------------------------------------------------------------ engine


def test_compose_with_distro_docker_on_debian_is_refused_naming_the_field():
    apps = [compose_app().name]
    message = compose_problem(DockerEngine(source="distro"), DEBIAN, apps)
    assert message.startswith('[docker].source = "distro"') and "memo" in message and "Nothing was changed" in message
    assert compose_problem(DockerEngine(source="distro"), UBUNTU, apps) == ""
    assert compose_problem(DockerEngine(source="docker"), DEBIAN, apps) == ""
    assert compose_problem(DockerEngine(source="distro"), DEBIAN, []) == ""


def test_engine_packages_by_source_and_distro():
    assert docker_packages(DockerEngine(source="docker"), DEBIAN) == [
        "docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin",
    ]  # fmt: skip
    assert docker_packages(DockerEngine(source="distro"), UBUNTU) == ["docker.io", "docker-compose-v2", "docker-buildx"]
    assert docker_packages(DockerEngine(source="distro"), DEBIAN) == ["docker.io"]
    assert has_compose(DockerEngine(source="distro"), UBUNTU) and not has_compose(DockerEngine(source="distro"), DEBIAN)


def test_daemon_json_rotates_json_file_logs_and_sets_the_storage_driver_only_when_asked():
    assert json.loads(daemon_json_text(DockerEngine())) == {"log-driver": "json-file", "log-opts": {"max-size": "100m", "max-file": "3"}}
    custom = json.loads(daemon_json_text(DockerEngine(log_max_size="20m", log_max_file=5, storage_driver="vfs")))
    assert custom == {"log-driver": "json-file", "log-opts": {"max-size": "20m", "max-file": "5"}, "storage-driver": "vfs"}
    assert daemon_json_text(DockerEngine()).endswith("}\n")


@pytest.fixture
def calls(monkeypatch):
    """The operations docker_engine asks for, by name, with their arguments (nothing runs)."""
    seen: list[tuple[str, dict]] = []

    def record(name):
        def op(*args, **kwargs):
            seen.append((name, {**dict(zip(("name",), args, strict=False)), **kwargs}))
            return type("Op", (), {"will_change": True})()

        return op

    monkeypatch.setattr(docker_mod, "apt_repository", lambda *a, **k: seen.append(("apt_repository", {"args": a, **k})))
    monkeypatch.setattr(docker_mod, "packages_installed", record("packages_installed"))
    monkeypatch.setattr(docker_mod, "directory_present", record("directory_present"))
    monkeypatch.setattr(docker_mod, "checked_file", record("checked_file"))
    monkeypatch.setattr(docker_mod, "unit_running", record("unit_running"))
    return seen


def engine_ops(*args):
    """docker_engine's body, outside a pyinfra deploy (its operations are the recording stand-ins)."""
    return docker_mod.docker_engine._inner(*args)


def test_docker_repo_source_is_pinned_and_its_file_written(calls):
    engine_ops(UBUNTU, DockerEngine(source="docker"), ["memo"])
    repo = dict(calls)["apt_repository"]
    assert repo["args"] == ("docker",)
    assert repo["fingerprint"] == DOCKER_FINGERPRINT == "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
    assert (repo["key_url"], repo["uri"], repo["suite"], repo["components"]) == (
        "https://download.docker.com/linux/ubuntu/gpg", "https://download.docker.com/linux/ubuntu", "noble", "stable",
    )  # fmt: skip
    text = source_file_text(repo["comment"], repo["uri"], repo["suite"], repo["components"], "/etc/apt/keyrings/docker.gpg")
    assert (
        "URIs: https://download.docker.com/linux/ubuntu\nSuites: noble\nComponents: stable\nSigned-By: /etc/apt/keyrings/docker.gpg" in text
    )
    daemon = dict(calls)["checked_file"]
    assert daemon["dest"] == "/etc/docker/daemon.json" and "dockerd --validate --config-file {path}" in daemon["validate"]
    assert dict(calls)["unit_running"]["restarted"] is True  # daemon.json changed in this run


def test_distro_source_adds_no_repository_and_debian_compose_apps_stop_the_deploy(calls):
    engine_ops(DEBIAN, DockerEngine(source="distro"), [])
    assert "apt_repository" not in dict(calls) and dict(calls)["packages_installed"]["packages"] == ["docker.io"]
    with pytest.raises(Exception, match=r'\[docker\]\.source = "distro"'):
        engine_ops(DEBIAN, DockerEngine(source="distro"), ["memo"])


# ------------------------------------------------------------------------ compose


def test_compose_command_names_project_directory_file_and_env():
    assert compose_command(compose_spec(compose_app()), PATHS) == (
        "docker compose --project-name memo --project-directory /srv/apps/memo/src -f /srv/apps/memo/src/compose.yaml"
        " --env-file /srv/apps/memo/.env"
    )


def test_up_checks_ports_before_up_and_waits_after():
    cmd = up_command(compose_spec(compose_app(public_services=("mail",), health_timeout=90)), PATHS)
    check_at, up_at, wait_at = (
        cmd.index(" ports memo 5003 mail"),
        cmd.index(" up --detach --build"),
        cmd.index(" wait memo 90 -- docker compose"),
    )
    assert check_at < up_at < wait_at
    assert cmd.startswith(
        compose_command(compose_spec(compose_app()), PATHS) + " config --format json | /usr/local/lib/vpskit/vpskit-compose-check"
    )
    assert " && " in cmd[check_at:up_at] and " && " in cmd[up_at:wait_at]
    assert " ports memo 0" in up_command(compose_spec(compose_app(domains=())), PATHS)  # no site: no port the proxy needs


def test_migrate_and_seed_run_in_the_service_without_a_tty():
    assert exec_command(compose_spec(compose_app()), PATHS, "python3 migrate.py").endswith(" exec -T web sh -c 'python3 migrate.py'")


def test_stamps_key_up_by_commit_env_and_settings_and_seed_once():
    keys = compose_stamp_keys(compose_spec(compose_app()), PATHS)
    assert set(keys) == {"up", "migrate", "seed"}
    assert (
        keys["up"][0] == "/srv/apps/memo/.vpskit-up"
        and "rev-parse HEAD" in keys["up"][1]
        and "sha256sum < /srv/apps/memo/.env" in keys["up"][1]
    )
    assert keys["up"][1] != compose_stamp_keys(compose_spec(compose_app(public_services=("web",))), PATHS)["up"][1]
    assert keys["seed"] == ("/srv/apps/memo/.vpskit-seeded", "echo seeded")
    assert set(compose_stamp_keys(compose_spec(compose_app(migrate="", seed="", service="")), PATHS)) == {"up"}


@pytest.mark.parametrize("containers, purge, expected", [
    ([], False, []),
    (["abc"], False, ["docker compose --project-name memo down --remove-orphans"]),
    (["abc"], True, ["docker compose --project-name memo down --remove-orphans --volumes"]),
])  # fmt: skip
def test_compose_down_only_when_the_project_has_containers(containers, purge, expected):
    check_spec(compose_down, {fact(ComposeProject, project="memo"): containers}, {"project": "memo", "volumes": purge}, expected)


def test_compose_project_fact():
    assert ComposeProject().command("memo") == "docker ps -aq --filter label=com.docker.compose.project=memo"
    assert ComposeProject().process(["abc", "", "def"]) == ["abc", "def"]


# ------------------------------------------------------------------ vpskit-compose-check

CONFIG = {
    "services": {
        "web": {"ports": [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 8000, "published": "5003", "protocol": "tcp"}]},
        "db": {"image": "postgres:16"},
    }
}


def with_port(service, **port):
    cfg = json.loads(json.dumps(CONFIG))
    cfg["services"].setdefault(service, {}).setdefault("ports", []).append({"target": 25, "published": "2525", **port})
    return cfg


def test_loopback_ports_pass():
    assert check.port_problems(CONFIG, 5003, set()) == []
    assert check.port_problems(with_port("mail", host_ip="::1"), 5003, set()) == []


@pytest.mark.parametrize("port, where", [({}, "every address"), ({"host_ip": "0.0.0.0"}, "every address"),
                                         ({"host_ip": "::"}, "every address"), ({"host_ip": "203.0.113.7"}, "203.0.113.7")])  # fmt: skip
def test_a_port_reachable_from_outside_is_a_problem_naming_the_service(port, where):
    assert check.port_problems(with_port("mail", **port), 5003, set()) == [f"service mail: port 2525->25 is published on {where}"]


def test_public_services_may_publish_everywhere_and_host_network_is_caught():
    assert check.port_problems(with_port("mail"), 5003, {"mail"}) == []
    cfg = json.loads(json.dumps(CONFIG))
    cfg["services"]["db"]["network_mode"] = "host"
    assert check.port_problems(cfg, 5003, set()) == ["service db: network_mode host puts all its ports on every address"]


def test_the_apps_own_port_must_be_published_on_loopback():
    assert check.port_problems(CONFIG, 5004, set()) == ["no service publishes 127.0.0.1:5004, the app's port the front proxy forwards to"]
    assert check.port_problems(CONFIG, 0, set()) == []


def test_ports_command_fails_naming_app_and_service():
    proc = subprocess.run([str(FILES_DIR / "vpskit-compose-check"), "ports", "memo", "5003"], input=json.dumps(with_port("mail")),
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith("vpskit: app memo: service mail: port 2525->25 is published on every address")
    ok = subprocess.run([str(FILES_DIR / "vpskit-compose-check"), "ports", "memo", "5003", "mail"], input=json.dumps(with_port("mail")),
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr


def test_readiness_from_compose_ps_in_both_formats():
    lines = '{"Service": "web", "State": "running", "Health": "starting"}\n{"Service": "db", "State": "running", "Health": "healthy"}\n'
    assert check.not_ready(check.parse_ps(lines), ["web", "db", "init"]) == ["web (running, starting)", "init (no container)"]
    array = json.dumps([{"Service": "web", "State": "running", "Health": ""}, {"Service": "init", "State": "exited", "ExitCode": 0}])
    assert check.not_ready(check.parse_ps(array), ["web", "init"]) == []
    assert check.not_ready([{"Service": "web", "State": "exited", "ExitCode": 1}], ["web"]) == ["web (exited)"]


def test_wait_times_out_naming_the_services(tmp_path):
    fake = tmp_path / "compose"
    fake.write_text('#!/bin/sh\ncase "$1" in config) echo web;; ps) echo \'{"Service": "web", "State": "restarting"}\';; esac\n')
    fake.chmod(0o755)
    proc = subprocess.run(
        [str(FILES_DIR / "vpskit-compose-check"), "wait", "memo", "1", "--", str(fake)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1 and "vpskit: app memo: not running/healthy after 1 s: web (restarting)" in proc.stderr


# ------------------------------------------------------------------ Caddyfile

SITES = [
    Site("memo", ("memo.example.com", "www.memo.example.com"), 5003),
    Site("shop", ("shop.example.com",), 5001, api_upstream="127.0.0.1:5010", basic_auth=Login("alice", BCRYPT)),
]


def test_caddyfile_has_one_site_block_per_app_with_proxy_headers_gzip_and_json_log():
    text = caddyfile_text(
        SITES, Issuer(acme_server="https://localhost:14000/dir", acme_ca_bundle="/etc/pebble/ca.pem", email="a@example.com")
    )
    assert text.count("reverse_proxy 127.0.0.1:500") == 2  # each app; shop also has its /api upstream
    assert "\nmemo.example.com, www.memo.example.com {\n" in text and "\nshop.example.com {\n" in text
    assert "\temail a@example.com\n\tacme_ca https://localhost:14000/dir\n\tacme_ca_root /etc/pebble/ca.pem\n" in text
    assert 'Strict-Transport-Security "max-age=63072000; includeSubDomains"' in text and "X-Content-Type-Options" in text
    assert text.count("encode zstd gzip") == 2 and text.count("format json") == 2
    assert "output file /var/log/caddy/memo.access.log" in text
    shop = text.split("\nshop.example.com {\n", 1)[1]
    assert f"basicauth {{\n\t\talice {BCRYPT}\n\t}}" in shop
    assert "handle_path /api/* {\n\t\treverse_proxy 127.0.0.1:5010\n\t}" in shop
    memo = text.split("\nmemo.example.com, www.memo.example.com {\n", 1)[1].split("\nshop.example.com {\n", 1)[0]
    assert "basicauth" not in memo and "handle_path" not in memo and "tls internal" not in memo


def test_caddyfile_defaults_to_lets_encrypt_and_selfsigned_uses_the_internal_ca():
    default = caddyfile_text(SITES[:1], Issuer())
    assert "acme_ca" not in default and "email" not in default and "tls internal" not in default
    assert "acme_ca https://acme-staging-v02.api.letsencrypt.org/directory" in caddyfile_text(SITES[:1], Issuer(staging=True))
    selfsigned = caddyfile_text(SITES[:1], Issuer(mode="selfsigned"), hsts_max_age=0)
    assert "\ttls internal {\n" in selfsigned and "Strict-Transport-Security" not in selfsigned


def test_caddyfile_sites_use_mozillas_intermediate_tls_settings():
    for issuer in (Issuer(), Issuer(mode="selfsigned")):
        text = caddyfile_text(SITES, issuer)
        block = (
            "\t\tprotocols tls1.2 tls1.3\n"
            "\t\tciphers TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 "
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 "
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256\n"
            "\t\tcurves x25519 secp256r1 secp384r1\n\t}\n"
        )
        assert text.count(block) == len(SITES), text


def test_a_users_caddyfile_template_replaces_vpskits():
    assert caddyfile_text(SITES, Issuer(), "{% for s in sites %}{{ s.app.name }} {% endfor %}") == "memo shop "


# ------------------------------------------------------------------ backups


def test_container_databases_become_backup_items_after_the_apps_own():
    apps = [
        compose_app(
            container_databases=(ContainerDatabase("db", "memo", user="memo"), ContainerDatabase("mysql", "shop_db", "mysql", "root"))
        ),
        compose_app(name="gone", state="absent", container_databases=(ContainerDatabase("db", "x"),)),
    ]
    assert backup_items(apps) == [
        BackupItem("docker_pg", "memo-db-memo", "memo db memo memo"),
        BackupItem("docker_mysql", "memo-mysql-shop-db", "memo mysql shop_db root"),
    ]
    conf = render("backup.conf.j2", dir="/b", keep_days=7, status_dir="/s", pg_port=5432, items=backup_items(apps))
    assert "\ndocker_pg memo-db-memo memo db memo memo\n" in conf


def test_mysql_container_backup_and_restore_go_through_docker_exec(tmp_path):
    """A stand-in `docker` runs the container side locally; the dump is verified, listed and restored."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "calls"
    (bin_ / "docker").write_text(
        f'#!/bin/bash\necho "docker $*" >> {log}\n'
        'case "$1" in ps) echo cid1;; exec) shift; while [ "${1#-}" != "$1" ]; do shift; done; shift; exec "$@";; esac\n'
    )
    (bin_ / "mysqldump").write_text(
        f'#!/bin/sh\necho "mysqldump $* pw=$MYSQL_PWD" >> {log}\necho "CREATE TABLE t (x int);"\necho "-- Dump completed on now"\n'
    )
    (bin_ / "mysql").write_text(f'#!/bin/sh\necho "mysql $* pw=$MYSQL_PWD" >> {log}\ncat > /dev/null\n')
    for f in bin_.iterdir():
        f.chmod(0o755)
    items = [BackupItem("docker_mysql", "shop-mysql-shop", "shop mysql shop root")]
    conf = render("backup.conf.j2", dir=str(tmp_path / "b"), keep_days=7, status_dir=str(tmp_path / "s"), pg_port=1, items=items)
    (tmp_path / "backup.conf").write_text(conf)
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "VPSKIT_BACKUP_CONF": str(tmp_path / "backup.conf"),
           "VPSKIT_BACKUP_LOCK": str(tmp_path / "lock"), "MYSQL_ROOT_PASSWORD": "rootpw"}  # fmt: skip
    run = lambda *a: subprocess.run(["bash", str(FILES_DIR / "vpskit-backup"), *a], capture_output=True, text=True, env=env, timeout=60)  # noqa: E731
    r = run("run")
    assert r.returncode == 0, r.stdout + r.stderr
    listed = run("list", "shop-mysql-shop").stdout.split()
    assert len(listed) == 1 and listed[0].endswith(".sql.gz")
    r = run("restore", "shop-mysql-shop", "--into", "scratch")
    assert r.returncode == 0, r.stdout + r.stderr
    calls = log.read_text()
    assert "mysqldump -u root --single-transaction --routines --events shop pw=rootpw" in calls
    assert "mysql -u root -e CREATE DATABASE IF NOT EXISTS `scratch` mysql pw=rootpw" in calls
    assert "mysql -u root scratch pw=rootpw" in calls
    assert "rootpw" not in " ".join(line for line in calls.splitlines() if line.startswith("docker "))  # never on a command line


# ------------------------------------------------------------------ web stack split


def test_the_front_proxy_serves_venv_and_compose_apps_and_python_plans_skip_compose_apps(minimal_raw, tmp_path):
    from operations.plan import Plan

    cfg = parse(minimal_raw, tmp_path, apps=[
        {"name": "shop", "port": 5001, "repo": "https://g.example/s.git", "domains": ["shop.example.com"]},
        {**COMPOSE, "domains": ["memo.example.com"]},
        {"name": "db-only", "port": 5002, "domains": ["db.example.com"]},
        {"name": "old", "port": 5004, "state": "absent"},
    ])  # fmt: skip
    plan = Plan(cfg, DEBIAN)
    assert [a.name for a in plan.front_proxy["sites"]] == ["shop", "memo"] and plan.front_proxy["absent"] == ["old"]
    assert list(plan.python) == ["shop"]


def test_deploy_user_joins_the_docker_group_only_through_its_own_group_list(monkeypatch):
    import operations.users as users

    seen, made = {}, []
    monkeypatch.setattr(users.server, "user", lambda **kw: seen.update(kw))
    monkeypatch.setattr(users, "facts_through_snapshot", lambda op, *narrowed: op)
    monkeypatch.setattr(users.server, "group", lambda **kw: made.append(kw))
    monkeypatch.setattr(users, "checked_file", lambda **kw: None)
    users.deploy_user._inner("appuser", ["ssh-ed25519 AAAA"], groups=("adm",), sudo_group="sudo", extra_groups=["docker"])
    assert seen["groups"] == ["sudo", "adm", "docker"]
    assert made == [{"name": "docker group", "group": "docker", "system": True}]  # made before the engine's package
    users.deploy_user._inner("appuser", ["ssh-ed25519 AAAA"], groups=("adm",), sudo_group="sudo")
    assert seen["groups"] == ["sudo", "adm"]  # not configured: the user leaves the group on the next run
