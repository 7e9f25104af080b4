"""sshd: parsing the host's sshd state, the drop-in and algorithm choices, and the shell that moves,
checks, applies and reverts it, run for real on files in tmp_path with fake system commands."""

from __future__ import annotations

import socket
import subprocess
import threading
from io import StringIO

import pytest
from pyinfra.api import OperationError

import operations.ssh as sshmod
from operations.config import Ssh
from operations.firewall import UfwRule
from operations.render import render
from operations.ssh import (
    REVERT_BACKUP,
    REVERT_SCRIPT,
    SSHD_CHECK_OR_DISARM,
    Algorithms,
    SshdState,
    apply_command,
    host_key_files,
    is_hardened,
    neutralise_command,
    parse_sshd_state,
    port_check_command,
    render_dropin,
    revert_armed,
    ssh_login_proven,
    supported_algorithms,
)
from operations.sshpolicy import POLICIES, release_policy
from operations.validated import install_checked_command

UBUNTU_KEX = ["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", "curve25519-sha256",
              "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512", "diffie-hellman-group14-sha1"]  # fmt: skip

# SshdState's output on Ubuntu 24.04: ssh.socket holds the listeners, moving from 22 to 2222.
UBUNTU_SOCKET = f"""\
## dropin
# Managed by vpskit (moving port: logins as before until the new port is proven). sshd keeps the FIRST value it reads for an
# option and this file is read first, so these win over later drop-ins.
Port 22
Port 2222
## conflicts
/etc/ssh/sshd_config.d/50-cloud-init.conf:1:PasswordAuthentication yes
## socket
active
## socket_listen
[::]:22 (Stream) [::]:2222 (Stream)
## listening
LISTEN 0      4096               *:22              *:*    users:(("sshd",pid=1234,fd=3),("systemd",pid=1,fd=71))
## revert
active
## alg kex
{chr(10).join(UBUNTU_KEX)}
## alg ciphers
chacha20-poly1305@openssh.com
aes128-ctr
aes256-gcm@openssh.com
## alg macs
hmac-sha2-256-etm@openssh.com
hmac-sha2-512-etm@openssh.com
## alg host_key
ssh-ed25519
rsa-sha2-512
""".splitlines()

# SshdState's output on Debian 12: ssh.service listens itself, untouched config.
DEBIAN_SERVICE = """\
## dropin
## conflicts
/etc/ssh/sshd_config:13:Port 22
/etc/ssh/sshd_config:57:PasswordAuthentication yes
/etc/ssh/sshd_config:33:PermitRootLogin yes
## socket
inactive
## socket_listen
## listening
LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=612,fd=3))
LISTEN 0      128             [::]:22           [::]:*    users:(("sshd",pid=612,fd=4))
## revert
inactive
## alg kex
curve25519-sha256
## alg ciphers
aes256-gcm@openssh.com
## alg macs
hmac-sha2-256-etm@openssh.com
## alg host_key
ssh-ed25519
""".splitlines()


def sh(command: str, env_path=None, shell="sh", **kwargs) -> subprocess.CompletedProcess:
    """Run ``command`` with ``shell -c``; ``env_path`` is put in front of PATH (fake system commands)."""
    env = None
    if env_path is not None:
        env = {"PATH": f"{env_path}:/usr/bin:/bin", "LC_ALL": "C"}
    return subprocess.run([shell, "-c", command], capture_output=True, text=True, timeout=30, env=env, **kwargs)


@pytest.fixture
def fakebin(tmp_path):
    """A directory for fake commands; ``fake(name, exit=0, out="")`` writes one that logs ``name args`` to calls.log."""
    d = tmp_path / "fakebin"
    d.mkdir()
    log = tmp_path / "calls.log"

    def fake(name: str, exit: int = 0, out: str = ""):
        script = d / name
        say = f"echo '{out}'\n" if out else ""
        script.write_text(f"#!/bin/sh\necho \"{name} $*\" >> '{log}'\n{say}exit {exit}\n")
        script.chmod(0o755)

    def calls() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    fake.dir, fake.calls = d, calls
    return fake


