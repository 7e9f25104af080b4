"""The Jinja2 templates render the exact config lines the host needs; undefined names are errors."""

from __future__ import annotations

import jinja2
import pytest

from operations.distro import Distro
from operations.render import render, sha256


def test_unattended_upgrades_lists_each_origin_and_reboot_settings():
    """Every security origin becomes one quoted Origins-Pattern entry; reboot flag and time are written."""
    origins = Distro("debian", "12", "bookworm").security_origins
    text = render("unattended-upgrades.conf.j2", origins=origins, reboot=True, reboot_time="03:30")
    block = text.split("Unattended-Upgrade::Origins-Pattern {\n", 1)[1].split("};", 1)[0]
    assert block.splitlines() == [f'        "{o}";' for o in origins]
    assert 'Unattended-Upgrade::Automatic-Reboot "true";' in text
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "03:30";' in text
    assert text.endswith("\n")


def test_unattended_upgrades_without_reboot():
    """reboot=False writes Automatic-Reboot "false" (the time is still set, harmlessly)."""
    text = render("unattended-upgrades.conf.j2", origins=["origin=Ubuntu,archive=noble-security,label=Ubuntu"],
                  reboot=False, reboot_time="04:00")  # fmt: skip
    assert '        "origin=Ubuntu,archive=noble-security,label=Ubuntu";\n' in text
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in text
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "04:00";' in text


@pytest.mark.parametrize("enabled, value", [(True, "1"), (False, "0")])
def test_auto_upgrades_switch(enabled, value):
    """auto-upgrades turns both the daily list update and unattended-upgrade on (1) or off (0)."""
    text = render("auto-upgrades.conf.j2", enabled=enabled)
    assert f'APT::Periodic::Update-Package-Lists "{value}";' in text
    assert f'APT::Periodic::Unattended-Upgrade "{value}";' in text
    assert 'APT::Periodic::AutocleanInterval "7";' in text
    assert ("switched off" in text) is (not enabled)


def test_sudoers_passwordless():
    """passwordless_sudo = true gives a NOPASSWD rule for the user."""
    text = render("sudoers.j2", user="deploy", nopasswd=True)
    assert text.splitlines()[-1] == "deploy ALL=(ALL:ALL) NOPASSWD: ALL"
    assert text.endswith("\n")  # visudo wants a final newline


def test_sudoers_with_password():
    """passwordless_sudo = false gives a plain rule: sudo asks for the password."""
    text = render("sudoers.j2", user="deploy", nopasswd=False)
    assert text.splitlines()[-1] == "deploy ALL=(ALL:ALL) ALL"
    assert "NOPASSWD" not in text


def test_apt_lock_timeout():
    """apt waits the configured number of seconds for a dpkg lock."""
    text = render("apt-lock-timeout.conf.j2", timeout=600)
    assert 'DPkg::Lock::Timeout "600";' in text
    assert all(line.startswith("//") for line in text.splitlines()[:-1])


@pytest.mark.parametrize(
    "template, context",
    [
        ("sudoers.j2", {"nopasswd": True}),
        ("apt-lock-timeout.conf.j2", {}),
        ("auto-upgrades.conf.j2", {}),
        ("unattended-upgrades.conf.j2", {"origins": [], "reboot": False}),
    ],
)
def test_missing_template_variable_raises(template, context):
    """StrictUndefined: a forgotten variable fails the render instead of writing an empty value."""
    with pytest.raises(jinja2.UndefinedError):
        render(template, **context)


def test_sha256_of_text_and_bytes_agree():
    """sha256 hashes str as UTF-8, so a rendered file and its uploaded bytes compare equal."""
    assert sha256("héllo\n") == sha256("héllo\n".encode())
    assert sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
