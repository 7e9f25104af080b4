"""Host keys, known_hosts, CIS modes and sysctl: the pure pieces of the hardening public auditors measure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess

from operations.config import parse_config
from operations.hostkeys import HostKeys, WeakModuli, offered_keys, parse_host_keys, regenerate_rsa_command
from operations.knownhosts import host_name, names_in_line, refreshed
from operations.permissions import CIS_MODES, PathModes, mode_commands
from operations.render import render
from operations.sysctl import HARDENING, SysctlValues, apply_command, in_effect, refused_report, sysctl_settings

ED, RSA_OLD, RSA_NEW, ECDSA = "AAAAC3ed", "AAAAB3old", "AAAAB3new", "AAAAE2ec"
NAME = "[203.0.113.7]:2222"


def hashed(name: str, salt: bytes = b"0123456789abcdefghij") -> str:
    mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"


# ----------------------------------------------------------------- known_hosts


def test_host_names_as_openssh_files_them():
    assert host_name("203.0.113.7", 22) == "203.0.113.7"
    assert host_name("203.0.113.7", 2222) == NAME


def test_plain_and_hashed_lines_match_their_name_only():
    assert names_in_line(f"{NAME} ssh-ed25519 {ED}", [NAME, "other"]) == {NAME}
    assert names_in_line(f"{hashed(NAME)} ssh-rsa {RSA_OLD}", [NAME]) == {NAME}
    assert names_in_line(f"{hashed('[203.0.113.7]:22')} ssh-rsa {RSA_OLD}", [NAME]) == set()
    assert names_in_line(f"a.example,{NAME} ssh-rsa {RSA_OLD}", [NAME]) == {NAME}
    assert names_in_line(f"@cert-authority {NAME} ssh-rsa {RSA_OLD}", [NAME]) == set()
    assert names_in_line("# comment", [NAME]) == set()


def test_before_the_key_change_stale_rsa_and_unoffered_ecdsa_lines_go_and_ed25519_comes_first():
    """RSA listed first would make paramiko pick RSA: after the change that is 'host key changed'."""
    text = f"{NAME} ssh-rsa {RSA_OLD}\n{hashed(NAME)} ecdsa-sha2-nistp256 {ECDSA}\nother.example ssh-rsa {RSA_OLD}\n# kept\n"
    staying = {"ssh-ed25519": ED}
    assert refreshed(text, [NAME], staying) == f"other.example ssh-rsa {RSA_OLD}\n# kept\n{NAME} ssh-ed25519 {ED}\n"


def test_after_the_key_change_the_new_rsa_key_is_added_after_ed25519():
    text = f"{NAME} ssh-ed25519 {ED}\n"
    new = refreshed(text, [NAME, "[203.0.113.7]:22"], {"ssh-ed25519": ED, "ssh-rsa": RSA_NEW})
    assert new == f"{NAME} ssh-ed25519 {ED}\n{NAME} ssh-rsa {RSA_NEW}\n"  # the port-22 name was not known: not added
    assert refreshed(new, [NAME], {"ssh-ed25519": ED, "ssh-rsa": RSA_NEW}) == new


def test_without_add_only_stale_lines_go():
    text = f"{NAME} ssh-rsa {RSA_OLD}\n{NAME} ssh-ed25519 {ED}\n"
    keys = {"ssh-ed25519": ED, "ssh-rsa": RSA_NEW}
    assert refreshed(text, [NAME], keys, add=False) == f"{NAME} ssh-ed25519 {ED}\n"
    assert refreshed(f"{NAME} ssh-ed25519 {ED}\n", [NAME], keys, add=False) == f"{NAME} ssh-ed25519 {ED}\n"
    assert refreshed("", [NAME], keys) == ""


# ------------------------------------------------------------- host keys, moduli


def test_host_keys_fact_reads_size_fingerprint_and_key_of_each_private_key(tmp_path):
    for kind, bits in (("ed25519", []), ("rsa", ["-b", "1024"])):
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *bits, "-N", "", "-f", str(tmp_path / f"ssh_host_{kind}_key")], check=True)
    command = HostKeys().command().replace("/etc/ssh/", f"{tmp_path}/")
    keys = HostKeys().process(subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout.splitlines())
    assert sorted(keys) == ["ssh-ed25519", "ssh-rsa"]
    assert (keys["ssh-rsa"]["bits"], keys["ssh-ed25519"]["bits"]) == (1024, 256)
    assert keys["ssh-rsa"]["fingerprint"].startswith("SHA256:")
    assert (tmp_path / "ssh_host_rsa_key.pub").read_text().split()[1] == keys["ssh-rsa"]["key"]
    assert offered_keys(keys, ("ssh-ed25519",)) == {"ssh-ed25519": keys["ssh-ed25519"]["key"]}
    assert set(offered_keys(keys, ("ssh-ed25519", "rsa-sha2-512"))) == {"ssh-ed25519", "ssh-rsa"}
    assert parse_host_keys(["garbage", "3072 SHA256:x ssh-rsa AAAA"]) == {
        "ssh-rsa": {"bits": 3072, "fingerprint": "SHA256:x", "key": "AAAA"}
    }


def test_rsa_key_is_made_aside_and_swapped_in_private_key_first(tmp_path):
    (tmp_path / "ssh_host_rsa_key").write_text("old")
    command = regenerate_rsa_command(1024).replace("/etc/ssh/", f"{tmp_path}/")
    assert command.index("mv -f " + str(tmp_path / "ssh_host_rsa_key.vpskit-new ")) < command.index(".pub " + str(tmp_path))
    subprocess.run(["sh", "-c", command], check=True)
    out = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "ssh_host_rsa_key")], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "1024"
    assert oct((tmp_path / "ssh_host_rsa_key").stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ssh_host_rsa_key", "ssh_host_rsa_key.pub"]


MODULI = """\
#    $OpenBSD: moduli,v 1.34 2023/07/25 $
# Time Type Tests Tries Size Generator Modulus
20230309 2 6 100 2047 5 C1
20230309 2 6 100 3071 2 C2
20230309 2 6 100 4095 5 C3
"""


def test_weak_moduli_are_counted_and_the_prune_keeps_comments_and_3072_bits_up(tmp_path):
    from operations import hostkeys as sshmod

    path = tmp_path / "moduli"
    path.write_text(MODULI)
    count = WeakModuli().command(min_bits=3072).replace(sshmod.MODULI, str(path))
    run = lambda c: subprocess.run(["sh", "-c", c], capture_output=True, text=True, check=True).stdout  # noqa: E731
    assert WeakModuli().process(run(count).splitlines()) == 1
    run(sshmod.prune_moduli_command(3072, str(path)))
    assert [line.split()[4] for line in path.read_text().splitlines() if not line.startswith("#")] == ["3071", "4095"]
    assert path.read_text().startswith("#    $OpenBSD")
    assert WeakModuli().process(run(count).splitlines()) == 0


# ---------------------------------------------------------------- CIS modes


def test_cis_modes_cover_sshd_and_cron():
    assert CIS_MODES["/etc/ssh/sshd_config"] == CIS_MODES["/etc/ssh/sshd_config.d/00-vpskit.conf"] == "600"
    assert CIS_MODES["/etc/crontab"] == "600"
    assert {p for p, m in CIS_MODES.items() if m == "700"} == {f"/etc/cron.{d}" for d in ("d", "hourly", "daily", "weekly", "monthly")}


def test_only_existing_paths_with_another_mode_or_owner_are_changed(tmp_path):
    (tmp_path / "crontab").write_text("")
    (tmp_path / "cron.d").mkdir()
    paths = [str(tmp_path / "crontab"), str(tmp_path / "cron.d"), str(tmp_path / "missing")]
    out = subprocess.run(["sh", "-c", PathModes().command(paths)], capture_output=True, text=True, check=True)
    current = PathModes().process(out.stdout.splitlines())
    assert set(current) == set(paths[:2])
    user, group = current[paths[0]]["user"], current[paths[0]]["group"]
    wanted = {paths[0]: "600", paths[1]: "700", paths[2]: "600"}
    commands = mode_commands(wanted, current, user, group)
    assert commands == [f"chmod 600 {paths[0]}", f"chmod 700 {paths[1]}"]
    assert mode_commands(wanted, current, "root", "root")[0] == f"chown root:root {paths[0]}" or user == "root"
    subprocess.run(["sh", "-c", " && ".join(commands)], check=True)
    again = PathModes().process(
        subprocess.run(["sh", "-c", PathModes().command(paths)], capture_output=True, text=True).stdout.splitlines()
    )
    assert mode_commands(wanted, again, user, group) == []


# -------------------------------------------------------------------- sysctl


def test_sysctl_defaults_hold_the_usual_hardening():
    s = sysctl_settings()
    for key, value in {
        "net.ipv4.conf.all.rp_filter": "1", "net.ipv4.tcp_syncookies": "1",
        "net.ipv4.conf.all.accept_redirects": "0", "net.ipv6.conf.all.accept_redirects": "0",
        "net.ipv4.conf.all.send_redirects": "0", "net.ipv4.conf.all.accept_source_route": "0",
        "net.ipv4.conf.all.log_martians": "1", "net.ipv4.icmp_echo_ignore_broadcasts": "1",
        "kernel.kptr_restrict": "2", "kernel.dmesg_restrict": "1", "fs.protected_hardlinks": "1",
        "fs.protected_symlinks": "1", "fs.protected_fifos": "2", "fs.protected_regular": "2",
    }.items():  # fmt: skip
        assert s[key] == value, key
    assert "net.ipv4.ip_forward" not in s  # Docker needs forwarding


def test_every_setting_can_be_switched_off_or_replaced():
    assert sysctl_settings(enabled=False) == {}
    s = sysctl_settings(disable=["kernel.yama.ptrace_scope"], values={"net.ipv4.conf.all.rp_filter": "2", "vm.swappiness": "10"})
    assert "kernel.yama.ptrace_scope" not in s
    assert s["net.ipv4.conf.all.rp_filter"] == "2" and s["vm.swappiness"] == "10"
    assert len(s) == len(HARDENING)


def test_sysctl_file_lists_each_setting_once():
    text = render("sysctl-vpskit.conf.j2", settings={"kernel.dmesg_restrict": "1", "fs.protected_fifos": "2"})
    assert text.splitlines()[-2:] == ["kernel.dmesg_restrict = 1", "fs.protected_fifos = 2"]
    assert text.startswith("# Managed by vpskit")


def test_values_in_effect_are_read_back_and_refused_ones_reported():
    fact = SysctlValues()
    fact.command(["kernel.dmesg_restrict", "fs.protected_fifos", "net.ipv4.conf.all.rp_filter"])
    out = ["kernel.dmesg_restrict = 1", "fs.protected_fifos = 1", "bad line"]  # the kernel lacks rp_filter
    current = fact.process(out)
    assert current == {"kernel.dmesg_restrict": "1", "fs.protected_fifos": "1", "net.ipv4.conf.all.rp_filter": None}
    settings = {"kernel.dmesg_restrict": "1", "fs.protected_fifos": "2", "net.ipv4.conf.all.rp_filter": "1"}
    applied, refused = in_effect(settings, current)
    assert applied == ["kernel.dmesg_restrict"]
    assert refused == ["fs.protected_fifos", "net.ipv4.conf.all.rp_filter"]
    report = refused_report(refused, current)
    assert "fs.protected_fifos (in effect: 1)" in report and "net.ipv4.conf.all.rp_filter (in effect: no such key)" in report


def test_sysctl_file_is_applied_outside_containers_only(tmp_path):
    command = apply_command("/etc/sysctl.d/90-vpskit-hardening.conf")
    assert command.startswith("if systemd-detect-virt --container --quiet")
    assert "else sysctl -q -p /etc/sysctl.d/90-vpskit-hardening.conf" in command and command.endswith("; true")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemd-detect-virt").write_text("#!/bin/sh\nexit 0\n")
    (fake / "sysctl").write_text("#!/bin/sh\necho applied\nexit 1\n")
    for f in fake.iterdir():
        f.chmod(0o755)
    run = lambda: subprocess.run(["sh", "-c", command], capture_output=True, text=True, env={"PATH": f"{fake}:/usr/bin:/bin"})  # noqa: E731
    inside = run()
    assert inside.returncode == 0 and "left alone" in inside.stdout
    (fake / "systemd-detect-virt").write_text("#!/bin/sh\nexit 1\n")
    outside = run()
    assert outside.returncode == 0 and "left alone" not in outside.stdout  # a refused key does not fail the run


def test_sysctl_values_fact_runs_on_this_machine():
    fact = SysctlValues()
    out = subprocess.run(
        ["sh", "-c", fact.command(["kernel.ostype", "no.such.key", "net.ipv4.ip_local_port_range"])], capture_output=True, text=True
    )
    values = fact.process(out.stdout.splitlines())
    assert values["kernel.ostype"] == "Linux" and values["no.such.key"] is None
    assert len(values["net.ipv4.ip_local_port_range"].split()) == 2  # a value of two numbers, one space between


def test_sysctl_config_errors_name_the_field(tmp_path):
    key = tmp_path / "k.pub"
    key.write_text("ssh-ed25519 AAAA x\n")
    raw = {
        "server": {"address": "203.0.113.7"},
        "deploy_user": {"public_keys": [str(key)]},
        "sysctl": {"disable": ["kernel.nope"], "values": {"Bad Key": "1", "vm.swappiness": "1\n2"}},
    }
    try:
        parse_config(raw)
    except Exception as e:  # noqa: BLE001
        problems = e.problems
    else:
        raise AssertionError("accepted")
    assert "sysctl.disable[0]: 'kernel.nope' is not one of vpskit's sysctl settings" in problems
    assert any(p.startswith("sysctl.values.Bad Key: is not a sysctl key") for p in problems)
    assert "sysctl.values.vm.swappiness: must be a one-line value" in problems
    ok = dict(raw, sysctl={"enabled": False, "disable": ["kernel.dmesg_restrict"], "values": {"vm.swappiness": "10"}})
    assert parse_config(ok).sysctl.values == {"vm.swappiness": "10"}
