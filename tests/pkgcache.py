"""A package cache beside the test targets: apt-cacher-ng for the distro archives, proxpi for PyPI.

One container (``NAME``) on a docker network of its own (``NETWORK``) that the setup creates.
Targets join that network and reach the cache by name only; nothing is published on the host.
Its downloads live in host folders under ``CACHE / "pkgcache"``, so they outlive the container,
its image and the test run. A target installs every package with apt and pip as a fresh VPS
does: the cache only makes the downloads local. Without a cache that answers, a target
downloads from the archives, and apt falls back to them when the cache goes away mid-run.

Run as a script to start it (or reuse the running one): ``python -m tests.pkgcache``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time

import docker

from tests.images import RECIPES, build_image, build_lock
from tests.rig import CACHE

NAME = "vpskit-pkgcache"
NETWORK = "vpskit-pkgcache"
ALIAS = "apt-proxy"
IMAGE = "vpskit-test/pkgcache"
APT_PORT = 3142
PYPI_PORT = 5000
APT_PROXY = f"http://{NAME}:{APT_PORT}"
PYPI_INDEX = f"http://{NAME}:{PYPI_PORT}/index/"
DATA = CACHE / "pkgcache"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

APT_CONF = "/etc/apt/apt.conf.d/01vpskit-test-proxy"
DETECT_SCRIPT = "/usr/local/bin/vpskit-test-apt-proxy"
PIP_CONF = "/etc/pip.conf"
UV_CONF = "/etc/uv/uv.toml"

# Where each cache keeps its files inside the container -> its host folder under DATA.
VOLUMES = {"/var/cache/apt-cacher-ng": "apt", "/var/cache/proxpi": "pypi"}

_DOCKERFILE = f"""FROM {RECIPES["debian12"].tag}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
    apt-cacher-ng python3-venv >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV SSL_CERT_FILE={CA_BUNDLE} REQUESTS_CA_BUNDLE={CA_BUNDLE} PIP_CERT={CA_BUNDLE}
RUN python3 -m venv /opt/proxpi && /opt/proxpi/bin/pip install -q --disable-pip-version-check \\
    proxpi==1.3.1 gunicorn==27.0.1
COPY pkgcache-run /usr/local/bin/pkgcache-run
ENV PROXPI_CACHE_DIR=/var/cache/proxpi PROXPI_CACHE_SIZE=21474836480
EXPOSE {APT_PORT} {PYPI_PORT}
CMD ["/usr/local/bin/pkgcache-run"]
"""

# The container's init: both caches, and the container stops (docker starts it again) when either does.
_RUN_SCRIPT = f"""#!/bin/bash
for d in /var/cache/apt-cacher-ng /var/log/apt-cacher-ng /run/apt-cacher-ng; do
    mkdir -p "$d"
    [ "$(stat -c %U "$d")" = apt-cacher-ng ] || chown -R apt-cacher-ng: "$d"
done
runuser -u apt-cacher-ng -- /usr/sbin/apt-cacher-ng -c /etc/apt-cacher-ng ForeGround=1 &
/opt/proxpi/bin/gunicorn --threads 8 --bind 0.0.0.0:{PYPI_PORT} \
    --access-logfile - --access-logformat '%(t)s %(h)s "%(r)s" %(s)s' proxpi.server:app &
trap 'kill $(jobs -p) 2>/dev/null; wait; exit 0' TERM INT
wait -n
kill $(jobs -p) 2>/dev/null
exit 1
"""

RECIPE_FILES = {"Dockerfile": _DOCKERFILE, "pkgcache-run": _RUN_SCRIPT}


def recipe_digest(base_digest: str, files: dict[str, str]) -> str:
    """The hash of an image recipe: its base image's recipe and the build context's files."""
    data = base_digest + "".join(f"\0{name}\0{text}" for name, text in sorted(files.items()))
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def image_digest() -> str:
    """The hash of the cache image's current recipe."""
    return recipe_digest(RECIPES["debian12"].digest(), RECIPE_FILES)


# ------------------------------------------------------------ files a target gets


def detect_script(proxy: str = APT_PROXY) -> str:
    """apt's Proxy-Auto-Detect command: ``proxy`` when it answers within a second, else DIRECT."""
    return f"""#!/bin/sh
# apt asks this once per archive host: the test package cache when it answers, else the archive itself.
if curl -s -o /dev/null -m 1 {proxy}/acng-report.html; then echo {proxy}; else echo DIRECT; fi
"""


def target_files(proxy: str = APT_PROXY, index: str = PYPI_INDEX) -> list[tuple[str, str, int]]:
    """(path, content, mode) of each file that points a target's apt, pip and uv at the cache."""
    host = index.split("/")[2].split(":")[0]
    return [
        (DETECT_SCRIPT, detect_script(proxy), 0o755),
        (APT_CONF, f'Acquire::http::Proxy-Auto-Detect "{DETECT_SCRIPT}";\n', 0o644),
        (PIP_CONF, f"[global]\nindex-url = {index}\ntrusted-host = {host}\n", 0o644),
        (UV_CONF, f'index-url = "{index}"\n', 0o644),
    ]


