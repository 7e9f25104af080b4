"""Config of one app (`[[apps]]`) and the tables inside it: database, backup, jobs, container databases, basic auth."""

from __future__ import annotations

from dataclasses import dataclass

from .schema import ENV_NAME, PORT, PYTHON_VERSION, USER_NAME, setting

APP_NAME = r"^[a-z][a-z0-9-]{0,30}$"
SERVICE = r"^[a-z0-9][a-z0-9_.-]*$"
DB_IDENTIFIER = {"pattern": r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$", "expect": "a database or user name"}
ONE_LINE = r"^[^\n\r\0]*\Z"
# ${NAME} in an env value; the database's names an app with a PostgreSQL database may refer to.
REFERENCE = r"\$\{([^}]*)\}"
DB_REFERENCES = ("DB_NAME", "DB_USER", "DB_PASSWORD", "DB_HOST", "DB_PORT")


@dataclass(frozen=True)
class Database:
    """An app's database: its own PostgreSQL database and role, a SQLite file, or none."""

    engine: str = setting("none", "`postgresql`, `sqlite` (fine below ~200 users) or `none`.", choices=("postgresql", "sqlite", "none"))
    name: str = setting("", 'PostgreSQL database name; empty: the app name with "-" as "_".')
    role: str = setting(
        "",
        "PostgreSQL login role owning that database (no superuser, no CREATEDB, no CREATEROLE), the only one that may "
        "connect to it; empty: the database name.",
    )
    driver: str = setting(
        "psycopg2-binary",
        'pip requirement installed into the app\'s venv for PostgreSQL; `""` for none.',
        pattern=r"^\Z|^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?([<>=!~]=?[A-Za-z0-9.*+!-]+(,[<>=!~]=?[A-Za-z0-9.*+!-]+)*)?$",
        expect="a pip requirement like 'psycopg2-binary'",
    )
    path: str = setting("", "SQLite only, required: absolute path of the database file.")

    @property
    def uses_postgres(self) -> bool:
        return self.engine == "postgresql"


@dataclass(frozen=True)
class AppBackup:
    """What of one app is backed up besides its database."""

    enabled: bool = setting(True, "Back up this app's database (and paths) at all.")
    paths: tuple[str, ...] = setting(
        (),
        "Absolute directories (uploads, media) archived with each backup run, as items `<app>-files-<dir name>`.",
        pattern=r"^/(?!/*$)[A-Za-z0-9._/@+-]*$",
        expect="an absolute directory (letters, digits, ._-+@/)",
        error="must be an absolute directory (letters, digits, ._-+@/), got {value!r}",
    )


@dataclass(frozen=True)
class Job:
    """A scheduled task of one app: a systemd timer and oneshot service, or a cron entry.

    A job taken out of the config is removed on the next run; so are all jobs of an app with `state = "absent"`.
    Examples: [docs/data.md](data.md#jobs).
    """

    name: str = setting(
        doc="Short name, unique within the app: the timer is `<app>-<name>.timer`, the cron file `/etc/cron.d/vpskit-<app>-<name>`.",
        pattern=r"^[a-z0-9][a-z0-9-]{0,40}$",
        expect="lowercase letters, digits and hyphens (no dots)",
        error="{value!r} must be lowercase letters, digits and hyphens (no dots)",
    )
    schedule: str = setting(
        doc='`timer`: systemd OnCalendar (`"Sun *-*-* 23:59:00"`), checked with `systemd-analyze calendar` on the host; '
        '`cron`: five fields (`"*/5 * * * *"`) or `@daily` & co.'
    )
    command: str = setting(
        doc="One shell line. `timer`: run in the app's checkout with its venv first on `PATH` and its `.env` and "
        "`DATABASE_URL` loaded; `cron`: run as-is by `/bin/sh` in the checkout, with cron's plain environment."
    )
    kind: str = setting("timer", "`timer` (systemd timer, `Persistent=true`) or `cron`.", choices=("timer", "cron"))
    user: str = setting(
        "",
        "Unix user the command runs as; empty: the deploy user. Compose apps: the user in the container (`exec --user`).",
        pattern=USER_NAME,
        expect="a valid user name",
    )
    service: str = setting(
        "",
        '`kind = "compose"` apps: the service the command runs in (`docker compose exec -T <service> sh -c ...`, by root on '
        "the host); empty: the app's `service`.",
        pattern=SERVICE,
        expect="a compose service name",
    )


@dataclass(frozen=True)
class ContainerDatabase:
    """A database in one of a compose app's containers, backed up with `docker exec` like the host's."""

    service: str = setting(doc="The compose service the database runs in.", pattern=SERVICE, expect="a compose service name")
    name: str = setting(
        doc="The database's name; the backup item is `<app>-<service>-<name>`.",
        **DB_IDENTIFIER,
    )
    engine: str = setting(
        "postgresql",
        "`postgresql` (`pg_dump`) or `mysql` (`mysqldump`; MySQL or MariaDB).",
        choices=("postgresql", "mysql"),
    )
    user: str = setting(
        "postgres",
        "The user the dump connects as over the container's local socket; for MySQL its password is read from the "
        "container's `MYSQL_ROOT_PASSWORD` (root) or `MYSQL_PASSWORD`.",
        **DB_IDENTIFIER,
    )


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic auth (Caddy only): as `[apps.basic_auth]` in front of the app's whole site, as
    `[apps.routes.basic_auth]` in front of that one route."""

    user: str = setting(doc="The user name.", pattern=USER_NAME, expect="a user name (lowercase letters, digits, _ or -)")
    hash: str = setting(
        doc="bcrypt hash of the password (`caddy hash-password`), never the password itself.",
        pattern=r"^\$2[aby]?\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$",
        expect="a bcrypt hash",
        error="is not a bcrypt hash ('$2a$14$' and 53 characters, from `caddy hash-password`)",
    )


# A URL path: ending in "/" it is a prefix ("/api/" and everything below), otherwise one exact path ("/health").
ROUTE_PATH = r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$"
# A duration for nginx and Caddy alike: a number and one unit.
DURATION = {"pattern": r"^[1-9][0-9]*[smhd]$", "expect": "a duration like '60s', '5m' or '24h'"}
SIZE = {"pattern": r"^\d+[kKmMgG]?$", "expect": "a size like '10m'", "error": "must be a size like '10m', got {value!r}"}
# An HTTP header name.
HEADER_NAME = r"^[A-Za-z0-9-]+$"


@dataclass(frozen=True)
class Cors:
    """Cross-origin requests one route allows: the preflight (`OPTIONS` with an allowed `Origin`) is answered by the
    proxy with 204, and responses to an allowed origin carry its `Access-Control-Allow-*` headers."""

    origins: tuple[str, ...] = setting(
        doc='Origins allowed, exactly as browsers send them (`"https://learnup.example.test"`), or `["*"]` for any.',
        pattern=r"^(\*|https?://[A-Za-z0-9.-]+(:\d{1,5})?)$",
        expect="an origin like 'https://app.example.com' (scheme, host, optional port) or '*'",
    )
    methods: tuple[str, ...] = setting(
        ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
        "`Access-Control-Allow-Methods`.",
        choices=("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
    )
    headers: tuple[str, ...] = setting(
        ("Authorization", "Content-Type"),
        "`Access-Control-Allow-Headers`: request headers the browser may send.",
        pattern=HEADER_NAME,
        expect="a header name",
    )
    credentials: bool = setting(False, '`Access-Control-Allow-Credentials: true` (cookies); not with `origins = ["*"]`.')
    max_age: int = setting(86400, "`Access-Control-Max-Age`: how long a browser keeps the preflight's answer.", minimum=0, unit="seconds")


@dataclass(frozen=True)
class Route:
    """One path of an app's site that goes somewhere of its own: another upstream (a compose service), a host
    directory, its own timeouts, limits and headers. The proxy picks the longest matching `path`; what no route
    matches goes to the app's `port`. The same config gives the same behaviour under nginx and Caddy (a setting one
    of them cannot honour is a config error). Examples: [docs/web.md](web.md#routes)."""

    path: str = setting(
        doc='URL path: ending in `/` a prefix (`"/api/"` and below), otherwise that exact path (`"/health"`).',
        pattern=ROUTE_PATH,
        expect="a URL path starting with '/'",
    )
    domains: tuple[str, ...] = setting((), "Which of the app's `domains` the route is on; empty: all of them.")
    upstream: str = setting(
        "",
        'Where requests go: a loopback port (`"5000"`), or for a compose app `"SERVICE:PORT"`, the port that service '
        "publishes on 127.0.0.1 (checked on the host before `up`). Empty: the app's `port` (or nothing, with `static`).",
        pattern=r"^(\d{1,5}|[a-z0-9][a-z0-9_.-]*:\d{1,5})$",
        expect="a loopback port like '5000' or a compose 'service:port'",
    )
    strip_prefix: bool = setting(False, "Pass `/api/x` on as `/x` (the route's prefix path removed).")
    websocket: bool = setting(False, "Pass WebSocket upgrades on (`Upgrade`/`Connection`); give `read_timeout` for long-lived ones.")
    read_timeout: str = setting(
        "",
        "How long the proxy waits for the upstream to send something (idle WebSockets included); empty: 3600s.",
        **DURATION,
    )
    rate_limit: str = setting("", "nginx only: a zone of `[web.rate_limits]`; requests beyond it are answered 429.")
    burst: int = setting(0, "Requests a client may send beyond the zone's rate before the 429s start.", minimum=0)
    max_body_size: str = setting("", 'Largest request body (`"50m"`); empty: the app\'s `max_body_size`.', **SIZE)
    headers: dict[str, str] = setting(
        {},
        'Response headers of this route, over the site\'s (`{ X-Frame-Options = "DENY" }`); `""` removes one.',
    )
    cors: Cors | None = setting(None, "Cross-origin requests allowed, a `[apps.routes.cors]` table.")
    static: str = setting(
        "",
        "A host directory served at `path` instead of an upstream (`/uploads/x.png` -> `<static>/x.png`); the front "
        "proxy's user must be able to read it.",
        pattern=r"^/(?!/*$)[A-Za-z0-9._/@+-]*$",
        expect="an absolute directory (letters, digits, ._-+@/)",
    )
    cache: str = setting(
        "",
        '`static` only: `Cache-Control` of its files: a duration (`"30d"`), `"immutable"` (one year, never revalidated) '
        'or both (`"30d immutable"`). Empty: none.',
        pattern=r"^([1-9][0-9]*[smhd]|immutable|[1-9][0-9]*[smhd] immutable)$",
        expect="a duration like '30d', 'immutable' or '30d immutable'",
    )
    basic_auth: BasicAuth | None = setting(None, 'Caddy only: `{ user = "NAME", hash = "BCRYPT" }` in front of this route.')


def _one_line(doc: str):
    return setting("", doc, pattern=ONE_LINE, expect="one command line", error="must be one command line")


@dataclass(frozen=True)
class App:
    """One web app: a git checkout in its own venv, a gunicorn unit on a loopback port, a site on the front proxy.

    With `kind = "compose"` the checkout is a Docker Compose project instead, run by the host's Docker Engine
    ([docs/containers.md](containers.md)). How apps are laid out, restarted, proxied and given certificates:
    [docs/web.md](web.md).
    """

    name: str = setting(
        doc="Names the unit `app-<name>.service`, the site, the certificate and `<web.apps_dir>/<name>`; unique.",
        pattern=APP_NAME,
        expect="lowercase letters, digits and hyphens",
        error="{value!r} must be lowercase letters, digits and hyphens",
    )
    port: int = setting(
        doc="Loopback port gunicorn binds (`127.0.0.1:<port>`) and the proxy forwards to; one per app, not the SSH port, 80 or 443.",
        **PORT,
    )
    domains: tuple[str, ...] = setting((), "Names the site serves and the certificate covers; the first is the main one. Empty: no site.")
    repo: str = setting(
        "",
        "Git URL the deploy user clones (`https://`, `ssh://`, `git@host:path`, `file://`). Empty: vpskit deploys no "
        "code, unit or site for the app (a database or jobs only).",
        pattern=r"^((https?|ssh|git|file)://\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$",
        expect="a git URL (https://, ssh://, file:// or user@host:path)",
    )
    branch: str = setting(
        "main",
        "Branch or tag deployed; each run deploys the commit it points at now.",
        pattern=r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]+$",
        expect="a git branch or tag name",
    )
    kind: str = setting(
        "flask",
        "`flask`, `fastapi` or `other`: a venv app (picks the default worker class); `compose`: a Docker Compose project.",
        choices=("flask", "fastapi", "other", "compose"),
    )
    state: str = setting(
        "present",
        "`absent` removes the app's unit, timers, site, logrotate config and certificate; code, data and logs stay.",
        choices=("present", "absent"),
    )
    python: str = setting(
        "",
        'Python version of this app\'s venv (`"3.12"`); empty: the `[python]` version.',
        **PYTHON_VERSION,
    )
    deploy_key: str = setting(
        "",
        "Private key file (on the controller) that may read the repo; uploaded as `<app dir>/.ssh/deploy_key` and used "
        "only for git. Empty: none needed.",
    )
    entry: str = setting(
        "app:app",
        "What gunicorn loads: `module:variable` or `module:factory()`.",
        pattern=r"^[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*(\(\))?)?$",
        expect="'module:variable' or 'module:factory()'",
        error="must be 'module:variable' (or 'module:factory()'), got {value!r}",
    )
    worker_class: str = setting(
        "",
        "gunicorn worker: `eventlet` for Flask-SocketIO, `uvicorn` for FastAPI/ASGI; vpskit installs its package. "
        "Empty: `uvicorn` for fastapi, `sync` otherwise.",
        choices=("sync", "gthread", "eventlet", "gevent", "uvicorn"),
    )
    workers: int = setting(
        0,
        "gunicorn workers. 0: (2 x CPU cores) + 1, capped so all apps together budget 256 MiB per worker; always 1 "
        "for `eventlet`/`gevent`.",
        minimum=0,
    )
    threads: int = setting(1, "gunicorn `--threads` (use with `gthread`).", minimum=1)
    timeout: int = setting(30, "gunicorn `--timeout`.", minimum=1, unit="seconds")
    env: dict[str, str] = setting(
        {},
        'Environment written to the app\'s `.env` (mode 600): `{ GREETING = "hi" }`; no single quotes or line breaks. '
        "`DATA_DIR` is set by vpskit, and so is `DATABASE_URL` for a PostgreSQL app. Values may use `${NAME}` for the "
        "app's `secrets` and `secrets_from` and its PostgreSQL database: `${DB_NAME}`, `${DB_USER}`, `${DB_PASSWORD}` "
        "(filled in on the host), `${DB_HOST}`, `${DB_PORT}`.",
    )
    secrets: tuple[str, ...] = setting(
        ("SECRET_KEY",),
        "Names of secrets generated once (64 URL-safe characters) and kept in `.env` across runs.",
        pattern=ENV_NAME,
        expect="an environment variable name",
    )
    app_dir: str = setting(
        ".",
        "The app's directory in the repo (`\"backend\"`): gunicorn's working directory, where `migrate`, `seed` and "
        "the jobs run and the install files are read. `build_dir` and `static_dir` stay relative to the repo.",
    )
    install: str = setting(
        "auto",
        "How the dependencies get into the venv: `requirements` (`pip install -r`), `uv` (`uv sync --frozen`, no dev "
        "group), `poetry` (`poetry install --only main --no-root`), `pyproject` (`pip install .`); `auto`: the first of "
        "`uv.lock`, `poetry.lock`, the requirements file, `pyproject.toml` in `app_dir`. Re-installed when those files "
        "(or the Python version) changed; uv and poetry are installed from PyPI at a version vpskit pins. uv, installed "
        "for every app, creates the venv and does the pip installs (`uv pip install`); without it, or when it fails, "
        "`python -m venv` and pip do.",
        choices=("auto", "requirements", "pyproject", "uv", "poetry"),
    )
    secrets_from: dict[str, str] = setting(
        {},
        'Secrets you bring, read on the machine running pyinfra at each run: `{ SMTP_PASSWORD = "env:SMTP_PASSWORD" }` '
        '(an environment variable) or `"file:secrets/api-key"` (a file, relative to this config; one trailing line '
        "break dropped). Written to the app's `.env` only, never printed; a changed value restarts the app.",
    )
    requirements: str = setting("requirements.txt", 'pip requirements file in `app_dir`, for `install = "requirements"` (or `auto`).')
    migrate: str = _one_line(
        "Command run in the checkout (venv on `PATH`, `.env` and `DATABASE_URL` loaded) whenever the deployed commit "
        "changed; re-run on the next deploy if it failed."
    )
    seed: str = _one_line("Command run once, after the first migration (same environment).")
    build: str = _one_line("Front-end build command run in `build_dir` whenever the commit changed; installs Node.js (see `[nodejs]`).")
    build_dir: str = setting(".", "Directory in the repo the build runs in.")
    static_dir: str = setting("", "Directory in the repo the proxy serves at `static_url` itself (30-day expiry); empty: none.")
    static_url: str = setting(
        "/static/",
        "URL prefix of the static files.",
        pattern=r"^/([^ ]*/)?$",
        expect="a URL path starting and ending with '/'",
        error="must start and end with '/', got {value!r}",
    )
    max_body_size: str = setting("10m", "Largest request body: nginx `client_max_body_size`; Caddy's too for a site with `routes`.", **SIZE)
    rate_limit: str = setting(
        "",
        "nginx request rate per client address; empty: no limit.",
        pattern=r"^\d+r/[sm]$",
        expect="a rate like '10r/s' or '300r/m'",
        error="must be a rate like '10r/s' or '300r/m', got {value!r}",
    )
    rate_burst: int = setting(20, "Requests allowed above the rate before nginx answers 503.", minimum=0)
    purge: bool = setting(False, 'With `state = "absent"`: also delete the app\'s code, venv, data and logs.')
    revision: str = setting(
        "",
        "A commit SHA (7 to 40 hex digits) or tag to deploy instead of `branch`'s newest commit: pin a release, or go "
        "back to one. Empty: `branch`.",
        pattern=r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]+$",
        expect="a commit SHA or tag name",
    )
    keep_releases: int = setting(
        5,
        "Venv apps: releases kept on the host (the live one always), each its own checkout under "
        "`<app dir>/releases/`; `vpskit-app rollback` switches between them.",
        minimum=1,
    )
    shared_paths: tuple[str, ...] = setting(
        ("instance",),
        "Venv apps: directories in `app_dir` kept across releases (`<app dir>/shared/<path>`, linked into each "
        "release): Flask's instance folder, uploads written beside the code.",
        pattern=r"^(?!/)(?!.*\.\.)[A-Za-z0-9._/-]+$",
        expect="a relative directory",
    )
    database: Database = setting(Database, "The app's database, an `[apps.database]` table.")
    backup: AppBackup = setting(AppBackup, "What is backed up, an `[apps.backup]` table.")
    jobs: tuple[Job, ...] = setting((), "Scheduled commands, one `[[apps.jobs]]` table each.")
    compose_file: str = setting(
        "",
        '`kind = "compose"` (required): the compose file in the repo, e.g. `"compose.yaml"`; `${VARS}` in it come from the app\'s `.env`.',
    )
    service: str = setting(
        "",
        '`kind = "compose"`: the service `migrate` and `seed` run in (`docker compose exec -T <service>`); required with either.',
        pattern=SERVICE,
        expect="a compose service name",
    )
    public_services: tuple[str, ...] = setting(
        (),
        '`kind = "compose"`: services whose published ports may be reachable from outside (UFW does not guard '
        "them); any other port published beyond loopback fails the run.",
        pattern=SERVICE,
        expect="a compose service name",
    )
    health_path: str = setting(
        "/",
        'Path the app answers on when healthy (`"/api/v1/utils/health-check/"`): after a deploy that restarts it, '
        "vpskit waits for a status below 400 there on its loopback port (or fails the run with the end of its error "
        "log), and `vpskit-health` checks it through the front proxy.",
        pattern=r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$",
        expect="a URL path starting with '/'",
    )
    health_timeout: int = setting(
        60,
        "How long a deploy waits for a new release to answer on `health_path` (a venv app) or, after `up`, for every "
        'service to run and be healthy where it has a healthcheck (`kind = "compose"`); past it the run fails and '
        "the live release keeps serving.",
        minimum=1,
        unit="seconds",
    )
    container_databases: tuple[ContainerDatabase, ...] = setting(
        (), '`kind = "compose"`: databases in its containers, one `[[apps.container_databases]]` table each.'
    )
    api_upstream: str = setting(
        "",
        'Caddy only: a second loopback upstream (`"127.0.0.1:5010"`) serving `/api/*` with the prefix stripped.',
        pattern=r"^(localhost|127\.0\.0\.1|\[::1\]):\d{1,5}$",
        expect="a loopback address like '127.0.0.1:5003'",
        error="must be a loopback address like '127.0.0.1:5003', got {value!r}",
    )
    basic_auth: BasicAuth | None = setting(
        None, 'Caddy only: `{ user = "NAME", hash = "BCRYPT" }` puts the whole site behind HTTP basic auth.'
    )
    headers: dict[str, str] = setting(
        {},
        "Response headers of the whole site over vpskit's security headers (`X-Frame-Options`, `Referrer-Policy`, "
        '`X-Content-Type-Options`, HSTS): `{ X-Frame-Options = "DENY", Content-Security-Policy = "default-src \'self\'" }`; '
        '`""` removes one.',
    )
    routes: tuple[Route, ...] = setting(
        (), "Paths of the site served by other upstreams or host directories, one `[[apps.routes]]` table each."
    )

    @property
    def is_compose(self) -> bool:
        return self.kind == "compose"

    @property
    def ref(self) -> str:
        """What is deployed: the pinned ``revision``, else ``branch``."""
        return self.revision or self.branch

    def references(self) -> set[str]:
        """The names ``${NAME}`` in this app's env values may refer to."""
        names = {*self.secrets, *self.secrets_from}
        if self.database.uses_postgres:
            names |= set(DB_REFERENCES)
        return names

    @property
    def db_name(self) -> str:
        """The PostgreSQL database of this app (explicit, or derived from the app name)."""
        return self.database.name or self.name.replace("-", "_")

    @property
    def db_role(self) -> str:
        """The PostgreSQL role of this app (explicit, or the database name)."""
        return self.database.role or self.db_name
