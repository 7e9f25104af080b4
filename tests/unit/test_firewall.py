"""UFW: parsing ufw's saved state, which rules vpskit adds or removes, and the commands its operations yield."""

from __future__ import annotations

import subprocess

import pytest

import operations.firewall as fw
from operations.config import FirewallRule
from operations.firewall import UfwRule, UfwState, parse_ufw_state, rule_changes, ufw_enabled, ufw_rules, wanted_rules
from tests.unit.hoststub import check_spec, run_op

VPSKIT = "comment=7670736b6974"  # "vpskit", hex-encoded as ufw stores comments

# As `ufw allow ...` / `ufw limit ...` / fail2ban's `ufw insert 1 deny from ...` write them.
USER_RULES = f"""\
*filter
:ufw-user-input - [0:0]
### RULES ###

### tuple ### deny any any 0.0.0.0/0 any 203.0.113.66 in
-A ufw-user-input -s 203.0.113.66 -j DROP

### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in {VPSKIT}
-A ufw-user-input -p tcp --dport 22 -j ACCEPT

### tuple ### limit tcp 2222 0.0.0.0/0 any 0.0.0.0/0 in {VPSKIT}
-A ufw-user-input -p tcp --dport 2222 -m conntrack --ctstate NEW -m recent --set

### tuple ### allow tcp 5432 0.0.0.0/0 any 10.0.0.0/8 in {VPSKIT}
-A ufw-user-input -p tcp --dport 5432 -s 10.0.0.0/8 -j ACCEPT

### tuple ### allow udp 51820 0.0.0.0/0 any 0.0.0.0/0 in comment=61646d696e
-A ufw-user-input -p udp --dport 51820 -j ACCEPT

### tuple ### allow tcp 8080 0.0.0.0/0 any 0.0.0.0/0 in
-A ufw-user-input -p tcp --dport 8080 -j ACCEPT

### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in
-A ufw-user-input -p tcp --dport 22 -j ACCEPT -m comment --comment 'dapp_OpenSSH'

### tuple ### allow tcp 9100 0.0.0.0/0 any 0.0.0.0/0 out {VPSKIT}
-A ufw-user-output -p tcp --dport 9100 -j ACCEPT

### END RULES ###
COMMIT
"""
USER6_RULES = f"""\
*filter
### RULES ###

### tuple ### allow tcp 22 ::/0 any ::/0 in {VPSKIT}
-A ufw6-user-input -p tcp --dport 22 -j ACCEPT

### tuple ### limit tcp 2222 ::/0 any ::/0 in {VPSKIT}
-A ufw6-user-input -p tcp --dport 2222 -m conntrack --ctstate NEW -m recent --set

### tuple ### allow udp 51820 ::/0 any ::/0 in comment=61646d696e
-A ufw6-user-input -p udp --dport 51820 -j ACCEPT

### tuple ### allow tcp 8080 ::/0 any ::/0 in
-A ufw6-user-input -p tcp --dport 8080 -j ACCEPT

### END RULES ###
COMMIT
"""
DEFAULT_UFW = """\
IPV6=yes
DEFAULT_INPUT_POLICY="DROP"
DEFAULT_OUTPUT_POLICY="ACCEPT"
DEFAULT_FORWARD_POLICY="DROP"
DEFAULT_APPLICATION_POLICY="SKIP"
MANAGE_BUILTINS=no
"""
UFW_CONF = "# /etc/ufw/ufw.conf\nENABLED=yes\nLOGLEVEL=low\n"

PARSED_RULES = {
    UfwRule(22, "tcp", "allow", ""): "vpskit",
    UfwRule(2222, "tcp", "limit", ""): "vpskit",
    UfwRule(5432, "tcp", "allow", "10.0.0.0/8"): "vpskit",
    UfwRule(51820, "udp", "allow", ""): "admin",
    UfwRule(8080, "tcp", "allow", ""): "",
}


