"""A bad config stops the real CLI before any connection, naming the field."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.conftest import write_config
from tests.rig import run_pyinfra


class Listener:
    """A TCP port on 127.0.0.1 that counts who connects to it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop = True
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


GOOD_SERVER = 'address = "127.0.0.1"\n'
# Each case: (what is wrong, the TOML, the field the error must name)
CASES = [
    ("typo'd key", 'timezon = "UTC"', "[server]", "server.timezon"),
    ("port out of range", "ssh_port = 70000", "[server]", "server.ssh_port"),
    ("port as text", 'ssh_port = "2222"', "[server]", "server.ssh_port"),
    ("bad hostname", 'hostname = "web_1!"', "[server]", "server.hostname"),
    ("bad upgrade mode", 'upgrade = "yes"', "[server]", "server.upgrade"),
    ("bad package name", 'packages = ["Not A Package"]', "[server]", "server.packages[0]"),
    ("missing key file", "", "keys_missing", "deploy_user.public_keys[0]"),
    ("uppercase user", "", "bad_user", "deploy_user.name"),
    ("malformed domain", "", "bad_domain", "apps[0].domains[0]"),
    ("two apps on one port", "", "same_port", "apps[1].port"),
    ("two apps on one domain", "", "same_domain", "apps[1].domains[0]"),
    ("firewall proto", "", "bad_fw", "firewall.allow[0].proto"),
    ("[app] instead of [[apps]]", "", "app_table", "app:"),
]

APPS = {
    "bad_domain": '[[apps]]\nname = "a"\nport = 5001\ndomains = ["not a domain"]\n',
    "same_port": '[[apps]]\nname = "a"\nport = 5001\n[[apps]]\nname = "b"\nport = 5001\n',
    "same_domain": '[[apps]]\nname = "a"\nport = 5001\ndomains = ["a.example.test"]\n'
    '[[apps]]\nname = "b"\nport = 5002\ndomains = ["a.example.test"]\n',
    "bad_fw": '[[firewall.allow]]\nport = 8080\nproto = "tcpp"\n',
    "app_table": '[app]\nname = "a"\n',
}


@pytest.mark.parametrize("what,line,where,field", CASES, ids=[c[0] for c in CASES])
def test_bad_config_is_rejected_before_connecting(what, line, where, field, listener, keys, tmp_path):
    server = GOOD_SERVER + (line + "\n" if where == "[server]" else "")
    pub = "missing.pub" if where == "keys_missing" else str(keys["deploy_pub"])
    user = "App User" if where == "bad_user" else "appuser"
    text = (
        f"[server]\n{server}\n[first_login]\nreach_port = {listener.port}\n"
        f'[deploy_user]\nname = "{user}"\npublic_keys = ["{pub}"]\n' + APPS.get(where, "")
    )
    cfg = write_config(tmp_path / "vpskit.toml", text)
    run = run_pyinfra(cfg, check=False)
    assert run.returncode != 0
    assert field in run.output, run.output
    problems = [ln for ln in run.output.splitlines() if ln.strip().startswith("- ")]
    assert len(problems) == 1, f"expected exactly one problem line:\n{run.output}"
    assert "Connecting to hosts" not in run.output
    assert listener.connections == 0
