"""Node.js for apps with a front-end build: the distro's nodejs or NodeSource's."""

from __future__ import annotations

from pyinfra.api import deploy

from .aptrepo import apt_repository
from .batched import packages_installed
from .config import NodeJS

NODESOURCE_FINGERPRINT = "6F71F525282841EEDAF851B42F59B5F99B1BE0B4"
NODESOURCE_KEY_URL = "https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key"


def nodejs_packages(cfg: NodeJS) -> list[str]:
    """The packages to install: NodeSource's nodejs includes npm, the distro's does not."""
    if cfg.source == "distro" and cfg.npm:
        return ["nodejs", "npm"]
    return ["nodejs"]


@deploy("Node.js")
def nodejs_runtime(cfg: NodeJS):
    """
    Ensure Node.js is installed from the configured source.

    + cfg: the ``[nodejs]`` section of the config

    **Example:**

    .. code:: python

        nodejs_runtime(config.nodejs)
    """
    if cfg.source == "nodesource":
        apt_repository(
            "nodesource",
            comment=f"NodeSource's Node.js {cfg.version}.x",
            key_url=NODESOURCE_KEY_URL,
            fingerprint=NODESOURCE_FINGERPRINT,
            uri=f"https://deb.nodesource.com/node_{cfg.version}.x",
            suite="nodistro",
        )
    packages_installed(name="Install Node.js", packages=nodejs_packages(cfg))
