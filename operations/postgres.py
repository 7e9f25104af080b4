"""PostgreSQL: the distro's server on loopback, and one database + least-privilege role per app.

Each app's password is generated on the host, once, into a root-only env file
(``secret_env_path``) holding ``DATABASE_URL``; it never passes through the
controller's command lines or pyinfra's output, and later runs keep it. The app
layer lists that file as an extra systemd ``EnvironmentFile=``.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.operations import server, systemd

from .batched import packages_installed, unit_running
from .config import App
from .contribution import Contribution
from .distro import Distro
from .render import render
from .snapshot import planned, snapshot_fact
from .validated import checked_file

SECRETS_DIR = "/etc/vpskit/secrets"
PACKAGES = ["postgresql"]
# Role attributes that make a role more than a plain owner of its database.
ROLE_ATTRIBUTES = ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS")


def pg_version(distro: Distro) -> str:
    """The PostgreSQL major version of the distro's archive."""
    return distro.postgres


def config_value_command(version: str, name: str) -> str:
    """Shell printing the value of setting ``name`` that the cluster's config files now give (``postgres -C``)."""
    return (
        f"cd / && runuser -u postgres -- /usr/lib/postgresql/{version}/bin/postgres -D /var/lib/postgresql/{version}/main"
        f" -c config_file=/etc/postgresql/{version}/main/postgresql.conf -C {shlex.quote(name)}"
    )


def setting_names(content: str) -> list[str]:
    """The settings a postgresql.conf fragment sets, sorted."""
    return sorted({line.split("=", 1)[0].strip() for line in content.splitlines() if "=" in line and not line.lstrip().startswith("#")})


def settings_live_command(version: str, names: list[str]) -> str:
    """
    Shell that makes the running server use the config files' settings: a reload when the
    running server already has each of ``names`` at the files' value (a fresh cluster
    with the defaults vpskit writes: 2.5 s less than a restart), else a restart.

    The running server is asked on the port its ``postmaster.pid`` names; a server not
    running, or not answering, is restarted.
    """
    want = "; ".join(f'printf "%s=%s\\n" {shlex.quote(n)} "$({config_value_command(version, n)})"' for n in names)
    listed = ", ".join(f"'{n}'" for n in names)
    query = f"SELECT name || '=' || setting FROM pg_settings WHERE name IN ({listed}) ORDER BY name"
    return (
        f"p=$(sed -n 4p /var/lib/postgresql/{version}/main/postmaster.pid 2>/dev/null); "
        f'want=$({want}); have=$([ -n "$p" ] && {psql_command_on("$p")} -c {shlex.quote(query)} 2>/dev/null); '
        'if [ -n "$have" ] && [ "$have" = "$want" ]; then systemctl reload postgresql; else systemctl restart postgresql; fi'
    )


def secret_env_path(app_name: str) -> str:
    """The root-only env file with the app's ``DATABASE_URL`` (and its password)."""
    return f"{SECRETS_DIR}/{app_name}.env"


def psql_command(port: int, database: str = "postgres") -> str:
    """psql as the postgres superuser over the Unix socket, stopping at the first error."""
    return psql_command_on(str(int(port)), database)


def psql_command_on(port: str, database: str = "postgres") -> str:
    """``psql_command`` with the port as shell text (``"$p"``: a port read on the host)."""
    return f"runuser -u postgres -- psql -X -q -t -A -v ON_ERROR_STOP=1 -v VERBOSITY=terse -p {port} -d {shlex.quote(database)}"


def psql(port: int, sql: str, database: str = "postgres") -> StringCommand:
    """A command running ``sql`` (no secrets in it) as the postgres superuser."""
    return StringCommand(f"{psql_command(port, database)} -c {shlex.quote(sql)}")


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def database_driver_packages(app: App) -> list[str]:
    """The pip requirements the app's venv needs for its database engine."""
    if app.database.engine == "none" or not app.database.driver:
        return []
    if app.database.engine == "sqlite":
        return []
    return [app.database.driver]


