"""Public auditors run against a target's ports published on 127.0.0.1: ssh-audit and sslyze.

Both come with the test extras (setup.cfg) and run from this venv's bin directory.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from operations.sshpolicy import release_policy

BIN = Path(sys.executable).parent


@dataclass
class Audit:
    passed: bool
    failures: dict[str, str] = field(default_factory=dict)  # what failed -> the auditor's words
    output: str = ""

    def __str__(self) -> str:
        return self.output[-5000:]


def ssh_audit(port: int, policy: str) -> Audit:
    """``ssh-audit -P POLICY`` against 127.0.0.1:port; the policy's failed checks by name."""
    proc = subprocess.run(
        [str(BIN / "ssh-audit"), "-n", "-P", policy, "-p", str(port), "127.0.0.1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    if f"Policy: {policy}" not in out:
        raise AssertionError(f"ssh-audit did not run policy {policy!r}:\n{out[-3000:]}")
    # Failed checks read "  * Key exchanges did not match.\n    - Expected: ...\n    - Actual: ...".
    failures = {}
    for m in re.finditer(r"^\s*\*\s+(.+?) did not match\.?\s*$((?:\n\s+- .*)*)", out, re.M):
        failures[m.group(1).strip()] = m.group(2).strip()
    passed = proc.returncode == 0 and re.search(r"^Result:.*Passed", out, re.M) is not None
    return Audit(passed, failures, out)


SSHD_MARKERS = {"ext-info-s", "kex-strict-s-v00@openssh.com"}


def ssh_audit_release(port: int, release: str) -> Audit:
    """ssh-audit with the hardened policy of ``release`` (a ``Distro.key``) against 127.0.0.1:port, held to what vpskit documents.

    Everything passes, except on the OpenSSH 10 releases (Ubuntu 26.04, Debian 13): there the
    policy's post-quantum key exchanges come first and the one pyinfra's SSH library speaks after
    them, and that addition ("Key exchanges") is the only failure the auditor may report.
    """
    policy = release_policy(release)
    result = ssh_audit(port, policy.name)
    if not policy.controller_kex:
        assert result.passed and not result.failures, f"{result.failures}\n{result}"
        return result
    assert not result.passed and set(result.failures) == {"Key exchanges"}, f"{result.failures}\n{result}"
    # The server's whole list, with the two markers sshd appends by itself.
    actual = result.failures["Key exchanges"].partition("Actual:")[2]
    offered = [k for k in re.findall(r"[\w.@-]+", actual) if k not in SSHD_MARKERS]
    assert offered == list(policy.offered_kex), f"sshd offers {offered}, vpskit documents {policy.offered_kex}\n{result}"
    return result


# sslyze's Mozilla check names that a certificate from pebble (the local ACME test CA) fails
# by nature: nothing trusts its root, and it issues certificates valid for five years.
PEBBLE_CERTIFICATE_ISSUES = {"certificate_path_validation", "maximum_certificate_lifespan"}


def sslyze_mozilla(port: int, name: str, profile: str = "intermediate") -> Audit:
    """``sslyze --mozilla_config=PROFILE "NAME:PORT{127.0.0.1}"`` (NAME as SNI); the profile's failed criteria."""
    proc = subprocess.run(
        [str(BIN / "sslyze"), f"--mozilla_config={profile}", f"{name}:{port}{{127.0.0.1}}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    section = re.split(r"COMPLIANCE AGAINST TLS CONFIGURATION", out, maxsplit=1, flags=re.I)
    if len(section) < 2 or ("OK - Compliant" not in section[1] and "FAILED - Not compliant" not in section[1]):
        raise AssertionError(f"sslyze did not check {name}:{port} against Mozilla's {profile} profile:\n{out[-3000:]}")
    failures = dict(re.findall(r"^\s+\* (\w+): (.*)$", section[1], re.M))
    return Audit("OK - Compliant" in section[1], failures, out)


def accepted_suites(output: str, version: str = "TLS 1.2") -> dict[str, str]:
    """The cipher suites sslyze saw the server accept for ``version``, each with its key exchange ("DH (2048 bits)")."""
    section = output.split(f"* {version} Cipher Suites:", 1)[1].split("\n * ", 1)[0]
    if "The server accepted the following" not in section:
        return {}
    rows = section.split("The server accepted the following", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return {m[1]: m[2].strip() for m in (re.match(r"\s+(TLS_\w+)\s+\d+\s+(.*)$", row) for row in rows) if m}