def fact_output(tmp_path, user_rules=USER_RULES, user6_rules=USER6_RULES, default=DEFAULT_UFW, conf=UFW_CONF):
    """Run UfwState's own command over copies of ufw's files in tmp_path; its output lines."""
    files = {
        "/etc/ufw/user.rules": user_rules,
        "/etc/ufw/user6.rules": user6_rules,
        "/etc/default/ufw": default,
        "/etc/ufw/ufw.conf": conf,
    }
    command = UfwState().command()
    for path, text in files.items():
        local = tmp_path / path.lstrip("/").replace("/", "_")
        local.write_text(text)
        command = command.replace(path, str(local))
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=10)
    return result.stdout.splitlines()


# ------------------------------------------------------------------ the fact


def test_ufw_state_fact_reads_rules_policies_and_enabled_from_ufw_files(tmp_path):
    """The fact's grep over user.rules/user6.rules, /etc/default/ufw and ufw.conf parses to rules, defaults, enabled."""
    state = parse_ufw_state(fact_output(tmp_path))
    assert state == {
        "enabled": True,
        "defaults": {"incoming": "deny", "outgoing": "allow", "routed": "deny"},
        "rules": PARSED_RULES,
    }


def test_ufw_state_v4_and_v6_tuples_fold_into_one_rule(tmp_path):
    """The same rule in user.rules and user6.rules is one rule; a v6-only rule is still seen."""
    v4 = f"### tuple ### allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in {VPSKIT}\n"
    v6 = f"### tuple ### allow tcp 443 ::/0 any ::/0 in {VPSKIT}\n### tuple ### allow tcp 80 ::/0 any ::/0 in {VPSKIT}\n"
    rules = parse_ufw_state(fact_output(tmp_path, user_rules=v4, user6_rules=v6))["rules"]
    assert rules == {UfwRule(443): "vpskit", UfwRule(80): "vpskit"}


def test_ufw_state_decodes_hex_comment():
    """comment=7670736b6974 is ufw's hex encoding of "vpskit"; a rule without comment has ""."""
    rules = parse_ufw_state(
        [
            f"### tuple ### allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in {VPSKIT}",
            "### tuple ### allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in",
        ]
    )["rules"]
    assert rules == {UfwRule(443): "vpskit", UfwRule(80): ""}


def test_ufw_state_keeps_source_network_and_limit_action():
    """A rule from 10.0.0.0/8 keeps its source; "from any" (0.0.0.0/0, ::/0) is source ""; limit stays limit."""
    rules = parse_ufw_state(
        [
            f"### tuple ### allow tcp 5432 0.0.0.0/0 any 10.0.0.0/8 in {VPSKIT}",
            f"### tuple ### limit tcp 2222 ::/0 any ::/0 in {VPSKIT}",
        ]
    )["rules"]
    assert set(rules) == {UfwRule(5432, "tcp", "allow", "10.0.0.0/8"), UfwRule(2222, "tcp", "limit", "")}


def test_ufw_state_ignores_fail2ban_denies_app_profiles_and_outbound_rules():
    """`ufw insert 1 deny from IP` (dport any), app-profile tuples and outbound rules are not inbound port rules."""
    state = parse_ufw_state(
        [
            "### tuple ### deny any any 0.0.0.0/0 any 203.0.113.66 in",
            "### tuple ### deny tcp any 0.0.0.0/0 any 198.51.100.9 in comment=66326220737368",
            "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in",
            f"### tuple ### allow tcp 9100 0.0.0.0/0 any 0.0.0.0/0 out {VPSKIT}",
        ]
    )
    assert state["rules"] == {}


