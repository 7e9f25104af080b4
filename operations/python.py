"""Python runtimes for the apps: the distro's own python3, or deadsnakes builds where it publishes for the release."""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra.api import deploy

from .aptrepo import apt_repository
from .batched import packages_installed
from .distro import Distro

DEADSNAKES_URI = "https://ppa.launchpadcontent.net/deadsnakes/ppa/ubuntu"
# The PPA's signing key, fetched by the host from the Ubuntu keyserver and
# installed only if it has exactly this fingerprint (Launchpad's PPA page lists it).
DEADSNAKES_FINGERPRINT = "F23C5A6CF475977595C89F51BA6932366A755776"
DEADSNAKES_KEY_URL = f"https://keyserver.ubuntu.com/pks/lookup?op=get&options=mr&search=0x{DEADSNAKES_FINGERPRINT}"


class PythonUnavailable(Exception):
    pass


@dataclass(frozen=True)
class PythonPlan:
    """Where one Python version comes from on one distro."""

    version: str
    packages: tuple[str, ...]
    deadsnakes: bool

    @property
    def binary(self) -> str:
        return f"/usr/bin/python{self.version}"


def python_plan(version: str, distro: Distro) -> PythonPlan:
    """How ``version`` ("" for the distro's own) gets onto ``distro``; raise ``PythonUnavailable`` when it cannot."""
    own = distro.python
    version = version or own
    if version == own:
        return PythonPlan(version, ("python3", "python3-venv", "python3-dev", f"python{version}-venv"), False)
    if distro.python_from_deadsnakes(version):
        return PythonPlan(version, (f"python{version}", f"python{version}-venv", f"python{version}-dev"), True)
    others = [v for v in distro.python_versions() if v != own]
    where = f" or {', '.join(others)} (deadsnakes)" if others else " (deadsnakes builds none for it)"
    raise PythonUnavailable(
        f"Python {version} is not available on {distro.name}: it can have Python {own} (its own){where}. "
        "Set the app's python (or [python] version) to one of these, or use another release."
    )


@deploy("Python runtime")
def python_runtime(plans: list[PythonPlan], distro: Distro):
    """
    Ensure every planned Python version is installed, with venv and headers.

    + plans: from ``python_plan``, one per version the apps use
    + distro: the host's distro (its codename names the PPA suite)

    **Example:**

    .. code:: python

        python_runtime([python_plan("3.13", distro)], distro)
    """
    if any(p.deadsnakes for p in plans):
        apt_repository(
            "deadsnakes",
            comment="the deadsnakes PPA: newer and older Python versions for Ubuntu",
            key_url=DEADSNAKES_KEY_URL,
            fingerprint=DEADSNAKES_FINGERPRINT,
            uri=DEADSNAKES_URI,
            suite=distro.codename,
        )
    packages_installed(
        name="Install Python " + ", ".join(sorted({p.version for p in plans})),
        packages=sorted({pkg for p in plans for pkg in p.packages}),
    )