# ------------------------------------------------------------------ facts


class AppDatabaseState(FactBase):
    """
    Returns what PostgreSQL holds for one app's database and role, in one round trip.

    .. code:: python

        {"secret": True, "role": {"SUPERUSER": False, ...}, "db_owner": "dibby",
         "public_connect": False, "schema_owner": "dibby", "login": True}

    Empty when PostgreSQL is not installed yet.
    """

    default = dict

    def command(self, db, role, secret_path, port):
        attrs = " || ".join(f"'{a}=' || {col}::int || ' '" for a, col in _ROLE_COLUMNS)
        secret = shlex.quote(secret_path)
        lit_role, lit_db = _literal(role), _literal(db)
        # One psql session as the superuser for everything but the app's own login.
        sql = "\n".join(
            [
                f"SELECT 'role ' || {attrs} FROM pg_roles WHERE rolname = {lit_role};",
                f"SELECT 'db_owner=' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = {lit_db};",
                "SELECT 'public_connect=' || (has_database_privilege('public', datname, 'CONNECT')"
                f" OR has_database_privilege('public', datname, 'TEMP'))::int FROM pg_database WHERE datname = {lit_db};",
                f"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = {lit_db}) AS vpskit_have_db \\gset",
                "\\if :vpskit_have_db",
                f"\\connect {lit_db}",
                "SELECT 'schema_owner=' || nspowner::regrole FROM pg_namespace WHERE nspname = 'public';",
                "SELECT 'public_create=' || has_schema_privilege('public', oid, 'CREATE')::int FROM pg_namespace WHERE nspname = 'public';",
                "\\endif",
            ]
        )
        return "\n".join(
            [
                "command -v psql >/dev/null && [ -d /run/postgresql ] || exit 0",
                f"[ -s {secret} ] && echo secret=1",
                f"{psql_command(port)} <<'VPSKIT_SQL'",
                sql,
                "VPSKIT_SQL",
                f"if [ -s {secret} ]; then",
                f"  {read_password(secret_path)}",
                f'  if PGPASSWORD="$pw" PGCONNECT_TIMEOUT=5 psql -X -q -t -A -h 127.0.0.1 -p {int(port)}'
                f" -U {shlex.quote(role)} -d {shlex.quote(db)} -c 'SELECT 1' 2>/dev/null | grep -qx 1; then echo login=1; fi",
                "fi",
                "true",
            ]
        )

    def process(self, output):
        state: dict = {}
        for line in output:
            if line.startswith("role "):
                state["role"] = {k: v == "1" for k, v in (p.split("=") for p in line[5:].split())}
            elif "=" in line:
                key, value = line.split("=", 1)
                state[key] = value if key.endswith("_owner") else value == "1"
        return state


_ROLE_COLUMNS = (
    ("LOGIN", "rolcanlogin"),
    ("SUPERUSER", "rolsuper"),
    ("CREATEDB", "rolcreatedb"),
    ("CREATEROLE", "rolcreaterole"),
    ("REPLICATION", "rolreplication"),
    ("BYPASSRLS", "rolbypassrls"),
)


def contribution(databases: int) -> Contribution:
    """PostgreSQL's package and unit when any app has a database on the host."""
    if not databases:
        return Contribution()
    return Contribution(packages=tuple(PACKAGES), units=("postgresql.service",))


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read_password(secret_path: str) -> str:
    """Shell that sets $pw from the secret file's DATABASE_URL, without a command line holding it."""
    return f"pw=$(sed -n 's|^DATABASE_URL=postgresql://[^:]*:\\([^@]*\\)@.*|\\1|p' {shlex.quote(secret_path)})"


# ------------------------------------------------------------- operations


