"""The health report: one command on the host (vpskit-health) that exits non-zero when something is wrong.

The script (files/vpskit-health) reads what to check from /etc/vpskit/health.json,
which ``health_report`` writes from explicit arguments: thresholds, the units that
must run, the apps with their unit and health URL, and the backup items.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from pyinfra.api import deploy
from pyinfra.operations import files

from .backup import CONFIG_DIR, STATUS_DIR
from .config import Monitor
from .render import FILES_DIR
from .validated import checked_file

HEALTH_SCRIPT = "/usr/local/bin/vpskit-health"
HEALTH_CONF = f"{CONFIG_DIR}/health.json"
# Checked when installed: a host without them is not unhealthy.
OPTIONAL_UNITS = ("nginx.service", "fail2ban.service")
CERT_GLOB = "/etc/letsencrypt/live/*/cert.pem"


@dataclass(frozen=True)
class AppCheck:
    """How the report checks one app: its systemd unit, and a URL answered through the front proxy."""

    name: str
    # '' for a compose app (no unit of its own; docker.service is checked with the units).
    unit: str
    # GET this URL (redirects not followed); any status below 400 is healthy. Empty: no HTTP check.
    url: str = ""
    # Host header and TLS server name for ``url`` (the app's domain when url points at 127.0.0.1).
    host: str = ""
    # The site is behind HTTP basic auth: its 401 means it answers.
    basic_auth: bool = False


def health_settings(
    monitor: Monitor,
    apps: list[AppCheck],
    units: list[str],
    backup_items: list[str],
    drill_items: list[str],
) -> dict:
    """The content of health.json: thresholds from ``monitor`` and what to check."""
    return {
        "max_load_per_core": monitor.max_load_per_core,
        "min_memory_available": monitor.min_memory_available,
        "disks": list(monitor.disks),
        "max_disk_used": monitor.max_disk_used,
        "units": list(units),
        "optional_units": [u for u in OPTIONAL_UNITS if u not in units],
        "apps": [asdict(a) for a in apps],
        "backup_items": list(backup_items),
        "drill_items": list(drill_items),
        "status_dir": STATUS_DIR,
        "max_backup_age_hours": monitor.max_backup_age_hours,
        "cert_glob": CERT_GLOB,
        "min_cert_days": monitor.min_cert_days,
        "journal_hours": monitor.journal_hours,
    }


@deploy("Health report")
def health_report(settings: dict):
    """
    Ensure the ``vpskit-health`` command is installed with what it must check.

    + settings: the report's config (``health_settings(...)``)

    **Example:**

    .. code:: python

        health_report(health_settings(Monitor(), apps=[AppCheck("dibby", "app-dibby.service")],
                                      units=["postgresql.service"], backup_items=["dibby"], drill_items=["dibby"]))
    """
    files.directory(name="vpskit config directory", path=CONFIG_DIR, mode="755", user="root", group="root")
    checked_file(name="Health report command", content=(FILES_DIR / "vpskit-health").read_bytes(), dest=HEALTH_SCRIPT, mode="755")
    checked_file(
        name="What the health report checks",
        dest=HEALTH_CONF,
        content=json.dumps(settings, indent=2, sort_keys=True) + "\n",
        validate="python3 -m json.tool {path} >/dev/null",
        mode="644",
    )
