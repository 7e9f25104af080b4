"""The config model: defaults, type checks and validation of vpskit.toml (no host involved)."""

from __future__ import annotations

import copy

import pytest

from operations.config import (
    App,
    Config,
    ConfigError,
    DeployUser,
    Firewall,
    FirewallRule,
    FirstLogin,
    Server,
    Ssh,
    load_config,
    parse_config,
)

from .conftest import FAKE_PUBLIC_KEY, MINIMAL


def fields_of(problems: list[str]) -> list[str]:
    """The field path each problem line starts with (``field: what is wrong``)."""
    return [p.split(": ", 1)[0] for p in problems]


# ------------------------------------------------------------------ valid configs


def test_minimal_config_gets_documented_defaults(minimal_raw, tmp_path):
    """Only server.address and one public key are needed; every other field takes its dataclass default."""
    config = parse_config(minimal_raw, base_dir=str(tmp_path))

    assert config.server == Server(address="203.0.113.10")
    s = config.server
    assert (s.hostname, s.timezone, s.ssh_port, s.ssh_reach_port) == ("", "Etc/UTC", 22, 0)
    assert (s.upgrade, s.apt_cache_hours, s.apt_lock_timeout) == ("full", 24, 600)
    assert (s.unattended_upgrades, s.unattended_reboot, s.unattended_reboot_time) == (True, False, "04:00")
    assert s.packages == () and s.known_hosts_file == ""
    assert s.uses_ssh and s.reach_port == 22

    assert config.first_login == FirstLogin()
    assert (config.first_login.user, config.first_login.port, config.first_login.reach) == ("root", 22, 22)

    assert config.deploy_user == DeployUser(public_keys=("id_ed25519.pub",))
    du = config.deploy_user
    assert (du.name, du.shell, du.passwordless_sudo, du.groups, du.private_key) == ("appuser", "/bin/bash", True, (), "")

    assert config.firewall == Firewall(enabled=True, allow=(), ssh_limit=False) and config.apps == ()
    assert config.ssh == Ssh() and config.ssh.permit_root_login == "no" and not config.ssh.password_authentication
    assert (config.fail2ban.bantime, config.fail2ban.findtime, config.fail2ban.maxretry) == (86400, 600, 5)
    assert config.base_dir == str(tmp_path)


def test_full_config_parses_into_dataclasses(keys, tmp_path):
    """Every section and field given in TOML ends up, typed (lists as tuples), in the dataclasses."""
    raw = {
        "server": {
            "address": "vps.example.com",
            "hostname": "web-1",
            "timezone": "Europe/Berlin",
            "ssh_port": 2222,
            "ssh_reach_port": 40022,
            "known_hosts_file": "known_hosts",
            "packages": ["jq", "python3.12-venv", "nginx=1.24.0-2ubuntu7"],
            "upgrade": "safe",
            "apt_cache_hours": 0,
            "unattended_upgrades": False,
            "unattended_reboot": True,
            "unattended_reboot_time": "03:30",
            "apt_lock_timeout": 120,
        },
        "first_login": {
            "user": "admin",
            "port": 22,
            "reach_port": 40023,
            "key": "id_ed25519",
            "password_env": "VPS_ROOT_PASSWORD",
        },
        "deploy_user": {
            "name": "deploy",
            "public_keys": ["id_ed25519.pub"],
            "private_key": "id_ed25519",
            "shell": "/bin/zsh",
            "passwordless_sudo": False,
            "groups": ["docker", "www-data"],
        },
        "firewall": {"ssh_limit": True, "allow": [
            {"port": 51820, "proto": "udp", "comment": "wireguard"},
            {"port": 9100, "source": "10.0.0.0/8"},
        ]},
        "ssh": {"max_auth_tries": 4, "allow_users": ["deploy", "ops"], "ciphers": ["aes256-gcm@openssh.com"]},
        "fail2ban": {"bantime": 3600, "ignoreip": ["198.51.100.7"]},
        "apps": [
            {"name": "shop", "port": 8000, "domains": ["shop.example.com", "www.shop.example.com"],
             "repo": "https://github.com/example/shop.git", "branch": "prod", "kind": "fastapi"},
            {"name": "blog", "port": 8001, "state": "absent"},
        ],
    }  # fmt: skip
    config = parse_config(raw, base_dir=str(tmp_path))

    assert config.server == Server(
        address="vps.example.com",
        hostname="web-1",
        timezone="Europe/Berlin",
        ssh_port=2222,
        ssh_reach_port=40022,
        known_hosts_file="known_hosts",
        packages=("jq", "python3.12-venv", "nginx=1.24.0-2ubuntu7"),
        upgrade="safe",
        apt_cache_hours=0,
        unattended_upgrades=False,
        unattended_reboot=True,
        unattended_reboot_time="03:30",
        apt_lock_timeout=120,
    )
    assert config.server.reach_port == 40022
    assert config.first_login == FirstLogin("admin", 22, 40023, "id_ed25519", "VPS_ROOT_PASSWORD")
    assert config.first_login.reach == 40023
    assert config.deploy_user == DeployUser("deploy", ("id_ed25519.pub",), "id_ed25519", "/bin/zsh", False, ("docker", "www-data"))
    assert config.firewall.ssh_limit is True
    assert config.firewall.allow == (
        FirewallRule(51820, "udp", "", "wireguard"),
        FirewallRule(9100, "tcp", "10.0.0.0/8", ""),
    )
    assert config.ssh.max_auth_tries == 4 and config.ssh.allow_users == ("deploy", "ops")
    assert config.ssh.ciphers == ("aes256-gcm@openssh.com",) and config.ssh.macs == Ssh().macs
    assert config.fail2ban.bantime == 3600 and config.fail2ban.ignoreip == ("198.51.100.7",)
    assert config.apps == (
        App(
            "shop", 8000, ("shop.example.com", "www.shop.example.com"), "https://github.com/example/shop.git", "prod", "fastapi", "present"
        ),
        App("blog", 8001, (), "", "main", "flask", "absent"),
    )


