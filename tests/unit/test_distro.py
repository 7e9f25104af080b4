"""Which hosts vpskit supports, from /etc/os-release as pyinfra's OsRelease fact returns it."""

from __future__ import annotations

import pytest
from pyinfra.facts.server import OsRelease

from operations.distro import Distro, UnsupportedDistro, distro_from_os_release

UBUNTU_2404 = """PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.1 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=noble"""

DEBIAN_12 = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian"""

UBUNTU_2204 = """PRETTY_NAME="Ubuntu 22.04.4 LTS"
VERSION_ID="22.04"
VERSION_CODENAME=jammy
ID=ubuntu"""

DEBIAN_11 = """PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"
VERSION_ID="11"
VERSION_CODENAME=bullseye
ID=debian"""

CENTOS = """NAME="CentOS Stream"
VERSION="9"
ID="centos"
VERSION_ID="9"
PRETTY_NAME="CentOS Stream 9\""""


def os_release(text: str) -> dict:
    """/etc/os-release parsed the way pyinfra's OsRelease fact does (lowercase keys, unquoted values)."""
    return OsRelease().process(text.splitlines())


def test_os_release_fact_lowercases_keys():
    """Guard for the assumption distro_from_os_release relies on."""
    assert os_release(UBUNTU_2404)["version_codename"] == "noble"


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(UBUNTU_2404, Distro("ubuntu", "24.04", "noble"), id="ubuntu-24.04"),
        pytest.param(DEBIAN_12, Distro("debian", "12", "bookworm"), id="debian-12"),
    ],
)
def test_supported_distros_are_recognised(text, expected):
    """Ubuntu 24.04 and Debian 12 give a Distro with id, version and codename."""
    assert distro_from_os_release(os_release(text)) == expected


def test_distro_keys():
    """Distro.key joins id and version without dots; both use the sudo group."""
    assert Distro("ubuntu", "24.04", "noble").key == "ubuntu2404"
    assert Distro("debian", "12", "bookworm").key == "debian12"
    assert Distro("debian", "12", "bookworm").sudo_group == "sudo"


@pytest.mark.parametrize(
    "text, pretty",
    [
        pytest.param(UBUNTU_2204, "Ubuntu 22.04.4 LTS", id="ubuntu-22.04"),
        pytest.param(DEBIAN_11, "Debian GNU/Linux 11 (bullseye)", id="debian-11"),
        pytest.param(CENTOS, "CentOS Stream 9", id="centos"),
    ],
)
def test_unsupported_distros_are_refused_naming_the_host_os(text, pretty):
    """Any other distro or release raises UnsupportedDistro saying what is supported and what the host runs."""
    with pytest.raises(UnsupportedDistro) as exc:
        distro_from_os_release(os_release(text))
    assert "supports Ubuntu 24.04 and Debian 12" in str(exc.value)
    assert pretty in str(exc.value)


def test_empty_os_release_is_unsupported():
    """No /etc/os-release data at all is refused too, as 'unknown'."""
    with pytest.raises(UnsupportedDistro, match="unknown"):
        distro_from_os_release({})


def test_ubuntu_security_origins():
    """Ubuntu's security pocket is matched by archive=<codename>-security."""
    assert Distro("ubuntu", "24.04", "noble").security_origins == ["origin=Ubuntu,archive=noble-security,label=Ubuntu"]


def test_debian_security_origins():
    """Debian's security suite is matched by codename=<codename>-security with label Debian-Security."""
    origins = Distro("debian", "12", "bookworm").security_origins
    assert origins[0] == "origin=Debian,codename=bookworm-security,label=Debian-Security"
    assert all("label=Debian-Security" in o for o in origins)
