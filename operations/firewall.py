"""UFW as pyinfra facts and operations (pyinfra 3 ships none).

Rules vpskit adds carry the comment ``vpskit``; only those are ever removed,
so rules an admin added by hand stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation

from .batched import packages_installed
from .contribution import Contribution
from .snapshot import planned, snapshot_fact

TAG = "vpskit"
PACKAGES = ["ufw"]
TAG_HEX = TAG.encode().hex()


@dataclass(frozen=True, order=True)
class UfwRule:
    """One inbound rule: ``action`` allow|limit, ``proto`` tcp|udp, ``source`` "" for anywhere."""

    port: int
    proto: str = "tcp"
    action: str = "allow"
    source: str = ""

    def spec(self) -> str:
        src = self.source or "any"
        return f"{self.action} proto {self.proto} from {src} to any port {self.port}"

    def add_command(self) -> str:
        return f"ufw {self.spec()} comment {TAG}"

    def delete_command(self) -> str:
        return f"ufw delete {self.spec()}"

    def __str__(self) -> str:
        return f"{self.action} {self.port}/{self.proto}" + (f" from {self.source}" if self.source else "")


class UfwState(FactBase):
    """
    Returns UFW's saved rules, default policies and whether it is enabled, or None without ufw.

    .. code:: python

        {
            "enabled": True,
            "defaults": {"incoming": "deny", "outgoing": "allow", "routed": "deny"},
            "rules": {UfwRule(22, "tcp", "allow", ""): "vpskit", ...},  # rule -> comment
        }
    """

    def requires_command(self):
        return "ufw"

    def command(self):
        return (
            "grep -h '^### tuple ###' /etc/ufw/user.rules /etc/ufw/user6.rules 2>/dev/null; "
            "grep -h '^DEFAULT_.*_POLICY=' /etc/default/ufw; grep -h '^ENABLED=' /etc/ufw/ufw.conf"
        )

    def process(self, output):
        return parse_ufw_state(output)


_POLICY = {"DROP": "deny", "REJECT": "reject", "ACCEPT": "allow"}
_DIRECTION = {"INPUT": "incoming", "OUTPUT": "outgoing", "FORWARD": "routed"}


def parse_ufw_state(lines: list[str]) -> dict:
    """Parse user.rules tuples and the policy/enabled settings (v4 and v6 rules fold into one)."""
    rules: dict[UfwRule, str] = {}
    defaults: dict[str, str] = {}
    enabled = False
    for line in lines:
        line = line.strip()
        if line.startswith("### tuple ###"):
            # ### tuple ### <action> <proto> <dport> <dst> <sport> <src> <direction> [comment=hex]
            parts = line.split()[3:]
            if len(parts) < 7 or parts[6] != "in" or not parts[2].isdigit():
                continue
            action, proto, dport, _dst, _sport, src = parts[:6]
            comment = ""
            for extra in parts[7:]:
                if extra.startswith("comment="):
                    comment = bytes.fromhex(extra[len("comment=") :]).decode(errors="replace")
            source = "" if src in ("0.0.0.0/0", "::/0") else src
            rules[UfwRule(int(dport), proto, action, source)] = comment
        elif line.startswith("DEFAULT_") and "_POLICY=" in line:
            key, value = line.split("=", 1)
            direction = _DIRECTION.get(key[len("DEFAULT_") : -len("_POLICY")])
            if direction:
                defaults[direction] = _POLICY.get(value.strip('"'), value.strip('"').lower())
        elif line.startswith("ENABLED="):
            enabled = line.split("=", 1)[1].strip().lower() == "yes"
    return {"enabled": enabled, "defaults": defaults, "rules": rules}


def rule_changes(current: dict[UfwRule, str], wanted: set[UfwRule], keep: set[UfwRule] = frozenset()):
    """(rules to add, vpskit rules to delete): ``keep`` rules are neither added nor deleted."""
    to_add = sorted(r for r in wanted if r not in current)
    to_delete = sorted(r for r, comment in current.items() if comment == TAG and r not in wanted and r not in keep)
    return to_add, to_delete


@planned(lambda *_, **__: [(UfwState, {})])
@operation()
def ufw_rules(rules: list[UfwRule], keep: list[UfwRule] = ()):
    """
    Ensure exactly these vpskit rules exist in UFW; vpskit rules no longer wanted are removed.

    + rules: the rules vpskit wants
    + keep: vpskit rules to leave in place although not wanted (an SSH port still in use)

    **Example:**

    .. code:: python

        ufw_rules(rules=[UfwRule(2222), UfwRule(80), UfwRule(443)], keep=[UfwRule(22)])
    """
    state = snapshot_fact(UfwState)
    current = state["rules"] if state else {}
    to_add, to_delete = rule_changes(current, set(rules), set(keep))
    if not to_add and not to_delete:
        host.noop("ufw rules are as configured")
        return
    # Allow before deleting: a port that moves is never closed first.
    for rule in to_add:
        yield StringCommand(rule.add_command())
    for rule in to_delete:
        yield StringCommand(rule.delete_command())


WANTED_DEFAULTS = {"incoming": "deny", "outgoing": "allow", "routed": "deny"}


@planned(lambda *_, **__: [(UfwState, {})])
@operation()
def ufw_enabled(defaults: dict[str, str] | None = None):
    """
    Ensure UFW's default policies and that it is enabled (non-interactively).

    Call it after ``ufw_rules``: rules are in place before the firewall starts.

    + defaults: policy per direction, default deny incoming / allow outgoing / deny routed

    **Example:**

    .. code:: python

        ufw_enabled()
    """
    wanted = {**WANTED_DEFAULTS, **(defaults or {})}
    state = snapshot_fact(UfwState) or {"enabled": False, "defaults": {}}
    commands = [f"ufw default {policy} {direction}" for direction, policy in wanted.items() if state["defaults"].get(direction) != policy]
    if not state["enabled"]:
        commands.append("ufw --force enable")
    if not commands:
        host.noop("ufw is enabled with the configured defaults")
    for command in commands:
        yield StringCommand(command)


def contribution(enabled: bool = True) -> Contribution:
    """UFW's package when the firewall is managed."""
    return Contribution(packages=tuple(PACKAGES) if enabled else ())


