"""Fixtures for the pure unit tests: key files in tmp_path and a minimal raw config."""

from __future__ import annotations

import copy

import pytest

from operations.config import ConfigError, parse_config

FAKE_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0FakeKeyMaterialForUnitTestsOnly0000000000 tester@vpskit\n"
FAKE_PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)

MINIMAL = {
    "server": {"address": "203.0.113.10"},
    "deploy_user": {"public_keys": ["id_ed25519.pub"]},
}


@pytest.fixture
def keys(tmp_path):
    """A public key file id_ed25519.pub and a private key file id_ed25519 in tmp_path."""
    (tmp_path / "id_ed25519.pub").write_text(FAKE_PUBLIC_KEY)
    (tmp_path / "id_ed25519").write_text(FAKE_PRIVATE_KEY)
    return tmp_path


@pytest.fixture
def minimal_raw(keys):
    """A fresh copy of the smallest valid raw config (keys written into tmp_path)."""
    return copy.deepcopy(MINIMAL)


def config_problems(raw: dict, tmp_path) -> list[str]:
    """The problem lines ``parse_config`` stops at for ``raw`` (it must stop)."""
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, base_dir=str(tmp_path))
    return exc.value.problems