@pytest.mark.parametrize(
    "lines, enabled, defaults",
    [
        (["ENABLED=yes"], True, {}),
        (["ENABLED=no"], False, {}),
        ([], False, {}),
        (
            ['DEFAULT_INPUT_POLICY="ACCEPT"', 'DEFAULT_OUTPUT_POLICY="REJECT"', 'DEFAULT_FORWARD_POLICY="DROP"'],
            False,
            {"incoming": "allow", "outgoing": "reject", "routed": "deny"},
        ),
        (['DEFAULT_APPLICATION_POLICY="SKIP"', "ENABLED=yes"], True, {}),
    ],
    ids=["enabled", "disabled", "no-setting-is-disabled", "policies", "application-policy-ignored"],
)
def test_ufw_state_enabled_flag_and_default_policies(lines, enabled, defaults):
    """ENABLED=yes/no decides enabled; DEFAULT_{INPUT,OUTPUT,FORWARD}_POLICY map DROP/REJECT/ACCEPT to ufw's words."""
    state = parse_ufw_state(lines)
    assert (state["enabled"], state["defaults"]) == (enabled, defaults)


# ---------------------------------------------------------------- decisions


def test_rule_changes_adds_missing_and_deletes_unwanted_vpskit_rules_only():
    """Missing wanted rules are added; a vpskit rule not wanted is deleted; admin and untagged rules stay."""
    to_add, to_delete = rule_changes(PARSED_RULES, {UfwRule(2222, "tcp", "limit"), UfwRule(80), UfwRule(443)})
    assert to_add == [UfwRule(80), UfwRule(443)]
    assert to_delete == [UfwRule(22), UfwRule(5432, "tcp", "allow", "10.0.0.0/8")]


def test_rule_changes_never_deletes_untagged_rules():
    """A hand-made rule for a port vpskit does not want (no comment, or another comment) is never deleted."""
    current = {UfwRule(8080): "", UfwRule(51820, "udp"): "admin", UfwRule(22): "vpskit"}
    assert rule_changes(current, {UfwRule(22)}) == ([], [])


def test_rule_changes_never_deletes_keep_rules():
    """A vpskit rule in ``keep`` (an SSH port still in use) is not deleted although not wanted."""
    current = {UfwRule(22): "vpskit", UfwRule(22, "tcp", "limit"): "vpskit", UfwRule(2222): "vpskit"}
    assert rule_changes(current, {UfwRule(2222)}, keep={UfwRule(22)}) == ([], [UfwRule(22, "tcp", "limit")])


def test_rule_changes_nothing_to_do_when_state_matches():
    """Every wanted rule present (whatever its comment) and no stray vpskit rule: no change."""
    current = {UfwRule(22): "vpskit", UfwRule(80): "", UfwRule(443): "vpskit"}
    assert rule_changes(current, {UfwRule(22), UfwRule(80), UfwRule(443)}) == ([], [])


def test_rule_commands_are_ufw_command_lines_tagged_vpskit():
    """Adds carry ``comment vpskit``; deletes name the same rule spec; a source replaces "any"."""
    assert UfwRule(2222).add_command() == "ufw allow proto tcp from any to any port 2222 comment vpskit"
    assert UfwRule(2222, "tcp", "limit").delete_command() == "ufw delete limit proto tcp from any to any port 2222"
    rule = UfwRule(5432, "tcp", "allow", "10.0.0.0/8")
    assert rule.add_command() == "ufw allow proto tcp from 10.0.0.0/8 to any port 5432 comment vpskit"
    assert rule.delete_command() == "ufw delete allow proto tcp from 10.0.0.0/8 to any port 5432"
    assert UfwRule(51820, "udp").add_command() == "ufw allow proto udp from any to any port 51820 comment vpskit"


def test_wanted_rules_ssh_allow_http_https():
    """By default: allow on the SSH port, 80 and 443, all tcp from anywhere."""
    assert wanted_rules(2222, False, ()) == {UfwRule(2222), UfwRule(80), UfwRule(443)}


def test_wanted_rules_ssh_limit_and_extras_with_source_and_proto():
    """ssh_limit makes the SSH rule ``limit``; extras keep their proto and source (their comment is not part of it)."""
    extra = (FirewallRule(5432, source="10.0.0.0/8", comment="db"), FirewallRule(51820, proto="udp"))
    assert wanted_rules(22, True, extra) == {
        UfwRule(22, "tcp", "limit"),
        UfwRule(80),
        UfwRule(443),
        UfwRule(5432, "tcp", "allow", "10.0.0.0/8"),
        UfwRule(51820, "udp", "allow", ""),
    }


