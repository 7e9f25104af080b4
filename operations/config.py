"""The one config model of vpskit: typed dataclasses, defaults, validation.

The user edits one TOML file (``vpskit.toml``). ``load_config`` reads it,
checks every field and returns a ``Config``; every problem found is reported
at once, one line per field, as a ``ConfigError``. Nothing here touches a host:
``inventory.py`` calls it before pyinfra makes any connection.

Defaults live in the dataclass fields below and nowhere else.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_ENV = "VPSKIT_CONFIG"
DEFAULT_CONFIG_FILE = "vpskit.toml"


class ConfigError(Exception):
    """One or more problems in the config file, each naming its field."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid vpskit config {source}:\n{lines}")


# ---------------------------------------------------------------- the model


@dataclass(frozen=True)
class FirewallRule:
    """A port to open in the firewall beyond SSH, 80 and 443."""

    port: int
    proto: str = "tcp"
    source: str = ""  # empty: from anywhere
    comment: str = ""


@dataclass(frozen=True)
class Firewall:
    """UFW: deny incoming except SSH, 80, 443 and the rules listed in ``allow``."""

    enabled: bool = True
    allow: tuple[FirewallRule, ...] = ()
    # ufw's "limit" on the SSH port (6 connections / 30 s per address). Off by
    # default: it throttles the deploy's own connections.
    ssh_limit: bool = False


WEAK_ALGORITHM_PARTS = ("sha1", "-cbc", "md5", "umac-64", "arcfour", "3des", "ssh-rsa", "ssh-dss")


@dataclass(frozen=True)
class Ssh:
    """sshd hardening; the port is ``server.ssh_port``."""

    permit_root_login: str = "no"
    password_authentication: bool = False
    kbd_interactive_authentication: bool = False
    permit_empty_passwords: bool = False
    x11_forwarding: bool = False
    max_auth_tries: int = 3
    client_alive_interval: int = 300
    client_alive_count_max: int = 3
    login_grace_time: int = 30
    # Users allowed to log in; empty: the deploy user only.
    allow_users: tuple[str, ...] = ()
    # Algorithm lists; empty: those of ssh-audit's hardened policy for the host's
    # release (operations/sshpolicy.py), cut down to what its OpenSSH supports.
    kex_algorithms: tuple[str, ...] = ()
    ciphers: tuple[str, ...] = ()
    macs: tuple[str, ...] = ()
    host_key_algorithms: tuple[str, ...] = ()
    # More sshd options, written as they are: {AllowTcpForwarding = "no"}.
    extra: dict[str, str] = field(default_factory=dict)
    # Seconds after which an on-host timer restores the previous sshd and UFW
    # state if a port move is not proven by a fresh login first.
    revert_after: int = 300


@dataclass(frozen=True)
class Fail2ban:
    """fail2ban's sshd jail (the guide's values)."""

    enabled: bool = True
    bantime: int = 86400
    findtime: int = 600
    maxretry: int = 5
    # Addresses never banned besides loopback (your office, your CI).
    ignoreip: tuple[str, ...] = ()


@dataclass(frozen=True)
class FirstLogin:
    """How a fresh VPS lets you in before vpskit has run: usually root on 22."""

    user: str = "root"
    # The port sshd listens on before hardening, as the host sees it.
    port: int = 22
    # The port the controller dials to reach it (NAT port forwards); 0: same.
    reach_port: int = 0
    # Private key the controller uses; empty: ssh-agent / ~/.ssh defaults.
    key: str = ""
    # Name of an environment variable holding the password, for providers
    # that mail you a root password instead of installing your key.
    password_env: str = ""

    @property
    def reach(self) -> int:
        return self.reach_port or self.port


@dataclass(frozen=True)
class DeployUser:
    """The admin/deploy user that owns the apps and logs in after hardening."""

    name: str = "appuser"
    # Public key files (on the machine running pyinfra) for authorized_keys.
    public_keys: tuple[str, ...] = ()
    # Private key the controller uses to log in as this user; empty: agent/defaults.
    private_key: str = ""
    shell: str = "/bin/bash"
    passwordless_sudo: bool = True
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Server:
    """The host itself and how to reach it."""

    # IP or DNS name of the VPS, or a pyinfra connector such as @docker/NAME.
    address: str
    hostname: str = ""
    timezone: str = "Etc/UTC"
    # The port sshd listens on once hardened.
    ssh_port: int = 22
    # The port the controller dials to reach ssh_port (NAT port forwards); 0: same.
    ssh_reach_port: int = 0
    # known_hosts file pyinfra uses for this host; empty: ~/.ssh/known_hosts.
    known_hosts_file: str = ""
    packages: tuple[str, ...] = ()
    # "full" (apt dist-upgrade), "safe" (apt upgrade) or "none".
    upgrade: str = "full"
    apt_cache_hours: int = 24
    unattended_upgrades: bool = True
    unattended_reboot: bool = False
    unattended_reboot_time: str = "04:00"
    # How long apt waits for a dpkg lock held by the VPS's own first-boot upgrades.
    apt_lock_timeout: int = 600

    @property
    def uses_ssh(self) -> bool:
        return not self.address.startswith("@")

    @property
    def reach_port(self) -> int:
        return self.ssh_reach_port or self.ssh_port


@dataclass(frozen=True)
class Database:
    """An app's database: its own PostgreSQL database and role, a SQLite file, or none."""

    # "postgresql", "sqlite" or "none".
    engine: str = "none"
    # PostgreSQL database name; empty: the app name with "-" as "_".
    name: str = ""
    # PostgreSQL role (login user) owning that database; empty: same as the database name.
    role: str = ""
    # pip requirement installed in the app's venv for this engine; empty: none.
    driver: str = "psycopg2-binary"
    # SQLite: absolute path of the database file (required for engine "sqlite").
    path: str = ""

    @property
    def uses_postgres(self) -> bool:
        return self.engine == "postgresql"