@deploy("PostgreSQL server")
def postgres_server(version: str, clients: list[tuple[str, str]], port: int = 5432, monitor_role: str = ""):
    """
    Ensure the distro's PostgreSQL runs on loopback only, with SCRAM and only the apps' own logins.

    + version: the PostgreSQL major version (``pg_version(distro)``)
    + clients: ``(database, role)`` pairs allowed in over loopback TCP, each only to its own database
    + port: the port it listens on (loopback only)
    + monitor_role: also let this OS user in, over the Unix socket to database postgres as the role of its
      name, a member of pg_monitor (``monitoring_role``): a metrics exporter; empty: nobody

    **Example:**

    .. code:: python

        postgres_server("16", [("dibby", "dibby")], port=5432)
    """
    etc = f"/etc/postgresql/{version}/main"
    content = render("postgresql.conf.j2", port=port)
    packages_installed(name="Install PostgreSQL", packages=PACKAGES)
    settings = checked_file(
        name="PostgreSQL settings: loopback only, SCRAM passwords",
        dest=f"{etc}/conf.d/vpskit.conf",
        content=content,
        validate=f"{config_value_command(version, 'listen_addresses')} >/dev/null",
        mode="644",
        user="postgres",
        group="postgres",
    )
    server.shell(
        name="PostgreSQL runs the new settings (restarted only where the running server's differ)",
        commands=[settings_live_command(version, setting_names(content))],
        _if=settings.did_change,
    )
    hba = checked_file(
        name="PostgreSQL client authentication (pg_hba.conf)",
        dest=f"{etc}/pg_hba.conf",
        content=render("pg_hba.conf.j2", clients=clients, monitor_role=monitor_role),
        validate=(f"test \"$({psql_command(port)} -c 'SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL')\" = 0"),
        mode="640",
        user="postgres",
        group="postgres",
    )
    systemd.service(name="Reload PostgreSQL for new client rules", service="postgresql", reloaded=True, _if=hba.did_change)
    unit_running(name="PostgreSQL runs at boot", unit="postgresql.service")
    if monitor_role:
        monitoring_role(name="PostgreSQL role of the metrics exporter", role=monitor_role, port=port)


class RoleMemberships(FactBase):
    """
    Returns whether a role may log in and the roles it is a member of; None without PostgreSQL or without the role.

    .. code:: python

        {"login": True, "member_of": ["pg_monitor"]}
    """

    def command(self, role, port):
        sql = (
            "SELECT bool_or(r.rolcanlogin)::int || ' ' || coalesce(string_agg(m.rolname, ' '), '') FROM pg_roles r"
            " LEFT JOIN pg_auth_members a ON a.member = r.oid LEFT JOIN pg_roles m ON m.oid = a.roleid"
            f" WHERE r.rolname = {_literal(role)} HAVING count(r.oid) > 0"
        )
        return (
            "command -v psql >/dev/null && [ -d /run/postgresql ] || exit 0\n"
            f"{psql_command(port)} -c {shlex.quote(sql)} | sed 's/^/role: /'"
        )

    def process(self, output):
        for line in output:
            if line.startswith("role: "):
                login, *member_of = line[6:].split()
                return {"login": login == "1", "member_of": member_of}
        return None


@planned(lambda role, port=5432, **_: [(RoleMemberships, {"role": role, "port": port})])
@operation()
def monitoring_role(role: str, port: int = 5432):
    """
    Ensure a login role that may read PostgreSQL's statistics (member of pg_monitor) and nothing more.

    + role: its name, the OS user that logs in by peer authentication (``postgres_server(monitor_role=...)``)
    + port: the server's port

    **Example:**

    .. code:: python

        monitoring_role("prometheus")
    """
    state = snapshot_fact(RoleMemberships, role=role, port=port)
    if state is None:
        yield psql(port, f"CREATE ROLE {ident(role)} LOGIN IN ROLE pg_monitor")
        return
    if not state["login"]:
        yield psql(port, f"ALTER ROLE {ident(role)} LOGIN")
    if "pg_monitor" not in state["member_of"]:
        yield psql(port, f"GRANT pg_monitor TO {ident(role)}")
    if state["login"] and "pg_monitor" in state["member_of"]:
        host.noop(f"role {role} reads the statistics")


