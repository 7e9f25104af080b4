"""Distro decisions: which hosts vpskit supports and what differs between them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Distro:
    id: str  # "ubuntu" | "debian"
    version: str  # "24.04" | "12"
    codename: str

    @property
    def key(self) -> str:
        return f"{self.id}{self.version.replace('.', '')}"

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


SUPPORTED = {("ubuntu", "24.04"), ("debian", "12")}


class UnsupportedDistro(Exception):
    pass


def distro_from_os_release(os_release: dict) -> Distro:
    """A ``Distro`` from /etc/os-release (keys lowercased, as pyinfra's OsRelease fact gives them); raise for anything vpskit does not support."""
    dist_id = (os_release.get("id") or "").lower()
    version = os_release.get("version_id") or ""
    codename = os_release.get("version_codename") or ""
    if (dist_id, version) not in SUPPORTED:
        pretty = os_release.get("pretty_name") or f"{dist_id} {version}".strip() or "unknown"
        raise UnsupportedDistro(f"vpskit supports Ubuntu 24.04 and Debian 12; this host runs {pretty}")
    return Distro(dist_id, version, codename)
