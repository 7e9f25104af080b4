"""How the controller gets in: pick the first configured way in that works.

A fresh VPS lets root in on port 22; after hardening only the deploy user on
the new port gets in. The same ``pyinfra inventory.py deploy.py`` command must
work before, after, and after a run that died half-way, so the inventory
tries each way in (deploy user first) with a real SSH login and hands pyinfra
the first one that succeeds.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Config


@dataclass(frozen=True)
class WayIn:
    user: str
    port: int
    key: str  # private key path, "" for agent/defaults
    password_env: str = ""

    def describe(self) -> str:
        how = f"key {self.key}" if self.key else ("password" if self.password_env else "agent/default keys")
        return f"{self.user}@port {self.port} ({how})"


def ways_in(config: Config, remembered_ports: list[int] = ()) -> list[WayIn]:
    """Candidate logins, most hardened first, without repeats.

    ``remembered_ports`` are ports that worked on earlier runs: after ``ssh_port`` is
    changed in the config, sshd still listens on the old one until the run moves it.
    """
    s, du, fl = config.server, config.deploy_user, config.first_login
    du_key = str(config.path(du.private_key)) if du.private_key else ""
    fl_key = str(config.path(fl.key)) if fl.key else ""
    ports = [s.reach_port, *remembered_ports, fl.reach]
    candidates = [WayIn(du.name, p, du_key) for p in ports] + [WayIn(fl.user, p, fl_key, fl.password_env) for p in ports]
    seen, out = set(), []
    for c in candidates:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def try_login(address: str, way: WayIn, timeout: float = 8.0) -> str | None:
    """Log in once with ``way``; None when it works, else why it did not."""
    import logging

    import paramiko

    # A port that accepts and then closes (a NAT forward with nothing behind it)
    # makes paramiko's transport thread log a traceback: the failure is reported here instead.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    try:
        sock = socket.create_connection((address, way.port), timeout=timeout)
    except OSError as e:
        return f"cannot connect: {e.strerror or e}"
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    password = os.environ.get(way.password_env) if way.password_env else None
    try:
        client.connect(
            address,
            port=way.port,
            username=way.user,
            key_filename=way.key or None,
            password=password,
            look_for_keys=not way.key,
            allow_agent=not way.key,
            sock=sock,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
        )
    except paramiko.AuthenticationException:
        return "authentication refused"
    except (paramiko.SSHException, OSError, EOFError) as e:
        return f"ssh failed: {e}"
    finally:
        client.close()
    return None


def host_data(config: Config, way: WayIn | None) -> dict:
    """pyinfra host data for connecting with ``way`` (None: non-SSH connector)."""
    data: dict = {}
    if way is not None:
        data.update(ssh_user=way.user, ssh_port=way.port)
        if way.key:
            data["ssh_key"] = way.key
        if way.password_env and os.environ.get(way.password_env):
            data["ssh_password"] = os.environ[way.password_env]
        if config.server.known_hosts_file:
            data["ssh_known_hosts_file"] = str(config.path(config.server.known_hosts_file))
        if way.user != "root":
            data["_sudo"] = True
    return data


STATE_FILE = ".vpskit-state.json"
REMEMBERED = 3


def _state_path(config: Config) -> Path:
    return Path(config.base_dir) / STATE_FILE


def remembered_ports(config: Config) -> list[int]:
    """Ports that logged in to this address on earlier runs, newest first."""
    try:
        data = json.loads(_state_path(config).read_text())
        return [int(p) for p in data.get(config.server.address, {}).get("ports", [])]
    except (OSError, ValueError, AttributeError):
        return []


def remember_port(config: Config, port: int) -> None:
    """Record that ``port`` worked (kept beside the config file, like known_hosts)."""
    path = _state_path(config)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    ports = [port, *[p for p in remembered_ports(config) if p != port]][:REMEMBERED]
    data[config.server.address] = {"ports": ports}
    try:
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError:
        pass  # a read-only checkout only loses the hint


def choose_way_in(config: Config, attempt=try_login, rounds: int = 2, pause: float = 3.0) -> tuple[WayIn | None, list[str]]:
    """The first way in that logs in, and what each failed attempt said.

    All ways are tried ``rounds`` times, ``pause`` seconds apart: sshd may be in the
    middle of a restart (a run that died a moment ago left one going).
    """
    if not config.server.uses_ssh:
        return None, []
    failures: list[str] = []
    for round_ in range(rounds):
        if round_:
            time.sleep(pause)
        failures = []
        for way in ways_in(config, remembered_ports(config)):
            err = attempt(config.server.address, way)
            if err is None:
                remember_port(config, way.port)
                return way, failures
            failures.append(f"{way.describe()}: {err}")
    raise NoWayIn(config.server.address, failures)


class NoWayIn(Exception):
    def __init__(self, address: str, failures: list[str]):
        self.failures = failures
        tried = "\n".join(f"  - {f}" for f in failures)
        super().__init__(
            f"cannot log in to {address} any configured way:\n{tried}\n"
            "If you lost the deploy user's key, log in through your provider's web console "
            "(or rescue system), add a new public key to ~DEPLOY_USER/.ssh/authorized_keys, "
            "point deploy_user.public_keys/private_key at it, and run again. See README, 'Recovery'."
        )


def login_prover(config: Config):
    """A check that a FRESH key login as the deploy user on the hardened port works.

    Runs on the machine running pyinfra, as the user will log in next time. None
    for non-SSH connectors (the host then checks that sshd answers instead).
    """
    if not config.server.uses_ssh:
        return None
    way = ways_in(config)[0]  # the deploy user on the hardened port

    def prove() -> str | None:
        error = try_login(config.server.address, way)
        if error is None:
            remember_port(config, way.port)  # sshd may move again before the next run
        return error

    return prove
