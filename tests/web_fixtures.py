"""What a web-stack target needs that the internet would give a real VPS.

Shared by the end-to-end tests and ``make demo``:

- the sample apps in examples/apps/ as bare git repos inside the target (cloned by file:// URL),
- the app domains resolving to 127.0.0.1 in the target's /etc/hosts,
- pebble, Let's Encrypt's ACME test server, running in the target with its own
  TLS certificate, and the config fields that point certbot at it.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from tests.rig import ROOT, Target, dump_toml, run_pyinfra, target_config

APPS_DIR = ROOT / "examples" / "apps"
GIT_DIR = "/srv/git"
PEBBLE_DIR = "/etc/pebble"
PEBBLE_DIRECTORY = "https://localhost:14000/dir"
PEBBLE_LISTENER_CERT = f"{PEBBLE_DIR}/listener.pem"
PEBBLE_ROOT = f"{PEBBLE_DIR}/issuing-root.pem"

_PEBBLE_UNIT = f"""[Unit]
Description=pebble ACME test server
[Service]
Environment=PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0
ExecStart=/usr/bin/pebble -config {PEBBLE_DIR}/pebble.json
"""
_PEBBLE_CONFIG = {
    "pebble": {
        "listenAddress": "127.0.0.1:14000",
        "managementListenAddress": "127.0.0.1:15000",
        "certificate": PEBBLE_LISTENER_CERT,
        "privateKey": f"{PEBBLE_DIR}/listener.key",
        # Where pebble checks challenges: the real HTTP/HTTPS ports nginx listens on.
        "httpPort": 80,
        "tlsPort": 443,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
}


def _git(args: list[str], cwd: Path) -> None:
    env = {
        "GIT_AUTHOR_NAME": "vpskit", "GIT_AUTHOR_EMAIL": "vpskit@example.test",
        "GIT_COMMITTER_NAME": "vpskit", "GIT_COMMITTER_EMAIL": "vpskit@example.test",
        "HOME": str(cwd), "PATH": "/usr/bin:/bin",
    }  # fmt: skip
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def bare_repo_tar(app_names) -> bytes:
    """A tar of ``NAME.git`` bare repos, one commit each on ``main``, made from examples/apps/NAME."""
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(fileobj=buf, mode="w") as tar:
        for name in app_names:
            work = Path(tmp) / name
            subprocess.run(["cp", "-r", str(APPS_DIR / name), str(work)], check=True)
            _git(["init", "-q", "-b", "main"], work)
            _git(["add", "-A"], work)
            _git(["commit", "-q", "-m", f"{name} sample app"], work)
            _git(["clone", "-q", "--bare", str(work), str(Path(tmp) / f"{name}.git")], Path(tmp))
            tar.add(str(Path(tmp) / f"{name}.git"), arcname=f"{name}.git")
    return buf.getvalue()


def put_repos(target: Target, app_names) -> dict[str, str]:
    """Bare repos of the sample apps in the target; their file:// URLs by app name."""
    target.exec(f"mkdir -p {GIT_DIR}")
    target.container.put_archive(GIT_DIR, bare_repo_tar(app_names))
    # World-readable, owned by root: the deploy user clones them like a remote.
    # git refuses to serve a repo owned by another user unless told it is safe.
    target.exec(f"chown -R root:root {GIT_DIR} && chmod -R a+rX {GIT_DIR}")
    safe = "".join(f"\tdirectory = {GIT_DIR}/{name}.git\n" for name in app_names)
    target.put_file("/etc/gitconfig", f"[safe]\n{safe}")
    return {name: f"file://{GIT_DIR}/{name}.git" for name in app_names}


def resolve_locally(target: Target, domains) -> None:
    """The app domains point at the target itself, as public DNS would."""
    target.exec(f"echo '127.0.0.1 {' '.join(domains)}' >> /etc/hosts")


