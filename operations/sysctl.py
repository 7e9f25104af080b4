"""Kernel and network hardening through sysctl: one vpskit file in /etc/sysctl.d.

The file is applied with ``sysctl -p`` when it changes, and read back: a value the kernel
refuses (an old kernel may lack a key) is reported, not failed, and stays in the file for
the next boot. Inside a container the file is written but not applied: most keys are
read-only there, and where /proc/sys is writable the kernel-wide ones belong to the host.
"""

from __future__ import annotations

import re
import shlex

from pyinfra import host, logger
from pyinfra.api import FactBase, FunctionCommand, deploy, operation

from .render import render
from .snapshot import snapshot_fact
from .validated import checked_file

SYSCTL_FILE = "/etc/sysctl.d/90-vpskit-hardening.conf"
KEY_RE = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$")

# The usual server hardening (CIS benchmarks, KSPP). Left out on purpose: ip_forward (Docker
# needs it) and IPv6 router advertisements (many providers configure IPv6 with them).
HARDENING = {
    # Drop packets whose source address could not be answered on the interface they came in on.
    "net.ipv4.conf.all.rp_filter": "1",
    "net.ipv4.conf.default.rp_filter": "1",
    "net.ipv4.tcp_syncookies": "1",
    # Neither accept nor send ICMP redirects: a host is not a router.
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.default.accept_redirects": "0",
    "net.ipv4.conf.all.secure_redirects": "0",
    "net.ipv4.conf.default.secure_redirects": "0",
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    # No source-routed packets.
    "net.ipv4.conf.all.accept_source_route": "0",
    "net.ipv4.conf.default.accept_source_route": "0",
    "net.ipv6.conf.all.accept_source_route": "0",
    "net.ipv6.conf.default.accept_source_route": "0",
    "net.ipv4.conf.all.log_martians": "1",
    "net.ipv4.conf.default.log_martians": "1",
    "net.ipv4.icmp_echo_ignore_broadcasts": "1",
    "net.ipv4.icmp_ignore_bogus_error_responses": "1",
    # Kernel pointers and the kernel log for root only; full address space randomisation.
    "kernel.kptr_restrict": "2",
    "kernel.dmesg_restrict": "1",
    "kernel.randomize_va_space": "2",
    "kernel.unprivileged_bpf_disabled": "1",
    "net.core.bpf_jit_harden": "2",
    "kernel.yama.ptrace_scope": "1",
    # No core dumps of setuid programs; links, FIFOs and files in sticky directories protected.
    "fs.suid_dumpable": "0",
    "fs.protected_hardlinks": "1",
    "fs.protected_symlinks": "1",
    "fs.protected_fifos": "2",
    "fs.protected_regular": "2",
}


def sysctl_settings(enabled: bool = True, disable=(), values: dict[str, str] | None = None) -> dict[str, str]:
    """vpskit's settings less ``disable``, with ``values`` replacing or adding to them ({} when not ``enabled``)."""
    if not enabled:
        return {}
    settings = {k: v for k, v in HARDENING.items() if k not in set(disable)}
    settings.update({k: str(v) for k, v in (values or {}).items() if k not in set(disable)})
    return settings


def in_effect(settings: dict[str, str], current: dict[str, str | None]) -> tuple[list[str], list[str]]:
    """(keys whose value is in effect, keys the kernel does not hold at that value)."""
    applied, refused = [], []
    for key, value in settings.items():
        now = current.get(key)
        (applied if now is not None and now.split() == value.split() else refused).append(key)
    return applied, refused


def refused_report(refused: list[str], current: dict[str, str | None]) -> str:
    shown = ", ".join(f"{k} (in effect: {current.get(k) if current.get(k) is not None else 'no such key'})" for k in refused)
    return f"the kernel keeps its own value of {len(refused)} setting(s), kept in the file for the next boot: {shown}"


def apply_command(path: str) -> str:
    """``sysctl -p`` on the file, except inside a container: kernel-wide keys there would be
    the container host's (a container with a writable /proc/sys sets them for every other one)."""
    # A refused key makes sysctl exit non-zero; the read-back reports it instead.
    return (
        "if systemd-detect-virt --container --quiet 2>/dev/null; then "
        "echo 'vpskit: in a container: the host kernel settings are left alone'; "
        f"else sysctl -q -p {shlex.quote(path)} >/dev/null 2>&1; fi; true"
    )


class SysctlValues(FactBase):
    """
    Returns the value in effect of each of ``keys`` (None for a key this kernel lacks).

    .. code:: python

        {"kernel.dmesg_restrict": "1", "fs.protected_regular": None}
    """

    def command(self, keys):
        # One sysctl for all keys ("key = value" lines); a key this kernel lacks prints nothing.
        self._keys = tuple(keys)
        return f"sysctl -e {' '.join(shlex.quote(k) for k in keys)} 2>/dev/null; true"

    def process(self, output):
        values = dict.fromkeys(getattr(self, "_keys", ()))
        for line in output:
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = " ".join(value.split()) or None
        return values


@operation()
def sysctl_applied(settings: dict[str, str], path: str = SYSCTL_FILE):
    """
    Apply the sysctl file ``path`` now and report which of ``settings`` the kernel took.

    + settings: {key: value} the file sets
    + path: the file in /etc/sysctl.d

    **Example:**

    .. code:: python

        sysctl_applied(settings={"kernel.dmesg_restrict": "1"}, _if=file_step.did_change)
    """
    yield apply_command(path)
    yield FunctionCommand(_report, (settings,), {})


def _report(state, host, settings: dict[str, str]) -> None:
    ok, output = host.run_shell_command(SysctlValues().command(list(settings)), _sudo=bool(host.data.get("_sudo")))
    current = SysctlValues().process(output.stdout_lines) if ok else {}
    applied, refused = in_effect(settings, current)
    logger.info(f"vpskit: sysctl: {len(applied)} of {len(settings)} settings in effect")
    if refused:
        logger.warning(f"vpskit: sysctl: {refused_report(refused, current)}")


@deploy("Kernel settings")
def kernel_hardened(settings: dict[str, str], path: str = SYSCTL_FILE):
    """
    Ensure the sysctl file ``path`` holds ``settings`` and the kernel runs them where it can.

    + settings: {key: value}, e.g. ``sysctl_settings()``; empty: the file is removed (the
      kernel keeps its values until the next boot)
    + path: the file in /etc/sysctl.d

    **Example:**

    .. code:: python

        kernel_hardened(sysctl_settings(disable=["kernel.yama.ptrace_scope"]))
    """
    if not settings:
        from pyinfra.operations import files

        files.file(name="No vpskit sysctl file", path=path, present=False)
        return
    step = checked_file(name="Kernel and network settings", dest=path, content=render("sysctl-vpskit.conf.j2", settings=settings))
    sysctl_applied(name="Apply the kernel settings", settings=settings, path=path, _if=step.did_change)
    if not step.will_change:
        current = snapshot_fact(SysctlValues, keys=tuple(sorted(settings)))
        _, refused = in_effect(settings, current)
        if refused:
            host.noop(f"sysctl: {refused_report(refused, current)}")