# --------------------------------------------------------------- operations


def ufw_state(rules=None, enabled=True, defaults=fw.WANTED_DEFAULTS):
    return {"enabled": enabled, "defaults": dict(defaults), "rules": dict(rules or {})}


@pytest.mark.parametrize("op, ufw, arguments, commands", [
    pytest.param(
        ufw_rules,
        ufw_state({UfwRule(22): "vpskit", UfwRule(80): "vpskit", UfwRule(443): "vpskit"}),
        {"rules": [UfwRule(80), UfwRule(443), UfwRule(2222)]},
        ["ufw allow proto tcp from any to any port 2222 comment vpskit", "ufw delete allow proto tcp from any to any port 22"],
        id="rules: a port move allows the new port before it deletes the old one",
    ),
    pytest.param(
        ufw_rules,
        ufw_state({UfwRule(22): "vpskit", UfwRule(80): "vpskit", UfwRule(443): "", UfwRule(8080): ""}),
        {"rules": [UfwRule(22), UfwRule(80), UfwRule(443)]},
        [],
        id="rules: every rule present and no stray vpskit rule: nothing to do",
    ),
    pytest.param(
        ufw_rules,
        ufw_state({UfwRule(22, "tcp", "limit"): "vpskit", UfwRule(3000): "", UfwRule(2222): "vpskit"}),
        {"rules": [UfwRule(2222), UfwRule(80), UfwRule(443)], "keep": [UfwRule(22, "tcp", "limit")]},
        [UfwRule(80).add_command(), UfwRule(443).add_command()],
        id="rules: keep protects the ssh port in use; untagged rules are never deleted",
    ),
    pytest.param(
        ufw_rules,
        None,
        {"rules": [UfwRule(22), UfwRule(80)]},
        [UfwRule(22).add_command(), UfwRule(80).add_command()],
        id="rules: no ufw yet (a dry run before the install): every wanted rule is added",
    ),
    pytest.param(
        ufw_rules,
        ufw_state({UfwRule(22): "vpskit", UfwRule(2222): "vpskit"}),
        {"rules": [UfwRule(22)]},
        [UfwRule(2222).delete_command()],
        id="rules: a vpskit rule no longer wanted is deleted",
    ),
    pytest.param(ufw_enabled, ufw_state(enabled=False), {}, ["ufw --force enable"], id="enabled: the right defaults, enable only"),
    pytest.param(ufw_enabled, ufw_state(enabled=True), {}, [], id="enabled: already, with the right defaults: nothing to do"),
    pytest.param(
        ufw_enabled,
        ufw_state(enabled=False, defaults={"incoming": "allow", "outgoing": "allow", "routed": "deny"}),
        {},
        ["ufw default deny incoming", "ufw --force enable"],
        id="enabled: a mismatched direction is set before enabling",
    ),
    pytest.param(
        ufw_enabled,
        ufw_state(enabled=True, defaults={"incoming": "deny", "outgoing": "allow"}),
        {"defaults": {"outgoing": "deny"}},
        ["ufw default deny outgoing", "ufw default deny routed"],
        id="enabled: only directions whose policy differs",
    ),
    pytest.param(
        ufw_enabled,
        None,
        {},
        ["ufw default deny incoming", "ufw default allow outgoing", "ufw default deny routed", "ufw --force enable"],
        id="enabled: no ufw state yet: every default, then enable",
    ),
])  # fmt: skip
def test_ufw_operation(op, ufw, arguments, commands):
    check_spec(op, {UfwState: ufw}, arguments, commands)


def test_ufw_operations_read_the_ufw_state_once_with_the_runs_other_facts():
    assert run_op(ufw_rules, {UfwState: None}, rules=[UfwRule(22)]).asked == ["Facts"]
    assert run_op(ufw_enabled, {UfwState: None}).asked == ["Facts"]


# ---------------------------------------------------------- the firewall deploy