def test_docker_connector_address_is_accepted_and_not_ssh(minimal_raw, tmp_path):
    """A pyinfra connector such as @docker/NAME is a valid address and means: no SSH."""
    minimal_raw["server"]["address"] = "@docker/vps-test"
    config = parse_config(minimal_raw, base_dir=str(tmp_path))
    assert not config.server.uses_ssh


def test_public_keys_are_read_relative_to_base_dir_skipping_comments(minimal_raw, tmp_path):
    """Config.public_keys() reads each key file relative to the config's directory, without blanks and # comments."""
    second = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQFakeRsaKey other@host"
    (tmp_path / "more.pub").write_text(f"# laptop\n\n{second}\n")
    minimal_raw["deploy_user"]["public_keys"] = ["id_ed25519.pub", "more.pub"]
    config = parse_config(minimal_raw, base_dir=str(tmp_path))
    assert config.public_keys() == [FAKE_PUBLIC_KEY.strip(), second]


def test_absolute_key_paths_are_used_as_is(minimal_raw, keys, tmp_path):
    """An absolute key path does not get the base_dir prepended."""
    minimal_raw["deploy_user"]["public_keys"] = [str(keys / "id_ed25519.pub")]
    config = parse_config(minimal_raw, base_dir="/nonexistent-base")
    assert config.path(str(keys / "id_ed25519.pub")) == keys / "id_ed25519.pub"
    assert config.public_keys() == [FAKE_PUBLIC_KEY.strip()]


# --------------------------------------------------------------- malformed configs


def _set(section, **values):
    def mutate(raw):
        raw.setdefault(section, {}).update(values)

    return mutate


def _top(**values):
    def mutate(raw):
        raw.update(values)

    return mutate


def _drop(section, key=None):
    def mutate(raw):
        if key is None:
            raw.pop(section)
        else:
            raw[section].pop(key)

    return mutate


def _both(*mutations):
    def mutate(raw):
        for m in mutations:
            m(raw)

    return mutate


