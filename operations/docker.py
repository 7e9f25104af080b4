"""Docker Engine on the host: from Docker's apt repository or the distro, and its daemon.json.

    docker_engine(distro, Engine(source="docker"), ["memo"])   # before any compose app

``/etc/docker/daemon.json`` (json-file logs with rotation, optional storage driver) is
checked by ``dockerd --validate`` before it replaces the live one, and the daemon is
restarted only when that file changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyinfra.api import OperationError, deploy

from .aptrepo import apt_repository
from .batched import directory_present, packages_installed, unit_running
from .contribution import Contribution
from .distro import Distro
from .validated import checked_file

DAEMON_JSON = "/etc/docker/daemon.json"
# Docker's release signing key (download.docker.com/linux/*/gpg), pinned by its full fingerprint.
DOCKER_FINGERPRINT = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
DOCKER_REPO_PACKAGES = ("docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin")
# dockerd >= 23 checks a config file on its own; older engines (Debian 12's 20.10) get a JSON syntax check.
VALIDATE = (
    "if dockerd --help 2>/dev/null | grep -q -- --validate; then dockerd --validate --config-file {path}; "
    "else python3 -m json.tool {path} >/dev/null; fi"
)


@dataclass(frozen=True)
class Engine:
    """Where Docker Engine comes from and its daemon.json settings."""

    # "docker" (Docker's apt repository, with the compose plugin) or "distro" (the distro's docker.io).
    source: str = "docker"
    # json-file log rotation.
    log_max_size: str = "100m"
    log_max_file: int = 3
    # storage-driver; empty: the engine's default (overlay2).
    storage_driver: str = ""


def contribution(enabled: bool) -> Contribution:
    """The engine's unit, for the health report, when the host runs Docker."""
    return Contribution(units=("docker.service",) if enabled else ())


def docker_repo_uri(distro: Distro) -> str:
    return f"https://download.docker.com/linux/{distro.id}"


def docker_packages(cfg: Engine, distro: Distro) -> list[str]:
    """The packages of the engine, its CLI and (where the source has it) the compose plugin."""
    if cfg.source == "docker":
        return list(DOCKER_REPO_PACKAGES)
    return distro.docker_packages


def has_compose(cfg: Engine, distro: Distro) -> bool:
    """Whether ``docker compose`` (v2) comes with the configured source on this distro."""
    return cfg.source == "docker" or distro.has_compose


def compose_problem(cfg: Engine, distro: Distro, compose_apps: list[str]) -> str:
    """Why the compose apps cannot run on this host ('' when they can); decided before anything changes."""
    if not compose_apps or has_compose(cfg, distro):
        return ""
    names = ", ".join(compose_apps)
    return (
        f'[docker].source = "{cfg.source}": {distro.name}\'s docker.io has no '
        f'`docker compose` (v2), which compose apps ({names}) need. Set [docker] source = "docker" '
        "(Docker's apt repository) for this host. Nothing was changed."
    )


def daemon_json_text(cfg: Engine) -> str:
    """daemon.json: json-file logs rotated at ``log_max_size`` x ``log_max_file``, and the storage driver if set."""
    data: dict = {"log-driver": "json-file", "log-opts": {"max-size": cfg.log_max_size, "max-file": str(cfg.log_max_file)}}
    if cfg.storage_driver:
        data["storage-driver"] = cfg.storage_driver
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


@deploy("Docker Engine")
def docker_engine(distro: Distro, cfg: Engine = Engine(), compose_apps: list[str] = ()):
    """
    Ensure Docker Engine runs with vpskit's daemon.json; restart it only when that file changed.

    + distro: the host's distro (``host_distro()``)
    + cfg: the engine's source and daemon.json settings (``Engine``)
    + compose_apps: names of the compose apps it will run: when the source has no ``docker compose``
      the run fails while it is being prepared, before anything changed

    **Example:**

    .. code:: python

        docker_engine(host_distro(), Engine(source="docker"), compose_apps=["memo"])
    """
    problem = compose_problem(cfg, distro, list(compose_apps))
    if problem:
        raise OperationError(problem)
    if cfg.source == "docker":
        apt_repository(
            "docker",
            comment="Docker's own packages (Docker Engine, CLI, containerd, buildx and compose plugins)",
            key_url=f"{docker_repo_uri(distro)}/gpg",
            fingerprint=DOCKER_FINGERPRINT,
            uri=docker_repo_uri(distro),
            suite=distro.codename,
            components="stable",
        )
    packages_installed(name="Install Docker Engine", packages=docker_packages(cfg, distro))
    directory_present(name="Docker config directory", path="/etc/docker", user="root", group="root", mode="755")
    daemon = checked_file(
        name="daemon.json (log rotation, storage driver)", dest=DAEMON_JSON, content=daemon_json_text(cfg), validate=VALIDATE
    )
    unit_running(name="Docker Engine running", unit="docker.service", restarted=daemon.will_change)
