"""Distro decisions: which releases vpskit supports and everything that differs between them.

Every difference between releases is decided here, from the host's /etc/os-release
(pyinfra's OsRelease fact) and the table of what each release's archive offers;
the other modules ask a ``Distro`` and never compare versions themselves.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    """What one release's archive offers (the candidates seen in its archive)."""

    name: str  # "Ubuntu 24.04"
    python: str  # the system python3
    postgres: str  # PostgreSQL major version
    nginx: tuple[int, int]
    openssh: tuple[int, int]
    nodejs: int  # the archive's nodejs major
    # docker.io's companion that provides `docker compose` (v2); "" when the archive has none.
    compose_package: str = ""
    caddy: bool = True
    # Python versions the deadsnakes PPA publishes for this release (none: it does not build for it).
    deadsnakes: tuple[str, ...] = ()
    # prometheus-alertmanager has a Discord receiver (0.25 and later; Ubuntu 22.04 has 0.23).
    alertmanager_discord: bool = True
    # prometheus-nginx-exporter runs under vpskit's deploy (Debian 12's 0.11 failed its start there in the
    # smoke suite although it serves when run by hand; left out until that is understood).
    nginx_exporter: bool = True


_DEADSNAKES_OLD = ("3.7", "3.8", "3.9")
RELEASES = {
    ("ubuntu", "22.04"): Release(
        "Ubuntu 22.04", "3.10", "14", (1, 18), (8, 9), 12, "docker-compose-v2", caddy=False,
        deadsnakes=(*_DEADSNAKES_OLD, "3.11", "3.12", "3.13", "3.14"), alertmanager_discord=False,
    ),
    ("ubuntu", "24.04"): Release(
        "Ubuntu 24.04", "3.12", "16", (1, 24), (9, 6), 18, "docker-compose-v2",
        deadsnakes=(*_DEADSNAKES_OLD, "3.10", "3.11", "3.13", "3.14"),
    ),
    # deadsnakes publishes for a release some time after it ships: none seen for 26.04 yet.
    ("ubuntu", "26.04"): Release("Ubuntu 26.04", "3.14", "18", (1, 28), (10, 2), 22, "docker-compose-v2"),
    ("debian", "12"): Release("Debian 12", "3.11", "15", (1, 22), (9, 2), 18, nginx_exporter=False),
    ("debian", "13"): Release("Debian 13", "3.13", "17", (1, 26), (10, 0), 20, "docker-compose"),
}  # fmt: skip
SUPPORTED_NAMES = ", ".join(r.name for r in RELEASES.values())


def release_key(dist_id: str, version: str) -> str:
    """The short name of a release: "ubuntu2404", "debian13"."""
    return f"{dist_id}{version.replace('.', '')}"


RELEASE_KEYS = {release_key(*k): k for k in RELEASES}


@dataclass(frozen=True)
class Distro:
    id: str  # "ubuntu" | "debian"
    version: str  # "24.04" | "12"
    codename: str

    @property
    def key(self) -> str:
        return release_key(self.id, self.version)

    @property
    def release(self) -> Release:
        return RELEASES[(self.id, self.version)]

    @property
    def name(self) -> str:
        return self.release.name

    @property
    def security_origins(self) -> list[str]:
        """unattended-upgrades Origins-Pattern entries for the security suite."""
        if self.id == "ubuntu":
            return [f"origin=Ubuntu,archive={self.codename}-security,label=Ubuntu"]
        return [
            f"origin=Debian,codename={self.codename}-security,label=Debian-Security",
            f"origin=Debian,codename={self.codename},label=Debian-Security",
        ]

    @property
    def sudo_group(self) -> str:
        return "sudo"

    # ---------------------------------------------------------------- runtimes

    @property
    def python(self) -> str:
        """The distro's own python3 version."""
        return self.release.python

    def python_versions(self) -> list[str]:
        """Every Python version this release can have: its own, then what deadsnakes publishes for it."""
        return [self.python, *(v for v in self.release.deadsnakes if v != self.python)]

    def python_from_deadsnakes(self, version: str) -> bool:
        return version in self.release.deadsnakes and version != self.python

    @property
    def postgres(self) -> str:
        """The PostgreSQL major version of the archive (its paths: /etc/postgresql/N/main ...)."""
        return self.release.postgres

    @property
    def nodejs(self) -> int:
        return self.release.nodejs

    # ---------------------------------------------------------------- services

    @property
    def nginx_http2_directive(self) -> bool:
        """nginx 1.25.1+ takes ``http2 on;`` and warns about ``listen ... http2``."""
        return self.release.nginx >= (1, 25)

    @property
    def nginx_rejects_handshake(self) -> bool:
        """nginx 1.19.4+ has ``ssl_reject_handshake``; older (Ubuntu 22.04's 1.18) need a certificate for the catch-all."""
        return self.release.nginx >= (1, 19)

    @property
    def sshd_log_commands(self) -> list[str]:
        """The processes sshd logs authentication as: OpenSSH 9.8+ runs each session in ``sshd-session``."""
        return ["sshd", "sshd-session"] if self.release.openssh >= (9, 8) else ["sshd"]

    @property
    def docker_packages(self) -> list[str]:
        """The distro's Docker Engine, with `docker compose` (v2) and buildx where the archive has them."""
        compose = self.release.compose_package
        return ["docker.io", compose, "docker-buildx"] if compose else ["docker.io"]

    @property
    def has_compose(self) -> bool:
        """Whether the distro's own packages give `docker compose` (v2)."""
        return bool(self.release.compose_package)

    @property
    def has_caddy(self) -> bool:
        return self.release.caddy


class UnsupportedDistro(Exception):
    pass


def distro_from_os_release(os_release: dict) -> Distro:
    """A ``Distro`` from /etc/os-release (keys lowercased, as pyinfra's OsRelease fact gives them); raise for anything vpskit does not support."""
    dist_id = (os_release.get("id") or "").lower()
    version = os_release.get("version_id") or ""
    codename = os_release.get("version_codename") or ""
    if (dist_id, version) not in RELEASES:
        pretty = os_release.get("pretty_name") or f"{dist_id} {version}".strip() or "unknown"
        raise UnsupportedDistro(f"vpskit supports {SUPPORTED_NAMES}; this host runs {pretty}. Nothing was changed.")
    return Distro(dist_id, version, codename)