def use_cache(target) -> bool:
    """Point ``target``'s apt, pip and uv at the cache when it answers there; else say so and download from the archives.

    A target started from an image of a deployed host (tests/deployed_image.py) may carry the
    files from the run that built it: without a cache they go.
    """
    if not (_join_network(target.container) and _answers_in(target)):
        print(f"package cache not reachable from {target.distro} target: it downloads from the archives", flush=True)
        target.exec("rm -f " + " ".join(path for path, _, _ in target_files()), check=False)
        return False
    for path, content, mode in target_files():
        target.put_file(path, content, mode)
    return True


def _join_network(container) -> bool:
    """Connect a target to the cache's network (beside any network it is on already); False without a running cache."""
    try:
        if container.client.containers.get(NAME).status != "running":
            return False
        if NETWORK not in container.attrs["NetworkSettings"]["Networks"]:
            container.client.networks.get(NETWORK).connect(container)
    except docker.errors.APIError:
        return False
    return True


def _answers_in(target) -> bool:
    """Both caches answer from inside ``target``, by name, within a few seconds."""
    urls = (f"{APT_PROXY}/acng-report.html", f"http://{NAME}:{PYPI_PORT}/health")
    check = " && ".join(f"curl -s -o /dev/null -m 3 {url}" for url in urls)
    return target.exec(check, check=False).returncode == 0


# ------------------------------------------------------------ the cache container


def build_cache_image(client: docker.DockerClient) -> str:
    """The cache image's tag, built from the Debian 12 test image when missing or stale."""
    digest = image_digest()
    if _image_label(client) == digest:
        return IMAGE
    build_image(client, "debian12")
    with build_lock("pkgcache"):
        if _image_label(client) != digest:
            _docker_build(digest)
    return IMAGE


def _image_label(client: docker.DockerClient) -> str | None:
    """The recipe hash the cache image carries, None without the image."""
    try:
        return (client.images.get(IMAGE).labels or {}).get("vpskit.recipe")
    except docker.errors.ImageNotFound:
        return None


def _docker_build(digest: str) -> None:
    """``docker build`` of the recipe's files, labelled with ``digest``."""
    with tempfile.TemporaryDirectory() as ctx:
        for name, text in RECIPE_FILES.items():
            with open(os.path.join(ctx, name), "w") as f:
                f.write(text)
        os.chmod(os.path.join(ctx, "pkgcache-run"), 0o755)
        cmd = ["docker", "build", "-q", "--label", f"vpskit.recipe={digest}", "-t", IMAGE, ctx]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"docker build failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")


def ensure_network(client: docker.DockerClient) -> None:
    """Create the cache's docker network unless it exists."""
    if not client.networks.list(names=[NETWORK]):
        client.networks.create(NETWORK, driver="bridge")


def _current_container(client: docker.DockerClient):
    """The cache container when it runs the current image (started again if stopped); None after removing an old one."""
    try:
        container = client.containers.get(NAME)
    except docker.errors.NotFound:
        return None
    if container.image.id != client.images.get(IMAGE).id:
        container.remove(force=True)
        client.images.prune(filters={"dangling": True, "label": "vpskit.recipe"})  # the image it ran
        return None
    if container.status != "running":
        try:
            container.start()
        except docker.errors.APIError:  # e.g. its network was removed: a new container joins the new one
            container.remove(force=True)
            return None
    return container


def _run_container(client: docker.DockerClient):
    """Start the cache container on its network (no published ports), its data in host folders."""
    volumes = {}
    for inside, folder in VOLUMES.items():
        (DATA / folder).mkdir(parents=True, exist_ok=True)
        volumes[str(DATA / folder)] = {"bind": inside, "mode": "rw"}
    return client.containers.run(
        IMAGE,
        detach=True,
        name=NAME,
        hostname=NAME,
        network=NETWORK,
        networking_config={NETWORK: client.api.create_endpoint_config(aliases=[ALIAS])},
        volumes=volumes,
        restart_policy={"Name": "unless-stopped"},
    )


def ready(container) -> bool:
    """Both caches answer on their ports inside the container."""
    urls = (f"http://127.0.0.1:{APT_PORT}/acng-report.html", f"http://127.0.0.1:{PYPI_PORT}/health")
    check = " && ".join(f"curl -s -o /dev/null -m 2 {url}" for url in urls)
    return container.exec_run(["sh", "-c", check]).exit_code == 0


def wait_ready(container, timeout: float = 60) -> None:
    """Wait until both caches answer, at most ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        container.reload()
        if container.status == "running" and ready(container):
            return
        time.sleep(0.5)
    raise TimeoutError(f"no answer on ports {APT_PORT} and {PYPI_PORT} within {timeout:.0f} s")


def ensure_cache(client: docker.DockerClient) -> bool:
    """Build, start or reuse the cache container; False (and one line) when it cannot run."""
    try:
        build_cache_image(client)
        ensure_network(client)
        container = _current_container(client) or _run_container(client)
        wait_ready(container)
    except (docker.errors.DockerException, RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"==> package cache not available ({_reason(e)}): targets download from the archives", flush=True)
        return False
    return True


def _reason(error: Exception) -> str:
    """One short line saying why."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:160] if text else ''}"


def main() -> int:
    """Start the cache, or reuse the running one; never fails the caller."""
    try:
        client = docker.from_env(timeout=300)
    except docker.errors.DockerException as e:
        print(f"==> package cache not available ({_reason(e)}): targets download from the archives", flush=True)
        return 0
    if ensure_cache(client):
        print(f"==> package cache {NAME} running (apt {APT_PROXY}, PyPI {PYPI_INDEX}; data in {DATA})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