# (id, mutation of the minimal config, {field: fragment of the message}) — the
# expected fields are exactly the problems reported, nothing more.
MALFORMED = [
    ("unknown-key-did-you-mean", _set("server", timezon="Europe/Berlin"),
     {"server.timezon": "unknown key (did you mean 'timezone'?)"}),
    ("unknown-top-level-key-did-you-mean", _top(firewal=[]),
     {"firewal": "did you mean 'firewall'?"}),
    ("string-port", _set("server", ssh_port="2222"),
     {"server.ssh_port": "must be int, got str '2222'"}),
    ("bool-for-int", _set("server", apt_lock_timeout=True),
     {"server.apt_lock_timeout": "must be int, got bool"}),
    ("port-out-of-range", _set("server", ssh_port=70000),
     {"server.ssh_port": "must be a port number 1-65535, got 70000"}),
    ("port-zero", _set("first_login", port=0),
     {"first_login.port": "1-65535"}),
    ("malformed-domain", _top(apps=[{"name": "shop", "port": 8000, "domains": ["shop_example.com"]}]),
     {"apps[0].domains[0]": "'shop_example.com' is not a valid domain name"}),
    ("single-label-domain", _top(apps=[{"name": "shop", "port": 8000, "domains": ["localhost"]}]),
     {"apps[0].domains[0]": "not a valid domain name"}),
    ("two-apps-one-port", _top(apps=[{"name": "one", "port": 8000}, {"name": "two", "port": 8000}]),
     {"apps[1].port": "8000 is already used by app 'one'"}),
    ("two-apps-one-domain",
     _top(apps=[{"name": "one", "port": 8000, "domains": ["example.com"]},
                {"name": "two", "port": 8001, "domains": ["EXAMPLE.com"]}]),
     {"apps[1].domains[0]": "already used by app 'one'"}),
    ("duplicate-app-names", _top(apps=[{"name": "shop", "port": 8000}, {"name": "shop", "port": 8001}]),
     {"apps[1].name": "'shop' is already used by apps[0]"}),
    ("bad-app-name", _top(apps=[{"name": "My_Shop", "port": 8000}]),
     {"apps[0].name": "lowercase"}),
    ("app-missing-port", _top(apps=[{"name": "shop"}]),
     {"apps[0].port": "is required"}),
    ("bad-app-kind", _top(apps=[{"name": "shop", "port": 8000, "kind": "django"}]),
     {"apps[0].kind": "must be one of flask, fastapi, other"}),
    ("missing-public-key-file", _set("deploy_user", public_keys=["nope.pub"]),
     {"deploy_user.public_keys[0]": "does not exist"}),
    ("public-key-file-is-not-a-public-key", _set("deploy_user", public_keys=["id_ed25519"]),
     {"deploy_user.public_keys[0]": "is not an OpenSSH public key"}),
    ("private-key-file-is-not-a-private-key", _set("deploy_user", private_key="id_ed25519.pub"),
     {"deploy_user.private_key": "is not a private key"}),
    ("missing-first-login-key", _set("first_login", key="missing_key"),
     {"first_login.key": "does not exist"}),
    ("no-public-keys", _set("deploy_user", public_keys=[]),
     {"deploy_user.public_keys": "list at least one public key file"}),
    ("public-keys-not-a-list", _set("deploy_user", public_keys="id_ed25519.pub"),
     {"deploy_user.public_keys": "must be a list"}),
    ("missing-server-table", _drop("server"),
     {"server": "is required"}),
    ("server-not-a-table", _top(server="203.0.113.10"),
     {"server": "must be a table"}),
    ("missing-server-address", _drop("server", "address"),
     {"server.address": "is required"}),
    ("address-with-space", _set("server", address="203.0.113.10 extra"),
     {"server.address": "must be an IP address"}),
    ("address-not-a-host-name", _set("server", address="my_vps!"),
     {"server.address": "neither an IP address nor a valid host name"}),
    ("uppercase-deploy-user", _set("deploy_user", name="Deploy"),
     {"deploy_user.name": "'Deploy' is not a valid user name"}),
    ("root-deploy-user", _set("deploy_user", name="root"),
     {"deploy_user.name": "must not be root"}),
    ("relative-shell", _set("deploy_user", shell="bash"),
     {"deploy_user.shell": "must be an absolute path"}),
    ("bad-upgrade-mode", _set("server", upgrade="yes"),
     {"server.upgrade": "must be one of full, safe, none, got 'yes'"}),
    ("bad-firewall-proto-and-source", _top(firewall={"allow": [{"port": 53, "proto": "icmp", "source": "10.0.0.300/8"}]}),
     {"firewall.allow[0].proto": "must be one of tcp, udp", "firewall.allow[0].source": "is not an IP address or network"}),
    ("firewall-as-a-list", _top(firewall=[{"port": 53}]),
     {"firewall": "must be a table"}),
    ("weak-ssh-cipher", _top(ssh={"ciphers": ["aes128-cbc"]}),
     {"ssh.ciphers[0]": "is weak"}),
    ("weak-ssh-mac", _top(ssh={"macs": ["hmac-sha1"]}),
     {"ssh.macs[0]": "is weak"}),
    ("root-login-typo", _top(ssh={"permit_root_login": "never"}),
     {"ssh.permit_root_login": "must be one of no, prohibit-password, yes"}),
    ("allow-users-without-deploy-user", _top(ssh={"allow_users": ["alice"]}),
     {"ssh.allow_users": "must include the deploy user"}),
    ("max-auth-tries-zero", _top(ssh={"max_auth_tries": 0}),
     {"ssh.max_auth_tries": "must be between 1 and 20"}),
    ("revert-window-too-short", _top(ssh={"revert_after": 5}),
     {"ssh.revert_after": "must be between 60 and 3600"}),
    ("fail2ban-bad-ignoreip", _top(fail2ban={"ignoreip": ["my office"]}),
     {"fail2ban.ignoreip[0]": "is not an IP address or network"}),
    ("fail2ban-maxretry-zero", _top(fail2ban={"maxretry": 0}),
     {"fail2ban.maxretry": "must be between 1 and 100"}),
    ("bad-reboot-time-format", _set("server", unattended_reboot_time="4am"),
     {"server.unattended_reboot_time": "must be HH:MM, got '4am'"}),
    ("bad-reboot-time-hour", _set("server", unattended_reboot_time="24:00"),
     {"server.unattended_reboot_time": "must be HH:MM"}),
    ("app-port-is-ssh-port", _both(_set("server", ssh_port=2222), _top(apps=[{"name": "shop", "port": 2222}])),
     {"apps[0].port": "2222 is reserved for sshd"}),
    ("app-port-80", _top(apps=[{"name": "shop", "port": 80}]),
     {"apps[0].port": "80 is reserved"}),
    ("app-port-443", _top(apps=[{"name": "shop", "port": 443}]),
     {"apps[0].port": "443 is reserved"}),
    ("app-table-instead-of-array", _top(app={"name": "shop", "port": 8000}),
     {"app": "did you mean 'apps'? write [[apps]]"}),
    ("apps-table-instead-of-array", _top(apps={"name": "shop", "port": 8000}),
     {"apps": "must be a list"}),
    ("bad-password-env", _set("first_login", password_env="ROOT-PW"),
     {"first_login.password_env": "not an environment variable name"}),
    ("bad-timezone", _set("server", timezone="Europe Berlin"),
     {"server.timezone": "not a timezone name"}),
    ("bad-package-name", _set("server", packages=["Nginx;rm"]),
     {"server.packages[0]": "not a Debian package name"}),
]  # fmt: skip