# ------------------------------------------------------------------ the fact


def test_parse_ubuntu_socket_mode_ports_come_from_ssh_socket():
    """ssh.socket active: the ports are ssh.socket's Listen values (both, during a move), not ss's lines."""
    state = parse_sshd_state(UBUNTU_SOCKET)
    assert state["socket_mode"] is True
    assert state["ports"] == [22, 2222]
    assert state["dropin"].splitlines()[2:] == ["Port 22", "Port 2222"]
    assert state["revert_armed"] is True


def test_parse_debian_service_mode_ports_come_from_listening_sshd():
    """ssh.socket inactive: ports are those sshd listens on per ``ss -Hltnp`` (v4 and v6 fold into one)."""
    state = parse_sshd_state(DEBIAN_SERVICE)
    assert (state["socket_mode"], state["ports"], state["dropin"], state["revert_armed"]) == (False, [22], "", False)


@pytest.mark.parametrize(
    "listen, ports",
    [("0.0.0.0:2222 (Stream)", [2222]), ("*:22 (Stream) 0.0.0.0:22 (Stream)", [22]), ("22 (Stream)", [22]), ("", [])],
)
def test_parse_socket_listen_address_forms(listen, ports):
    """Listen values like ``0.0.0.0:2222``, ``*:22`` or a bare ``22`` give their port numbers, once each."""
    lines = ["## socket", "active", "## socket_listen", listen]
    assert parse_sshd_state(lines)["ports"] == ports


def test_parse_conflicts_port_anywhere_login_options_only_in_dropins():
    """Port/ListenAddress conflict in any file; login options only in drop-ins (sshd_config's are overridden by ours)."""
    lines = [
        "## conflicts",
        "/etc/ssh/sshd_config:13:Port 22",
        "/etc/ssh/sshd_config:14:ListenAddress 0.0.0.0",
        "/etc/ssh/sshd_config:57:PasswordAuthentication yes",
        "/etc/ssh/sshd_config:33:PermitRootLogin yes",
        "/etc/ssh/sshd_config:60:KbdInteractiveAuthentication no",
        "/etc/ssh/sshd_config:70:AllowUsers root",
        "/etc/ssh/sshd_config.d/50-cloud-init.conf:1:PasswordAuthentication yes",
        "/etc/ssh/sshd_config.d/60-admin.conf:2:  Port 2200",
        "/etc/ssh/sshd_config.d/60-admin.conf:3:PermitRootLogin prohibit-password",
        "/etc/ssh/sshd_config.d/60-admin.conf:4:KbdInteractiveAuthentication yes",
        "/etc/ssh/sshd_config.d/60-admin.conf:5:AllowUsers admin",
        "/etc/ssh/sshd_config.d/60-admin.conf:6:PubkeyAuthentication yes",
        "/etc/ssh/sshd_config.d/60-admin.conf:7:",
    ]
    assert parse_sshd_state(lines)["conflicts"] == [
        "/etc/ssh/sshd_config:13:Port 22",
        "/etc/ssh/sshd_config:14:ListenAddress 0.0.0.0",
        "/etc/ssh/sshd_config.d/50-cloud-init.conf:1:PasswordAuthentication yes",
        "/etc/ssh/sshd_config.d/60-admin.conf:2:  Port 2200",
        "/etc/ssh/sshd_config.d/60-admin.conf:3:PermitRootLogin prohibit-password",
        "/etc/ssh/sshd_config.d/60-admin.conf:4:KbdInteractiveAuthentication yes",
        "/etc/ssh/sshd_config.d/60-admin.conf:5:AllowUsers admin",
    ]


