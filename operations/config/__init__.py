"""The one config model of vpskit: typed sections, each field's default, rule and description, and validation.

The user edits one TOML file (``vpskit.toml``). ``load_config`` reads it, checks every field and returns a
``Config``; every problem found is reported at once, one line per field, as a ``ConfigError``. Nothing here
touches a host: ``inventory.py`` calls it before pyinfra makes any connection.

Layout:

- ``schema``: ``setting(default, description, choices=..., minimum=..., pattern=...)``, the one place a field is
  declared, and the checks that follow from it;
- ``host``, ``apps``, ``stack``: the sections, as frozen dataclasses; ``model``: the whole ``Config``;
- ``checks``: one module per section with the rules that involve more than one field;
- ``loader``: TOML to dataclasses, and the file reads;
- ``reference``: docs/config.md, generated from the schema.

Adding a field is one declaration in its section class, e.g. in ``Ssh``::

    max_sessions: int = setting(10, "Sessions per connection.", minimum=1, maximum=100)

then ``make docs``. A rule that involves other fields or files goes into that section's module in ``checks``.
"""

from .apps import App, AppBackup, BasicAuth, ContainerDatabase, Database, Job
from .checks import is_cron_schedule, is_domain, is_port, validate
from .host import (
    DeployUser,
    Fail2ban,
    Firewall,
    FirewallRule,
    FirstLogin,
    Server,
    Ssh,
    Sysctl,
)
from .loader import CONFIG_ENV, DEFAULT_CONFIG_FILE, config_path, load_config, parse_config
from .model import Config, ConfigError
from .schema import allowed, setting
from .stack import TLS, Backups, DockerEngine, Monitor, NodeJS, Notifier, Offsite, Postgres, Python, Web

# gunicorn's worker classes an app may ask for (the choices of ``App.worker_class``).
WORKER_CLASSES = allowed(App, "worker_class")

__all__ = [
    "CONFIG_ENV", "DEFAULT_CONFIG_FILE",
    "TLS", "WORKER_CLASSES", "App", "AppBackup", "Backups", "BasicAuth", "Config", "ConfigError",
    "ContainerDatabase", "Database", "DeployUser", "DockerEngine", "Fail2ban", "Firewall", "FirewallRule",
    "FirstLogin", "Job", "Monitor", "NodeJS", "Notifier", "Offsite", "Postgres", "Python", "Server", "Ssh", "Sysctl", "Web", "allowed",
    "config_path", "is_cron_schedule", "is_domain", "is_port", "load_config", "parse_config", "setting",
    "validate",
]  # fmt: skip
