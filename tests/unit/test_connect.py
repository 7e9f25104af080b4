"""How the inventory picks a way in: candidate order, first-that-works, pyinfra host data."""

from __future__ import annotations

import socket
import types

import pytest

from operations.config import parse_config
from operations.connect import (
    STATE_FILE,
    Attempt,
    NoWayIn,
    WayIn,
    choose_way_in,
    commands_sent_at_once,
    fingerprint,
    host_data,
    login_prover,
    recorded_host_keys,
    remember_port,
    remembered_ports,
    unused_ways,
    ways_in,
)


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
    errors = ["cannot connect: Connection refused", "authentication refused", "ssh failed: x", "authentication refused"]
    calls = []

    def attempt(address, way):
        calls.append(way)
        return errors[(len(calls) - 1) % 4]

    with pytest.raises(NoWayIn) as exc:
        choose_way_in(config, attempt=attempt, pause=0)
    assert len(calls) == 8  # every way, twice: sshd may have been restarting
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


# ------------------------------------------- remembered ports, bound to host keys

HOST = "ssh-ed25519 SHA256:HOSTKEYOFTHISCONFIGSHOST"
OTHER = "ssh-ed25519 SHA256:HOSTKEYOFANOTHERMACHINE0"


def answers(table: dict, tried: list):
    """An attempt callback: ``table`` maps (user, port) to (error, host key); anything else refuses the connection."""

    def attempt(address, way):
        tried.append((way.user, way.port))
        error, key = table.get((way.user, way.port), ("cannot connect: Connection refused", ""))
        return Attempt(error, key)

    return attempt


def test_a_remembered_port_is_tried_after_the_configured_ways_while_it_answers_with_the_recorded_key(make_config):
    """Changing ssh_port in the config: sshd still listens on the old port until the run moves it."""
    config = make_config(server={"ssh_port": 2200})
    assert remembered_ports(config) == [] and recorded_host_keys(config) == {}
    remember_port(config, 2222, HOST)
    assert recorded_host_keys(config) == {"ssh-ed25519": "SHA256:HOSTKEYOFTHISCONFIGSHOST"}
    tried = []
    way, failures = choose_way_in(config, answers({("appuser", 2222): (None, HOST)}, tried))
    assert (way.user, way.port) == ("appuser", 2222)
    assert tried == [("appuser", 2200), ("appuser", 22), ("root", 2200), ("root", 22), ("appuser", 2222)]
    assert remembered_ports(config) == [2222]


def test_first_login_records_the_port_and_the_host_key_that_answered(make_config):
    config = make_config()
    way, _ = choose_way_in(config, answers({("root", 22): (None, HOST)}, []))
    assert way == WayIn("root", 22, "")
    assert (remembered_ports(config), recorded_host_keys(config)) == ([22], {"ssh-ed25519": "SHA256:HOSTKEYOFTHISCONFIGSHOST"})


def test_a_remembered_port_answering_with_another_host_key_is_not_used(make_config):
    """The port now reaches another machine (same address, NAT, or a new host behind it): one line says which way and which keys."""
    config = make_config(server={"ssh_port": 2200})
    remember_port(config, 2222, HOST)
    tried = []
    with pytest.raises(NoWayIn) as exc:
        choose_way_in(config, answers({("appuser", 2222): (None, OTHER), ("root", 2222): (None, OTHER)}, tried), pause=0)
    line = (
        "appuser@port 2222 (agent/default keys): not used: it answered with host key ssh-ed25519 SHA256:HOSTKEYOFANOTHERMACHINE0, "
        "but this config's host has ssh-ed25519 SHA256:HOSTKEYOFTHISCONFIGSHOST (recorded in .vpskit-state.json)"
    )
    assert line in exc.value.failures
    assert f"remove 203.0.113.10 from {STATE_FILE}" in str(exc.value)
    assert recorded_host_keys(config) == {"ssh-ed25519": "SHA256:HOSTKEYOFTHISCONFIGSHOST"}  # nothing re-recorded


