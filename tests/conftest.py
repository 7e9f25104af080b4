"""Shared fixtures: the Docker engine, the test images, SSH keys and config files."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

# The full end-to-end suite runs on these; the smoke suite (tests/e2e/test_smoke.py) on the others.
DISTROS = ["ubuntu2404", "debian13"]
SMOKE_DISTROS = ["ubuntu2204", "ubuntu2604", "debian12"]
ALL_DISTROS = [*DISTROS, *SMOKE_DISTROS]


def distro_of(key: str):
    """The vpskit Distro of a test image ("debian13"), for what the release decides (codename left empty)."""
    from operations.distro import RELEASE_KEYS, Distro

    return Distro(*RELEASE_KEYS[key], codename="")


def pytest_addoption(parser):
    parser.addoption(
        "--distro",
        choices=[*ALL_DISTROS, "none"],
        help="run only the tests of one target distro ('none': only the tests that need no target)",
    )


def item_distro(item) -> str:
    """The target release an end-to-end test runs on ("none" for the others, unit tests included)."""
    if "/e2e/" not in str(item.fspath):
        return "none"
    params = getattr(getattr(item, "callspec", None), "params", {})
    return next((v for v in params.values() if v in ALL_DISTROS), "none")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
    # scripts/test.sh runs one pytest per distro side by side: each process deploys its
    # distro's hosts once and runs that distro's tests in file order.
    # What a release does not have (Caddy on Ubuntu 22.04) is not tested there, not skipped.
    without = [
        i
        for i in items
        if i.get_closest_marker("needs_caddy") and item_distro(i) in ALL_DISTROS and not distro_of(item_distro(i)).has_caddy
    ]
    if without:
        config.hook.pytest_deselected(items=without)
        items[:] = [i for i in items if i not in without]
    wanted = config.getoption("distro")
    if wanted:
        keep = [i for i in items if item_distro(i) == wanted]
        config.hook.pytest_deselected(items=[i for i in items if item_distro(i) != wanted])
        items[:] = keep


@pytest.fixture(scope="session")
def docker_engine():
    """The Docker client; outside CI a missing engine skips, in CI it fails."""
    from tests.rig import docker_client, remove_leftover_targets

    try:
        client = docker_client()
    except Exception as e:  # noqa: BLE001 - any failure to reach the engine
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no Docker engine answers: {e}")
        pytest.skip(f"no Docker engine answers ({e}); `make test` starts one")
    remove_leftover_targets(client)
    yield client
    remove_leftover_targets(client, mine=True)


@pytest.fixture(scope="session")
def images(docker_engine):
    from tests.images import build_image

    return {d: build_image(docker_engine, d) for d in ALL_DISTROS}


@pytest.fixture(scope="session")
def keys():
    """SSH key pairs: root's (the provider's first login) and the deploy user's.

    One pair of each for every test process on this machine (the deployed-host images carry
    them), made once under a lock.
    """
    import fcntl

    from tests.rig import CACHE, ssh_keypair

    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen is missing: `make test` installs openssh-client")
    d = CACHE / "test-keys"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        root_key, root_pub = ssh_keypair(d, "id_root")
        deploy_key, deploy_pub = ssh_keypair(d, "id_deploy")
    return {"dir": d, "root": root_key, "root_pub": root_pub, "deploy": deploy_key, "deploy_pub": deploy_pub}


@pytest.fixture(scope="session")
def deployed_images(docker_engine, images, keys):
    """The deployed-host image of a release (tests/deployed_image.py), built at its first use."""
    from tests.deployed_image import deployed_image

    built: dict[str, str] = {}

    def get(distro: str) -> str:
        if distro not in built:
            built[distro] = deployed_image(docker_engine, images[distro], distro, keys)
        return built[distro]

    return get


def write_config(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path