def test_parse_algorithm_sections_per_kind():
    """Each ``## alg <kind>`` section lists what ``ssh -Q`` printed; a kind it could not answer is empty."""
    algorithms = parse_sshd_state(UBUNTU_SOCKET)["algorithms"]
    assert algorithms["kex"] == UBUNTU_KEX
    assert algorithms["ciphers"] == ["chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-gcm@openssh.com"]
    assert algorithms["host_key"] == ["ssh-ed25519", "rsa-sha2-512"]
    assert parse_sshd_state(["## alg kex", "", "## alg macs"])["algorithms"] == {
        "kex": [], "ciphers": [], "macs": [], "host_key": []}  # fmt: skip


@pytest.mark.parametrize("status, armed", [("active", True), ("activating", True), ("inactive", False), ("", False)])
def test_parse_revert_armed_from_timer_status(status, armed):
    """A revert timer left active (or activating) by an unfinished run is reported as armed."""
    assert parse_sshd_state(["## revert", status, "## alg kex"])["revert_armed"] is armed


def test_sshd_state_fact_command_finds_conflicts_outside_own_dropin(tmp_path, fakebin):
    """The fact's grep, run over a copy of /etc/ssh: Port and login lines (indented too) except in 00-vpskit.conf."""
    etc = tmp_path / "etc" / "ssh"
    (etc / "sshd_config.d").mkdir(parents=True)
    (etc / "sshd_config").write_text("Include /etc/ssh/sshd_config.d/*.conf\n#Port 22\nPort 22\nPasswordAuthentication yes\n")
    (etc / "sshd_config.d" / "00-vpskit.conf").write_text("# Managed by vpskit (hardened).\nPort 2222\nPermitRootLogin no\n")
    (etc / "sshd_config.d" / "50-cloud-init.conf").write_text("  PasswordAuthentication yes\nUsePAM yes\n")
    (etc / "sshd_config.d" / "README").write_text("Port 9999\n")  # not *.conf: sshd does not read it
    fakebin("systemctl", exit=3, out="inactive")
    fakebin("ss")
    fakebin("ssh", out="curve25519-sha256")
    command = SshdState().command().replace("/etc/ssh/", f"{tmp_path}/etc/ssh/")
    output = sh(command, env_path=fakebin.dir).stdout.replace(str(tmp_path), "")

    state = parse_sshd_state(output.splitlines())
    assert state["dropin"] == "# Managed by vpskit (hardened).\nPort 2222\nPermitRootLogin no"
    assert state["conflicts"] == [
        "/etc/ssh/sshd_config:3:Port 22",
        "/etc/ssh/sshd_config.d/50-cloud-init.conf:1:  PasswordAuthentication yes",
    ]
    assert (state["socket_mode"], state["ports"], state["revert_armed"]) == (False, [], False)
    assert state["algorithms"]["kex"] == ["curve25519-sha256"]


# ----------------------------------------------------------------- algorithms


def test_supported_algorithms_keep_configured_order_and_drop_unsupported():
    """The host's list decides which configured names stay; the order is the config's, not the host's."""
    ssh = Ssh(
        kex_algorithms=("mlkem768x25519-sha256", "curve25519-sha256", "sntrup761x25519-sha512"),
        ciphers=("aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"),
        macs=("hmac-sha2-512-etm@openssh.com",),
        host_key_algorithms=("ssh-ed25519", "rsa-sha2-512"),
    )
    available = {
        "kex": ["sntrup761x25519-sha512", "curve25519-sha256", "diffie-hellman-group14-sha1"],
        "ciphers": ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"],
        "macs": ["hmac-sha2-512-etm@openssh.com"],
        "host_key": ["rsa-sha2-512", "ssh-ed25519"],
    }
    assert supported_algorithms(ssh, available) == Algorithms(
        kex=("curve25519-sha256", "sntrup761x25519-sha512"),
        ciphers=("aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"),
        macs=("hmac-sha2-512-etm@openssh.com",),
        host_key=("ssh-ed25519", "rsa-sha2-512"),
    )


def test_supported_algorithms_error_when_none_configured_is_supported():
    """No configured MAC known to the host: an OperationError naming the kind and what the host offers."""
    available = {"kex": ["curve25519-sha256"], "macs": ["hmac-sha1", "hmac-md5"]}
    with pytest.raises(OperationError, match=r"ssh\.macs .*offers: hmac-md5, hmac-sha1"):
        supported_algorithms(Ssh(kex_algorithms=("curve25519-sha256",)), available)


