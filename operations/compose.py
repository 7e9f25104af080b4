"""Compose apps: a git checkout holding a Docker Compose project, run by the host's Docker Engine.

    compose_app(app, paths, user, deploy_key)   # after docker_engine

The checkout, deploy key and ``.env`` (secrets generated once and kept) are the web
layer's (``app.app_code``). ``docker compose up -d --build`` runs only when the
checkout or ``.env`` changes in this run, or when the last ``up`` did not finish for
the current commit and ``.env`` (a stamp records the last good one). Before ``up`` the
host checks ``docker compose config``: a published port reachable from outside fails
the run (Docker's rules bypass UFW). After it, the run waits until every service runs
(and is healthy), then runs ``migrate`` (when the commit changed) and ``seed`` (once)
with ``docker compose exec -T SERVICE``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import StringCommand, deploy, operation

from .batched import directory_present
from .checkout import GIT, AppPaths, Code, app_code, app_files_purged
from .facts import OutputLines
from .releases import DEPLOYED, SETTINGS_DIR
from .render import FILES_DIR
from .stamped import short_hash, stamped_steps
from .validated import checked_file

CHECK_SCRIPT = "/usr/local/lib/vpskit/vpskit-compose-check"


@dataclass(frozen=True)
class ComposeSpec(Code):
    """One compose app as ``compose_app`` deploys it: its code and ``.env`` (``Code``), its project and checks."""

    compose_file: str = "compose.yaml"
    port: int = 0  # the loopback port it publishes for the proxy
    proxied: bool = False  # a site forwards to ``port``: it must be published on 127.0.0.1
    public_services: tuple[str, ...] = ()  # may publish beyond loopback
    health_timeout: int = 60
    service: str = ""  # where migrate and seed run
    migrate: str = ""
    seed: str = ""
    route_upstreams: tuple[str, ...] = ()  # its routes' upstreams; 'SERVICE:PORT' ones are checked before up


def compose_command(app: ComposeSpec, paths: AppPaths) -> str:
    """``docker compose`` for this app's project: its name, directory, file and .env (for ${VAR} in the file)."""
    return (
        f"docker compose --project-name {shlex.quote(app.name)} --project-directory {shlex.quote(paths.src)}"
        f" -f {shlex.quote(paths.src + '/' + app.compose_file)} --env-file {shlex.quote(paths.env)}"
    )


def route_services(app: ComposeSpec) -> list[str]:
    """The 'SERVICE:PORT' upstreams of the app's routes, each checked to be published on loopback by that service."""
    return list(dict.fromkeys(u for u in app.route_upstreams if ":" in u))


def up_command(app: ComposeSpec, paths: AppPaths) -> str:
    """Check the published ports, build and start the project, wait until it runs; fails naming what is wrong."""
    compose = compose_command(app, paths)
    port = app.port if app.proxied else 0
    public = " ".join(shlex.quote(s) for s in app.public_services)
    routes = " ".join(shlex.quote(u) for u in route_services(app))
    return (
        f"{compose} config --format json | {CHECK_SCRIPT} ports {shlex.quote(app.name)} {port} {public}".rstrip()
        + (f" --route {routes}" if routes else "")
        + f" && {compose} up --detach --build --remove-orphans --quiet-pull"
        + f" && {CHECK_SCRIPT} wait {shlex.quote(app.name)} {app.health_timeout}{' --answer ' + routes if routes else ''} -- {compose}"
    )


def exec_command(app: ComposeSpec, paths: AppPaths, command: str, service: str = "", user: str = "") -> str:
    """``command`` run by sh in ``service``'s container (the app's ``service`` by default; no TTY), as ``user`` if given."""
    as_user = f" --user {shlex.quote(user)}" if user else ""
    return f"{compose_command(app, paths)} exec -T{as_user} {shlex.quote(service or app.service)} sh -c {shlex.quote(command)}"


def compose_stamp_keys(app: ComposeSpec, paths: AppPaths) -> dict[str, tuple[str, str]]:
    """Each step keyed by what it depends on: (stamp file, shell printing the current key)."""
    head = f"{GIT} -C {shlex.quote(paths.src)} rev-parse HEAD"
    known = (app.compose_file, app.port, app.public_services, app.health_timeout)
    # Route upstreams are checked with the ports: a changed one runs that check (and `up`) again.
    routes = route_services(app)
    settings = short_hash(repr((*known, routes) if routes else known))
    steps = {"up": (f"{paths.root}/.vpskit-up", f'echo "$({head}) $(sha256sum < {shlex.quote(paths.env)} | cut -c1-16) {settings}"')}
    if app.migrate:
        steps["migrate"] = (f"{paths.root}/.vpskit-migrated", f'echo "$({head}) {short_hash(app.migrate)}"')
    if app.seed:
        steps["seed"] = (f"{paths.root}/.vpskit-seeded", "echo seeded")
    return steps