def start_pebble(target: Target) -> None:
    """Install and start pebble in the target, with a listener certificate made by openssl."""
    target.exec("export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq pebble openssl >/dev/null")
    target.exec(
        f"mkdir -p {PEBBLE_DIR} && cd {PEBBLE_DIR} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -days 30 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
        "-keyout listener.key -out listener.pem 2>/dev/null"
    )
    target.put_file(f"{PEBBLE_DIR}/pebble.json", json.dumps(_PEBBLE_CONFIG, indent=2))
    target.put_file("/etc/systemd/system/pebble.service", _PEBBLE_UNIT)
    target.exec("systemctl daemon-reload && systemctl start pebble")
    deadline = time.time() + 30
    while True:
        probe = target.exec(f"curl -sf --cacert {PEBBLE_LISTENER_CERT} https://localhost:15000/roots/0 -o {PEBBLE_ROOT}", check=False)
        if probe.returncode == 0:
            return
        if time.time() > deadline:
            raise AssertionError(f"pebble did not start: {target.exec('journalctl -u pebble --no-pager -n 30', check=False).stdout}")
        time.sleep(0.5)


def venv_apps(raw: dict) -> list[dict]:
    """The raw config's apps less its compose apps (those need a nested Docker Engine)."""
    return [a for a in raw.get("apps", []) if a.get("kind") != "compose"]


def prepare_web_target(target: Target, raw: dict) -> dict:
    """Give ``target`` repos, DNS and an ACME server for the apps in ``raw``; return ``raw`` aimed at them."""
    apps = raw.get("apps", [])
    urls = put_repos(target, [a["name"] for a in apps])
    resolve_locally(target, [d for a in apps for d in a.get("domains", [])])
    start_pebble(target)
    cfg = json.loads(json.dumps(raw))
    for app in cfg.get("apps", []):
        app["repo"] = urls[app["name"]]
    cfg.setdefault("tls", {}).update(acme_server=PEBBLE_DIRECTORY, acme_ca_bundle=PEBBLE_LISTENER_CERT, mode="letsencrypt")
    return cfg


class Host:
    """One target and the configs deployed to it over the docker connector, each run kept by its label."""

    def __init__(self, target: Target, keys: dict, tmp: Path):
        self.target, self.keys, self.tmp = target, keys, tmp
        self.runs: dict = {}

    def deploy(self, label: str, raw: dict, check: bool = True):
        path = self.tmp / f"{label}.toml"
        path.write_text(dump_toml(target_config(raw, self.target, self.keys, connector="docker")))
        run = run_pyinfra(path, check=check)
        self.runs[label] = run
        return run

    def out(self, cmd: str) -> str:
        return self.target.out(cmd)


def with_caddy(raw: dict) -> dict:
    """``raw`` with Caddy as the front proxy, less the rate limits the distro's Caddy cannot enforce."""
    cfg = json.loads(json.dumps(raw))
    cfg.setdefault("web", {})["proxy"] = "caddy"
    cfg["web"].pop("rate_limits", None)
    for app in cfg.get("apps", []):
        for route in app.get("routes", []):
            route.pop("rate_limit", None)
            route.pop("burst", None)
    return cfg


def https_get(target: Target, url: str, *curl_args: str) -> subprocess.CompletedProcess:
    """curl inside the target, trusting pebble's issuing root only."""
    args = " ".join(curl_args)
    return target.exec(f"curl -sS --max-time 15 --cacert {PEBBLE_ROOT} {args} '{url}'", check=False)


def wait_https(t, url: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """Caddy gets its certificates in the background after a reload: poll until one is served."""
    deadline = time.time() + timeout
    while True:
        r = https_get(t, url, "-f", *args)
        if r.returncode == 0 or time.time() > deadline:
            return r
        time.sleep(2)


def load_images(target: Target, tags: list[str]) -> None:
    """``docker load`` local images into the target's own Docker Engine (there is no registry to pull from)."""
    from tests.images import save_image
    from tests.rig import CACHE

    CACHE.mkdir(parents=True, exist_ok=True)
    tar = save_image(tags, str(CACHE / ("images-" + "-".join(t.replace("/", "_").replace(":", "_") for t in tags) + ".tar")))
    with open(tar, "rb") as f:
        subprocess.run(["docker", "exec", "-i", target.id, "docker", "load", "-q"], stdin=f, check=True, capture_output=True)


def use_local_images(raw: dict, base: str) -> dict:
    """The config's compose apps built from / running on the local ``base`` image, on a nested engine (vfs)."""
    cfg = json.loads(json.dumps(raw))
    for app in cfg.get("apps", []):
        if app.get("kind") == "compose":
            app.setdefault("env", {}).update(BASE_IMAGE=base, DB_IMAGE=base)
    # Docker's apt repository is out of reach here; the target itself lives on overlayfs.
    cfg.setdefault("docker", {}).update(source="distro", storage_driver="vfs")
    return cfg
