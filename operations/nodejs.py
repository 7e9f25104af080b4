"""Node.js for apps with a front-end build: the distro's nodejs or NodeSource's."""

from __future__ import annotations

from pyinfra.api import deploy

from .aptrepo import apt_repository
from .batched import packages_installed

NODESOURCE_FINGERPRINT = "6F71F525282841EEDAF851B42F59B5F99B1BE0B4"
NODESOURCE_KEY_URL = "https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key"


def nodejs_packages(source: str = "distro", npm: bool = True) -> list[str]:
    """The packages to install: NodeSource's nodejs includes npm, the distro's does not."""
    if source == "distro" and npm:
        return ["nodejs", "npm"]
    return ["nodejs"]


@deploy("Node.js")
def nodejs_runtime(source: str = "distro", version: int = 22, npm: bool = True):
    """
    Ensure Node.js is installed from ``source``.

    + source: "distro" (the distro's nodejs) or "nodesource" (NodeSource's apt repository)
    + version: NodeSource's major version
    + npm: also install the distro's npm (NodeSource's nodejs includes it)

    **Example:**

    .. code:: python

        nodejs_runtime(source="nodesource", version=22)
    """
    if source == "nodesource":
        apt_repository(
            "nodesource",
            comment=f"NodeSource's Node.js {version}.x",
            key_url=NODESOURCE_KEY_URL,
            fingerprint=NODESOURCE_FINGERPRINT,
            uri=f"https://deb.nodesource.com/node_{version}.x",
            suite="nodistro",
        )
    packages_installed(name="Install Node.js", packages=nodejs_packages(source, npm))
