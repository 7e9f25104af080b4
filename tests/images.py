"""Build the test images of every supported release without a registry.

debootstrap writes a minimal root filesystem that looks like a fresh VPS
(systemd as PID 1, openssh-server, python3), ``docker import`` turns it into
an image. The image carries a label with the hash of its recipe: an image
whose label matches is reused, a changed recipe builds a new one.

Run as a script to build (or reuse) them all: ``python -m tests.images [KEY...]``.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field

import docker

PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "ca-certificates",
    "iproute2",
    "procps",
    "openssh-server",
    "sudo",
    "curl",
    "less",
]


@dataclass(frozen=True)
class Recipe:
    name: str
    suite: str
    mirror: str
    sources: str
    script: str | None = None
    extra_args: tuple[str, ...] = ()
    # How the distro's cloud images start sshd.
    ssh_units: tuple[str, ...] = ("ssh.service",)
    packages: tuple[str, ...] = field(default=tuple(PACKAGES))
    # systemd 256+ refuses the legacy cgroup hierarchies: start it through CGROUP2_INIT.
    cgroup2_only: bool = False
    # /tmp is a tmpfs by default (Debian 13, Ubuntu 26.04): `docker cp`, which pyinfra's docker
    # connector uploads files with, writes beneath that mount, so the image keeps /tmp on disk.
    tmp_on_disk: bool = False

    @property
    def tag(self) -> str:
        return f"vpskit-test/{self.name}"

    def digest(self) -> str:
        parts = [self.suite, self.mirror, self.sources, self.script, self.extra_args, self.packages, self.ssh_units, _POST_SCRIPT]
        parts += [CGROUP2_INIT] if self.cgroup2_only else []
        parts += ["tmp.mount masked"] if self.tmp_on_disk else []
        data = json.dumps(parts, sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()[:16]


def _sources(mirror: str, security_mirror: str, suite: str, components: str) -> str:
    """sources.list of a fresh VPS: the release, its updates and its security suite (unattended-upgrades needs the latter)."""
    return (
        f"deb {mirror} {suite} {components}\n"
        f"deb {mirror} {suite}-updates {components}\n"
        f"deb {security_mirror} {suite}-security {components}\n"
    )


UBUNTU = "http://archive.ubuntu.com/ubuntu"
DEBIAN = "http://deb.debian.org/debian"
DEBIAN_SECURITY = "http://deb.debian.org/debian-security"


def _ubuntu(
    version: str, suite: str, script: str, ssh_units: tuple[str, ...], cgroup2_only: bool = False, tmp_on_disk: bool = False
) -> Recipe:
    # The Ubuntu archive's keyring is not in Debian's debootstrap: --no-check-gpg.
    return Recipe(
        name=f"ubuntu:{version}",
        suite=suite,
        mirror=UBUNTU,
        script=script,
        extra_args=("--no-check-gpg", "--components=main,universe"),
        ssh_units=ssh_units,
        sources=_sources(UBUNTU, UBUNTU, suite, "main universe"),
        cgroup2_only=cgroup2_only,
        tmp_on_disk=tmp_on_disk,
    )


def _debian(version: str, suite: str, tmp_on_disk: bool = False) -> Recipe:
    sources = _sources(DEBIAN, DEBIAN_SECURITY, suite, "main")
    return Recipe(name=f"debian:{version}", suite=suite, mirror=DEBIAN, sources=sources, tmp_on_disk=tmp_on_disk)


# One per supported release. Ubuntu 24.04 and later socket-activate sshd (ssh.socket listens,
# ssh.service is disabled); debootstrap has no script for noble and resolute: the generic one.
RECIPES = {
    "ubuntu2204": _ubuntu("22.04", "jammy", "/usr/share/debootstrap/scripts/jammy", ("ssh.service",)),
    "ubuntu2404": _ubuntu("24.04", "noble", "/usr/share/debootstrap/scripts/gutsy", ("ssh.socket",)),
    # systemd 259: cgroup v2 only.
    "ubuntu2604": _ubuntu(
        "26.04", "resolute", "/usr/share/debootstrap/scripts/gutsy", ("ssh.socket",), cgroup2_only=True, tmp_on_disk=True
    ),
    "debian12": _debian("12", "bookworm"),
    "debian13": _debian("13", "trixie", tmp_on_disk=True),
}

# The image's init where systemd needs cgroup v2 and the test machine's Docker gives containers
# the v1 (or hybrid) hierarchies: a cgroup namespace of its own, rooted at the container's cgroup
# in the unified hierarchy, with cgroup2 mounted, so this systemd sees only its own container.
CGROUP2_INIT_PATH = "/usr/local/sbin/vpskit-init"
CGROUP2_INIT = r"""#!/bin/sh
if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
    exec unshare --cgroup /bin/sh -c 'umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec /sbin/init'
