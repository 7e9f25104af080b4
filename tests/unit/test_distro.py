"""Which hosts vpskit supports, from /etc/os-release as pyinfra's OsRelease fact returns it."""

from __future__ import annotations

import pytest
from pyinfra.facts.server import OsRelease

from operations.distro import RELEASE_KEYS, RELEASES, Distro, UnsupportedDistro, distro_from_os_release

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

UBUNTU_2004 = """PRETTY_NAME="Ubuntu 20.04.6 LTS"
VERSION_ID="20.04"
VERSION_CODENAME=focal
ID=ubuntu"""

UBUNTU_2510 = """PRETTY_NAME="Ubuntu 25.10"
VERSION_ID="25.10"
VERSION_CODENAME=questing
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

# The other supported releases, as their /etc/os-release says it.
OTHERS = {
    "ubuntu2204": 'PRETTY_NAME="Ubuntu 22.04.5 LTS"\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian',
    "ubuntu2604": 'PRETTY_NAME="Ubuntu 26.04 LTS"\nVERSION_ID="26.04"\nVERSION_CODENAME=resolute\nID=ubuntu\nID_LIKE=debian',
    "debian13": 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_ID="13"\nVERSION_CODENAME=trixie\nID=debian',
}


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
        pytest.param(OTHERS["ubuntu2204"], Distro("ubuntu", "22.04", "jammy"), id="ubuntu-22.04"),
        pytest.param(OTHERS["ubuntu2604"], Distro("ubuntu", "26.04", "resolute"), id="ubuntu-26.04"),
        pytest.param(OTHERS["debian13"], Distro("debian", "13", "trixie"), id="debian-13"),
    ],
)
def test_supported_distros_are_recognised(text, expected):
    """Ubuntu 22.04, 24.04, 26.04 and Debian 12, 13 give a Distro with id, version and codename."""
    assert distro_from_os_release(os_release(text)) == expected


def test_distro_keys():
    """Distro.key joins id and version without dots; every release has a table row and uses the sudo group."""
    assert Distro("ubuntu", "24.04", "noble").key == "ubuntu2404"
    assert Distro("debian", "12", "bookworm").key == "debian12"
    assert sorted(RELEASE_KEYS) == ["debian12", "debian13", "ubuntu2204", "ubuntu2404", "ubuntu2604"]
    assert Distro("debian", "12", "bookworm").sudo_group == "sudo"


@pytest.mark.parametrize(
    "text, pretty",
    [
        pytest.param(UBUNTU_2004, "Ubuntu 20.04.6 LTS", id="ubuntu-20.04"),
        pytest.param(UBUNTU_2510, "Ubuntu 25.10", id="ubuntu-25.10-interim"),
        pytest.param(DEBIAN_11, "Debian GNU/Linux 11 (bullseye)", id="debian-11"),
        pytest.param(CENTOS, "CentOS Stream 9", id="centos"),
    ],
)
def test_unsupported_distros_are_refused_naming_the_host_os(text, pretty):
    """Any other distro or release raises UnsupportedDistro: one line naming every supported release and what the host runs."""
    with pytest.raises(UnsupportedDistro) as exc:
        distro_from_os_release(os_release(text))
    message = str(exc.value)
    assert "supports Ubuntu 22.04, Ubuntu 24.04, Ubuntu 26.04, Debian 12, Debian 13;" in message
    assert pretty in message and "Nothing was changed" in message and "\n" not in message


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


def distro(key: str) -> Distro:
    dist_id, version = RELEASE_KEYS[key]
    return Distro(dist_id, version, "x")


# What each release's archive offers, as seen in it (TEST-TARGETS table); every module asks these.
@pytest.mark.parametrize(
    "key, python, postgres, nodejs",
    [
        ("ubuntu2204", "3.10", "14", 12),
        ("ubuntu2404", "3.12", "16", 18),
        ("ubuntu2604", "3.14", "18", 22),
        ("debian12", "3.11", "15", 18),
        ("debian13", "3.13", "17", 20),
    ],
)
def test_each_release_names_its_python_postgres_and_nodejs(key, python, postgres, nodejs):
    d = distro(key)
    assert (d.python, d.postgres, d.nodejs) == (python, postgres, nodejs)
    assert d.python_versions()[0] == python


def test_deadsnakes_versions_only_where_it_publishes():
    """Ubuntu 22.04 and 24.04 can have deadsnakes builds (never the distro's own version); Debian and 26.04 only their own."""
    assert distro("ubuntu2204").python_from_deadsnakes("3.12")
    assert not distro("ubuntu2204").python_from_deadsnakes("3.10")
    assert distro("ubuntu2404").python_from_deadsnakes("3.13")
    assert not distro("ubuntu2404").python_from_deadsnakes("3.12")
    for key in ("ubuntu2604", "debian12", "debian13"):
        assert distro(key).python_versions() == [distro(key).python]


def test_nginx_http2_directive_from_1_25():
    """nginx 1.25.1+ (Debian 13's 1.26, Ubuntu 26.04's 1.28) takes `http2 on;`; older keep `listen ... http2`."""
    assert {k: distro(k).nginx_http2_directive for k in RELEASE_KEYS} == {
        "ubuntu2204": False, "ubuntu2404": False, "ubuntu2604": True, "debian12": False, "debian13": True}  # fmt: skip


def test_openssh_9_8_and_later_log_as_sshd_session():
    assert distro("ubuntu2404").sshd_log_commands == ["sshd"]
    assert distro("debian12").sshd_log_commands == ["sshd"]
    assert distro("debian13").sshd_log_commands == ["sshd", "sshd-session"]
    assert distro("ubuntu2604").sshd_log_commands == ["sshd", "sshd-session"]


def test_distro_docker_packages_and_caddy():
    """compose v2 comes as docker-compose-v2 on Ubuntu, docker-compose on Debian 13, not at all on Debian 12; no caddy on 22.04."""
    assert distro("ubuntu2204").docker_packages == ["docker.io", "docker-compose-v2", "docker-buildx"]
    assert distro("debian13").docker_packages == ["docker.io", "docker-compose", "docker-buildx"]
    assert distro("debian12").docker_packages == ["docker.io"]
    assert [k for k in RELEASE_KEYS if not distro(k).has_compose] == ["debian12"]
    assert [k for k in RELEASE_KEYS if not distro(k).has_caddy] == ["ubuntu2204"]


def test_release_names_are_unique_and_human():
    assert [r.name for r in RELEASES.values()] == ["Ubuntu 22.04", "Ubuntu 24.04", "Ubuntu 26.04", "Debian 12", "Debian 13"]
