"""Python and Node.js runtimes: where each version comes from, the apt files written, the pinned-key check."""

from __future__ import annotations

import os
import subprocess

import pytest

from operations.aptrepo import KeyFingerprints, fetch_pinned_key_command, source_file_text
from operations.distro import Distro
from operations.nodejs import NODESOURCE_FINGERPRINT, NODESOURCE_KEY_URL, nodejs_packages
from operations.python import (
    DEADSNAKES_FINGERPRINT,
    DEADSNAKES_KEY_URL,
    DEADSNAKES_URI,
    PythonUnavailable,
    python_plan,
)

NOBLE = Distro("ubuntu", "24.04", "noble")
BOOKWORM = Distro("debian", "12", "bookworm")


def test_distro_python_is_used_when_it_is_the_wanted_version():
    """No version, or the distro's own, means the distro's python3 packages and no PPA."""
    for version in ("", "3.12"):
        plan = python_plan(version, NOBLE)
        assert (plan.version, plan.deadsnakes, plan.binary) == ("3.12", False, "/usr/bin/python3.12")
        assert set(plan.packages) == {"python3", "python3-venv", "python3-dev", "python3.12-venv"}
    assert python_plan("", BOOKWORM).binary == "/usr/bin/python3.11"


def test_other_versions_on_ubuntu_come_from_deadsnakes():
    plan = python_plan("3.13", NOBLE)
    assert plan.deadsnakes
    assert plan.packages == ("python3.13", "python3.13-venv", "python3.13-dev")


def test_other_versions_on_debian_are_refused_with_the_way_out():
    with pytest.raises(PythonUnavailable) as exc:
        python_plan("3.12", BOOKWORM)
    message = str(exc.value)
    assert "Python 3.12 is not available on Debian 12: it can have Python 3.11 (its own)" in message


def test_a_version_deadsnakes_lacks_is_refused_naming_what_the_release_can_have():
    """Ubuntu 22.04: its own 3.10 or deadsnakes' builds; 3.6 is none of them. 26.04: deadsnakes builds nothing yet."""
    with pytest.raises(PythonUnavailable) as exc:
        python_plan("3.6", Distro("ubuntu", "22.04", "jammy"))
    assert str(exc.value).startswith(
        "Python 3.6 is not available on Ubuntu 22.04: it can have Python 3.10 (its own) or 3.7, 3.8, 3.9, 3.11, 3.12, 3.13, 3.14 (deadsnakes)."
    )
    assert python_plan("3.12", Distro("ubuntu", "22.04", "jammy")).deadsnakes
    with pytest.raises(PythonUnavailable, match="Ubuntu 26.04: it can have Python 3.14 \\(its own\\) \\(deadsnakes builds none for it\\)"):
        python_plan("3.12", Distro("ubuntu", "26.04", "resolute"))


def test_deadsnakes_source_file_is_pinned():
    """The deb822 source vpskit writes for deadsnakes on noble, byte for byte, and its key pin."""
    text = source_file_text("the deadsnakes PPA", DEADSNAKES_URI, "noble", "main", "/etc/apt/keyrings/deadsnakes.gpg")
    assert text == (
        "# Managed by vpskit: the deadsnakes PPA\n"
        "Types: deb\n"
        "URIs: https://ppa.launchpadcontent.net/deadsnakes/ppa/ubuntu\n"
        "Suites: noble\n"
        "Components: main\n"
        "Signed-By: /etc/apt/keyrings/deadsnakes.gpg\n"
    )
    assert DEADSNAKES_FINGERPRINT == "F23C5A6CF475977595C89F51BA6932366A755776"
    assert DEADSNAKES_KEY_URL.endswith("search=0xF23C5A6CF475977595C89F51BA6932366A755776")


def test_nodesource_choice_and_pin():
    assert nodejs_packages() == ["nodejs", "npm"]
    assert nodejs_packages(npm=False) == ["nodejs"]
    assert nodejs_packages(source="nodesource") == ["nodejs"]  # NodeSource's nodejs has npm
    assert NODESOURCE_FINGERPRINT == "6F71F525282841EEDAF851B42F59B5F99B1BE0B4"
    assert NODESOURCE_KEY_URL == "https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key"


# ------------------------------------------------------- the pinned key, run for real


def _gpg(home, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["gpg", "--batch", *args], env={**os.environ, "GNUPGHOME": str(home)},
                          capture_output=True, text=True, check=True)  # fmt: skip


@pytest.fixture(scope="module")
def two_keys(tmp_path_factory):
    """Two throwaway signing keys, each exported armored to a file: (path, fingerprint) pairs."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    keys = []
    for who in ("good", "evil"):
        _gpg(home, "--passphrase", "", "--quick-gen-key", f"{who} <{who}@example.test>", "ed25519", "sign", "1d")
        fpr = [ln.split(":")[9] for ln in _gpg(home, "--with-colons", "--list-keys", who).stdout.splitlines() if ln.startswith("fpr")][0]
        path = home / f"{who}.asc"
        path.write_text(_gpg(home, "--armor", "--export", fpr).stdout)
        keys.append((path, fpr))
    return keys


def _fetch(src, fingerprint, dest):
    return subprocess.run(["bash", "-c", fetch_pinned_key_command(f"file://{src}", fingerprint, str(dest))],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def _fingerprints(path):
    out = subprocess.run(["bash", "-c", KeyFingerprints().command(str(path))], capture_output=True, text=True)
    return KeyFingerprints().process(out.stdout.splitlines())


def test_pinned_key_with_the_right_fingerprint_is_installed(two_keys, tmp_path):
    (good, fpr), _ = two_keys
    dest = tmp_path / "keyrings" / "repo.gpg"
    proc = _fetch(good, fpr, dest)
    assert proc.returncode == 0, proc.stderr
    assert _fingerprints(dest) == [fpr]
    assert oct(dest.stat().st_mode & 0o777) == "0o644"


def test_a_key_with_another_fingerprint_is_refused_and_nothing_written(two_keys, tmp_path):
    (_, fpr), (evil, evil_fpr) = two_keys
    dest = tmp_path / "repo.gpg"
    dest.write_text("previous\n")
    proc = _fetch(evil, fpr, dest)
    assert proc.returncode == 1
    assert f"is not the pinned key {fpr}" in proc.stderr and evil_fpr in proc.stderr
    assert dest.read_text() == "previous\n"


def test_a_download_with_extra_keys_installs_only_the_pinned_one(two_keys, tmp_path):
    (good, fpr), (evil, _) = two_keys
    both = tmp_path / "both.asc"
    both.write_text(evil.read_text() + good.read_text())
    dest = tmp_path / "repo.gpg"
    assert _fetch(both, fpr, dest).returncode == 0
    assert _fingerprints(dest) == [fpr]


def test_key_fingerprints_of_a_missing_file_is_empty(tmp_path):
    assert _fingerprints(tmp_path / "none.gpg") == []