@pytest.mark.parametrize("mutate, expected", [pytest.param(m, e, id=i) for i, m, e in MALFORMED])
def test_malformed_config_is_rejected_naming_the_field(minimal_raw, tmp_path, mutate, expected):
    """Each malformed config raises ConfigError with exactly one problem per bad field, naming it and saying what is wrong."""
    raw = copy.deepcopy(minimal_raw)
    mutate(raw)
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, base_dir=str(tmp_path))
    problems = exc.value.problems
    assert sorted(fields_of(problems)) == sorted(expected), problems
    for field, fragment in expected.items():
        assert any(p.startswith(f"{field}: ") and fragment in p for p in problems), (field, fragment, problems)
    # The message shows every problem too, one line each.
    for p in problems:
        assert f"  - {p}" in str(exc.value)


def test_all_problems_are_reported_at_once(minimal_raw, tmp_path):
    """Three independent mistakes give three problem lines in one ConfigError, not one per run."""
    minimal_raw["server"].update(ssh_port=0, upgrade="always")
    minimal_raw["deploy_user"]["name"] = "root"
    with pytest.raises(ConfigError) as exc:
        parse_config(minimal_raw, base_dir=str(tmp_path), source="vpskit.toml")
    assert sorted(fields_of(exc.value.problems)) == ["deploy_user.name", "server.ssh_port", "server.upgrade"]
    message = str(exc.value)
    assert message.startswith("invalid vpskit config vpskit.toml:")
    assert len([ln for ln in message.splitlines() if ln.startswith("  - ")]) == 3


