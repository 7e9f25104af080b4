"""`make demo`: deploy examples/vpskit.toml into a systemd container named vpskit-demo.

The container stands in for a fresh VPS (root reachable by key on port 22); the
deploy goes through the real ``pyinfra inventory.py deploy.py`` path over SSH on
ports published on 127.0.0.1, and the container is left running. The example
apps come from bare git repos inside it, their certificates from pebble (an ACME
test server) running in it, as in the end-to-end tests.

The compose app needs images and there is no registry: a first run installs the
Docker Engine with everything but the compose app, the local images are then
``docker load``ed into that engine, and the next run deploys the compose app too.
On Debian 12 (no compose v2 in its docker.io) the compose app is left out.

    python -m tests.demo [ubuntu2404|debian12]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import docker

from operations.config import load_config
from operations.connect import choose_way_in
from tests.harness import (
    CACHE,
    PEBBLE_ROOT,
    RECIPES,
    ROOT,
    build_compose_base,
    build_image,
    docker_client,
    dump_toml,
    load_images,
    prepare_web_target,
    run_pyinfra,
    ssh_keypair,
    start_target,
    target_config,
    use_local_images,
    venv_apps,
)

NAME = os.environ.get("VPSKIT_DEMO_NAME", "vpskit-demo")
PUBLISH = (22, 2222, 80, 443)


def main(argv: list[str]) -> int:
    distro = argv[0] if argv else "ubuntu2404"
    if distro not in RECIPES:
        print(f"unknown distro {distro!r}: choose one of {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    client = docker_client()
    image = build_image(client, distro)
    try:
        client.containers.get(NAME).remove(force=True)
    except docker.errors.NotFound:
        pass
    keydir = CACHE / "demo"
    keydir.mkdir(parents=True, exist_ok=True)
    root_key, root_pub = ssh_keypair(keydir, "id_root")
    deploy_key, deploy_pub = ssh_keypair(keydir, "id_deploy")
    keys = {"dir": keydir, "root": root_key, "deploy": deploy_key, "deploy_pub": deploy_pub}

    raw = tomllib.loads((ROOT / "examples" / "vpskit.toml").read_text())
    if distro == "debian12":
        print("==> Debian 12's docker.io has no compose v2: the compose app is left out of this demo")
        raw["apps"] = venv_apps(raw)
    # Off-host copies into a local-path restic repository on the demo host itself (a real VPS names an
    # SFTP/S3/rest server here); the repository password is made beside the demo config.
    raw.setdefault("backups", {})["offsite"] = {"repository": "/srv/offsite-demo-repository"}
    base = build_compose_base(client)
    target = start_target(client, image, distro, publish=PUBLISH, name=NAME, owned=False, nested_docker=True)
    target.put_file("/root/.ssh/authorized_keys", root_pub.read_text(), mode=0o600)
    raw = use_local_images(prepare_web_target(target, raw), base)
    config = keydir / "vpskit.toml"
    config.write_text(dump_toml(target_config(raw, target, keys)))
    engine_first = json.loads(json.dumps(raw))
    engine_first["apps"] = venv_apps(raw)
    engine_first["docker"]["enabled"] = True
    engine_config = keydir / "vpskit-engine-first.toml"
    engine_config.write_text(dump_toml(target_config(engine_first, target, keys)))

    print(f"==> deploying examples/vpskit.toml into {NAME} ({distro}) with: pyinfra inventory.py deploy.py")
    for step, path in (("engine and venv apps", engine_config), ("with the compose app", config)):
        print(f"==> pyinfra run: {step}")
        first = run_pyinfra(path, check=False, stream=True)
        if first.returncode != 0:
            print(f"deploy ({step}) failed (exit {first.returncode}); the container is left running for a look", file=sys.stderr)
            return first.returncode
        if path == engine_config:
            print(f"==> loading {base} into the Docker Engine of {NAME} (no registry)")
            load_images(target, [base])
    print("==> pyinfra run again: nothing should change")
    second = run_pyinfra(config, stream=True)
    health = target.exec("vpskit-health", check=False)
    print(f"==> vpskit-health on {NAME} (exit {health.returncode}):\n{health.stdout}")
    way, _ = choose_way_in(load_config(config))
    ports = ", ".join(f"{p} -> 127.0.0.1:{h}" for p, h in target.ports.items())
    root = keydir / "pebble-root.pem"
    root.write_text(target.out(f"cat {PEBBLE_ROOT}") + "\n")
    https = target.ports[443]
    apps = []
    for app in raw.get("apps", []):
        for domain in app.get("domains", []):
            curl = f"curl --cacert {root} --resolve {domain}:{https}:127.0.0.1 https://{domain}:{https}/"
            answer = subprocess.run(curl.split(), capture_output=True, text=True, timeout=30)
            apps.append(f"    {app['name']:<12}  {curl}\n{'':18}-> {(answer.stdout or answer.stderr).strip()}")
    listing = "\n".join(apps)
    print(
        f"""
==> {NAME} is running ({distro}); first run changed {first.changed} operations, a second run changed {second.changed}.
    ports:        {ports}
    config:       {config}
    shell:        docker exec -it {NAME} bash
    health:       docker exec {NAME} vpskit-health
    backups:      docker exec {NAME} vpskit-backup list
    off-host:     docker exec {NAME} vpskit-backup snapshots
    log in:       ssh -i {way.key or "~/.ssh/id_ed25519"} -p {way.port} {way.user}@127.0.0.1
    re-deploy:    VPSKIT_CONFIG={config} .venv/bin/pyinfra inventory.py deploy.py
    apps over HTTPS (certificates from the pebble ACME server in the container, root {root.name}):
{listing}
    remove:       make demo-clean
"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
