"""How the inventory picks a way in: candidate order, first-that-works, pyinfra host data."""

from __future__ import annotations

import pytest

from operations.config import parse_config
from operations.connect import NoWayIn, WayIn, choose_way_in, host_data, ways_in


@pytest.fixture
def make_config(keys, tmp_path):
    """Build a valid Config from section overrides on top of the minimal config."""

    def make(server=None, first_login=None, deploy_user=None):
        raw = {
            "server": {"address": "203.0.113.10", **(server or {})},
            "deploy_user": {"public_keys": ["id_ed25519.pub"], **(deploy_user or {})},
        }
        if first_login:
            raw["first_login"] = first_login
        return parse_config(raw, base_dir=str(tmp_path))

    return make


# ------------------------------------------------------------------- ways_in


def test_ways_in_fresh_defaults_dedup_to_deploy_user_then_root(make_config):
    """With every port at 22 the four candidates collapse to: deploy user on 22, then root on 22."""
    assert ways_in(make_config()) == [WayIn("appuser", 22, ""), WayIn("root", 22, "")]


def test_ways_in_order_most_hardened_first(make_config, tmp_path):
    """Order: deploy user on the hardened port, deploy user on the first-login port, first-login user on the hardened port, then on the first-login port."""
    config = make_config(
        server={"ssh_port": 2222},
        first_login={"key": "id_ed25519", "password_env": "ROOT_PW"},
        deploy_user={"name": "deploy", "private_key": "id_ed25519"},
    )
    key = str(tmp_path / "id_ed25519")
    assert ways_in(config) == [
        WayIn("deploy", 2222, key),
        WayIn("deploy", 22, key),
        WayIn("root", 2222, key, "ROOT_PW"),
        WayIn("root", 22, key, "ROOT_PW"),
    ]


def test_ways_in_dial_reach_ports_instead_of_listen_ports(make_config):
    """ssh_reach_port and first_login.reach_port (NAT forwards) replace the listen ports the controller dials."""
    config = make_config(server={"ssh_port": 2222, "ssh_reach_port": 40022}, first_login={"reach_port": 40023})
    assert [(w.user, w.port) for w in ways_in(config)] == [
        ("appuser", 40022),
        ("appuser", 40023),
        ("root", 40022),
        ("root", 40023),
    ]


def test_ways_in_same_reach_port_dedups(make_config):
    """When the hardened and first-login reach ports coincide, each user is tried once."""
    config = make_config(server={"ssh_port": 2222, "ssh_reach_port": 40022}, first_login={"reach_port": 40022})
    assert [(w.user, w.port) for w in ways_in(config)] == [("appuser", 40022), ("root", 40022)]


def test_ways_in_without_keys_use_agent(make_config):
    """No configured key means an empty key path: paramiko/pyinfra fall back to agent and ~/.ssh defaults."""
    assert all(w.key == "" for w in ways_in(make_config()))
    assert WayIn("root", 22, "").describe() == "root@port 22 (agent/default keys)"
    assert WayIn("root", 22, "", "PW").describe() == "root@port 22 (password)"
    assert WayIn("root", 22, "/k").describe() == "root@port 22 (key /k)"


# -------------------------------------------------------------- choose_way_in


def test_choose_way_in_picks_first_working_way(make_config):
    """choose_way_in tries ways in order and returns the first that logs in, with the earlier failures."""
    config = make_config(server={"ssh_port": 2222})
    tried = []

    def attempt(address, way):
        tried.append((address, way.user, way.port))
        return None if (way.user, way.port) == ("appuser", 22) else "authentication refused"

    way, failures = choose_way_in(config, attempt=attempt)
    assert way == WayIn("appuser", 22, "")
    assert tried == [("203.0.113.10", "appuser", 2222), ("203.0.113.10", "appuser", 22)]
    assert failures == ["appuser@port 2222 (agent/default keys): authentication refused"]


def test_choose_way_in_first_try_works_without_failures(make_config):
    """A hardened host answers the deploy user at once: nothing else is tried."""
    calls = []
    way, failures = choose_way_in(make_config(server={"ssh_port": 2222}), attempt=lambda a, w: calls.append(w))
    assert way == WayIn("appuser", 2222, "") and failures == [] and len(calls) == 1