fi
exec /sbin/init
"""

# Runs inside the new root filesystem before it is imported.
_POST_SCRIPT = r"""
set -e
rm -f /etc/apt/sources.list.d/*.sources
# The container has no console getty and no kernel-facing units to wait for.
systemctl mask getty@tty1.service console-getty.service systemd-logind.service >/dev/null 2>&1 || true
systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true
systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
systemctl enable $SSH_UNITS
echo 'APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/01keep-debs
# Host keys are made on first boot of a VPS; do it now so every container has them.
ssh-keygen -A
# A fresh VPS: root logs in with a key.
mkdir -p /root/.ssh && chmod 700 /root/.ssh
update-ca-certificates >/dev/null 2>&1 || true
apt-get clean
rm -rf /var/lib/apt/lists/*
"""


def _run(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


@contextmanager
def build_lock(name: str):
    """Held while one test process builds the image ``name``: processes side by side never build it twice at once."""
    lock_dir = os.path.join(tempfile.gettempdir(), "vpskit-image-locks")
    os.makedirs(lock_dir, exist_ok=True)
    with open(os.path.join(lock_dir, f"{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def image_is_current(client: docker.DockerClient, recipe: Recipe) -> bool:
    try:
        image = client.images.get(recipe.tag)
    except docker.errors.ImageNotFound:
        return False
    return (image.labels or {}).get("vpskit.recipe") == recipe.digest()


def build_image(client: docker.DockerClient, key: str) -> str:
    """Return the tag of the image for ``key``, building it when missing or stale."""
    recipe = RECIPES[key]
    if image_is_current(client, recipe):
        return recipe.tag
    with build_lock(key):
        if image_is_current(client, recipe):
            return recipe.tag
        return _build(client, key, recipe)


def _build(client: docker.DockerClient, key: str, recipe: Recipe) -> str:
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed: run `make test` (it installs it) or apt-get install debootstrap")
    workdir = tempfile.mkdtemp(prefix=f"vpskit-rootfs-{key}-")
    rootfs = os.path.join(workdir, "rootfs")
    try:
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(recipe.packages)}",
            *recipe.extra_args,
            recipe.suite,
            rootfs,
            recipe.mirror,
        ]
        if recipe.script:
            cmd.append(recipe.script)
        _run(cmd, stdout=subprocess.DEVNULL)
        with open(os.path.join(rootfs, "etc/apt/sources.list"), "w") as f:
            f.write(recipe.sources)
        # Trust the same extra CAs as the machine building the image (TLS-inspecting proxies).
        for crt in glob.glob("/usr/local/share/ca-certificates/*.crt"):
            shutil.copy(crt, os.path.join(rootfs, "usr/local/share/ca-certificates/"))
        _run(["chroot", rootfs, "/usr/bin/env", f"SSH_UNITS={' '.join(recipe.ssh_units)}", "/bin/sh", "-c", _POST_SCRIPT])
        if recipe.tmp_on_disk:
            _run(["chroot", rootfs, "systemctl", "mask", "tmp.mount"])
        init = "/sbin/init"
        if recipe.cgroup2_only:
            init = CGROUP2_INIT_PATH
            with open(os.path.join(rootfs, init.lstrip("/")), "w") as f:
                f.write(CGROUP2_INIT)
            os.chmod(os.path.join(rootfs, init.lstrip("/")), 0o755)
        tarball = os.path.join(workdir, "rootfs.tar")
        _run(["tar", "-C", rootfs, "-cf", tarball, "."])
        changes = [
            f'CMD ["{init}"]',
            f"LABEL vpskit.recipe={recipe.digest()}",
            "ENV container=docker",
        ]
        repo, tag = recipe.tag.split(":")
        client.api.import_image_from_file(tarball, repository=repo, tag=tag, changes=changes)
        # The image this one replaces is now untagged: drop it.
        client.images.prune(filters={"dangling": True, "label": "vpskit.recipe"})
        return recipe.tag
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str]) -> int:
    """Build (or reuse) the images of ``argv`` (default: every release), two at a time: debootstrap waits on the network as much as on the disk."""
    from concurrent.futures import ThreadPoolExecutor

    client = docker.from_env()
    keys = argv or list(RECIPES)
    with ThreadPoolExecutor(max_workers=int(os.environ.get("VPSKIT_IMAGE_JOBS", "2"))) as pool:
        for key, tag in zip(keys, pool.map(lambda k: build_image(client, k), keys), strict=True):
            print(f"{key}: {tag}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


# ---------------------------------------------------------------- images for compose apps

# No registry: the compose sample's base image (Python + psycopg2) and its database
# image (the distro's PostgreSQL behind an entrypoint that reads the official postgres
# image's POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB) are one local image, built
# from the Debian test image. Tests `docker load` it into the target's own engine.
COMPOSE_BASE = "vpskit-test/compose-base:debian12"
_PG_ENTRYPOINT = r"""#!/bin/sh
# Stand-in for the official postgres image's entrypoint (POSTGRES_USER, _PASSWORD, _DB).
set -e
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
export PGDATA=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw=$(mktemp) && printf '%s' "${POSTGRES_PASSWORD:?}" > "$pw" && chown postgres "$pw"
    runuser -u postgres -- "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pw"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
    db=${POSTGRES_DB:-$user}
    [ "$db" = postgres ] || runuser -u postgres -- "$bin/createdb" -U "$user" "$db"
    runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" -w stop >/dev/null
fi
exec runuser -u postgres -- "$bin/postgres" -D "$PGDATA" -c listen_addresses='*'
"""
_COMPOSE_DOCKERFILE = f"""FROM {RECIPES["debian12"].tag}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
    python3-psycopg2 postgresql >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY pg-entrypoint /usr/local/bin/pg-entrypoint
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
STOPSIGNAL SIGINT
CMD ["/usr/local/bin/pg-entrypoint"]
"""


def build_compose_base(client: docker.DockerClient) -> str:
    """The tag of the local compose base image, built from the Debian test image when missing or stale."""
    digest = hashlib.sha256((RECIPES["debian12"].digest() + _COMPOSE_DOCKERFILE + _PG_ENTRYPOINT).encode()).hexdigest()[:16]
    try:
        if (client.images.get(COMPOSE_BASE).labels or {}).get("vpskit.recipe") == digest:
            return COMPOSE_BASE
    except docker.errors.ImageNotFound:
        pass
    build_image(client, "debian12")
    with build_lock("compose-base"):
        with tempfile.TemporaryDirectory() as ctx:
            with open(os.path.join(ctx, "Dockerfile"), "w") as f:
                f.write(_COMPOSE_DOCKERFILE)
            with open(os.path.join(ctx, "pg-entrypoint"), "w") as f:
                f.write(_PG_ENTRYPOINT)
            os.chmod(os.path.join(ctx, "pg-entrypoint"), 0o755)
            _run(["docker", "build", "-q", "--label", f"vpskit.recipe={digest}", "-t", COMPOSE_BASE, ctx], stdout=subprocess.DEVNULL)
    return COMPOSE_BASE


def save_image(tags: list[str], path: str) -> str:
    """``docker save`` of ``tags`` to ``path`` (kept while the images are unchanged); returns ``path``."""
    ids = "".join(docker.from_env().images.get(t).id for t in tags)
    stamp = f"{path}.id"
    if not (os.path.exists(path) and os.path.exists(stamp) and open(stamp).read() == ids):
        _run(["docker", "save", "-o", f"{path}.part", *tags])
        os.replace(f"{path}.part", path)
        with open(stamp, "w") as f:
            f.write(ids)
    return path
