"""Docker Engine on the host: from Docker's apt repository or the distro, daemon.json, the docker group.

    docker_engine(config.docker, distro)   # before any compose app

``/etc/docker/daemon.json`` (json-file logs with rotation, optional storage driver) is
checked by ``dockerd --validate`` before it replaces the live one, and the daemon is
restarted only when that file changed.
"""

from __future__ import annotations

import json

from pyinfra.api import OperationError, deploy
from pyinfra.operations import apt, files, systemd

from .aptrepo import apt_repository
from .config import App, DockerEngine
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


def docker_repo_uri(distro: Distro) -> str:
    return f"https://download.docker.com/linux/{distro.id}"


def docker_packages(cfg: DockerEngine, distro: Distro) -> list[str]:
    """The packages of the engine, its CLI and (where the source has it) the compose plugin."""
    if cfg.source == "docker":
        return list(DOCKER_REPO_PACKAGES)
    return distro.docker_packages


def has_compose(cfg: DockerEngine, distro: Distro) -> bool:
    """Whether ``docker compose`` (v2) comes with the configured source on this distro."""
    return cfg.source == "docker" or distro.has_compose


def compose_problem(cfg: DockerEngine, distro: Distro, compose_apps: list[App]) -> str:
    """Why the compose apps cannot run on this host ('' when they can); decided before anything changes."""
    if not compose_apps or has_compose(cfg, distro):
        return ""
    names = ", ".join(a.name for a in compose_apps)
    return (
        f'[docker].source = "{cfg.source}": {distro.name}\'s docker.io has no '
        f'`docker compose` (v2), which compose apps ({names}) need. Set [docker] source = "docker" '
        "(Docker's apt repository) for this host. Nothing was changed."
    )


def daemon_json_text(cfg: DockerEngine) -> str:
    """daemon.json: json-file logs rotated at ``log_max_size`` x ``log_max_file``, and the storage driver if set."""
    data: dict = {"log-driver": "json-file", "log-opts": {"max-size": cfg.log_max_size, "max-file": str(cfg.log_max_file)}}
    if cfg.storage_driver:
        data["storage-driver"] = cfg.storage_driver
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


@deploy("Docker Engine")
def docker_engine(cfg: DockerEngine, distro: Distro, compose_apps: list[App] = ()):
    """
    Ensure Docker Engine runs with vpskit's daemon.json; restart it only when that file changed.

    + cfg: the ``[docker]`` section of the config
    + distro: the host's distro
    + compose_apps: the compose apps to run (the run fails before any change if the source has no compose)

    **Example:**

    .. code:: python

        docker_engine(config.docker, host_distro(), config.compose_apps)
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
    apt.packages(name="Install Docker Engine", packages=docker_packages(cfg, distro))
    files.directory(name="Docker config directory", path="/etc/docker", user="root", group="root", mode="755")
    daemon = checked_file(
        name="daemon.json (log rotation, storage driver)", dest=DAEMON_JSON, content=daemon_json_text(cfg), validate=VALIDATE
    )
    systemd.service(
        name="Docker Engine running",
        service="docker.service",
        running=True,
        enabled=True,
        restarted=daemon.will_change,
    )
