"""The whole config: one ``Config`` holding every section, and the error that lists what is wrong with a file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .apps import App
from .host import DeployUser, Fail2ban, Firewall, FirstLogin, Server, Ssh, Sysctl
from .schema import setting
from .stack import TLS, Backups, DockerEngine, Monitor, NodeJS, Postgres, Python, Web


class ConfigError(Exception):
    """One or more problems in the config file, each naming its field."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid vpskit config {source}:\n{lines}")


@dataclass(frozen=True)
class Config:
    """vpskit.toml: the one file that says what the host should be.

    Each section below is a TOML table (`[server]`) or a list of tables (`[[apps]]`). Only `server.address` and
    `deploy_user.public_keys` are required; every other field has the default shown. Relative paths are relative
    to the config file; `~` is expanded. A mistake stops the run before any connection is made, with one line per
    problem naming the field. [examples/vpskit.toml](../examples/vpskit.toml) is a complete example.
    """

    server: Server = setting(doc="The host itself and how to reach it.")
    first_login: FirstLogin = setting(FirstLogin, "How a fresh VPS lets you in.")
    deploy_user: DeployUser = setting(DeployUser, "The admin user you log in as after hardening.")
    firewall: Firewall = setting(Firewall, "UFW.")
    ssh: Ssh = setting(Ssh, "sshd hardening.")
    fail2ban: Fail2ban = setting(Fail2ban, "fail2ban's sshd jail.")
    apps: tuple[App, ...] = setting((), "The web apps, one `[[apps]]` table each.")
    postgres: Postgres = setting(Postgres, "The host's PostgreSQL server.")
    backups: Backups = setting(Backups, "Backups and the restore drill.")
    monitor: Monitor = setting(Monitor, "Thresholds of the health report.")
    python: Python = setting(Python, "The apps' Python.")
    nodejs: NodeJS = setting(NodeJS, "Node.js for front-end builds.")
    tls: TLS = setting(TLS, "Certificates for the app domains.")
    web: Web = setting(Web, "Where apps live and how the front proxy serves them.")
    docker: DockerEngine = setting(DockerEngine, "Docker Engine, for compose apps.")
    sysctl: Sysctl = setting(Sysctl, "Kernel and network hardening.")
    base_dir: str = setting(".", "Directory the config file lives in: relative paths are read from here.", internal=True)

    def path(self, p: str) -> Path:
        """A path from the config, with ~ expanded and relative to the config file."""
        path = Path(os.path.expanduser(p))
        return path if path.is_absolute() else Path(self.base_dir) / path

    @property
    def compose_apps(self) -> list[App]:
        return [a for a in self.apps if a.state == "present" and a.is_compose]

    @property
    def wants_docker(self) -> bool:
        """Whether the host gets a Docker Engine."""
        return self.docker.enabled or bool(self.compose_apps)

    def brought_secret(self, source: str) -> str:
        """The value of one ``secrets_from`` source, read now; ValueError saying what is missing (never the value)."""
        kind, _, name = source.partition(":")
        if kind == "env" and name:
            if not os.environ.get(name):
                raise ValueError(f"environment variable {name} is {'empty' if name in os.environ else 'not set'}")
            return os.environ[name]
        if kind == "file" and name:
            path = self.path(name)
            if not path.is_file():
                raise ValueError(f"file {str(path)!r} does not exist")
            value = path.read_text().removesuffix("\n").removesuffix("\r")
            if not value:
                raise ValueError(f"file {str(path)!r} is empty")
            return value
        raise ValueError(f"{source!r} is not 'env:VARIABLE' or 'file:PATH'")

    def brought_secrets(self, app: App) -> dict[str, str]:
        """The app's ``secrets_from``, read on this machine: name -> value."""
        return {name: self.brought_secret(source) for name, source in app.secrets_from.items()}

    def public_keys(self) -> list[str]:
        """The deploy user's public keys, read from their files."""
        keys = []
        for p in self.deploy_user.public_keys:
            for line in self.path(p).read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    keys.append(line.strip())
        return keys