def test_supported_algorithms_pass_everything_when_host_lists_nothing():
    """``ssh -Q`` answered nothing (an old OpenSSH): the configured lists are written as they are."""
    ssh = Ssh(kex_algorithms=("curve25519-sha256",), ciphers=("aes256-ctr",), macs=("umac-128-etm@openssh.com",),
              host_key_algorithms=("ssh-ed25519",))  # fmt: skip
    chosen = supported_algorithms(ssh, {"kex": [], "ciphers": [], "macs": [], "host_key": []})
    assert chosen == Algorithms(ssh.kex_algorithms, ssh.ciphers, ssh.macs, ssh.host_key_algorithms)
    assert supported_algorithms(ssh, {}) == chosen


def test_empty_lists_take_the_releases_hardened_policy_in_its_order():
    """Ubuntu 24.04's policy orders group18 before GEX before group16 and MACs 512 first; Debian 12's differs."""
    ubuntu = supported_algorithms(Ssh(), {}, release_policy("ubuntu2404"))
    assert ubuntu.kex == (
        "sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org",
        "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha256", "diffie-hellman-group16-sha512",
    )  # fmt: skip
    assert ubuntu.macs[0] == "hmac-sha2-512-etm@openssh.com"
    assert ubuntu.host_key == ("ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256")
    debian = supported_algorithms(Ssh(), {}, release_policy("debian12"))
    assert debian.kex[:2] == ("sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com")
    assert debian.macs[0] == "hmac-sha2-256-etm@openssh.com"
    assert debian.ciphers == ubuntu.ciphers == (
        "chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes256-ctr", "aes192-ctr",
        "aes128-gcm@openssh.com", "aes128-ctr",
    )  # fmt: skip
    # A configured list still wins over the policy's.
    assert supported_algorithms(Ssh(macs=("umac-128-etm@openssh.com",)), {}, release_policy("debian12")).macs == (
        "umac-128-etm@openssh.com",
    )


def test_host_key_files_follow_the_algorithm_order_once_each():
    assert host_key_files(("rsa-sha2-512", "ssh-ed25519", "rsa-sha2-256", "sk-ssh-ed25519@openssh.com")) == [
        "/etc/ssh/ssh_host_rsa_key",
        "/etc/ssh/ssh_host_ed25519_key",
    ]
    assert host_key_files(("ecdsa-sha2-nistp256", "ssh-ed25519-cert-v01@openssh.com")) == ["/etc/ssh/ssh_host_ecdsa_key"]


def test_every_supported_release_has_a_policy_and_an_unknown_one_gets_the_newest():
    assert {k: p.name for k, p in POLICIES.items()} == {
        "ubuntu2204": "Hardened Ubuntu Server 22.04 LTS (version 6)",
        "ubuntu2404": "Hardened Ubuntu Server 24.04 LTS (version 2)",
        "ubuntu2604": "Hardened Ubuntu Server 26.04 LTS (version 1)",
        "debian12": "Hardened Debian 12 (version 3)",
        "debian13": "Hardened Debian 13 (version 1)",
    }
    assert release_policy("debian14") == release_policy("debian13")
    assert all(p.rsa_bits == 4096 and p.min_modulus_bits == 3072 for p in POLICIES.values())


def test_policy_lists_match_the_ssh_audit_policies_they_name():
    """Checked against ssh-audit's own built-in policies when it is installed (the test extras install it)."""
    builtin = pytest.importorskip("ssh_audit.builtin_policies").BUILTIN_POLICIES
    added_by_sshd = ("ext-info-s", "kex-strict-s-v00@openssh.com")
    for release, policy in POLICIES.items():
        audit = builtin[policy.name]
        assert policy.kex == tuple(k for k in audit["kex"] if k not in added_by_sshd), release
        assert (policy.ciphers, policy.macs, policy.host_key) == tuple(tuple(audit[k]) for k in ("ciphers", "macs", "host_keys")), release
        assert audit["hostkey_sizes"]["rsa-sha2-512"]["hostkey_size"] == policy.rsa_bits
        assert audit["dh_modulus_sizes"]["diffie-hellman-group-exchange-sha256"] == policy.min_modulus_bits


