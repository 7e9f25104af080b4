"""The deployed host most end-to-end tests inspect: one per distro, per test session.

A fresh target (root reachable by key on port 22, like a new VPS) gets the
example config over SSH: the first run comes in as root, moves sshd to 2222 and
hardens it; the second run, the same command, must come in as the deploy user
on 2222 and change nothing; a third run over the docker connector must agree.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DISTROS
from tests.rig import ROOT, Run, Target, dump_toml, run_pyinfra, start_target, target_config

SSH_PORT = 2222


def example_config() -> dict:
    """examples/vpskit.toml as data, less what later issues deploy."""
    raw = tomllib.loads((ROOT / "examples" / "vpskit.toml").read_text())
    raw.pop("apps", None)
    raw.pop("docker", None)  # the container path is tests/e2e/test_containers.py's
    return raw


def write(path: Path, raw: dict) -> Path:
    path.write_text(dump_toml(raw))
    return path


def authorize_root(target: Target, keys: dict) -> None:
    target.put_file("/root/.ssh/authorized_keys", keys["root_pub"].read_text(), mode=0o600)


@dataclass
class Deployed:
    target: Target
    raw: dict  # the config as data, aimed at the target over SSH
    config: Path
    runs: dict[str, Run]

    @property
    def distro(self) -> str:
        return self.target.distro


@pytest.fixture(scope="session", params=DISTROS)
def deployed(request, docker_engine, images, keys, tmp_path_factory):
    distro = request.param
    target = start_target(docker_engine, images[distro], distro, publish=(22, SSH_PORT))
    try:
        authorize_root(target, keys)
        tmp = tmp_path_factory.mktemp(f"deployed-{distro}")
        raw = example_config()
        raw["server"]["packages"] = ["jq"]
        raw["deploy_user"]["groups"] = ["adm"]
        raw["server"]["timezone"] = "Europe/Berlin"
        ssh_raw = target_config(raw, target, keys)
        ssh_cfg = write(tmp / "ssh.toml", ssh_raw)
        docker_cfg = write(tmp / "docker.toml", target_config(raw, target, keys, connector="docker"))
        runs = {"first": run_pyinfra(ssh_cfg)}
        runs["second_ssh"] = run_pyinfra(ssh_cfg)
        runs["third_docker"] = run_pyinfra(docker_cfg)
        yield Deployed(target, ssh_raw, ssh_cfg, runs)
    finally:
        target.remove()