@dataclass(frozen=True)
class AppBackup:
    """What of one app is backed up besides its database."""

    # Back up this app's database (and paths) at all.
    enabled: bool = True
    # Absolute directories (uploads, media) archived with each backup run.
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Job:
    """A scheduled task of one app: a systemd timer + oneshot service, or a cron entry."""

    # Short name, unique within the app: the unit is <app>-<name>.timer / the cron file vpskit-<app>-<name>.
    name: str
    # timer: systemd OnCalendar ("Sun *-*-* 23:59:00"); cron: five fields ("*/5 * * * *") or @daily & co.
    schedule: str
    # Shell command. timer: run in the app's directory with its venv first on PATH and its env files;
    # cron: run as-is by /bin/sh in the app's directory.
    command: str
    # "timer" or "cron".
    kind: str = "timer"
    # Unix user the command runs as; empty: the deploy user.
    user: str = ""


@dataclass(frozen=True)
class ContainerDatabase:
    """A database running in one of a compose app's containers, backed up with ``docker exec``."""

    # The compose service the database runs in.
    service: str
    # Database name inside that service.
    name: str
    # "postgresql" (pg_dump) or "mysql" (mysqldump; MySQL or MariaDB).
    engine: str = "postgresql"
    # PostgreSQL: the role pg_dump connects as over the container's local socket.
    # MySQL: the user; its password is read from MYSQL_ROOT_PASSWORD (root) or MYSQL_PASSWORD in the container.
    user: str = "postgres"


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic auth in front of an app's site (Caddy only)."""

    user: str
    # bcrypt hash of the password (``caddy hash-password``), never the password itself.
    hash: str


@dataclass(frozen=True)
class App:
    """One web app: a git checkout in its own venv, a gunicorn unit on a loopback port, an nginx site.

    With ``kind = "compose"`` the checkout is a Docker Compose project instead, run by the host's Docker Engine.
    """

    name: str
    # Loopback port gunicorn binds (127.0.0.1:port); nginx proxies to it.
    port: int
    # Names nginx serves and the certificate covers; the first is the main one. Empty: no site.
    domains: tuple[str, ...] = ()
    # Git URL the deploy user clones (https://, ssh:// or git@host:path, file://).
    # Empty: vpskit deploys no code for this app (only what other sections give it).
    repo: str = ""
    # Branch or tag to check out.
    branch: str = "main"
    kind: str = "flask"
    state: str = "present"
    # Python version ("3.12"); empty: the [python] version.
    python: str = ""
    # Private key file (on the controller) that may read the repo; empty: none needed.
    deploy_key: str = ""
    # WSGI/ASGI entry point gunicorn loads, "module:variable".
    entry: str = "app:app"
    # sync, gthread, eventlet (Flask-SocketIO), gevent, uvicorn (FastAPI/ASGI); empty: by kind.
    worker_class: str = ""
    # 0: (2 x CPU cores) + 1, capped by memory (1 for eventlet/gevent).
    workers: int = 0
    threads: int = 1
    timeout: int = 30
    # Environment for the app, written to its .env (mode 600).
    env: dict[str, str] = field(default_factory=dict)
    # Names of secrets generated once on the first deploy and kept in .env.
    secrets: tuple[str, ...] = ("SECRET_KEY",)
    # pip requirements file in the repo; installed when it changes.
    requirements: str = "requirements.txt"
    # Run in the checkout (venv on PATH, .env loaded) when the code changed.
    migrate: str = ""
    # Run once, after the first migration.
    seed: str = ""
    # Front-end build command (needs Node.js), run in build_dir when the code changed.
    build: str = ""
    build_dir: str = "."
    # Directory in the repo nginx serves at static_url; empty: none.
    static_dir: str = ""
    static_url: str = "/static/"
    # nginx client_max_body_size.
    max_body_size: str = "10m"
    # nginx request rate limit per client address, e.g. "10r/s"; empty: none.
    rate_limit: str = ""
    rate_burst: int = 20
    # With state = "absent": also delete the app's code, data and logs.
    purge: bool = False
    database: Database = field(default_factory=Database)
    backup: AppBackup = field(default_factory=AppBackup)
    jobs: tuple[Job, ...] = ()
    # kind = "compose": the compose file in the repo (required for such apps).
    compose_file: str = ""
    # kind = "compose": the service migrate and seed run in (docker compose exec -T SERVICE ...).
    service: str = ""
    # kind = "compose": services whose published ports may be reachable from outside (UFW does not guard them).
    public_services: tuple[str, ...] = ()
    # kind = "compose": seconds to wait for every service to run (and be healthy, where it has a healthcheck).
    health_timeout: int = 120
    # kind = "compose": databases in its containers, backed up like the host's.
    container_databases: tuple[ContainerDatabase, ...] = ()
    # Caddy only: a second upstream ("127.0.0.1:5003") serving /api/* with the prefix stripped.
    api_upstream: str = ""
    # Caddy only: HTTP basic auth for the whole site.
    basic_auth: BasicAuth | None = None

    @property
    def is_compose(self) -> bool:
        return self.kind == "compose"

    @property
    def db_name(self) -> str:
        """The PostgreSQL database of this app (explicit, or derived from the app name)."""
        return self.database.name or self.name.replace("-", "_")

    @property
    def db_role(self) -> str:
        """The PostgreSQL role of this app (explicit, or the database name)."""
        return self.database.role or self.db_name


@dataclass(frozen=True)
class Postgres:
    """The host's PostgreSQL server: the distro's version, on loopback only."""

    port: int = 5432


@dataclass(frozen=True)
class Backups:
    """Host-wide backup settings: where, when, how long, and the restore drill."""

    # Root-only directory (700) holding one sub-directory per backed-up item.
    dir: str = "/var/backups/vpskit"
    # systemd OnCalendar of the backup run (the guide: daily at 02:00).
    schedule: str = "*-*-* 02:00:00"
    # Backups older than this many days are deleted; the newest good one never is.
    keep_days: int = 7
    # systemd OnCalendar of the restore drill into a scratch database; empty: no drill.
    drill_schedule: str = "Sun *-*-* 04:00:00"


@dataclass(frozen=True)
class Monitor:
    """Thresholds of the health report (vpskit-health on the host)."""

    # Highest 5-minute load average per CPU core that still counts as healthy.
    max_load_per_core: float = 2.0
    # Lowest share of memory available, in percent.
    min_memory_available: int = 10
    # Highest disk usage of each mounted filesystem checked, in percent.
    max_disk_used: int = 90
    # Filesystems whose usage is checked.
    disks: tuple[str, ...] = ("/",)
    # Oldest acceptable newest backup of each item, in hours.
    max_backup_age_hours: int = 26
    # Fewest days a TLS certificate may have left.
    min_cert_days: int = 14
    # How far back the report looks for error-level journal lines, in hours.
    journal_hours: int = 24