@pytest.fixture
def firewall_calls(monkeypatch):
    """Call the firewall deploy's body with its operations replaced by recorders: {op name: kwargs}."""
    calls: dict[str, dict] = {}
    for name in ("ufw_rules", "ufw_enabled", "packages_installed"):
        monkeypatch.setattr(fw, name, lambda _name=name, **kwargs: calls.setdefault(_name, kwargs))

    def run(**kwargs):
        calls.clear()
        fw.firewall._inner(**kwargs)
        return calls

    return run


def test_firewall_adds_rule_for_ssh_port_in_use_during_a_move(firewall_calls):
    """sshd on 22, ssh_port 2222: 22 is ADDED (a fresh host has no rule for it; enabling ufw without it locks out)."""
    calls = firewall_calls(ssh_port=2222, ssh_ports_in_use=[22])
    assert calls["ufw_rules"]["rules"] == [UfwRule(22), UfwRule(80), UfwRule(443), UfwRule(2222)]
    assert calls["ufw_rules"]["keep"] == [UfwRule(22, "tcp", "limit")]
    assert list(calls) == ["packages_installed", "ufw_rules", "ufw_enabled"]  # rules in place before ufw starts
    assert calls["packages_installed"]["packages"] == ["ufw"]


def test_firewall_on_fresh_host_opens_in_use_port_before_enabling(firewall_calls):
    """On a host with no rules, the commands for a 22 -> 2222 move allow 22 and 2222 before ufw is enabled."""
    rules = firewall_calls(ssh_port=2222, ssh_ports_in_use=[22])["ufw_rules"]
    commands = run_op(ufw_rules, {UfwState: ufw_state(enabled=False)}, rules=rules["rules"], keep=rules["keep"]).commands
    assert UfwRule(22).add_command() in commands and UfwRule(2222).add_command() in commands
    assert not any(c.startswith("ufw delete") for c in commands)


def test_firewall_keeps_existing_limit_rule_on_in_use_port(firewall_calls):
    """A limit rule vpskit put on the old port (ssh_limit before) survives until sshd has moved."""
    rules = firewall_calls(ssh_port=2222, ssh_ports_in_use=[22], ssh_limit=True)["ufw_rules"]
    assert UfwRule(2222, "tcp", "limit") in rules["rules"]
    current = {UfwRule(22, "tcp", "limit"): "vpskit", UfwRule(2222, "tcp", "limit"): "vpskit"}
    commands = run_op(ufw_rules, {UfwState: ufw_state(current)}, rules=rules["rules"], keep=rules["keep"]).commands
    assert not any(c.startswith("ufw delete") for c in commands)


def test_firewall_after_the_move_drops_old_port_rule(firewall_calls):
    """sshd only on 2222 now: the vpskit rule for 22 is no longer wanted nor kept, so it is deleted."""
    rules = firewall_calls(ssh_port=2222, ssh_ports_in_use=[2222])["ufw_rules"]
    assert (rules["rules"], rules["keep"]) == ([UfwRule(80), UfwRule(443), UfwRule(2222)], [])
    current = {UfwRule(22): "vpskit", UfwRule(80): "vpskit", UfwRule(443): "vpskit", UfwRule(2222): "vpskit"}
    commands = run_op(ufw_rules, {UfwState: ufw_state(current)}, rules=rules["rules"], keep=rules["keep"]).commands
    assert commands == [UfwRule(22).delete_command()]


def test_firewall_extras_and_limit_in_rule_set(firewall_calls):
    """Configured extras join SSH (limited when asked), 80 and 443; no in-use port beyond ssh_port adds nothing."""
    extra = (FirewallRule(5432, source="10.0.0.0/8"),)
    rules = firewall_calls(ssh_port=22, ssh_ports_in_use=[22], ssh_limit=True, extra=extra)["ufw_rules"]
    assert rules["rules"] == [
        UfwRule(22, "tcp", "limit"),
        UfwRule(80),
        UfwRule(443),
        UfwRule(5432, "tcp", "allow", "10.0.0.0/8"),
    ]
    assert rules["keep"] == []
