"""sshd hardening and port moves that never lock the user out.

The order, for a change of port or of login rules:

1. the firewall already allows the new port (``firewall.firewall`` runs first);
2. an on-host timer is armed that restores the previous sshd config and
   firewall rules unless it is cancelled;
3. sshd listens on the old AND the new port (root and password logins as
   before, unless a previous run already hardened them);
4. a FRESH login as the deploy user on the new port, with its key, from the
   machine running pyinfra, proves the way in;
5. only then the hardened config goes live: new port only, no root, no
   passwords; it is proven again the same way;
6. the old port is closed in the firewall and the timer is cancelled.

A run killed anywhere leaves either the old way in, both, or the proven new
one; the next run (its inventory finds whichever works) finishes the move.
Every config is checked with ``sshd -t`` before it replaces the live one.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from io import StringIO

from pyinfra.api import FactBase, FunctionCommand, OperationError, StringCommand, deploy, operation
from pyinfra.operations import files, server

from .firewall import UfwRule
from .render import render
from .snapshot import snapshot_fact
from .sshpolicy import NEWEST, SshPolicy, release_policy
from .validated import checked_file

DROPIN = "/etc/ssh/sshd_config.d/00-vpskit.conf"
DROPIN_MODE = "600"  # CIS: sshd config files root-only
STATE_DIR = "/var/lib/vpskit"
REVERT_UNIT = "vpskit-ssh-revert"
REVERT_SCRIPT = f"{STATE_DIR}/ssh-revert.sh"
REVERT_BACKUP = f"{STATE_DIR}/ssh-before-change.tar"
SSHD_CHECK = "mkdir -p /run/sshd && sshd -t"  # /run/sshd is missing under socket activation


def _disarm() -> str:
    return f"systemctl stop {REVERT_UNIT}.timer 2>/dev/null; systemctl reset-failed {REVERT_UNIT}.service 2>/dev/null; true"


# A rejected config is put back at once (checked_file), so the live sshd is the one
# this run came in through: the revert timer has nothing left to guard.
SSHD_CHECK_OR_DISARM = f"{SSHD_CHECK} || {{ {_disarm()}; false; }}"
# Lines outside vpskit's drop-in that would still apply (Port/ListenAddress add up) or
# that later drop-ins such as 50-cloud-init.conf set (password logins back on).
CONFLICTING = ("Port", "ListenAddress")
CONFLICTING_IN_DROPINS = ("PasswordAuthentication", "PermitRootLogin", "KbdInteractiveAuthentication", "AllowUsers")
_CANONICAL = {name.lower(): name for name in CONFLICTING + CONFLICTING_IN_DROPINS}
ALGORITHM_QUERIES = {"kex": "KexAlgorithms", "ciphers": "Ciphers", "macs": "MACs", "host_key": "HostKeyAlgorithms"}


class SshdState(FactBase):
    """
    Returns what decides an sshd change, in one round trip.

    .. code:: python

        {
            "dropin": "...",                  # vpskit's drop-in, "" when absent
            "socket_mode": True,              # ssh.socket listens (Ubuntu 24.04)
            "ports": [22],                    # ports sshd (or ssh.socket) listens on now
            "conflicts": ["/etc/ssh/sshd_config.d/50-cloud-init.conf:3:PasswordAuthentication yes"],
            "algorithms": {"kex": [...], "ciphers": [...], "macs": [...], "host_key": [...]},
            "revert_armed": False,            # a revert timer from an unfinished run
        }
    """

    def requires_command(self):
        return "sshd"

    def command(self):
        options = "|".join(CONFLICTING + CONFLICTING_IN_DROPINS)
        queries = "; ".join(f"echo '## alg {k}'; ssh -Q {q} 2>/dev/null" for k, q in ALGORITHM_QUERIES.items())
        return (
            f"echo '## dropin'; cat {DROPIN} 2>/dev/null; "
            "echo '## conflicts'; "
            f"grep -HniE '^[[:space:]]*({options})([[:space:]]|=)' /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf "
            f"2>/dev/null | grep -v '^{DROPIN}:' ; "
            "echo '## socket'; systemctl is-active ssh.socket 2>/dev/null; "
            "echo '## socket_listen'; systemctl show -p Listen --value ssh.socket 2>/dev/null; "
            "echo '## listening'; ss -Hltnp 2>/dev/null | grep '\"sshd\"'; "
            f"echo '## revert'; systemctl is-active {REVERT_UNIT}.timer 2>/dev/null; "
            f"{queries}"
        )

    def process(self, output):
        return parse_sshd_state(output)


def parse_sshd_state(lines: list[str]) -> dict:
    sections: dict[str, list[str]] = {}
    current = None
    for line in lines:
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    socket_mode = (sections.get("socket") or [""])[0].strip() == "active"
    if socket_mode:
        ports = _ports(" ".join(sections.get("socket_listen", [])).split())
    else:
        ports = _ports(line.split()[3] for line in sections.get("listening", []) if len(line.split()) > 3)
    conflicts = []
    for line in sections.get("conflicts", []):
        path, _, rest = line.partition(":")
        # sshd reads keywords in any case, separated by blanks or "=".
        words = re.split(r"[\s=]+", rest.partition(":")[2].strip(), maxsplit=1)
        option = _CANONICAL.get(words[0].lower(), "")
        if option in CONFLICTING or (option in CONFLICTING_IN_DROPINS and path != "/etc/ssh/sshd_config"):
            conflicts.append(line)
    return {
        "dropin": "\n".join(sections.get("dropin", [])).strip(),
        "socket_mode": socket_mode,
        "ports": ports,
        "conflicts": conflicts,
        "algorithms": {k: [a for a in sections.get(f"alg {k}", []) if a.strip()] for k in ALGORITHM_QUERIES},
        "revert_armed": (sections.get("revert") or [""])[0].strip() in ("active", "activating"),
    }


def _ports(addresses) -> list[int]:
    """Port numbers from listen addresses like ``[::]:22``, ``0.0.0.0:22``, ``*:2222`` or ``22``."""
    ports = set()
    for addr in addresses:
        tail = addr.rsplit(":", 1)[-1]
        if tail.isdigit():
            ports.add(int(tail))
    return sorted(ports)


# ------------------------------------------------------------ pure decisions


@dataclass(frozen=True)
class SshdPolicy:
    """What the hardened sshd allows (the guide's values by default), and how long an unproven move may stand.

    Every algorithm list is cut down to what the host's OpenSSH supports (``ssh -Q``) before it is written.
    """

    permit_root_login: str = "no"
    password_authentication: bool = False
    kbd_interactive_authentication: bool = False
    permit_empty_passwords: bool = False
    x11_forwarding: bool = False
    max_auth_tries: int = 3
    client_alive_interval: int = 300
    client_alive_count_max: int = 3
    login_grace_time: int = 30
    # Users allowed to log in; empty: the deploy user only.
    allow_users: tuple[str, ...] = ()
    # Empty: the lists of ssh-audit's hardened policy for the host's release (``sshpolicy``).
    kex_algorithms: tuple[str, ...] = ()
    ciphers: tuple[str, ...] = ()
    macs: tuple[str, ...] = ()
    host_key_algorithms: tuple[str, ...] = ()
    # More sshd options, written as they are: {"AllowTcpForwarding": "no"}.
    extra: dict[str, str] = field(default_factory=dict)
    # Seconds after which an on-host timer restores the previous sshd and UFW state unless the move is proven.
    revert_after: int = 300


@dataclass(frozen=True)
class Algorithms:
    kex: tuple[str, ...]
    ciphers: tuple[str, ...]
    macs: tuple[str, ...]
    host_key: tuple[str, ...]


def supported_algorithms(ssh: SshdPolicy, available: dict[str, list[str]], policy: SshPolicy = NEWEST) -> Algorithms:
    """The configured algorithms (an empty list: ``policy``'s) the host's OpenSSH knows, in that order."""
    wanted = {
        "kex": ssh.kex_algorithms or policy.offered_kex,
        "ciphers": ssh.ciphers or policy.ciphers,
        "macs": ssh.macs or policy.macs,
        "host_key": ssh.host_key_algorithms or policy.host_key,
    }
    chosen = {}
    for kind, names in wanted.items():
        have = set(available.get(kind) or ())
        chosen[kind] = tuple(n for n in names if n in have) if have else tuple(names)
        if not chosen[kind]:
            raise OperationError(
                f"none of the configured ssh.{kind} algorithms is supported by this host's OpenSSH (it offers: {', '.join(sorted(have))})"
            )
    return Algorithms(**chosen)


HOST_KEY_FILES = {"ssh-ed25519": "ed25519", "rsa-sha2-512": "rsa", "rsa-sha2-256": "rsa"}
HOST_KEY_FILES.update({f"ecdsa-sha2-nistp{n}": "ecdsa" for n in (256, 384, 521)})


def host_key_files(host_key_algorithms) -> list[str]:
    """The host key files for ``host_key_algorithms``, in their order.

    sshd announces its host key algorithms in the order of its HostKey lines (the
    default order is RSA, ECDSA, ed25519), not in HostKeyAlgorithms' order.
    """
    kinds = dict.fromkeys(HOST_KEY_FILES[a] for a in host_key_algorithms if a in HOST_KEY_FILES)
    return [f"/etc/ssh/ssh_host_{kind}_key" for kind in kinds]


def render_dropin(ports, ssh: SshdPolicy | None, allow_users=(), algorithms: Algorithms | None = None) -> str:
    """vpskit's sshd drop-in: ports only (``ssh`` None: logins as before) or fully hardened."""
    return render(
        "sshd-vpskit.conf.j2",
        phase="hardened" if ssh else "moving port: logins as before until the new port is proven",
        ports=sorted(set(ports)),
        hardened=ssh is not None,
        ssh=ssh,
        allow_users=list(allow_users),
        algorithms=algorithms,
        host_keys=host_key_files(algorithms.host_key) if ssh and algorithms else [],
    )


def is_hardened(dropin: str) -> bool:
    return "(hardened)" in dropin.splitlines()[0] if dropin else False


def apply_command(socket_mode: bool, listener_changes: bool) -> str:
    """Make sshd use its new config: move the listener only when the ports change."""
    if socket_mode:
        if listener_changes:
            # The socket generator turns Port lines into ssh.socket's ListenStream.
            # Restarting the socket restarts ssh.service too; KillMode=process keeps sessions.
            return "systemctl daemon-reload && systemctl restart ssh.socket"
        return "if systemctl is-active -q ssh.service; then systemctl reload ssh.service; fi"
    return "systemctl reload ssh.service"


def neutralise_command(conflicts: list[str]) -> str:
    """Comment out lines elsewhere that would still open ports or re-enable logins."""
    commands = []
    for path in sorted({c.split(":", 1)[0] for c in conflicts}):
        lines = sorted({int(c.split(":", 2)[1]) for c in conflicts if c.startswith(path + ":")})
        script = ";".join(f"{n}s/^/# disabled by vpskit: /" for n in lines)
        commands.append(f"sed -i {shlex.quote(script)} {shlex.quote(path)}")
    return " && ".join(commands)


def port_check_command(port: int, attempts: int = 5) -> str:
    """On the host: sshd answers with its banner on ``port`` (retried: a reload takes a moment)."""
    probe = (
        f"timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && read -r banner <&3 && "
        f'case "$banner" in SSH-*) exit 0;; *) exit 1;; esac\' 2>/dev/null'
    )
    return (
        f"for i in $(seq {attempts}); do {probe} && exit 0; sleep 2; done; echo 'vpskit: sshd does not answer on port {port}' >&2; exit 1"
    )


# ----------------------------------------------------------------- operations


@operation()
def ssh_login_proven(port: int, prove: Callable[[], str | None] | None = None, attempts: int = 5):
    """
    Prove that a fresh SSH login works on ``port``; fail the run otherwise.

    + port: the sshd port as the host sees it
    + prove: controller-side check returning None on success or why it failed (a real
      key login over SSH); without it, the host checks that sshd answers on the port
    + attempts: tries, two seconds apart, before the run fails

    **Example:**

    .. code:: python

        ssh_login_proven(port=2222, prove=lambda: try_login(address, way))
    """
    if prove is None:
        yield StringCommand(port_check_command(port, attempts))
        return

    def check():
        # sshd re-executes itself on reload: give it a few seconds to answer.
        error = "not tried"
        for _ in range(max(1, attempts)):
            error = prove()
            if not error:
                return
            time.sleep(2)
        if error:
            raise OperationError(
                f"a fresh SSH login on port {port} failed ({error}); the old way in stays open. "
                "Check the provider's firewall for that port; the previous sshd config comes back "
                f"by itself when {REVERT_UNIT}.timer fires."
            )

    yield FunctionCommand(check, (), {})


@operation()
def revert_armed(socket_mode: bool, old_ports: list[int], seconds: int):
    """
    Arm an on-host timer that restores the current sshd config and firewall rules.

    + socket_mode: sshd is socket-activated (restore restarts ssh.socket)
    + old_ports: SSH ports to re-allow in the firewall on restore
    + seconds: how long a change has to prove itself

    **Example:**

    .. code:: python

        revert_armed(socket_mode=True, old_ports=[22], seconds=300)
    """
    script = render("ssh-revert.sh.j2", backup=REVERT_BACKUP, ports=sorted(old_ports), socket_mode=socket_mode)
    yield from files.put._inner(src=StringIO(script), dest=REVERT_SCRIPT, mode="700", force=True)
    yield StringCommand(f"tar -cpf {REVERT_BACKUP} -C /etc/ssh sshd_config sshd_config.d")
    yield StringCommand(
        f"systemctl stop {REVERT_UNIT}.timer 2>/dev/null; systemctl reset-failed {REVERT_UNIT}.timer "
        f"{REVERT_UNIT}.service 2>/dev/null; "
        f"systemd-run --quiet --unit={REVERT_UNIT} --on-active={int(seconds)} /bin/sh {REVERT_SCRIPT}"
    )


def sshd_state() -> dict | None:
    """The ``SshdState`` fact: sshd's ports, drop-in, conflicts and algorithms now (None without sshd); read with the run's other facts."""
    return snapshot_fact(SshdState)


@deploy("SSH")
def sshd_hardened(
    port: int,
    deploy_user: str,
    policy: SshdPolicy = SshdPolicy(),
    prove: Callable[[], str | None] | None = None,
    firewall: bool = True,
    state: dict | None = None,
    release: str = "",
):
    """
    Ensure sshd is hardened and listens on ``port`` only, moving it without a lockout.

    + port: the port sshd must end up on
    + deploy_user: the user whose fresh key login proves each step (allowed in unless ``policy.allow_users``)
    + policy: what hardened sshd allows (``SshdPolicy``; the guide's values by default)
    + prove: controller-side login check (see ``ssh_login_proven``); None: the port is checked from the host
    + firewall: UFW is managed (close the old port there after the move)
    + state: the ``SshdState`` fact already read this run (``sshd_state()``; one round trip less)
    + release: the host's ``Distro.key``: its ssh-audit hardened policy gives the algorithm
      lists the policy leaves empty

    **Example:**

    .. code:: python

        sshd_hardened(port=2222, deploy_user="appuser", policy=SshdPolicy(max_auth_tries=2))
    """
    state = state or sshd_state()
    if state is None:
        raise OperationError("sshd is not installed on this host (package openssh-server)")
    algorithms = supported_algorithms(policy, state["algorithms"], release_policy(release))
    allow_users = policy.allow_users or (deploy_user,)
    final = render_dropin([port], policy, allow_users, algorithms)
    old_ports = [p for p in state["ports"] if p != port]
    moving = bool(old_ports) or port not in state["ports"]

    if state["dropin"] == final.strip() and not state["conflicts"] and not moving:
        if state["revert_armed"]:
            server.shell(name="Cancel the revert timer of an unfinished run", commands=[_disarm()])
        return

    revert_armed(
        name="Arm the timer that restores sshd unless the change is proven",
        socket_mode=state["socket_mode"],
        old_ports=old_ports,
        seconds=policy.revert_after,
    )
    if moving:
        both = render_dropin(
            [*state["ports"], port],
            policy if is_hardened(state["dropin"]) else None,
            allow_users,
            algorithms,
        )
        step = checked_file(
            name=f"Listen on port {port} as well as {', '.join(map(str, old_ports)) or 'before'}",
            dest=DROPIN,
            content=both,
            validate=SSHD_CHECK_OR_DISARM,
            mode=DROPIN_MODE,
        )
        server.shell(
            name="Apply: sshd on old and new port",
            commands=[apply_command(state["socket_mode"], listener_changes=True)],
            _if=step.did_change,
        )
    # Root and password logins go only once the deploy user's own key login is proven.
    ssh_login_proven(name=f"Prove a fresh login as {deploy_user} on port {port}", port=port, prove=prove)

    if state["conflicts"]:
        server.shell(
            name="Disable Port and login settings outside vpskit's drop-in",
            commands=[neutralise_command(state["conflicts"])],
        )
    hardened = checked_file(name="Hardened sshd config", dest=DROPIN, content=final, validate=SSHD_CHECK_OR_DISARM, mode=DROPIN_MODE)
    server.shell(
        name="Apply: hardened sshd",
        commands=[apply_command(state["socket_mode"], listener_changes=moving or bool(state["conflicts"]))],
        _if=hardened.did_change,
    )
    ssh_login_proven(name=f"Prove a fresh login as {deploy_user} on port {port} again", port=port, prove=prove)
    if firewall and old_ports:
        server.shell(
            name=f"Close the old SSH port {', '.join(map(str, old_ports))} in the firewall",
            commands=[
                f"{r.delete_command()} >/dev/null 2>&1 || true"
                for p in old_ports
                for r in (UfwRule(p, "tcp", "allow"), UfwRule(p, "tcp", "limit"))
            ],
        )
    server.shell(name="Cancel the revert timer: the change is proven", commands=[_disarm()])
