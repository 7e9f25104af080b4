"""examples/vpskit.toml deployed over SSH onto a fresh target, the way a user would: shared by the
smoke suite (tests/e2e/test_smoke.py) and ``make demo``.

The target stands in for a fresh VPS (root reachable by key on port 22). The example apps come from
bare git repos inside it, their certificates from pebble running in it. The compose app needs images
and there is no registry: a first run installs the Docker Engine with everything but the compose
app, the local images are then ``docker load``ed into that engine, and the next run deploys the
compose app too. Where the distro's docker.io has no compose v2 (Debian 12) the compose app is left
out, as vpskit itself would refuse it.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from operations.config import DockerEngine
from operations.docker import has_compose
from tests.conftest import distro_of
from tests.rig import ROOT, Run, Target, dump_toml, run_pyinfra, target_config
from tests.web_fixtures import load_images, prepare_web_target, use_local_images, venv_apps

# Ports the example config needs published: first login, the hardened sshd, HTTP and HTTPS.
PUBLISH = (22, 2222, 80, 443)


def example_raw() -> dict:
    return tomllib.loads((ROOT / "examples" / "vpskit.toml").read_text())


@dataclass
class ExampleHost:
    target: Target
    raw: dict  # the example config aimed at the target's test stand-ins (repos, pebble, local images)
    config: Path  # ... as the file deployed over SSH
    runs: dict[str, Run] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # apps this release cannot have

    @property
    def domains(self) -> dict[str, str]:
        return {app["name"]: app["domains"][0] for app in self.raw["apps"] if app.get("domains")}


def deploy_example(
    target: Target, keys: dict, folder: Path, base_image: str, echo=lambda text: None, stream: bool = False, backups: dict | None = None
) -> ExampleHost:
    """Deploy the example config over SSH onto the fresh ``target``: engine and venv apps, then the compose app.

    ``keys``: root's public key (the provider's), the deploy key pair; ``folder`` keeps the configs
    (and vpskit's state file beside them). Runs are named "engine", "full" and "second"; a run that
    fails stops here with its output in the returned host's runs. ``stream``: pyinfra's output goes to
    the terminal as it runs (else ``echo`` gets it after each run); ``backups``: keys added to ``[backups]``.
    """
    raw = example_raw()
    raw.setdefault("backups", {}).update(backups or {})
    left_out = []
    if not has_compose(DockerEngine(source="distro"), distro_of(target.distro)):
        left_out = [a["name"] for a in raw["apps"] if a.get("kind") == "compose"]
        raw["apps"] = venv_apps(raw)
    target.put_file("/root/.ssh/authorized_keys", keys["root_pub"].read_text(), mode=0o600)
    raw = use_local_images(prepare_web_target(target, raw), base_image)
    host = ExampleHost(target, raw, folder / "vpskit.toml", left_out=left_out)
    host.config.write_text(dump_toml(target_config(raw, target, keys)))
    engine_first = json.loads(json.dumps(raw))
    engine_first["apps"] = venv_apps(raw)
    engine_first["docker"]["enabled"] = True
    engine_config = folder / "vpskit-engine-first.toml"
    engine_config.write_text(dump_toml(target_config(engine_first, target, keys)))

    for label, path in (("engine", engine_config), ("full", host.config), ("second", host.config)):
        echo(f"==> {label} run: pyinfra inventory.py deploy.py ({path.name})")
        run = host.runs[label] = run_pyinfra(path, check=False, stream=stream)
        if not stream:
            echo(run.output)
        if run.returncode != 0:
            break
        if label == "engine":
            echo(f"==> loading {base_image} into the target's Docker Engine (no registry)")
            load_images(target, [base_image])
    return host