def wanted_rules(ssh_port: int, ssh_limit: bool, extra) -> set[UfwRule]:
    """The rules vpskit wants: SSH, HTTP, HTTPS and the configured extras."""
    rules = {UfwRule(ssh_port, "tcp", "limit" if ssh_limit else "allow"), UfwRule(80), UfwRule(443)}
    rules |= {UfwRule(r.port, r.proto, "allow", r.source) for r in extra}
    return rules


@deploy("Firewall")
def firewall(ssh_port: int, ssh_ports_in_use: list[int], ssh_limit: bool = False, extra=()):
    """
    Ensure UFW denies incoming traffic but SSH, HTTP(S) and the configured extras.

    + ssh_port: the port sshd is configured to listen on
    + ssh_ports_in_use: ports sshd listens on now; their rules stay until sshd has moved
    + ssh_limit: rate-limit the SSH port with ufw's ``limit``
    + extra: more ports to allow: ``UfwRule`` items (or anything with ``port``, ``proto``, ``source``)

    **Example:**

    .. code:: python

        firewall(ssh_port=2222, ssh_ports_in_use=[22], extra=[UfwRule(5432, source="10.0.0.0/8")])
    """
    packages_installed(name="Install ufw", packages=PACKAGES)
    # Ports sshd listens on now stay open (and are opened, on a fresh host) until
    # sshd has moved: the ssh deploy closes them once the new port is proven.
    in_use = {UfwRule(p) for p in ssh_ports_in_use if p != ssh_port}
    ufw_rules(
        name="Allow SSH, HTTP, HTTPS and configured ports",
        rules=sorted(wanted_rules(ssh_port, ssh_limit, extra) | in_use),
        keep=[UfwRule(r.port, r.proto, "limit") for r in in_use],
    )
    ufw_enabled(name="Enable ufw (deny incoming by default)")