@planned(
    lambda db, role, secret_path, port=5432, **_: [(AppDatabaseState, {"db": db, "role": role, "secret_path": secret_path, "port": port})]
)
@operation()
def app_database(db: str, role: str, secret_path: str, port: int = 5432):
    """
    Ensure an app's database and its least-privilege role exist, with a password kept on the host.

    The role can log in and owns its database and its schema ``public``; it is no
    superuser and cannot create databases or roles. Nobody else (PUBLIC) may connect.
    The password is generated on the host, once, into ``secret_path`` (root, 600) as
    ``DATABASE_URL=postgresql://ROLE:PASSWORD@127.0.0.1:PORT/DB``; when the role cannot
    log in with it (new role, or changed by hand) the role's password is set from it.

    + db: database name
    + role: role (login user) name
    + secret_path: root-only env file holding DATABASE_URL
    + port: PostgreSQL's port

    **Example:**

    .. code:: python

        app_database(name="Database dibby", db="dibby", role="dibby",
                     secret_path="/etc/vpskit/secrets/dibby.env", port=5432)
    """
    state = snapshot_fact(AppDatabaseState, db=db, role=role, secret_path=secret_path, port=port)
    secret = shlex.quote(secret_path)
    changed = False

    if not state.get("secret"):
        changed = True
        url = f"postgresql://{role}:%s@127.0.0.1:{int(port)}/{db}"
        yield StringCommand(
            f"install -d -m 700 -o root -g root {shlex.quote(secret_path.rsplit('/', 1)[0])} && "
            f"( umask 077 && pw=$(tr -dc A-Za-z0-9 </dev/urandom | head -c 40) && "
            f"printf 'DATABASE_URL={url}\\n' \"$pw\" > {secret}.tmp && mv -f {secret}.tmp {secret} )"
        )

    wanted = "LOGIN " + " ".join(f"NO{a}" for a in ROLE_ATTRIBUTES)
    current = state.get("role")
    if current is None:
        changed = True
        yield psql(port, f"CREATE ROLE {ident(role)} {wanted}")
    elif not current.get("LOGIN") or any(current.get(a) for a in ROLE_ATTRIBUTES):
        changed = True
        yield psql(port, f"ALTER ROLE {ident(role)} {wanted}")

    if current is None or not state.get("login"):
        changed = True
        # The password travels in psql's standard input, built by the shell's printf builtin.
        sql = f"ALTER ROLE {ident(role)} PASSWORD '%s';\\n"
        yield StringCommand(f'{read_password(secret_path)} && [ -n "$pw" ] && printf {shlex.quote(sql)} "$pw" | {psql_command(port)}')

    if "db_owner" not in state:
        changed = True
        yield psql(port, f"CREATE DATABASE {ident(db)} OWNER {ident(role)}")
    elif state["db_owner"] != role:
        changed = True
        yield psql(port, f"ALTER DATABASE {ident(db)} OWNER TO {ident(role)}")

    if "db_owner" not in state or state.get("public_connect"):
        changed = True
        yield psql(port, f"REVOKE ALL ON DATABASE {ident(db)} FROM PUBLIC")

    # PostgreSQL 15+ gives schema public to pg_database_owner and no CREATE to PUBLIC;
    # vpskit makes the app's role its owner, so migrations can create tables there.
    if state.get("schema_owner") != role or state.get("public_create"):
        changed = True
        yield psql(port, f"ALTER SCHEMA public OWNER TO {ident(role)}; REVOKE CREATE ON SCHEMA public FROM PUBLIC", db)

    if not changed:
        host.noop(f"database {db} and role {role} are as configured")