def test_every_release_offers_a_key_exchange_pyinfras_ssh_library_speaks():
    """paramiko has no post-quantum key exchange: a host offering only those would shut vpskit out."""
    paramiko = pytest.importorskip("paramiko")
    speaks = set(paramiko.Transport._preferred_kex)
    for release, policy in POLICIES.items():
        assert speaks & set(policy.offered_kex), release
        assert policy.offered_kex[: len(policy.kex)] == policy.kex, release  # the policy's come first
    assert supported_algorithms(Ssh(), {}, release_policy("debian13")).kex[-1] == "curve25519-sha256@libssh.org"


# ------------------------------------------------------------------ drop-in


ALGS = Algorithms(("curve25519-sha256",), ("aes256-gcm@openssh.com",), ("hmac-sha2-512-etm@openssh.com",),
                  ("ssh-ed25519", "rsa-sha2-512"))  # fmt: skip


def options(text: str) -> list[tuple[str, str]]:
    """The (option, value) lines of an sshd config, comments and blank lines left out."""
    return [tuple(line.split(" ", 1)) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_transitional_dropin_only_lists_both_ports():
    """While the port moves: Port lines for old and new port, no login settings (logins as before)."""
    text = render_dropin([22, 2222], None)
    assert options(text) == [("Port", "22"), ("Port", "2222")]
    assert "PermitRootLogin" not in text
    assert not is_hardened(text)
    assert text.startswith("# Managed by vpskit (moving port")


def test_hardened_dropin_sets_every_option():
    """Hardened: sorted unique ports, then every login, timeout and algorithm option, AllowUsers and extra options."""
    ssh = Ssh(max_auth_tries=4, login_grace_time=20, extra={"AllowTcpForwarding": "no", "MaxSessions": "2"})
    text = render_dropin([2222, 22, 2222], ssh, ("deploy", "ops"), ALGS)
    assert options(text) == [
        ("Port", "22"),
        ("Port", "2222"),
        ("PermitRootLogin", "no"),
        ("PasswordAuthentication", "no"),
        ("KbdInteractiveAuthentication", "no"),
        ("PermitEmptyPasswords", "no"),
        ("PubkeyAuthentication", "yes"),
        ("X11Forwarding", "no"),
        ("MaxAuthTries", "4"),
        ("ClientAliveInterval", "300"),
        ("ClientAliveCountMax", "3"),
        ("LoginGraceTime", "20"),
        ("AllowUsers", "deploy ops"),
        ("KexAlgorithms", "curve25519-sha256"),
        ("Ciphers", "aes256-gcm@openssh.com"),
        ("MACs", "hmac-sha2-512-etm@openssh.com"),
        ("HostKeyAlgorithms", "ssh-ed25519,rsa-sha2-512"),
        # sshd announces host key algorithms in HostKey order: ed25519 first, as the policies want.
        ("HostKey", "/etc/ssh/ssh_host_ed25519_key"),
        ("HostKey", "/etc/ssh/ssh_host_rsa_key"),
        ("AllowTcpForwarding", "no"),
        ("MaxSessions", "2"),
    ]
    assert is_hardened(text)


def test_hardened_dropin_follows_login_settings():
    """Config booleans become yes/no and permit_root_login is written as configured."""
    ssh = Ssh(permit_root_login="prohibit-password", password_authentication=True, x11_forwarding=True)
    found = dict(options(render_dropin([22], ssh, ("deploy",), ALGS)))
    assert (found["PermitRootLogin"], found["PasswordAuthentication"], found["X11Forwarding"]) == (
        "prohibit-password", "yes", "yes")  # fmt: skip


@pytest.mark.parametrize(
    "dropin, hardened",
    [("", False), ("# Managed by vpskit (hardened). sshd keeps\nPort 22", True),
     ("# Managed by vpskit (moving port: logins as before)\nPort 22\n# (hardened)", False)],
)  # fmt: skip
def test_is_hardened_reads_the_phase_in_the_first_line(dropin, hardened):
    """Only the header's phase says hardened; an absent drop-in is not hardened."""
    assert is_hardened(dropin) is hardened


# ------------------------------------------------------------ apply commands


@pytest.mark.parametrize(
    "socket_mode, listener_changes, command",
    [
        (True, True, "systemctl daemon-reload && systemctl restart ssh.socket"),
        (True, False, "if systemctl is-active -q ssh.service; then systemctl reload ssh.service; fi"),
        (False, True, "systemctl reload ssh.service"),
        (False, False, "systemctl reload ssh.service"),
    ],
)
def test_apply_command_moves_listener_only_when_ports_change(socket_mode, listener_changes, command):
    """Socket mode: new ports need the socket regenerated and restarted, else a reload if sshd runs; service mode: reload."""
    assert apply_command(socket_mode, listener_changes) == command


def test_neutralise_comments_out_conflicting_lines_only(tmp_path):
    """Listed lines get ``# disabled by vpskit: `` in front, in every file named; other lines stay byte for byte."""
    d = tmp_path / "ssh dir"  # a space in the path: the command must quote it
    d.mkdir()
    main = d / "sshd_config"
    cloud = d / "50-cloud-init.conf"
    main.write_text("Include x\nPort 22\nUsePAM yes\n  ListenAddress 0.0.0.0\n")
    cloud.write_text("PasswordAuthentication yes\n")
    conflicts = [f"{main}:4:  ListenAddress 0.0.0.0", f"{cloud}:1:PasswordAuthentication yes", f"{main}:2:Port 22"]

    result = sh(neutralise_command(conflicts), shell="bash")
    assert result.returncode == 0, result.stderr
    assert main.read_text() == ("Include x\n# disabled by vpskit: Port 22\nUsePAM yes\n# disabled by vpskit:   ListenAddress 0.0.0.0\n")
    assert cloud.read_text() == "# disabled by vpskit: PasswordAuthentication yes\n"


# ------------------------------------------------------------- port check


@pytest.fixture
def banner_server():
    """A TCP server on 127.0.0.1 answering every connection with the given first line; yields its port."""
    servers = []

    def start(banner: bytes) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def serve():
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    conn.sendall(banner)

        threading.Thread(target=serve, daemon=True).start()
        return server.getsockname()[1]

    yield start
    for server in servers:
        server.close()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def test_port_check_command_is_valid_bash():
    """The check parses in bash and in sh (pyinfra runs commands with sh -c)."""
    command = port_check_command(2222, attempts=3)
    for shell in ("bash", "sh"):
        assert subprocess.run([shell, "-n", "-c", command], capture_output=True).returncode == 0


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_port_check_passes_when_sshd_banner_answers(banner_server, shell):
    """Something answering ``SSH-2.0-...`` on the port: exit 0 at once."""
    port = banner_server(b"SSH-2.0-test\r\n")
    result = sh(port_check_command(port, attempts=1), shell=shell)
    assert (result.returncode, result.stderr) == (0, "")


def test_port_check_fails_with_message_on_closed_port():
    """Nothing listening: exit 1 and the reason on stderr."""
    port = closed_port()
    result = sh(port_check_command(port, attempts=1))
    assert result.returncode == 1
    assert result.stderr.strip() == f"vpskit: sshd does not answer on port {port}"


def test_port_check_fails_when_something_else_answers(banner_server):
    """A service that is not sshd on the port (no SSH- banner) does not count."""
    port = banner_server(b"HTTP/1.0 400 Bad Request\r\n")
    result = sh(port_check_command(port, attempts=1))
    assert result.returncode == 1 and "does not answer" in result.stderr


def test_login_proven_without_prove_checks_port_on_host():
    """No controller-side check: the operation yields the on-host banner check for the port."""
    assert [str(c) for c in ssh_login_proven._inner(port=2222, attempts=3)] == [port_check_command(2222, 3)]


def test_login_proven_retries_then_fails_with_the_reason(monkeypatch):
    """prove failing every time: it is tried ``attempts`` times, then the run fails naming the port and the error."""
    monkeypatch.setattr(sshmod.time, "sleep", lambda s: None)
    tries = []
    (command,) = ssh_login_proven._inner(port=2222, prove=lambda: tries.append(1) or "Permission denied", attempts=3)
    with pytest.raises(OperationError, match=r"port 2222 failed \(Permission denied\)"):
        command.function()
    assert len(tries) == 3


def test_login_proven_succeeds_on_a_later_attempt(monkeypatch):
    """sshd still re-executing on the first try: a later success passes."""
    monkeypatch.setattr(sshmod.time, "sleep", lambda s: None)
    answers = iter(["Connection refused", None])
    (command,) = ssh_login_proven._inner(port=2222, prove=lambda: next(answers), attempts=3)
    command.function()
    assert next(answers, "drained") == "drained"


# -------------------------------------------------------------- revert timer


@pytest.mark.parametrize("socket_mode", [True, False])
def test_revert_script_is_valid_sh_and_reallows_each_old_port(socket_mode):
    """The script parses in sh, restores the backup and re-allows each old port with the rule vpskit adds."""
    script = render("ssh-revert.sh.j2", backup=REVERT_BACKUP, ports=[22, 2200], socket_mode=socket_mode)
    assert subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True).returncode == 0
    assert f"tar -xpf {REVERT_BACKUP} -C /etc/ssh" in script.splitlines()
    for port in (22, 2200):
        assert f"command -v ufw >/dev/null && {UfwRule(port).add_command()}" in script.splitlines()