def recorded(paths: AppPaths) -> str:
    """Shell noting the checkout's commit as deployed, in the app's switch log (``vpskit-app releases`` lists it)."""
    head = f"$({GIT} -C {shlex.quote(paths.src)} rev-parse HEAD)"
    r = shlex.quote(paths.root)
    return f'echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) {head} deploy" >> {r}/releases.log && echo {head} > {r}/{DEPLOYED}'


def compose_settings(app: ComposeSpec, paths: AppPaths, user: str) -> str:
    """The JSON ``vpskit-app`` reads for a compose app: its checkout, how to bring it up, the stamps an ``up`` satisfies."""
    keys = compose_stamp_keys(app, paths)
    stamps = {stamp: key for name, (stamp, key) in keys.items() if name in ("up", "migrate")}
    settings = {"name": app.name, "kind": "compose", "root": paths.root, "src": paths.src, "git_dir": f"{paths.src}/.git"}
    return json.dumps({**settings, "user": user, "up": up_command(app, paths), "stamps": stamps}, indent=2) + "\n"


class ComposeProject(OutputLines):
    """
    Returns the IDs of the containers of compose project ``project`` (empty without any).
    """

    def requires_command(self, project):
        return "docker"

    def command(self, project):
        return f"docker ps -aq --filter label=com.docker.compose.project={shlex.quote(project)}"


@deploy("Compose app")
def compose_app(
    app: ComposeSpec, paths: AppPaths, user: str, deploy_key: str = "", brought: dict[str, str] | None = None, db_port: int = 5432
):
    """
    Ensure a compose app is checked out, configured and up; rebuild it only when its code or env changed.

    + app: the app (``ComposeSpec``)
    + paths: where the app lives on the host (``AppPaths(name, apps_dir, logs_dir)``)
    + user: the deploy user who owns the checkout
    + deploy_key: the deploy key's private key text ('' without one)
    + brought: the app's ``secrets_from`` values, read on the controller (never printed)
    + db_port: PostgreSQL's port, for ``${DB_PORT}`` in env values

    **Example:**

    .. code:: python

        memo = ComposeSpec("memo", "https://git.example.com/memo.git", compose_file="compose.yaml", port=5003, proxied=True)
        compose_app(memo, AppPaths("memo", "/srv/apps", "/var/log/apps"), "appuser")
    """
    n = app.name
    directory_present(name="vpskit helper directory", path=CHECK_SCRIPT.rsplit("/", 1)[0], mode="755", user="root", group="root")
    check = checked_file(
        name="Compose checks (ports, readiness)", content=(FILES_DIR / "vpskit-compose-check").read_bytes(), dest=CHECK_SCRIPT, mode="755"
    )
    deployed = f"{paths.root}/{DEPLOYED}"
    code, env_op = app_code(app, paths, user, deploy_key, brought=brought, db_port=db_port, deployed_file=deployed)
    keys = compose_stamp_keys(app, paths)
    checked_file(name=f"{n}: vpskit-app settings", dest=f"{SETTINGS_DIR}/{n}.json", content=compose_settings(app, paths, user), mode="644")
    changed = code.will_change or env_op.will_change
    up = f"{up_command(app, paths)} && {recorded(paths)}"
    plan = [
        ("up", "docker compose up --build (ports checked first, then waits until running)", up, changed, ""),
        ("migrate", "migrations in the container", exec_command(app, paths, app.migrate), code.will_change, ""),
        ("seed", "seed data in the container (once)", exec_command(app, paths, app.seed), False, ""),
    ]
    stamped_steps(n, plan, keys, cwd=paths.src, user="root")
    return check


@deploy("Remove compose app")
def compose_app_absent(paths: AppPaths, purge: bool = False):
    """
    Ensure a compose app marked absent is down; with ``purge`` its volumes, code, data and logs go too.

    + paths: where the app lives on the host (its name is the compose project's)
    + purge: also delete its volumes, code, data and logs

    **Example:**

    .. code:: python

        compose_app_absent(AppPaths("oldapp", "/srv/apps", "/var/log/apps"), purge=True)
    """
    compose_down(name=f"{paths.name}: compose project down", project=paths.name, volumes=purge)
    if purge:
        app_files_purged(paths)


@operation()
def compose_down(project: str, volumes: bool = False):
    """
    Ensure an absent compose project's containers and networks are gone (its volumes too with ``volumes``).

    + project: the compose project (the app's name)
    + volumes: also remove its volumes

    **Example:**

    .. code:: python

        compose_down(name="Stop oldapp", project="oldapp")
    """
    if not host.get_fact(ComposeProject, project=project):
        host.noop(f"no containers of project {project}")
        return
    flag = " --volumes" if volumes else ""
    yield StringCommand(f"docker compose --project-name {shlex.quote(project)} down --remove-orphans{flag}")
