"""[ssh]: the deploy user keeps its way in, no weak algorithm, no option vpskit itself manages in ``extra``."""

from __future__ import annotations

import re

from .base import Checker

WEAK_ALGORITHM_PARTS = ("sha1", "-cbc", "md5", "umac-64", "arcfour", "3des", "ssh-rsa", "ssh-dss")
MANAGED_SSHD_OPTIONS = {
    "port", "listenaddress", "permitrootlogin", "passwordauthentication", "kbdinteractiveauthentication",
    "challengeresponseauthentication", "permitemptypasswords", "pubkeyauthentication", "x11forwarding",
    "maxauthtries", "clientaliveinterval", "clientalivecountmax", "logingracetime", "allowusers",
    "kexalgorithms", "ciphers", "macs", "hostkeyalgorithms",
}  # fmt: skip


def check(c: Checker, config) -> None:
    ssh, user = config.ssh, config.deploy_user.name
    if ssh.allow_users and user not in ssh.allow_users:
        c.add("ssh.allow_users", f"must include the deploy user {user!r}, or vpskit itself is locked out")
    for name in ("kex_algorithms", "ciphers", "macs", "host_key_algorithms"):
        values = getattr(ssh, name)
        for i, alg in enumerate(values):
            weak = [w for w in WEAK_ALGORITHM_PARTS if w in alg and not alg.startswith(("rsa-sha2", "ssh-ed25519"))]
            if weak:
                c.add(f"ssh.{name}[{i}]", f"{alg!r} is weak ({weak[0].strip('-')}): vpskit does not enable it")
    for key, value in ssh.extra.items():
        if not re.match(r"^[A-Za-z][A-Za-z0-9]*$", key):
            c.add(f"ssh.extra.{key}", "is not an sshd option name")
        elif key.lower() in MANAGED_SSHD_OPTIONS:
            c.add(f"ssh.extra.{key}", "is set by vpskit: use its own field (see docs/config.md, [ssh])")
        if "\n" in value or not value.strip():
            c.add(f"ssh.extra.{key}", "must be a one-line value")