def test_revert_script_restarts_socket_in_socket_mode():
    """Socket mode: the restored ports need the socket regenerated and restarted."""
    script = render("ssh-revert.sh.j2", backup=REVERT_BACKUP, ports=[22], socket_mode=True)
    assert script.splitlines()[-2:] == ["systemctl daemon-reload", "systemctl restart ssh.socket"]
    assert "ssh.service" not in script


def test_revert_script_reloads_service_in_service_mode():
    """Service mode: sshd reloads (or restarts) itself with the restored config."""
    script = render("ssh-revert.sh.j2", backup=REVERT_BACKUP, ports=[22], socket_mode=False)
    assert script.splitlines()[-1] == "systemctl reload-or-restart ssh.service"
    assert "ssh.socket" not in script


def test_revert_armed_backs_up_and_restores_sshd_config_for_real(tmp_path, fakebin, monkeypatch):
    """The operation's backup and script, run on a copy of /etc/ssh: a later change is undone, the old port re-allowed."""
    uploads = []

    def fake_put(src, dest, mode, force):
        uploads.append((src.getvalue() if isinstance(src, StringIO) else src, dest, mode))
        yield from ()

    monkeypatch.setattr(sshmod.files.put, "_inner", fake_put)
    commands = [str(c) for c in revert_armed._inner(socket_mode=False, old_ports=[22], seconds=120)]
    (script, dest, mode), = uploads  # fmt: skip
    assert (dest, mode) == (REVERT_SCRIPT, "700")
    backup, arm = commands
    assert f"--unit=vpskit-ssh-revert --on-active=120 /bin/sh {REVERT_SCRIPT}" in arm

    etc = tmp_path / "etc" / "ssh"
    (etc / "sshd_config.d").mkdir(parents=True)
    (etc / "sshd_config").write_text("Port 22\n")
    (etc / "sshd_config.d" / "50-cloud-init.conf").write_text("PasswordAuthentication yes\n")
    (tmp_path / "state").mkdir()

    def local(text: str) -> str:
        return text.replace("/etc/ssh", str(etc)).replace(sshmod.STATE_DIR, str(tmp_path / "state"))

    assert sh(local(backup)).returncode == 0
    # The change that was not proven: our drop-in, sshd_config edited.
    (etc / "sshd_config.d" / "00-vpskit.conf").write_text("Port 2222\n")
    (etc / "sshd_config").write_text("# disabled by vpskit: Port 22\n")
    for name in ("ufw", "systemctl", "logger"):
        fakebin(name)
    result = sh(local(script), env_path=fakebin.dir)

    assert result.returncode == 0, result.stderr
    assert (etc / "sshd_config").read_text() == "Port 22\n"
    assert sorted(p.name for p in (etc / "sshd_config.d").iterdir()) == ["50-cloud-init.conf"]
    assert fakebin.calls()[1:] == [
        "ufw allow proto tcp from any to any port 22 comment vpskit",
        "systemctl reload-or-restart ssh.service",
    ]


