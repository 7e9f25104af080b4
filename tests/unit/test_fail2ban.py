"""fail2ban: where the sshd jail reads its log, and the jail.local it gets."""

from __future__ import annotations

import configparser

import pytest

from operations.fail2ban import Jail, jail_backend, render_jail


def jail(text: str) -> configparser.ConfigParser:
    """jail.local as fail2ban reads it (an INI file)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


@pytest.mark.parametrize("auth_log_exists, backend", [(True, "auto"), (False, "systemd")])
def test_jail_backend_follows_auth_log(auth_log_exists, backend):
    """With /var/log/auth.log (rsyslog, Ubuntu) fail2ban reads files; without it (Debian 12) the journal."""
    assert jail_backend(auth_log_exists) == backend


def test_jail_has_ban_settings_and_sshd_jail_on_the_real_port():
    """bantime/findtime/maxretry from the config; the sshd jail is on and watches sshd's port."""
    text = render_jail(Jail(bantime=3600, findtime=300, maxretry=4), port=2222, backend="auto")
    parsed = jail(text)
    default = parsed["DEFAULT"]
    assert (default["bantime"], default["findtime"], default["maxretry"]) == ("3600", "300", "4")
    sshd = parsed["sshd"]
    assert (sshd["enabled"], sshd["port"], sshd["backend"]) == ("true", "2222", "auto")
    assert text.startswith("# Managed by vpskit.")


def test_jail_never_bans_loopback_nor_configured_addresses():
    """ignoreip: loopback first (v4 and v6), then the configured addresses in order."""
    parsed = jail(render_jail(Jail(ignoreip=("198.51.100.7", "2001:db8::/32")), port=22, backend="auto"))
    assert parsed["DEFAULT"]["ignoreip"].split() == ["127.0.0.1/8", "::1", "198.51.100.7", "2001:db8::/32"]
    assert jail(render_jail(Jail(), port=22, backend="auto"))["DEFAULT"]["ignoreip"].split() == [
        "127.0.0.1/8", "::1"]  # fmt: skip


def test_journalmatch_only_with_systemd_backend():
    """Reading the journal, the sshd jail matches ssh.service's sshd lines; reading files it needs no journalmatch."""
    systemd = jail(render_jail(Jail(), port=22, backend="systemd"))
    assert systemd["sshd"]["backend"] == systemd["DEFAULT"]["backend"] == "systemd"
    assert systemd["sshd"]["journalmatch"] == "_SYSTEMD_UNIT=ssh.service + _COMM=sshd"
    auto = jail(render_jail(Jail(), port=22, backend="auto"))
    assert "journalmatch" not in auto["sshd"]


def test_journalmatch_includes_sshd_session_for_openssh_9_8_and_later():
    """OpenSSH 9.8+ (Debian 13, Ubuntu 26.04) logs failed logins from sshd-session, not sshd."""
    text = render_jail(Jail(), port=22, backend="systemd", sshd_commands=["sshd", "sshd-session"])
    assert jail(text)["sshd"]["journalmatch"] == "_SYSTEMD_UNIT=ssh.service + _COMM=sshd + _COMM=sshd-session"
    assert text.endswith("_COMM=sshd-session\n")
    # Hosts with older OpenSSH keep the jail.local they have, byte for byte.
    assert render_jail(Jail(), port=22, backend="systemd").endswith("journalmatch = _SYSTEMD_UNIT=ssh.service + _COMM=sshd\n")