def test_choose_way_in_raises_no_way_in_listing_every_failure(make_config):
    """When nothing logs in, NoWayIn lists every attempt with its error and points to recovery."""
    config = make_config(server={"ssh_port": 2222})
    errors = iter(["cannot connect: Connection refused", "authentication refused", "ssh failed: x", "authentication refused"])
    with pytest.raises(NoWayIn) as exc:
        choose_way_in(config, attempt=lambda a, w: next(errors))
    assert exc.value.failures == [
        "appuser@port 2222 (agent/default keys): cannot connect: Connection refused",
        "appuser@port 22 (agent/default keys): authentication refused",
        "root@port 2222 (agent/default keys): ssh failed: x",
        "root@port 22 (agent/default keys): authentication refused",
    ]
    message = str(exc.value)
    assert "cannot log in to 203.0.113.10" in message
    for failure in exc.value.failures:
        assert f"  - {failure}" in message
    assert "Recovery" in message and "web console" in message and "authorized_keys" in message


def test_docker_connector_skips_ssh(make_config):
    """A @docker/... address needs no way in: (None, []) and no login is attempted."""
    config = make_config(server={"address": "@docker/x"})

    def attempt(address, way):
        raise AssertionError("must not try to log in")

    assert choose_way_in(config, attempt=attempt) == (None, [])
    assert host_data(config, None) == {}


# ----------------------------------------------------------------- host_data


def test_host_data_for_deploy_user_uses_sudo_and_key(make_config, tmp_path):
    """Logging in as the deploy user: user, port, key and _sudo for pyinfra."""
    config = make_config(deploy_user={"private_key": "id_ed25519"})
    way = WayIn("appuser", 2222, str(tmp_path / "id_ed25519"))
    assert host_data(config, way) == {
        "ssh_user": "appuser",
        "ssh_port": 2222,
        "ssh_key": str(tmp_path / "id_ed25519"),
        "_sudo": True,
    }


def test_host_data_for_root_has_no_sudo_and_no_key_for_agent(make_config):
    """Logging in as root needs no sudo; an empty key path sets no ssh_key (agent/defaults)."""
    assert host_data(make_config(), WayIn("root", 22, "")) == {"ssh_user": "root", "ssh_port": 22}


def test_host_data_known_hosts_file_relative_to_config(make_config, tmp_path):
    """server.known_hosts_file is handed to pyinfra as a path resolved against the config directory."""
    config = make_config(server={"known_hosts_file": "known_hosts"})
    data = host_data(config, WayIn("root", 22, ""))
    assert data["ssh_known_hosts_file"] == str(tmp_path / "known_hosts")


def test_host_data_password_from_environment(make_config, monkeypatch):
    """A password way in passes the password from its environment variable, only when it is set."""
    config = make_config(first_login={"password_env": "VPSKIT_TEST_ROOT_PW"})
    way = WayIn("root", 22, "", "VPSKIT_TEST_ROOT_PW")
    monkeypatch.delenv("VPSKIT_TEST_ROOT_PW", raising=False)
    assert "ssh_password" not in host_data(config, way)
    monkeypatch.setenv("VPSKIT_TEST_ROOT_PW", "s3cret")
    assert host_data(config, way)["ssh_password"] == "s3cret"


def test_a_port_that_worked_before_is_tried_after_the_configured_one(make_config):
    """Changing ssh_port in the config: sshd still listens on the old port until the run moves it."""
    from operations.connect import remember_port, remembered_ports

    config = make_config(server={"ssh_port": 2200})
    assert remembered_ports(config) == []
    tried = []

    def attempt(address, way):
        tried.append((way.user, way.port))
        return None if way.port == 2222 else "refused"

    remember_port(config, 2222)
    way, _ = choose_way_in(config, attempt)
    assert (way.user, way.port) == ("appuser", 2222)
    assert tried[:2] == [("appuser", 2200), ("appuser", 2222)]
    assert remembered_ports(config) == [2222]