# ------------------------------------------------------------ sshd -t check


@pytest.fixture
def sshd_check(fakebin):
    """Run SSHD_CHECK_OR_DISARM with fake mkdir/sshd/systemctl; ``sshd_exit`` decides the config check."""

    def run(sshd_exit: int, systemctl_exit: int = 0) -> subprocess.CompletedProcess:
        fakebin("mkdir")
        fakebin("sshd", exit=sshd_exit)
        fakebin("systemctl", exit=systemctl_exit)
        return sh(SSHD_CHECK_OR_DISARM, env_path=fakebin.dir)

    return run


def test_sshd_check_passes_without_touching_the_revert_timer(sshd_check, fakebin):
    """sshd -t accepts the config: exit 0, the revert timer stays armed."""
    assert sshd_check(sshd_exit=0).returncode == 0
    assert fakebin.calls() == ["mkdir -p /run/sshd", "sshd -t"]


@pytest.mark.parametrize("systemctl_exit", [0, 5])
def test_sshd_check_failing_disarms_and_still_fails(sshd_check, fakebin, systemctl_exit):
    """sshd -t rejects the config: the revert timer is stopped and reset, and the check fails (whatever systemctl says)."""
    assert sshd_check(sshd_exit=255, systemctl_exit=systemctl_exit).returncode != 0
    assert fakebin.calls() == [
        "mkdir -p /run/sshd",
        "sshd -t",
        "systemctl stop vpskit-ssh-revert.timer",
        "systemctl reset-failed vpskit-ssh-revert.service",
    ]


