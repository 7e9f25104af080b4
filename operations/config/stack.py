"""Config sections of the services the apps share: runtimes, TLS, the front proxy, Docker, PostgreSQL, backups, health."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .calendar import is_calendar
from .schema import ABSOLUTE, ENV_NAME, PORT, PYTHON_VERSION, setting

# systemd OnCalendar: weekdays, dates, times, ranges, lists, repetitions, shorthands and a timezone.
CALENDAR = r"(?=.*\S)[A-Za-z0-9*,./:~+_ -]+$"
CALENDAR_EXPECT = "a systemd calendar like '*-*-* 02:00:00' or 'Sun *-*-* 23:59:00'"
# The rule of an OnCalendar field: the characters, then the parser (``calendar.py``).
CALENDAR_RULE = {"pattern": "^" + CALENDAR, "expect": CALENDAR_EXPECT, "valid": is_calendar}


@dataclass(frozen=True)
class Python:
    """The Python runtime the apps run on."""

    version: str = setting(
        "",
        "Python for the apps that do not set their own. Empty: the distro's python3. Another version comes from the "
        "deadsnakes PPA on Ubuntu; on Debian the run stops before touching the host, naming the version it can have.",
        **PYTHON_VERSION,
    )


@dataclass(frozen=True)
class NodeJS:
    """Node.js, installed only when an app has a front-end `build`."""

    source: str = setting(
        "distro",
        "`distro` (the distro's nodejs) or `nodesource` (NodeSource's apt repository, which includes npm).",
        choices=("distro", "nodesource"),
    )
    version: int = setting(
        22,
        "NodeSource major version.",
        minimum=18,
        error="must be a Node.js major version (18 or later), got {value}",
    )
    npm: bool = setting(True, 'With `source = "distro"`: also install the distro\'s npm.')


@dataclass(frozen=True)
class TLS:
    """HTTPS certificates for the app domains."""

    mode: str = setting(
        "letsencrypt",
        "`letsencrypt`: one certificate per app (all its domains) by ACME http-01; `selfsigned`: for hosts without public DNS.",
        choices=("letsencrypt", "selfsigned"),
    )
    email: str = setting(
        "",
        "Account e-mail for expiry notices; empty: register without one.",
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        expect="an e-mail address",
    )
    staging: bool = setting(False, "Use Let's Encrypt's staging server (untrusted test certificates).")
    acme_server: str = setting(
        "",
        "ACME directory URL of another CA; overrides `staging`. Changing it gets new certificates on the next run.",
        pattern=r"^https://\S+$",
        expect="an https:// ACME directory URL",
        error="must be an https:// ACME directory URL, got {value!r}",
    )
    acme_ca_bundle: str = setting(
        "",
        "CA bundle file on the host trusted for the ACME server's own HTTPS (a private CA), renewals included.",
        pattern=ABSOLUTE,
        expect="an absolute path on the host",
        error="must be an absolute path on the host, got {value!r}",
    )
    hsts_max_age: int = setting(63072000, "`Strict-Transport-Security` max-age (two years); 0: no HSTS header.", minimum=0, unit="seconds")


@dataclass(frozen=True)
class Web:
    """Where apps live on the host and how the front proxy (nginx or Caddy) serves them."""

    apps_dir: str = setting("/srv/apps", "Where each app lives: `<apps_dir>/<app>/{src,venv,data,.env}`.")
    log_dir: str = setting("/var/log/apps", "gunicorn's logs: `<log_dir>/<app>/{access,error}.log`, rotated weekly.")
    site_template: str = setting(
        "",
        "Jinja2 file (on the controller) replacing vpskit's nginx site template (`templates/nginx-site.conf.j2` shows the variables).",
    )
    ipv6: bool = setting(True, "Also listen on IPv6.")
    proxy: str = setting(
        "nginx",
        "The front proxy on 80/443 for every app with domains: `nginx` (certificates from certbot) or `caddy` (its "
        "own ACME client). The other one is stopped and disabled.",
        choices=("nginx", "caddy"),
    )
    caddyfile_template: str = setting(
        "",
        "Jinja2 file (on the controller) replacing vpskit's Caddyfile template (`templates/Caddyfile.j2` shows the variables).",
    )
    rate_limits: dict[str, str] = setting(
        {},
        'Named request-rate zones, per client address, that routes use by name (`rate_limit = "api"`): '
        '`{ api = "10r/s", general = "30r/s" }` (`r/s` or `r/m`); each app counts its own requests. nginx only: the '
        "distro's Caddy has no rate limiting.",
    )


@dataclass(frozen=True)
class DockerEngine:
    """Docker Engine: installed when an app has `kind = "compose"` or when `enabled`.

    What it does on the host, and why the docker group and published ports need care:
    [docs/containers.md](containers.md).
    """

    enabled: bool = setting(False, "Install the engine even without compose apps.")
    source: str = setting(
        "docker",
        "`docker`: Docker's apt repository (key pinned), with the compose and buildx plugins; `distro`: the distro's "
        "docker.io (Debian 12 has no compose v2 there; see docs/distros.md).",
        choices=("docker", "distro"),
    )
    log_max_size: str = setting(
        "100m",
        "daemon.json: each container's json-file log is rotated at this size ...",
        pattern=r"^\d+[kmg]$",
        expect="a size like '100m' (k, m or g)",
        error="must be a size like '100m' (k, m or g), got {value!r}",
    )
    log_max_file: int = setting(3, "... keeping this many files.", minimum=1)
    storage_driver: str = setting(
        "",
        "daemon.json `storage-driver`; empty: the engine's default (overlay2).",
        choices=("overlay2", "fuse-overlayfs", "btrfs", "zfs", "vfs"),
        error="must be empty (the engine's default) or one of {choices}, got {value!r}",
    )
    deploy_user_in_group: bool = setting(False, "Put the deploy user in the docker group. **The docker group is root-equivalent.**")


@dataclass(frozen=True)
class Postgres:
    """The host's PostgreSQL server: the distro's version, on loopback only, with SCRAM password hashes.

    Installed only when an app has `database.engine = "postgresql"`.
    """

    port: int = setting(5432, "Port PostgreSQL listens on (loopback only).", **PORT)


@dataclass(frozen=True)
class Offsite:
    """Encrypted, deduplicated copies of the backups on another machine, made with the distro's restic after each
    backup run: the dump directory, each app's `backup.paths`, and vpskit's host secrets (each app's `.env`, the
    database passwords). How to bring a lost host back from them: [docs/recovery.md](recovery.md)."""

    repository: str = setting(
        "",
        "restic repository: `sftp:user@host:/path` (or `sftp://user@host:port//path`), `s3:https://endpoint/bucket/path`, "
        "`rest:https://host:8000/path`, or an absolute local path. Empty: no off-host copies.",
        pattern=r"^(\Z|sftp:\S+|s3:\S+|rest:https?://\S+|/\S*)$",
        expect="a restic repository (sftp:..., s3:..., rest:https://... or an absolute path)",
    )
    env: tuple[str, ...] = setting(
        (),
        "Names of environment variables on the machine running pyinfra whose values the repository needs "
        '(`["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]`); set on the host under the same names, root-only.',
        pattern=ENV_NAME,
        expect="an environment variable name",
    )
    ssh_key: str = setting(
        "",
        "`sftp:` repositories: private key file (on the controller) that logs in to the SFTP server; uploaded root-only. "
        "Empty: root's own SSH keys and config on the host.",
    )
    password_file: str = setting(
        "vpskit-offsite.password",
        "File beside the config holding the repository password: generated (mode 600) on the first run when missing. "
        "**Keep a copy elsewhere**: without it the off-host copies cannot be read.",
    )
    keep_daily: int = setting(7, "Snapshots kept: the newest of each of this many days ...", minimum=0)
    keep_weekly: int = setting(4, "... of this many weeks ...", minimum=0)
    keep_monthly: int = setting(6, "... and of this many months (`restic forget --prune` after each copy).", minimum=0)
    check_schedule: str = setting(
        "Sun *-*-* 05:00:00",
        "systemd OnCalendar of `restic check --read-data-subset`, which reads a sample of the data back.",
        **CALENDAR_RULE,
    )
    check_subset: str = setting(
        "5%",
        "Share of the repository's data read back by each check.",
        pattern=r"^(100|[1-9][0-9]?)(\.[0-9]+)?%$",
        expect="a percentage like '5%'",
    )
    restore: bool = setting(
        False,
        "Disaster recovery: on a host with no vpskit data yet, restore secrets, databases and app data from the newest "
        "snapshot before the apps start. Never acts on a host that has data.",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.repository)


@dataclass(frozen=True)
class Backups:
    """Host-wide backup settings: where, when, how long, and the restore drill ([docs/data.md](data.md))."""

    dir: str = setting("/var/backups/vpskit", "Root-only directory (mode 700) holding one sub-directory per backup item.")
    schedule: str = setting(
        "*-*-* 02:00:00",
        "systemd OnCalendar of the backup run; missed runs are caught up at boot.",
        **CALENDAR_RULE,
    )
    keep_days: int = setting(
        7,
        "Backups older than this are deleted after a good run; the newest good one of an item never is.",
        minimum=1,
        unit="days",
    )
    drill_schedule: str = setting(
        "Sun *-*-* 04:00:00",
        "systemd OnCalendar of the restore drill into a scratch database; empty: no drill.",
        pattern=r"^(\Z|" + CALENDAR + ")",
        expect=CALENDAR_EXPECT + ", or empty",
        error="{value!r} is not " + CALENDAR_EXPECT,
        valid=is_calendar,
    )
    offsite: Offsite = setting(Offsite, "Off-host copies with restic, a `[backups.offsite]` table.")


@dataclass(frozen=True)
class Notifier:
    """One place a health notification goes: a webhook (generic JSON, Slack, Discord, ntfy) or e-mail over SMTP."""

    kind: str = setting(
        doc="`webhook` (JSON POST), `slack`, `discord`, `ntfy` (the topic URL) or `email`.",
        choices=("webhook", "slack", "discord", "ntfy", "email"),
    )
    url: str = setting("", "webhook, slack, discord, ntfy: the http(s) URL the message is POSTed to.")
    smtp_host: str = setting("", "email: the SMTP relay's host name or address.")
    smtp_port: int = setting(587, "email: the relay's port.", **PORT)
    smtp_security: str = setting(
        "starttls", "email: `starttls`, `ssl` (SMTPS, usually port 465) or `none` (no login allowed then).",
        choices=("starttls", "ssl", "none"),
    )  # fmt: skip
    smtp_user: str = setting("", "email: the relay login; empty: no login.")
    password_env: str = setting(
        "", "email: name of the environment variable, on the machine running pyinfra, that holds the relay password.",
        pattern=ENV_NAME, expect="an environment variable name",
    )  # fmt: skip
    mail_from: str = setting("", "email: the sender address.")
    mail_to: tuple[str, ...] = setting((), "email: the recipient addresses.")

    def password(self) -> str:
        """The relay password, from the environment at run time (never from the config file)."""
        return os.environ.get(self.password_env, "") if self.password_env else ""


# What Prometheus, Alertmanager and the exporters take on 127.0.0.1 (operations/prometheus.py), and nginx's stub_status.
PROMETHEUS_PORTS = (9090, 9093, 9100, 9115, 9187, 9113, 3903, 8089)
PERCENT = dict(minimum=1, maximum=100, unit="percent", error="must be a percentage 1-100, got {value}")


@dataclass(frozen=True)
class Alerts:
    """Thresholds of Prometheus's alert rules (with `prometheus = true`). Backup age and certificate expiry use
    `max_backup_age_hours` and `min_cert_days`, the disk alert the mount points in `disks`, like the health report."""

    cpu_percent: int = setting(80, "CPU busy (all cores) above this ...", **PERCENT)
    memory_percent: int = setting(85, "... memory in use above this ...", **PERCENT)
    disk_percent: int = setting(80, "... a filesystem of `disks` used above this ...", **PERCENT)
    for_minutes: int = setting(5, "... for this long fires an alert.", minimum=0, unit="minutes")
    app_down_minutes: int = setting(2, "An app's health URL failing its probe this long fires `AppDown`.", minimum=0, unit="minutes")
    error_rate_percent: int = setting(
        5, "nginx as the front proxy: 5xx answers above this share of all over 5 minutes (for `for_minutes`) fires `HighErrorRate`.",
        **PERCENT,
    )  # fmt: skip


@dataclass(frozen=True)
class Monitor:
    """Thresholds of the health report (`vpskit-health` on the host), its schedule and notifiers, and Prometheus."""

    max_load_per_core: float = setting(2.0, "Highest 5-minute load average per CPU core that still counts as healthy.")
    min_memory_available: int = setting(
        10, "Lowest share of memory available.", minimum=0, maximum=100, unit="percent",
        error="must be a percentage 0-100, got {value}",
    )  # fmt: skip
    max_disk_used: int = setting(
        90, "Highest usage of each checked filesystem.", minimum=0, maximum=100, unit="percent",
        error="must be a percentage 0-100, got {value}",
    )  # fmt: skip
    disks: tuple[str, ...] = setting(
        ("/",),
        "Mount points whose usage is checked.",
        pattern=ABSOLUTE,
        expect="an absolute mount point",
        error="must be an absolute mount point, got {value!r}",
    )
    max_backup_age_hours: int = setting(26, "Oldest acceptable newest backup of each item.", minimum=1, unit="hours")
    min_cert_days: int = setting(14, "Fewest days a TLS certificate may have left.", minimum=1, unit="days")
    journal_hours: int = setting(24, "How far back error-level journal lines are listed (as a warning).", minimum=1, unit="hours")
    schedule: str = setting(
        "*:0/5", "systemd OnCalendar of the scheduled check that notifies on changes (every 5 minutes).", **CALENDAR_RULE
    )
    remind_hours: int = setting(
        24,
        "While an item stays failing, remind at most this often; also how long a recovered item that fails again "
        "counts as flapping (no new message).",
        minimum=1, unit="hours",
    )  # fmt: skip
    notify: tuple[Notifier, ...] = setting(
        (), "Where notifications go, one `[[monitor.notify]]` table each; empty: state changes only go to the journal."
    )
    prometheus: bool = setting(
        False,
        "Also run Prometheus, Alertmanager and the exporters from the distro's packages, on 127.0.0.1 only; alerts go to "
        "the same notifiers ([docs/monitoring.md](monitoring.md#prometheus)). Turning it off stops and disables them.",
    )
    prometheus_retention: str = setting(
        "15d", "How long Prometheus keeps samples ...",
        pattern=r"^[1-9][0-9]*(h|d|w|y)$", expect="a duration like '15d' (h, d, w or y)",
    )  # fmt: skip
    prometheus_retention_size: str = setting(
        "2GB", "... and the most disk they may take (the oldest go first).",
        pattern=r"^[1-9][0-9]*(MB|GB|TB)$", expect="a size like '2GB' (MB, GB or TB)",
    )  # fmt: skip
    alerts: Alerts = setting(Alerts, "Alert rule thresholds, a `[monitor.alerts]` table.")