def test_a_config_pointed_at_a_new_machine_never_reaches_the_one_its_state_remembers(make_config):
    """Two demos in one folder: the state remembers the first demo (key HOST, port 40001); the config now names a
    fresh target whose first-login port answers with OTHER. The remembered port still logs in to the first demo with
    the recorded key, but the config's own ways say this is another host: it is not even tried."""
    config = make_config(server={"address": "127.0.0.1", "ssh_port": 2222, "ssh_reach_port": 40012}, first_login={"reach_port": 40011})
    remember_port(config, 40001, HOST)
    tried = []
    table = {("root", 40011): (None, OTHER), ("appuser", 40011): ("authentication refused", OTHER),
             ("appuser", 40001): (None, HOST), ("root", 40001): (None, HOST)}  # fmt: skip
    with pytest.raises(NoWayIn) as exc:
        choose_way_in(config, answers(table, tried), pause=0)
    assert ("appuser", 40001) not in tried and ("root", 40001) not in tried
    assert any(
        "root@port 40011" in f and "SHA256:HOSTKEYOFANOTHERMACHINE0" in f and "SHA256:HOSTKEYOFTHISCONFIGSHOST" in f
        for f in exc.value.failures
    )
    assert any(f.startswith("appuser@port 40001") and "not used" in f for f in exc.value.failures)


def test_a_remembered_port_without_a_recorded_host_key_is_not_used(make_config, tmp_path):
    """A state file from before host keys were recorded binds its ports to nothing: only the configured ways are tried."""
    config = make_config(server={"ssh_port": 2200})
    (tmp_path / STATE_FILE).write_text('{"203.0.113.10": {"ports": [2222]}}')
    tried = []
    with pytest.raises(NoWayIn) as exc:
        choose_way_in(config, answers({("appuser", 2222): (None, HOST)}, tried), pause=0)
    assert ("appuser", 2222) not in tried
    assert (
        "appuser@port 2222 (agent/default keys): remembered from an earlier run, not used: this config's host key is not known"
        in exc.value.failures
    )


def test_two_configured_ways_answering_with_different_keys_use_only_the_first_machine(make_config):
    """Without a record the first configured way to answer says which host this is; a way showing another key is skipped."""
    config = make_config(server={"ssh_port": 2222})
    tried = []
    way, failures = choose_way_in(
        config,
        answers({("appuser", 2222): ("authentication refused", HOST), ("appuser", 22): (None, OTHER), ("root", 2222): (None, HOST)}, tried),
    )
    assert way == WayIn("root", 2222, "")
    assert "shown on port 2222" in failures[1] and failures[1].startswith("appuser@port 22 ")
    assert unused_ways(failures) == [failures[1]]  # the inventory prints these even when a way in worked


def test_the_login_prover_refuses_a_port_answering_with_another_host_key(make_config, monkeypatch):
    import operations.connect as connect

    config = make_config(server={"ssh_port": 2222})
    remember_port(config, 22, HOST)
    monkeypatch.setattr(connect, "login", lambda address, way: Attempt(None, OTHER))
    assert "answered with host key " + OTHER in login_prover(config)()
    monkeypatch.setattr(connect, "login", lambda address, way: Attempt(None, HOST))
    assert login_prover(config)() is None
    assert remembered_ports(config) == [2222, 22]


def test_fingerprint_is_openssh_s(tmp_path):
    """The recorded fingerprint is the one `ssh-keygen -l` prints for the same key."""
    import subprocess

    import paramiko

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    openssh = subprocess.run(["ssh-keygen", "-l", "-f", str(tmp_path / "k.pub")], capture_output=True, text=True).stdout.split()[1]
    assert fingerprint(paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "k"))) == f"ssh-ed25519 {openssh}"


@pytest.fixture
def local_ports():
    """Open local listening ports: ('greets') sends an SSH greeting, ('silent') accepts and says nothing, ('closed') refuses."""
    import socket
    import threading

    opened = []

    def make(kind: str) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        opened.append(server)
        if kind == "closed":
            server.close()
            return port
        accepted = []

        def serve():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)
            if kind == "greets":
                conn.sendall(b"SSH-2.0-test\r\n")

        threading.Thread(target=serve, daemon=True).start()
        opened.extend([accepted])
        return port

    yield make
    for item in opened:
        for conn in item if isinstance(item, list) else [item]:
            conn.close()