def test_rejected_dropin_is_put_back_and_timer_disarmed(tmp_path, fakebin):
    """As checked_file runs it: sshd -t failing restores the previous drop-in, disarms the timer and fails."""
    dest = tmp_path / "00-vpskit.conf"
    dest.write_text("Port 22\n")
    staged = tmp_path / "staged"
    staged.write_text("Port 2222\nBogusOption yes\n")
    fakebin("mkdir")
    fakebin("sshd", exit=255)
    fakebin("systemctl")
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
    command = install_checked_command(str(dest), str(staged), SSHD_CHECK_OR_DISARM, "644", user, group)

    result = sh(command, env_path=fakebin.dir)
    assert result.returncode == 1
    assert "rejected by" in result.stderr
    assert dest.read_text() == "Port 22\n"
    assert "systemctl stop vpskit-ssh-revert.timer" in fakebin.calls()


def test_conflicts_are_found_in_any_case_and_with_equals_sign():
    from operations.ssh import parse_sshd_state

    state = parse_sshd_state(
        [
            "## conflicts",
            "/etc/ssh/sshd_config.d/50-cloud-init.conf:1:passwordauthentication yes",
            "/etc/ssh/sshd_config:5:Port=2200",
            "/etc/ssh/sshd_config:9:PasswordAuthentication yes",  # main file: first value wins, ours is first
        ]
    )
    assert state["conflicts"] == [
        "/etc/ssh/sshd_config.d/50-cloud-init.conf:1:passwordauthentication yes",
        "/etc/ssh/sshd_config:5:Port=2200",
    ]
