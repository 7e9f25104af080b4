"""The health report: one command on the host (vpskit-health) that exits non-zero when something is wrong.

The script (files/vpskit-health) reads what to check from /etc/vpskit/health.json,
which ``health_report`` writes from explicit arguments: thresholds, the units that
must run, the apps with their unit and health URL, and the backup items.
``health_notifiers`` writes where notifications go (root-only: webhook URLs and the
SMTP relay password are secrets), and ``health_timer`` runs ``vpskit-health --notify``
on a schedule, which tells them when the host's state changes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from pyinfra.api import deploy

from .backup import CONFIG_DIR, STATUS_DIR
from .batched import directory_present
from .config import Notifier
from .contribution import Contribution
from .render import FILES_DIR
from .schedule import timer_service
from .validated import checked_file

HEALTH_SCRIPT = "/usr/local/bin/vpskit-health"
HEALTH_CONF = f"{CONFIG_DIR}/health.json"
# Checked when installed: a host without them is not unhealthy.
OPTIONAL_UNITS = ("nginx.service", "fail2ban.service")
CERT_GLOB = "/etc/letsencrypt/live/*/cert.pem"
# Caddy's storage as the caddy package runs it (user caddy, home /var/lib/caddy, no XDG_DATA_HOME):
# one directory per issuer, one per certificate in it.
CADDY_CERT_DIR = "/var/lib/caddy/.local/share/caddy/certificates"
NOTIFY_CONF = f"{CONFIG_DIR}/notify.json"
HEALTH_UNIT = "vpskit-health"


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


@dataclass(frozen=True)
class Thresholds:
    """Where the report draws the line between healthy and failing."""

    # Highest 5-minute load average per CPU core.
    max_load_per_core: float = 2.0
    # Lowest share of memory available, percent.
    min_memory_available: int = 10
    # Mount points checked, and their highest usage in percent.
    disks: tuple[str, ...] = ("/",)
    max_disk_used: int = 90
    # Oldest acceptable newest backup of each item.
    max_backup_age_hours: int = 26
    # Fewest days a TLS certificate may have left.
    min_cert_days: int = 14
    # How far back error-level journal lines are listed.
    journal_hours: int = 24
    # While an item stays failing, remind at most this often.
    remind_hours: int = 24


def health_settings(
    apps: list[AppCheck],
    units: list[str],
    backup_items: list[str],
    drill_items: list[str],
    offsite: bool = False,
    limits: Thresholds = Thresholds(),
    metrics_file: str = "",
    caddy: bool = False,
) -> dict:
    """The content of health.json: what to check, and the ``limits`` of healthy.

    ``metrics_file``: where each scheduled check also writes the backup times as Prometheus text
    (the node exporter's textfile collector reads it); empty: nowhere.
    ``caddy``: Caddy is the front proxy, so its certificates are checked instead of certbot's, and
    nginx (stopped then) is not.
    """
    return {
        "max_load_per_core": limits.max_load_per_core,
        "min_memory_available": limits.min_memory_available,
        "disks": list(limits.disks),
        "max_disk_used": limits.max_disk_used,
        "units": list(units),
        "optional_units": [u for u in OPTIONAL_UNITS if u not in units and not (caddy and u == "nginx.service")],
        "apps": [asdict(a) for a in apps],
        "backup_items": list(backup_items),
        "drill_items": list(drill_items),
        "offsite": offsite,
        "status_dir": STATUS_DIR,
        "max_backup_age_hours": limits.max_backup_age_hours,
        "cert_glob": "" if caddy else CERT_GLOB,
        "caddy_cert_dir": CADDY_CERT_DIR if caddy else "",
        "min_cert_days": limits.min_cert_days,
        "journal_hours": limits.journal_hours,
        "remind_hours": limits.remind_hours,
        "metrics_file": metrics_file,
    }


def contribution() -> Contribution:
    """The scheduled check's timer, which the health report watches too."""
    return Contribution(units=(f"{HEALTH_UNIT}.timer",))


def notifier_settings(notify: tuple[Notifier, ...]) -> list[dict]:
    """The content of notify.json: each notifier's fields, a label naming it, and the relay password."""
    settings = []
    for i, n in enumerate(notify):
        where = urlsplit(n.url).hostname if n.url else n.smtp_host
        entry = {"label": f"monitor.notify[{i}] ({n.kind} {where})", "kind": n.kind}
        if n.kind == "email":
            entry.update(
                smtp_host=n.smtp_host, smtp_port=n.smtp_port, smtp_security=n.smtp_security, smtp_user=n.smtp_user,
                password=n.password(), mail_from=n.mail_from, mail_to=list(n.mail_to),
            )  # fmt: skip
        else:
            entry["url"] = n.url
        settings.append(entry)
    return settings


def health_monitoring(settings: dict, notifiers: list[dict], schedule: str):
    """
    Ensure the health report, its notifiers and its timer: ``health_report``, ``health_notifiers``, ``health_timer``.

    + settings: the report's ``health_settings``
    + notifiers: ``notifier_settings`` of where state changes go
    + schedule: systemd OnCalendar of the scheduled check

    **Example:**

    .. code:: python

        health_monitoring(health_settings([], ["nginx.service"], [], []), [], "*:0/5")
    """
    health_report(settings)
    health_notifiers(notifiers)
    health_timer(schedule)


@deploy("Health report")
def health_report(settings: dict):
    """
    Ensure the ``vpskit-health`` command is installed with what it must check.

    + settings: the report's config (``health_settings(...)``)

    **Example:**

    .. code:: python

        health_report(health_settings(apps=[AppCheck("dibby", "app-dibby.service")], units=["postgresql.service"],
                                      backup_items=["dibby"], drill_items=["dibby"], limits=Thresholds(max_disk_used=80)))
    """
    directory_present(name="vpskit config directory", path=CONFIG_DIR, mode="755", user="root", group="root")
    checked_file(name="Health report command", content=(FILES_DIR / "vpskit-health").read_bytes(), dest=HEALTH_SCRIPT, mode="755")
    _json_file("What the health report checks", HEALTH_CONF, settings, mode="644")


def _json_file(name: str, dest: str, data, mode: str):
    """``data`` as a JSON file at ``dest``, checked by the host's Python before it goes live (content never printed)."""
    checked_file(
        name=name,
        dest=dest,
        content=json.dumps(data, indent=2, sort_keys=True) + "\n",
        validate="python3 -m json.tool {path} >/dev/null",
        mode=mode,
    )


@deploy("Health notifiers")
def health_notifiers(notifiers: list[dict]):
    """
    Ensure the notifiers ``vpskit-health --notify`` uses are in place, readable by root only.

    The file holds webhook URLs and the SMTP relay password: it is never printed.

    + notifiers: one dict per notifier (``notifier_settings(...)``): ``label``, ``kind``, and ``url``
      or ``smtp_host``, ``smtp_port``, ``smtp_security``, ``smtp_user``, ``password``, ``mail_from``, ``mail_to``

    **Example:**

    .. code:: python

        health_notifiers([{"label": "ops", "kind": "slack", "url": "https://hooks.slack.com/services/T0/B0/x"}])
    """
    _json_file("Where health notifications go", NOTIFY_CONF, notifiers, mode="600")


@deploy("Scheduled health check")
def health_timer(schedule: str):
    """
    Ensure a systemd timer runs ``vpskit-health --notify`` on ``schedule``.

    + schedule: systemd OnCalendar expression (``*:0/5``: every 5 minutes)

    **Example:**

    .. code:: python

        health_timer("*:0/5")
    """
    timer_service(
        unit=HEALTH_UNIT,
        description="vpskit health check: notify on changes",
        schedule=schedule,
        exec_start=f"{HEALTH_SCRIPT} --notify",
        # On time to the second: a 30 s schedule must not drift by systemd's default minute.
        accuracy="1s",
    )
