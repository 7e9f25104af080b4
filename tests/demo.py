"""`make demo`: deploy examples/vpskit.toml into a systemd container and leave it running.

The container stands in for a fresh VPS (root reachable by key on port 22); the
deploy goes through the real ``pyinfra inventory.py deploy.py`` path over SSH on
ports published on 127.0.0.1 (tests/example_host.py, shared with the smoke suite).

Each demo is named (``VPSKIT_DEMO_NAME``; default ``vpskit-demo`` for Ubuntu 24.04,
``vpskit-demo-DISTRO`` for the others) and keeps its own config, keys and vpskit state
in its own folder, so two demos never reach each other's container.

    python -m tests.demo [ubuntu2204|ubuntu2404|ubuntu2604|debian12|debian13]
    python -m tests.demo --remove [DISTRO]
"""

from __future__ import annotations

import os
import subprocess
import sys

import docker

from operations.config import load_config
from operations.connect import choose_way_in
from tests.harness import (
    CACHE,
    PEBBLE_ROOT,
    PUBLISH,
    RECIPES,
    build_compose_base,
    build_image,
    deploy_example,
    docker_client,
    ssh_keypair,
    start_target,
)

DEFAULT = "ubuntu2404"


def demo_name(distro: str) -> str:
    return os.environ.get("VPSKIT_DEMO_NAME") or ("vpskit-demo" if distro == DEFAULT else f"vpskit-demo-{distro}")


def remove(client: docker.DockerClient, name: str) -> None:
    try:
        client.containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


def main(argv: list[str]) -> int:
    removing = argv[:1] == ["--remove"]
    argv = argv[1:] if removing else argv
    distro = argv[0] if argv else DEFAULT
    if distro not in RECIPES:
        print(f"unknown distro {distro!r}: choose one of {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    name = demo_name(distro)
    client = docker_client()
    remove(client, name)
    if removing:
        print(f"==> {name} removed")
        return 0
    image = build_image(client, distro)
    folder = CACHE / "demo" / name  # this demo's config, keys and vpskit state, no other demo's
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.toml"):
        stale.unlink()
    (folder / ".vpskit-state.json").unlink(missing_ok=True)  # a new container: nothing to remember
    root_key, root_pub = ssh_keypair(folder, "id_root")
    deploy_key, deploy_pub = ssh_keypair(folder, "id_deploy")
    keys = {"dir": folder, "root": root_key, "root_pub": root_pub, "deploy": deploy_key, "deploy_pub": deploy_pub}

    base = build_compose_base(client)
    target = start_target(client, image, distro, publish=PUBLISH, name=name, owned=False, nested_docker=True)
    print(f"==> deploying examples/vpskit.toml into {name} ({distro}) with: pyinfra inventory.py deploy.py")
    # Off-host copies into a local-path restic repository on the demo host itself (a real VPS names an
    # SFTP/S3/rest server here); the repository password is made beside the demo config.
    offsite = {"offsite": {"repository": "/srv/offsite-demo-repository"}}
    host = deploy_example(target, keys, folder, base, echo=print, stream=True, backups=offsite)
    if host.left_out:
        print(f"==> left out on {distro} (its docker.io has no compose v2): {', '.join(host.left_out)}")
    failed = next((label for label, run in host.runs.items() if run.returncode != 0), None)
    if failed:
        run = host.runs[failed]
        print(f"deploy ({failed} run) failed (exit {run.returncode}); the container is left running for a look", file=sys.stderr)
        return run.returncode
    first, second = host.runs["engine"], host.runs["second"]
    if second.changed:
        print(f"a second run changed {second.changed} operations: {second.changed_ops}", file=sys.stderr)
    health = target.exec("vpskit-health", check=False)
    print(f"==> vpskit-health on {name} (exit {health.returncode}):\n{health.stdout}")
    way, _ = choose_way_in(load_config(host.config))
    ports = ", ".join(f"{p} -> 127.0.0.1:{h}" for p, h in target.ports.items())
    root = folder / "pebble-root.pem"
    root.write_text(target.out(f"cat {PEBBLE_ROOT}") + "\n")
    https = target.ports[443]
    apps = []
    for app, domain in host.domains.items():
        curl = f"curl --cacert {root} --resolve {domain}:{https}:127.0.0.1 https://{domain}:{https}/"
        answer = subprocess.run(curl.split(), capture_output=True, text=True, timeout=30)
        apps.append(f"    {app:<12}  {curl}\n{'':18}-> {(answer.stdout or answer.stderr).strip()}")
    listing = "\n".join(apps)
    clean = "make demo-clean" + ("" if distro == DEFAULT else f" DISTRO={distro}")
    print(
        f"""
==> {name} is running ({distro}); the first run changed {first.changed} operations, a second run changed {second.changed}.
    ports:        {ports}
    config:       {host.config}
    shell:        docker exec -it {name} bash
    health:       docker exec {name} vpskit-health
    backups:      docker exec {name} vpskit-backup list
    off-host:     docker exec {name} vpskit-backup snapshots
    log in:       ssh -i {way.key or "~/.ssh/id_ed25519"} -p {way.port} {way.user}@127.0.0.1
    re-deploy:    VPSKIT_CONFIG={host.config} .venv/bin/pyinfra inventory.py deploy.py
    apps over HTTPS (certificates from the pebble ACME server in the container, root {root.name}):
{listing}
    remove:       {clean}
"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
