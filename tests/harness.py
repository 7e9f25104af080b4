"""The public test harness: what the end-to-end tests' tooling offers to ``make demo`` and ``make bench``.

Systemd containers as VPS stand-ins (reached only through ``docker exec`` and ports
published on 127.0.0.1), their images, the real ``pyinfra inventory.py deploy.py``
run against them, and the fixtures the web apps need (sample git repos, local DNS,
an ACME server). Code outside the test suite imports these names from here only.
"""

from __future__ import annotations

from tests.example_host import PUBLISH, deploy_example
from tests.images import RECIPES, build_compose_base, build_image
from tests.rig import (
    CACHE,
    LABEL,
    ROOT,
    Run,
    Target,
    docker_client,
    dump_toml,
    run_pyinfra,
    ssh_keypair,
    start_target,
    target_config,
)
from tests.web_fixtures import PEBBLE_ROOT, load_images, prepare_web_target, resolve_locally, use_local_images, venv_apps

__all__ = [
    "CACHE",
    "LABEL",
    "PUBLISH",
    "PEBBLE_ROOT",
    "RECIPES",
    "ROOT",
    "Run",
    "Target",
    "build_compose_base",
    "build_image",
    "deploy_example",
    "docker_client",
    "dump_toml",
    "load_images",
    "prepare_web_target",
    "resolve_locally",
    "run_pyinfra",
    "ssh_keypair",
    "start_target",
    "target_config",
    "use_local_images",
    "venv_apps",
]