def test_the_port_probe_tells_a_greeting_sshd_from_a_refused_port(local_ports):
    from operations.connect import PortProbe

    greets, closed = local_ports("greets"), local_ports("closed")
    probe = PortProbe("127.0.0.1", [greets, closed], timeout=5)
    try:
        assert probe.silent(greets) == ""
        assert probe.silent(closed).startswith("cannot connect")
    finally:
        probe.close()


def test_the_port_probe_hands_its_connection_to_one_login_with_the_greeting_unread(local_ports):
    from operations.connect import PortProbe

    greets = local_ports("greets")
    probe = PortProbe("127.0.0.1", [greets], timeout=5)
    assert probe.silent(greets) == ""
    sock = probe.take(greets)
    try:
        assert sock.recv(7) == b"SSH-2.0" and probe.take(greets) is None
    finally:
        sock.close()
        probe.close()


def test_a_silent_port_costs_one_settle_once_another_port_answered(local_ports):
    """A port that accepts and never greets (a drop firewall, a stuck forward) does not cost the whole timeout."""
    import time

    from operations.connect import PortProbe

    silent, greets = local_ports("silent"), local_ports("greets")
    probe = PortProbe("127.0.0.1", [silent, greets], timeout=30, settle=0.3)
    started = time.monotonic()
    try:
        why = probe.silent(silent)
        assert why.startswith("no SSH answer within") and "another port answered" in why
        assert time.monotonic() - started < 5
        assert probe.silent(greets) == ""
    finally:
        probe.close()


def test_all_silent_ports_cost_one_timeout_together(local_ports):
    import time

    from operations.connect import PortProbe

    ports = [local_ports("silent") for _ in range(3)]
    probe = PortProbe("127.0.0.1", ports, timeout=0.5)
    started = time.monotonic()
    try:
        whys = [probe.silent(p) for p in ports]
        assert all(why.startswith("no SSH answer within") and "another port" not in why for why in whys)
        assert time.monotonic() - started < 2
    finally:
        probe.close()


def test_a_way_on_a_port_where_sshd_is_silent_is_not_tried_and_its_line_names_the_port(make_config):
    from operations.connect import _first_way_in

    class Probe:
        def __init__(self):
            self.tried = []

        def silent(self, port):
            return "no SSH answer within 8 s" if port == 2222 else ""

        def attempt(self, address, way):
            self.tried.append(way)
            return Attempt(None, HOST)

    config = make_config(server={"ssh_port": 2222})
    configured = ways_in(config)
    failures: list[str] = []
    probe = Probe()
    way, host_key, conflicts = _first_way_in("203.0.113.10", configured, [], probe, {}, failures)
    assert way == WayIn("appuser", 22, "") and host_key == HOST and not conflicts
    assert probe.tried == [WayIn("appuser", 22, "")]
    assert len(failures) == 1 and all("2222" in line and "no SSH answer within 8 s" in line for line in failures)


# ------------------------------------------------------------- commands sent at once


class _Connector:
    """pyinfra's SSH connector as far as commands_sent_at_once looks: client.get_transport().sock."""

    def __init__(self, sock):
        self.client = types.SimpleNamespace(get_transport=lambda: types.SimpleNamespace(sock=sock))


@pytest.fixture
def tcp_connection():
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    yield client
    client.close()
    server.close()


def test_an_ssh_connection_sends_commands_without_nagles_delay(tcp_connection):
    assert tcp_connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    assert commands_sent_at_once(_Connector(tcp_connection)) is True
    assert tcp_connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_connectors_without_a_tcp_socket_are_left_alone():
    a, b = socket.socketpair()  # a ProxyCommand's pipe is no TCP socket either
    with a, b:
        assert commands_sent_at_once(_Connector(a)) is False
    assert commands_sent_at_once(types.SimpleNamespace()) is False  # docker, local: no client
    assert commands_sent_at_once(types.SimpleNamespace(client=None)) is False  # not connected
    assert commands_sent_at_once(_Connector(None)) is False  # a transport without a socket