def test_type_and_validation_problems_are_reported_together(minimal_raw, tmp_path):
    """A wrong type (unknown key, string port) does not hide validation problems elsewhere in the file."""
    minimal_raw["server"].update(ssh_port="22", timezon="UTC")
    minimal_raw["apps"] = [{"name": "a", "port": 80}]
    with pytest.raises(ConfigError) as exc:
        parse_config(minimal_raw, base_dir=str(tmp_path))
    assert sorted(fields_of(exc.value.problems)) == ["apps[0].port", "server.ssh_port", "server.timezon"]


def test_ssh_reach_port_zero_means_same_as_ssh_port(minimal_raw, tmp_path):
    """ssh_reach_port = 0 is allowed (not a port-range error) and falls back to ssh_port."""
    minimal_raw["server"].update(ssh_port=2222, ssh_reach_port=0)
    assert parse_config(minimal_raw, base_dir=str(tmp_path)).server.reach_port == 2222


# ------------------------------------------------------------------ load_config


def _write_toml(path, text):
    path.write_text(text)
    return path


def test_load_config_reads_toml_and_resolves_keys_next_to_the_file(keys, tmp_path, monkeypatch):
    """load_config parses the TOML file and reads relative key paths from the file's directory, not the cwd."""
    cfg = _write_toml(
        tmp_path / "vpskit.toml",
        '[server]\naddress = "198.51.100.7"\n\n[deploy_user]\npublic_keys = ["id_ed25519.pub"]\n\n'
        '[[apps]]\nname = "shop"\nport = 8000\ndomains = ["shop.example.com"]\n',
    )
    monkeypatch.chdir("/")
    config = load_config(cfg)
    assert isinstance(config, Config)
    assert config.base_dir == str(tmp_path.resolve())
    assert config.apps == (App("shop", 8000, ("shop.example.com",)),)


def test_load_config_uses_vpskit_config_env(keys, tmp_path, monkeypatch):
    """Without an explicit path load_config reads $VPSKIT_CONFIG."""
    cfg = _write_toml(tmp_path / "other.toml", '[server]\naddress = "h.example.org"\n[deploy_user]\npublic_keys = ["id_ed25519.pub"]\n')
    monkeypatch.setenv("VPSKIT_CONFIG", str(cfg))
    assert load_config().server.address == "h.example.org"


def test_load_config_rejects_invalid_toml(tmp_path):
    """A file that is not TOML gives one 'not valid TOML' problem, with the file as source."""
    cfg = _write_toml(tmp_path / "vpskit.toml", '[server]\naddress = "1.2.3.4\n')
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    assert exc.value.source == str(cfg)
    assert len(exc.value.problems) == 1 and exc.value.problems[0].startswith("not valid TOML:")


def test_load_config_reports_missing_file(tmp_path):
    """A missing config file says so and how to create one."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as exc:
        load_config(missing)
    assert exc.value.source == str(missing)
    assert exc.value.problems[0].startswith("file not found")
    assert "examples/vpskit.toml" in exc.value.problems[0]


def test_load_config_app_instead_of_apps_in_toml(keys, tmp_path):
    """Writing [app] instead of [[apps]] in the TOML file is caught with a hint."""
    cfg = _write_toml(
        tmp_path / "vpskit.toml",
        '[server]\naddress = "1.2.3.4"\n[deploy_user]\npublic_keys = ["id_ed25519.pub"]\n[app]\nname = "x"\nport = 8000\n',
    )
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    assert exc.value.problems == ["app: unknown key (did you mean 'apps'? write [[apps]])"]


def test_minimal_raw_fixture_is_not_shared():
    """Guard: the MINIMAL template itself stays untouched by the tests that mutate copies of it."""
    assert MINIMAL == {"server": {"address": "203.0.113.10"}, "deploy_user": {"public_keys": ["id_ed25519.pub"]}}


def test_public_key_file_with_only_comments_is_rejected(minimal_raw, tmp_path):
    """A key file holding no key line at all (only # comments) is not accepted as a public key."""
    (tmp_path / "empty.pub").write_text("# nothing here yet\n\n")
    minimal_raw["deploy_user"]["public_keys"] = ["empty.pub"]
    with pytest.raises(ConfigError) as exc:
        parse_config(minimal_raw, base_dir=str(tmp_path))
    assert fields_of(exc.value.problems) == ["deploy_user.public_keys[0]"]
    assert "is not an OpenSSH public key" in exc.value.problems[0]