@dataclass(frozen=True)
class Python:
    """The Python runtime the apps run on."""

    # "3.12" etc.; empty: the distro's own python3. Other versions come from
    # the deadsnakes PPA on Ubuntu; Debian only has its own.
    version: str = ""


@dataclass(frozen=True)
class NodeJS:
    """Node.js, installed only when an app has a front-end build."""

    # "distro" (the distro's nodejs) or "nodesource" (NodeSource's apt repo).
    source: str = "distro"
    # NodeSource major version.
    version: int = 22
    # Also install the distro's npm (NodeSource's nodejs includes npm).
    npm: bool = True


@dataclass(frozen=True)
class TLS:
    """HTTPS certificates for the app domains."""

    # "letsencrypt" (certbot, ACME http-01 via webroot) or "selfsigned" (hosts without public DNS).
    mode: str = "letsencrypt"
    # Account e-mail for expiry notices; empty: register without e-mail.
    email: str = ""
    # Use Let's Encrypt's staging server (untrusted test certificates).
    staging: bool = False
    # ACME directory URL of another CA; overrides staging.
    acme_server: str = ""
    # CA bundle file on the host that certbot trusts for the ACME server's own TLS.
    acme_ca_bundle: str = ""
    # Strict-Transport-Security max-age in seconds (0: no HSTS header).
    hsts_max_age: int = 63072000


@dataclass(frozen=True)
class Web:
    """Where apps live on the host and how the front proxy (nginx or Caddy) serves them."""

    apps_dir: str = "/srv/apps"
    log_dir: str = "/var/log/apps"
    # Jinja2 template (on the controller) replacing vpskit's nginx site template.
    site_template: str = ""
    # Also listen on IPv6.
    ipv6: bool = True
    # The front proxy on 80/443: "nginx" (with certbot) or "caddy" (its own ACME client).
    proxy: str = "nginx"
    # Jinja2 template (on the controller) replacing vpskit's Caddyfile template.
    caddyfile_template: str = ""


@dataclass(frozen=True)
class DockerEngine:
    """Docker Engine: installed when an app has kind = "compose" or when enabled."""

    # Install the engine even without compose apps.
    enabled: bool = False
    # "docker" (Docker's apt repository, with the compose plugin) or "distro" (the distro's docker.io).
    source: str = "docker"
    # daemon.json: json-file log rotation.
    log_max_size: str = "100m"
    log_max_file: int = 3
    # daemon.json storage-driver; empty: the engine's default (overlay2).
    storage_driver: str = ""
    # Put the deploy user in the docker group (root-equivalent).
    deploy_user_in_group: bool = False


@dataclass(frozen=True)
class Sysctl:
    """Kernel and network hardening in /etc/sysctl.d (the settings: operations/sysctl.py)."""

    enabled: bool = True
    # Keys of vpskit's settings to leave out, e.g. ["kernel.yama.ptrace_scope"].
    disable: tuple[str, ...] = ()
    # Values replacing vpskit's or added to them: {"net.ipv4.conf.all.rp_filter" = "2"}.
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    server: Server
    first_login: FirstLogin = field(default_factory=FirstLogin)
    deploy_user: DeployUser = field(default_factory=DeployUser)
    firewall: Firewall = field(default_factory=Firewall)
    ssh: Ssh = field(default_factory=Ssh)
    fail2ban: Fail2ban = field(default_factory=Fail2ban)
    apps: tuple[App, ...] = ()
    postgres: Postgres = field(default_factory=Postgres)
    backups: Backups = field(default_factory=Backups)
    monitor: Monitor = field(default_factory=Monitor)
    python: Python = field(default_factory=Python)
    nodejs: NodeJS = field(default_factory=NodeJS)
    tls: TLS = field(default_factory=TLS)
    web: Web = field(default_factory=Web)
    docker: DockerEngine = field(default_factory=DockerEngine)
    sysctl: Sysctl = field(default_factory=Sysctl)
    # Directory the config file lives in: relative key paths are read from here.
    base_dir: str = "."

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

    def public_keys(self) -> list[str]:
        """The deploy user's public keys, read from their files."""
        keys = []
        for p in self.deploy_user.public_keys:
            for line in self.path(p).read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    keys.append(line.strip())
        return keys


# ------------------------------------------------------------- validation

APP_KINDS = ("flask", "fastapi", "other", "compose")
APP_STATES = ("present", "absent")
PROTOS = ("tcp", "udp")
UPGRADE_MODES = ("full", "safe", "none")
ROOT_LOGIN_MODES = ("no", "prohibit-password", "yes")
MANAGED_SSHD_OPTIONS = {
    "port", "listenaddress", "permitrootlogin", "passwordauthentication", "kbdinteractiveauthentication",
    "challengeresponseauthentication", "permitemptypasswords", "pubkeyauthentication", "x11forwarding",
    "maxauthtries", "clientaliveinterval", "clientalivecountmax", "logingracetime", "allowusers",
    "kexalgorithms", "ciphers", "macs", "hostkeyalgorithms",
}
NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
APP_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
KEY_PREFIXES = ("ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-", "sk-ssh-ed25519@openssh.com ", "sk-ecdsa-sha2-")
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$")
DB_ENGINES = ("postgresql", "sqlite", "none")
JOB_KINDS = ("timer", "cron")
PG_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
PG_RESERVED = ("postgres", "template0", "template1", "public", "pg_signal_backend")
PIP_REQ_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?([<>=!~]=?[A-Za-z0-9.*+!-]+(,[<>=!~]=?[A-Za-z0-9.*+!-]+)*)?$")
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9._/@+-]*$")
JOB_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
# systemd OnCalendar: weekdays, dates, times, ranges, lists, repetitions, shorthands and a timezone.
CALENDAR_RE = re.compile(r"^[A-Za-z0-9*,./:~+_ -]+$")
CRON_FIELD_RE = re.compile(r"^[A-Za-z0-9*/,-]+$")
CRON_KEYWORDS = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def is_domain(name: str) -> bool:
    """A fully qualified DNS name (at least two labels, letters/digits/hyphens)."""
    if not isinstance(name, str) or len(name) > 253 or "." not in name:
        return False
    labels = name.lower().rstrip(".").split(".")
    if labels[-1].isdigit():
        return False
    return all(HOSTNAME_LABEL_RE.match(label) for label in labels)


