"""Images of a host vpskit has deployed: for the tests that need "a deployed host", not "a first deploy".

A fresh target of the release gets the base config over SSH, as a new VPS would (root on port 22
first, then the deploy user on the hardened port): the example's host part (upgrades, the deploy
user, SSH moved and hardened, UFW, fail2ban, unattended upgrades, Prometheus) with the distro
packages that the web, data and job steps install listed in ``server.packages``. Its second run
must change nothing; then the container is committed as an image. A test that starts from it
deploys its own config onto a host vpskit already runs, which is a re-run with a changed config:
every step still reads the host and does what that config needs.

The image is labelled with a digest of everything that shapes the host (operations/, templates/,
files/, deploy.py, inventory.py, the base config, the release's image, the test keys): the same
code reuses it across runs, any change builds a new one. Tests that check a first deploy
(tests/e2e/conftest.py's ``deployed``, the kill-drill, the smoke suite, the reuse and releases
tests) start from the fresh release image instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import tempfile
import tomllib
from pathlib import Path

import docker

from tests.rig import CACHE, ROOT, dump_toml, run_pyinfra, start_target, target_config

REPOSITORY = "vpskit-test/deployed"
# What shapes a deployed host: the code that deploys it.
SOURCES = ("operations", "templates", "files", "deploy.py", "inventory.py", "tests/deployed_image.py")


def base_raw(distro: str) -> dict:
    """examples/vpskit.toml's host part, with the web, data and job steps' distro packages installed ahead."""
    from operations import postgres, schedule, web
    from tests.conftest import distro_of

    raw = tomllib.loads((ROOT / "examples" / "vpskit.toml").read_text())
    raw.pop("apps", None)
    raw.pop("docker", None)
    python = distro_of(distro).python
    ahead = [
        *web.BASE_PACKAGES,
        *web.proxy_packages("nginx", letsencrypt=True),
        *postgres.PACKAGES,
        *schedule.CRON_PACKAGES,
        "python3-venv",
        "python3-dev",
        f"python{python}-venv",
        "nodejs",
        "pebble",  # the tests' ACME server, from the release's archive
    ]
    raw["server"]["packages"] = sorted({*raw["server"].get("packages", []), *ahead})
    return raw


def source_digest() -> str:
    """A digest of every file under SOURCES."""
    h = hashlib.sha256()
    for name in SOURCES:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if path.is_dir() else [path]
        for f in files:
            h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def image_digest(client: docker.DockerClient, image: str, distro: str, keys: dict) -> str:
    """The label of the deployed image for this code, release image, base config and keys."""
    parts = [source_digest(), client.images.get(image).id, json.dumps(base_raw(distro), sort_keys=True)]
    parts += [Path(keys["root_pub"]).read_text(), Path(keys["deploy_pub"]).read_text()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _current(client: docker.DockerClient, tag: str, digest: str) -> bool:
    try:
        return (client.images.get(tag).labels or {}).get("vpskit.deployed") == digest
    except docker.errors.ImageNotFound:
        return False


def deployed_image(client: docker.DockerClient, image: str, distro: str, keys: dict) -> str:
    """The tag of an image of ``distro`` with the base config deployed by this code, built when missing or stale.

    Test processes side by side share it: the first one builds it, the others wait for it.
    """
    tag = f"{REPOSITORY}:{distro}"
    digest = image_digest(client, image, distro, keys)
    if _current(client, tag, digest):
        return tag
    lock_dir = CACHE / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"deployed-{distro}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _current(client, tag, digest):
            _build(client, image, distro, keys, tag, digest)
    return tag


def _build(client: docker.DockerClient, image: str, distro: str, keys: dict, tag: str, digest: str) -> None:
    """Deploy the base config into a fresh target over SSH, prove a re-run changes nothing, commit it."""
    print(f"\n==> {distro}: deploying the base config into a fresh target for the deployed-host image", flush=True)
    # A folder of its own: vpskit keeps what it learnt of the host (its SSH host key) beside the config.
    config = Path(tempfile.mkdtemp(prefix=f"vpskit-deployed-{distro}-")) / "vpskit.toml"
    target = start_target(client, image, distro, publish=(22, 2222))
    try:
        target.put_file("/root/.ssh/authorized_keys", Path(keys["root_pub"]).read_text(), mode=0o600)
        config.write_text(dump_toml(target_config(base_raw(distro), target, keys)))
        run_pyinfra(config)
        run_pyinfra(config).assert_quiet()
        # Shut down cleanly (PostgreSQL's files consistent), then keep the file system.
        target.exec("systemctl stop postgresql; sync", check=False)
        repository, name = tag.split(":")
        target.container.commit(repository=repository, tag=name, changes=f"LABEL vpskit.deployed={digest}")
    finally:
        target.remove()
        shutil.rmtree(config.parent, ignore_errors=True)
    client.images.prune(filters={"dangling": True, "label": "vpskit.deployed"})