def is_port(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


class _Checker:
    """Collects problems as ``field.path: what is wrong`` lines."""

    def __init__(self, config: Config, problems: list[str]):
        self.config = config
        self.problems = problems

    def add(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def port(self, where: str, value, allow_zero=False) -> None:
        if allow_zero and value == 0:
            return
        if not is_port(value):
            self.add(where, f"must be a port number 1-65535, got {value!r}")

    def network(self, where: str, value: str) -> None:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            self.add(where, f"{value!r} is not an IP address or network")
    def unique_name(self, where: str, value: str, pattern: re.Pattern, rule: str, seen: dict[str, str], owner: str) -> None:
        """``value`` must match ``pattern`` (``rule`` says how) and not be in ``seen``, where it is recorded as ``owner``'s."""
        if not pattern.match(value):
            self.add(where, f"{value!r} {rule}")
        elif value in seen:
            self.add(where, f"{value!r} is already used by {seen[value]}")
        seen.setdefault(value, owner)

    def calendar(self, where: str, value: str) -> None:
        """A systemd OnCalendar expression (the host's systemd-analyze checks it fully)."""
        if not value.strip() or not CALENDAR_RE.match(value):
            self.add(where, f"{value!r} is not a systemd calendar like '*-*-* 02:00:00' or 'Sun *-*-* 23:59:00'")

    def key_file(self, where: str, path: str, public: bool) -> None:
        p = self.config.path(path)
        if not p.is_file():
            self.add(where, f"file {str(p)!r} does not exist")
            return
        if public:
            # Blank and # comment lines are allowed, as Config.public_keys() skips them.
            lines = [
                ln for ln in p.read_text(errors="replace").splitlines() if ln.strip() and not ln.lstrip().startswith("#")
            ]
            if not lines or not all(ln.strip().startswith(KEY_PREFIXES) for ln in lines):
                self.add(where, f"file {str(p)!r} is not an OpenSSH public key (expected e.g. 'ssh-ed25519 AAAA...')")
        elif "PRIVATE KEY" not in p.read_text(errors="replace")[:200]:
            self.add(where, f"file {str(p)!r} is not a private key")


def validate(config: Config) -> list[str]:
    """Every problem in ``config``, one line each; empty when it is good."""
    problems: list[str] = []
    c = _Checker(config, problems)
    s = config.server

    if not s.address or any(ch.isspace() for ch in s.address):
        c.add("server.address", f"must be an IP address, a host name or a pyinfra connector, got {s.address!r}")
    elif s.uses_ssh and not _is_ip(s.address) and not is_domain(s.address) and s.address != "localhost":
        c.add("server.address", f"{s.address!r} is neither an IP address nor a valid host name")
    if s.hostname and not all(HOSTNAME_LABEL_RE.match(p) for p in s.hostname.split(".")):
        c.add("server.hostname", f"{s.hostname!r} is not a valid host name (letters, digits, hyphens)")
    if not re.match(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$", s.timezone):
        c.add("server.timezone", f"{s.timezone!r} is not a timezone name like 'Europe/Berlin'")
    c.port("server.ssh_port", s.ssh_port)
    c.port("server.ssh_reach_port", s.ssh_reach_port, allow_zero=True)
    for i, pkg in enumerate(s.packages):
        if not PACKAGE_RE.match(pkg):
            c.add(f"server.packages[{i}]", f"{pkg!r} is not a Debian package name")
    if s.upgrade not in UPGRADE_MODES:
        c.add("server.upgrade", f"must be one of {', '.join(UPGRADE_MODES)}, got {s.upgrade!r}")
    if s.apt_cache_hours < 0:
        c.add("server.apt_cache_hours", "must be 0 or more")
    if not TIME_RE.match(s.unattended_reboot_time):
        c.add("server.unattended_reboot_time", f"must be HH:MM, got {s.unattended_reboot_time!r}")
    if s.apt_lock_timeout < 0:
        c.add("server.apt_lock_timeout", "must be 0 or more seconds")

    fl = config.first_login
    if not NAME_RE.match(fl.user):
        c.add("first_login.user", f"{fl.user!r} is not a valid user name")
    c.port("first_login.port", fl.port)
    c.port("first_login.reach_port", fl.reach_port, allow_zero=True)
    if fl.key:
        c.key_file("first_login.key", fl.key, public=False)
    if fl.password_env and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", fl.password_env):
        c.add("first_login.password_env", f"{fl.password_env!r} is not an environment variable name")

    du = config.deploy_user
    if not NAME_RE.match(du.name):
        c.add("deploy_user.name", f"{du.name!r} is not a valid user name (lowercase letters, digits, _ or -)")
    elif du.name == "root":
        c.add("deploy_user.name", "must not be root: vpskit creates a separate admin user")
    if not du.public_keys:
        c.add("deploy_user.public_keys", "list at least one public key file: it is how you log in after hardening")
    for i, p in enumerate(du.public_keys):
        c.key_file(f"deploy_user.public_keys[{i}]", p, public=True)
    if du.private_key:
        c.key_file("deploy_user.private_key", du.private_key, public=False)
    if not du.shell.startswith("/"):
        c.add("deploy_user.shell", f"must be an absolute path, got {du.shell!r}")
    for i, g in enumerate(du.groups):
        if not NAME_RE.match(g):
            c.add(f"deploy_user.groups[{i}]", f"{g!r} is not a valid group name")

    for i, rule in enumerate(config.firewall.allow):
        where = f"firewall.allow[{i}]"
        c.port(f"{where}.port", rule.port)
        if rule.proto not in PROTOS:
            c.add(f"{where}.proto", f"must be one of {', '.join(PROTOS)}, got {rule.proto!r}")
        if rule.source:
            c.network(f"{where}.source", rule.source)
        if rule.comment and not re.match(r"^[A-Za-z0-9 _.:-]{1,40}$", rule.comment):
            c.add(f"{where}.comment", "up to 40 letters, digits, spaces and _.:-")

    ssh = config.ssh
    if ssh.permit_root_login not in ROOT_LOGIN_MODES:
        c.add("ssh.permit_root_login", f"must be one of {', '.join(ROOT_LOGIN_MODES)}, got {ssh.permit_root_login!r}")
    for name, low, high in (
        ("max_auth_tries", 1, 20),
        ("client_alive_interval", 0, 3600),
        ("client_alive_count_max", 0, 100),
        ("login_grace_time", 5, 600),
        ("revert_after", 60, 3600),
    ):
        value = getattr(ssh, name)
        if not low <= value <= high:
            c.add(f"ssh.{name}", f"must be between {low} and {high}, got {value}")
    for i, u in enumerate(ssh.allow_users):
        if not NAME_RE.match(u):
            c.add(f"ssh.allow_users[{i}]", f"{u!r} is not a valid user name")
    if ssh.allow_users and du.name not in ssh.allow_users:
        c.add("ssh.allow_users", f"must include the deploy user {du.name!r}, or vpskit itself is locked out")
    for name in ("kex_algorithms", "ciphers", "macs", "host_key_algorithms"):
        values = getattr(ssh, name)
        for i, alg in enumerate(values):
            weak = [w for w in WEAK_ALGORITHM_PARTS if w in alg and not alg.startswith(("rsa-sha2", "ssh-ed25519"))]
            if not re.match(r"^[a-z0-9@.+_-]+$", alg):
                c.add(f"ssh.{name}[{i}]", f"{alg!r} is not an algorithm name")
            elif weak:
                c.add(f"ssh.{name}[{i}]", f"{alg!r} is weak ({weak[0].strip('-')}): vpskit does not enable it")
    for key, value in ssh.extra.items():
        if not re.match(r"^[A-Za-z][A-Za-z0-9]*$", key):
            c.add(f"ssh.extra.{key}", "is not an sshd option name")
        elif key.lower() in MANAGED_SSHD_OPTIONS:
            c.add(f"ssh.extra.{key}", "is set by vpskit: use its own field (see README, [ssh])")
        if "\n" in value or not value.strip():
            c.add(f"ssh.extra.{key}", "must be a one-line value")
    if s.ssh_port in (80, 443):
        c.add("server.ssh_port", f"{s.ssh_port} is nginx's port")

    f2b = config.fail2ban
    for name, low, high in (("bantime", 60, 31536000), ("findtime", 60, 86400), ("maxretry", 1, 100)):
        value = getattr(f2b, name)
        if not low <= value <= high:
            c.add(f"fail2ban.{name}", f"must be between {low} and {high}, got {value}")
    for i, addr in enumerate(f2b.ignoreip):
        c.network(f"fail2ban.ignoreip[{i}]", addr)

    names: dict[str, str] = {}
    ports: dict[int, str] = {}
    databases: dict[str, str] = {}
    roles: dict[str, str] = {}
    domains: dict[str, str] = {}
    for i, app in enumerate(config.apps):
        where = f"apps[{i}]"
        c.unique_name(f"{where}.name", app.name, APP_NAME_RE, "must be lowercase letters, digits and hyphens", names, where)
        c.port(f"{where}.port", app.port)
        if is_port(app.port):
            if app.port in (s.ssh_port, 80, 443):
                c.add(f"{where}.port", f"{app.port} is reserved for sshd/nginx")
            elif app.port in ports:
                c.add(f"{where}.port", f"{app.port} is already used by app {ports[app.port]!r}")
            ports.setdefault(app.port, app.name)
        for j, d in enumerate(app.domains):
            if not is_domain(d):
                c.add(f"{where}.domains[{j}]", f"{d!r} is not a valid domain name")
            elif d.lower() in domains:
                c.add(f"{where}.domains[{j}]", f"{d!r} is already used by app {domains[d.lower()]!r}")
            else:
                domains[d.lower()] = app.name
        if app.kind not in APP_KINDS:
            c.add(f"{where}.kind", f"must be one of {', '.join(APP_KINDS)}, got {app.kind!r}")
        if app.state not in APP_STATES:
            c.add(f"{where}.state", f"must be one of {', '.join(APP_STATES)}, got {app.state!r}")
        _check_app_data(c, app, where, databases, roles)
        _check_app(c, where, app)

    pg = config.postgres
    c.port("postgres.port", pg.port)
    if pg.port in (s.ssh_port, 80, 443) or pg.port in ports:
        c.add("postgres.port", f"{pg.port} is already used by sshd, nginx or an app")

    b = config.backups
    if not SAFE_PATH_RE.match(b.dir) or b.dir.rstrip("/") in ("", "/etc", "/var", "/home", "/root", "/tmp"):
        c.add("backups.dir", f"must be an absolute directory of its own (vpskit sets it to mode 700), got {b.dir!r}")
    c.calendar("backups.schedule", b.schedule)
    if b.drill_schedule:
        c.calendar("backups.drill_schedule", b.drill_schedule)
    if b.keep_days < 1:
        c.add("backups.keep_days", f"must be 1 or more days, got {b.keep_days}")

    m = config.monitor
    if m.max_load_per_core <= 0:
        c.add("monitor.max_load_per_core", f"must be more than 0, got {m.max_load_per_core}")
    for name in ("min_memory_available", "max_disk_used"):
        value = getattr(m, name)
        if not 0 <= value <= 100:
            c.add(f"monitor.{name}", f"must be a percentage 0-100, got {value}")
    for i, d in enumerate(m.disks):
        if not d.startswith("/"):
            c.add(f"monitor.disks[{i}]", f"must be an absolute mount point, got {d!r}")
    for name in ("max_backup_age_hours", "min_cert_days", "journal_hours"):
        if getattr(m, name) < 1:
            c.add(f"monitor.{name}", f"must be 1 or more, got {getattr(m, name)}")
    _check_web(c, config)
    _check_containers(c, config)
    _check_sysctl(c, config.sysctl)
    return problems


def _check_sysctl(c: _Checker, sysctl: Sysctl) -> None:
    """The [sysctl] section: known keys to disable, well-formed keys and one-line values to set."""
    from .sysctl import HARDENING, KEY_RE

    for i, key in enumerate(sysctl.disable):
        if key not in HARDENING:
            c.add(f"sysctl.disable[{i}]", f"{key!r} is not one of vpskit's sysctl settings")
    for key, value in sysctl.values.items():
        if not KEY_RE.match(key):
            c.add(f"sysctl.values.{key}", "is not a sysctl key like 'net.ipv4.tcp_syncookies'")
        elif not value.strip() or any(ch in value for ch in "\n\r="):
            c.add(f"sysctl.values.{key}", "must be a one-line value")


def _check_app_data(c: _Checker, app: App, where: str, databases: dict[str, str], roles: dict[str, str]) -> None:
    """The database, backup and jobs of one app; ``databases``/``roles`` collect names across apps."""
    db = app.database
    if db.engine not in DB_ENGINES:
        c.add(f"{where}.database.engine", f"must be one of {', '.join(DB_ENGINES)}, got {db.engine!r}")
    elif db.uses_postgres:
        checks = [("name", app.db_name, databases), ("role", app.db_role, roles)]
        if not db.role:  # derived from the name: a problem there is already reported
            checks = checks[:1] if not PG_NAME_RE.match(app.db_name) else checks
        for key, value, seen in checks:
            if not PG_NAME_RE.match(value):
                c.add(f"{where}.database.{key}", f"{value!r} must be lowercase letters, digits and _ (max 63)")
            elif value in PG_RESERVED:
                c.add(f"{where}.database.{key}", f"{value!r} is reserved by PostgreSQL")
            elif value in seen:
                c.add(f"{where}.database.{key}", f"{value!r} is already used by app {seen[value]!r}")
            else:
                seen[value] = app.name
    elif db.engine == "sqlite" and not (SAFE_PATH_RE.match(db.path) and not db.path.endswith("/")):
        c.add(f"{where}.database.path", f"engine sqlite needs the absolute path of the database file, got {db.path!r}")
    if db.driver and not PIP_REQ_RE.match(db.driver):
        c.add(f"{where}.database.driver", f"{db.driver!r} is not a pip requirement like 'psycopg2-binary'")
    for j, p in enumerate(app.backup.paths):
        if not SAFE_PATH_RE.match(p) or p.rstrip("/") == "":
            c.add(f"{where}.backup.paths[{j}]", f"must be an absolute directory (letters, digits, ._-+@/), got {p!r}")

    job_names: dict[str, str] = {}
    for j, job in enumerate(app.jobs):
        jw = f"{where}.jobs[{j}]"
        c.unique_name(f"{jw}.name", job.name, JOB_NAME_RE, "must be lowercase letters, digits and hyphens (no dots)", job_names, jw)
        if job.kind not in JOB_KINDS:
            c.add(f"{jw}.kind", f"must be one of {', '.join(JOB_KINDS)}, got {job.kind!r}")
        elif job.kind == "timer":
            c.calendar(f"{jw}.schedule", job.schedule)
        elif not is_cron_schedule(job.schedule):
            c.add(f"{jw}.schedule", f"{job.schedule!r} is not a cron schedule: five fields like '*/5 * * * *' or @daily")
        if not job.command.strip() or "\n" in job.command:
            c.add(f"{jw}.command", "must be one non-empty line")
        if job.user and not NAME_RE.match(job.user):
            c.add(f"{jw}.user", f"{job.user!r} is not a valid user name")


def is_cron_schedule(schedule: str) -> bool:
    """Five cron time fields (numbers, ranges, steps, lists, names) or one @keyword."""
    if schedule in CRON_KEYWORDS:
        return True
    parts = schedule.split()
    return len(parts) == 5 and all(CRON_FIELD_RE.match(p) for p in parts)


WORKER_CLASSES = ("sync", "gthread", "eventlet", "gevent", "uvicorn")
NODE_SOURCES = ("distro", "nodesource")
TLS_MODES = ("letsencrypt", "selfsigned")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
GIT_URL_RE = re.compile(r"^((https?|ssh|git|file)://\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$")
GIT_REF_RE = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]+$")
PYTHON_VERSION_RE = re.compile(r"^3\.\d{1,2}$")
ENTRY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*(\(\))?)?$")
SIZE_RE = re.compile(r"^\d+[kKmMgG]?$")
RATE_RE = re.compile(r"^\d+r/[sm]$")
# Set by vpskit itself in every app's .env.
VPSKIT_ENV = ("DATA_DIR",)


def _relative_path(value: str) -> bool:
    return not value.startswith("/") and ".." not in Path(value).parts


def _check_app(c: _Checker, where: str, app: App) -> None:
    """The web-stack fields of one app."""
    if app.repo and not GIT_URL_RE.match(app.repo):
        c.add(f"{where}.repo", f"{app.repo!r} is not a git URL (https://, ssh://, file:// or user@host:path)")
    if not GIT_REF_RE.match(app.branch):
        c.add(f"{where}.branch", f"{app.branch!r} is not a git branch or tag name")
    if app.python and not PYTHON_VERSION_RE.match(app.python):
        c.add(f"{where}.python", f"must be a Python version like '3.12', got {app.python!r}")
    if app.deploy_key:
        c.key_file(f"{where}.deploy_key", app.deploy_key, public=False)
    if not ENTRY_RE.match(app.entry):
        c.add(f"{where}.entry", f"must be 'module:variable' (or 'module:factory()'), got {app.entry!r}")
    if app.worker_class and app.worker_class not in WORKER_CLASSES:
        c.add(f"{where}.worker_class", f"must be one of {', '.join(WORKER_CLASSES)}, got {app.worker_class!r}")
    for name, value, low in (("workers", app.workers, 0), ("threads", app.threads, 1), ("timeout", app.timeout, 1)):
        if value < low:
            c.add(f"{where}.{name}", f"must be {low} or more, got {value}")
    for k, v in app.env.items():
        if not ENV_NAME_RE.match(k):
            c.add(f"{where}.env.{k}", "is not an environment variable name (letters, digits, _)")
        elif k in VPSKIT_ENV:
            c.add(f"{where}.env.{k}", "is set by vpskit (the app's data directory)")
        elif k == "DATABASE_URL" and app.database.uses_postgres:
            c.add(f"{where}.env.{k}", "is set by vpskit from the app's database (engine = \"postgresql\")")
        elif any(ch in v for ch in "'\n\r\0"):
            c.add(f"{where}.env.{k}", "must not contain single quotes or line breaks")
    for j, name in enumerate(app.secrets):
        if not ENV_NAME_RE.match(name):
            c.add(f"{where}.secrets[{j}]", f"{name!r} is not an environment variable name")
        elif name == "DATABASE_URL" and app.database.uses_postgres:
            c.add(f"{where}.secrets[{j}]", "is set by vpskit from the app's database (engine = \"postgresql\")")
        elif name in app.env or name in VPSKIT_ENV:
            c.add(f"{where}.secrets[{j}]", f"{name!r} is also set in env: a secret is generated, not configured")
    for name in ("migrate", "seed", "build"):
        if any(ch in getattr(app, name) for ch in "\n\r\0"):
            c.add(f"{where}.{name}", "must be one command line")
    for name in ("requirements", "build_dir", "static_dir"):
        value = getattr(app, name)
        if value and not _relative_path(value):
            c.add(f"{where}.{name}", f"must be a path inside the repo, got {value!r}")
    if not app.requirements:
        c.add(f"{where}.requirements", "is required (the pip requirements file in the repo)")
    if not (app.static_url.startswith("/") and app.static_url.endswith("/")) or " " in app.static_url:
        c.add(f"{where}.static_url", f"must start and end with '/', got {app.static_url!r}")
    if not SIZE_RE.match(app.max_body_size):
        c.add(f"{where}.max_body_size", f"must be a size like '10m', got {app.max_body_size!r}")
    if app.rate_limit and not RATE_RE.match(app.rate_limit):
        c.add(f"{where}.rate_limit", f"must be a rate like '10r/s' or '300r/m', got {app.rate_limit!r}")
    if app.rate_burst < 0:
        c.add(f"{where}.rate_burst", "must be 0 or more")


def _check_web(c: _Checker, config: Config) -> None:
    """The [python], [nodejs], [tls] and [web] sections."""
    if config.python.version and not PYTHON_VERSION_RE.match(config.python.version):
        c.add("python.version", f"must be a Python version like '3.12', got {config.python.version!r}")
    if config.nodejs.source not in NODE_SOURCES:
        c.add("nodejs.source", f"must be one of {', '.join(NODE_SOURCES)}, got {config.nodejs.source!r}")
    if config.nodejs.version < 18:
        c.add("nodejs.version", f"must be a Node.js major version (18 or later), got {config.nodejs.version}")
    t = config.tls
    if t.mode not in TLS_MODES:
        c.add("tls.mode", f"must be one of {', '.join(TLS_MODES)}, got {t.mode!r}")
    if t.email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", t.email):
        c.add("tls.email", f"{t.email!r} is not an e-mail address")
    if t.acme_server and not re.match(r"^https://\S+$", t.acme_server):
        c.add("tls.acme_server", f"must be an https:// ACME directory URL, got {t.acme_server!r}")
    if t.acme_ca_bundle and not t.acme_ca_bundle.startswith("/"):
        c.add("tls.acme_ca_bundle", f"must be an absolute path on the host, got {t.acme_ca_bundle!r}")
    if t.hsts_max_age < 0:
        c.add("tls.hsts_max_age", "must be 0 or more seconds")
    w = config.web
    for name in ("apps_dir", "log_dir"):
        value = getattr(w, name)
        if not value.startswith("/") or value.rstrip("/") in ("", "/etc", "/usr", "/var", "/home"):
            c.add(f"web.{name}", f"must be an absolute directory of its own, got {value!r}")
    if w.site_template and not config.path(w.site_template).is_file():
        c.add("web.site_template", f"file {str(config.path(w.site_template))!r} does not exist")


PROXIES = ("nginx", "caddy")
DOCKER_SOURCES = ("docker", "distro")
CONTAINER_DB_ENGINES = ("postgresql", "mysql")
STORAGE_DRIVERS = ("overlay2", "fuse-overlayfs", "btrfs", "zfs", "vfs")
DOCKER_SIZE_RE = re.compile(r"^\d+[kmg]$")
SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
BCRYPT_RE = re.compile(r"^\$2[aby]?\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$")
UPSTREAM_RE = re.compile(r"^(localhost|127\.0\.0\.1|\[::1\]):\d{1,5}$")
# Fields that mean something for venv apps only, and for compose apps only.
VENV_ONLY = ("build", "static_dir", "python", "worker_class")
COMPOSE_ONLY = ("compose_file", "service", "public_services", "container_databases")


def _check_containers(c: _Checker, config: Config) -> None:
    """The [docker] section, compose apps and the Caddy-only app fields."""
    d = config.docker
    if d.source not in DOCKER_SOURCES:
        c.add("docker.source", f"must be one of {', '.join(DOCKER_SOURCES)}, got {d.source!r}")
    if not DOCKER_SIZE_RE.match(d.log_max_size):
        c.add("docker.log_max_size", f"must be a size like '100m' (k, m or g), got {d.log_max_size!r}")
    if d.log_max_file < 1:
        c.add("docker.log_max_file", f"must be 1 or more, got {d.log_max_file}")
    if d.storage_driver and d.storage_driver not in STORAGE_DRIVERS:
        c.add("docker.storage_driver", f"must be empty (the engine's default) or one of {', '.join(STORAGE_DRIVERS)}, got {d.storage_driver!r}")
    w = config.web
    if w.proxy not in PROXIES:
        c.add("web.proxy", f"must be one of {', '.join(PROXIES)}, got {w.proxy!r}")
    if w.caddyfile_template and not config.path(w.caddyfile_template).is_file():
        c.add("web.caddyfile_template", f"file {str(config.path(w.caddyfile_template))!r} does not exist")
    elif w.caddyfile_template and w.proxy != "caddy":
        c.add("web.caddyfile_template", 'is used only with proxy = "caddy"')
    for i, app in enumerate(config.apps):
        where = f"apps[{i}]"
        if app.api_upstream and not UPSTREAM_RE.match(app.api_upstream):
            c.add(f"{where}.api_upstream", f"must be a loopback address like '127.0.0.1:5003', got {app.api_upstream!r}")
        elif app.api_upstream and w.proxy != "caddy":
            c.add(f"{where}.api_upstream", 'is used only with [web] proxy = "caddy"')
        if app.basic_auth is not None:
            if w.proxy != "caddy":
                c.add(f"{where}.basic_auth", 'is used only with [web] proxy = "caddy"')
            if not NAME_RE.match(app.basic_auth.user):
                c.add(f"{where}.basic_auth.user", f"{app.basic_auth.user!r} is not a user name (lowercase letters, digits, _ or -)")
            if not BCRYPT_RE.match(app.basic_auth.hash):
                c.add(f"{where}.basic_auth.hash", "is not a bcrypt hash ('$2a$14$' and 53 characters, from `caddy hash-password`)")
        if not app.is_compose:
            for name in COMPOSE_ONLY:
                if getattr(app, name):
                    c.add(f"{where}.{name}", 'is used only by apps with kind = "compose"')
            continue
        _check_compose_app(c, where, app)


def _check_compose_app(c: _Checker, where: str, app: App) -> None:
    if not app.compose_file:
        c.add(f"{where}.compose_file", 'is required for kind = "compose" (the compose file in the repo, e.g. "compose.yaml")')
    elif not _relative_path(app.compose_file):
        c.add(f"{where}.compose_file", f"must be a path inside the repo, got {app.compose_file!r}")
    if app.state == "present" and not app.repo:
        c.add(f"{where}.repo", 'is required for kind = "compose"')
    if app.service and not SERVICE_RE.match(app.service):
        c.add(f"{where}.service", f"{app.service!r} is not a compose service name")
    if (app.migrate or app.seed) and not app.service:
        c.add(f"{where}.service", "is required with migrate or seed (the service they run in)")
    for j, name in enumerate(app.public_services):
        if not SERVICE_RE.match(name):
            c.add(f"{where}.public_services[{j}]", f"{name!r} is not a compose service name")
    if app.health_timeout < 1:
        c.add(f"{where}.health_timeout", f"must be 1 or more seconds, got {app.health_timeout}")
    for name in VENV_ONLY:
        if getattr(app, name):
            c.add(f"{where}.{name}", 'is not used by kind = "compose" apps (the image builds the app)')
    if app.database.engine != "none":
        c.add(f"{where}.database.engine", 'a compose app keeps its database in a container: list it in container_databases')
    if app.jobs:
        c.add(f"{where}.jobs", 'are not supported for kind = "compose" apps')
    for j, db in enumerate(app.container_databases):
        dw = f"{where}.container_databases[{j}]"
        if not SERVICE_RE.match(db.service):
            c.add(f"{dw}.service", f"{db.service!r} is not a compose service name")
        if db.engine not in CONTAINER_DB_ENGINES:
            c.add(f"{dw}.engine", f"must be one of {', '.join(CONTAINER_DB_ENGINES)}, got {db.engine!r}")
        for key in ("name", "user"):
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$", getattr(db, key)):
                c.add(f"{dw}.{key}", f"{getattr(db, key)!r} is not a database or user name")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- loading


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _build(cls, raw, where: str, problems: list[str]):
    """Build dataclass ``cls`` from a TOML table, recording unknown keys and bad types."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table, got {type(raw).__name__}")
        return None
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.name != "base_dir"}
    kwargs = {}
    for key, value in raw.items():
        path = f"{where}.{key}" if where else key
        if key not in known:
            close = _closest(key, known)
            hint = f" (did you mean {close!r}?)" if close else ""
            problems.append(f"{path}: unknown key{hint}")
            continue
        converted = _convert(hints[key], value, path, problems)
        if converted is not _BAD:
            kwargs[key] = converted
    for name, f in known.items():
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and name not in kwargs:
            if name not in raw:
                problems.append(f"{where + '.' if where else ''}{name}: is required")
            # Stand in an empty value so the rest of the config is still checked;
            # the problem is already recorded, so no config comes out of this.
            placeholder = _placeholder(hints[name])
            if placeholder is _BAD:
                return None
            kwargs[name] = placeholder
    return cls(**kwargs)


def _placeholder(tp):
    if tp is str:
        return ""
    if tp is int:
        return 0
    if dataclasses.is_dataclass(tp):
        return _BAD
    return _BAD


_BAD = object()


def _convert(tp, value, path: str, problems: list[str]):
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        built = _build(tp, value, path, problems)
        return _BAD if built is None else built
    if origin is tuple:
        (item_tp, _) = typing.get_args(tp)
        if not isinstance(value, list):
            problems.append(f"{path}: must be a list, got {type(value).__name__} {value!r}")
            return _BAD
        items = [_convert(item_tp, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return _BAD if any(it is _BAD for it in items) else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: must be a table, got {type(value).__name__} {value!r}")
            return _BAD
        key_tp, value_tp = typing.get_args(tp)
        items = {k: _convert(value_tp, v, f"{path}.{k}", problems) for k, v in value.items()}
        return _BAD if any(v is _BAD for v in items.values()) else items
    if origin in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    if not ok:
        problems.append(f"{path}: must be {_type_name(tp)}, got {type(value).__name__} {value!r}")
        return _BAD
    return value


def _closest(key: str, known) -> str | None:
    import difflib

    match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return match[0] if match else None


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """The config file: explicit path, $VPSKIT_CONFIG, or ./vpskit.toml."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE)


def parse_config(raw: dict, base_dir: str = ".", source: str = "<config>") -> Config:
    """Build and validate a ``Config`` from already-parsed TOML data."""
    problems: list[str] = []
    raw = dict(raw)
    if "app" in raw and "apps" not in raw:
        problems.append("app: unknown key (did you mean 'apps'? write [[apps]])")
        raw.pop("app")
    if "server" not in raw:
        problems.append("server: is required (a [server] table with at least 'address')")
        raise ConfigError(source, problems)
    config = _build(Config, raw, "", problems)
    if config is not None:
        config = dataclasses.replace(config, base_dir=str(base_dir))
        # A field with a type problem was left at its default: do not also report the default.
        bad = {p.split(": ", 1)[0] for p in problems}
        problems.extend(p for p in validate(config) if p.split(": ", 1)[0] not in bad)
    if problems:
        raise ConfigError(source, problems)
    return config


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read, type-check and validate the config file; raise ``ConfigError`` listing every problem."""
    p = config_path(path)
    if not p.is_file():
        raise ConfigError(
            str(p), [f"file not found: copy examples/vpskit.toml to {DEFAULT_CONFIG_FILE} or set ${CONFIG_ENV}"]
        )
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(p), [f"not valid TOML: {e}"]) from None
    return parse_config(raw, base_dir=str(p.resolve().parent), source=str(p))
