"""One venv app on the host: its venv, the stamped steps (requirements, build, migrations, seed), gunicorn unit, logrotate.

Everything is decided by facts read before the run and yields commands only
when something differs, so a second run changes nothing. The checkout and
``.env`` are ``checkout.app_code``'s; steps that depend on the checkout are
``stamped`` steps.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.operations import files, systemd

from .batched import unit_running
from .checkout import GIT, AppPaths, app_code, app_files_purged
from .config import App
from .facts import OutputLines
from .install import TOOLS, install_alternatives, install_command, install_key, missing_message, tool_installed, tool_trigger, tools_needed
from .postgres import database_driver_packages, secret_env_path
from .render import render
from .snapshot import planned, snapshot_fact
from .stamped import Stamps, as_user, short_hash, stamped_step, stamped_steps
from .validated import checked_file

# gunicorn --worker-class and the pip packages each needs besides gunicorn.
WORKER_CLASSES = {
    "sync": ("sync", ()),
    "gthread": ("gthread", ()),
    "eventlet": ("eventlet", ("eventlet",)),
    "gevent": ("gevent", ("gevent",)),
    "uvicorn": ("uvicorn_worker.UvicornWorker", ("uvicorn-worker",)),
}
DEFAULT_WORKER_CLASS = {"flask": "sync", "fastapi": "uvicorn", "other": "sync"}
# Memory one gunicorn worker of a small app is budgeted.
WORKER_MEMORY_MB = 128


# ------------------------------------------------------------------ pure logic


def worker_class(app: App) -> str:
    """The short worker class name in effect for ``app``."""
    return app.worker_class or DEFAULT_WORKER_CLASS[app.kind]


def pip_packages(app: App) -> list[str]:
    """What pip installs besides the requirements file: gunicorn, the worker's package, the database driver."""
    return ["gunicorn", *WORKER_CLASSES[worker_class(app)][1], *database_driver_packages(app)]


def default_workers(cpus: int, memory_mb: int, apps: int, kind: str = "sync") -> int:
    """(2 x CPU cores) + 1, capped so all apps' workers fit in memory; 1 for eventlet/gevent.

    Async workers serve many connections each, and Flask-SocketIO needs one.
    """
    if kind in ("eventlet", "gevent"):
        return 1
    by_cpu = 2 * max(cpus, 1) + 1
    by_memory = max(memory_mb // (max(apps, 1) * WORKER_MEMORY_MB * 2), 1)
    return max(min(by_cpu, by_memory), 1)


def unit_text(app: App, paths: AppPaths, user: str, workers: int) -> str:
    cls = WORKER_CLASSES[worker_class(app)][0]
    protect_home = not any(p.startswith(("/home", "/root")) for p in (paths.root, paths.logs))
    return render(
        "gunicorn.service.j2",
        app=app,
        paths=paths,
        user=user,
        workers=workers,
        worker_class=cls,
        protect_home=protect_home,
        secret_env=secret_env_path(app.name) if app.database.uses_postgres else "",
    )


def in_app_env(paths: AppPaths, command: str) -> str:
    """``command`` in the checkout with the venv on PATH and the app's .env loaded."""
    return f"set -a && . {paths.env} && set +a && PATH={paths.venv}/bin:$PATH && cd {paths.code} && {command}"


def stamp_keys(app: App, paths: AppPaths, python_version: str) -> dict[str, tuple[str, str]]:
    """Each checkout-dependent step: (stamp file, shell printing its key)."""
    head = f"{GIT} -C {shlex.quote(paths.src)} rev-parse HEAD"
    steps = {
        "requirements": (
            f"{paths.venv}/.vpskit-requirements",
            install_key(app.install, app.requirements, paths.src, app.app_dir, python_version, pip_packages(app)),
        )
    }
    if app.build:
        steps["build"] = (f"{paths.root}/.vpskit-built", f'echo "$({head}) {short_hash(app.build)}"')
    if app.migrate:
        steps["migrate"] = (f"{paths.root}/.vpskit-migrated", f'echo "$({head}) {short_hash(app.migrate)}"')
    if app.seed:
        steps["seed"] = (f"{paths.root}/.vpskit-seeded", "echo seeded")
    # The last answer on the health path: checked after every restart, and on every run until it answers.
    steps["answer"] = (f"{paths.root}/.vpskit-answered", f'echo "$({head}) {short_hash(app.health_path)}"')
    return steps


# Seconds a restarted app has to answer on its health path.
ANSWER_TIMEOUT = 60
# Polls a URL until it answers below 400; prints the last status or error when time runs out.
_PROBE = """
import sys, time, urllib.error, urllib.request
url, deadline, last = sys.argv[1], time.time() + float(sys.argv[2]), "no answer"
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except OSError as e:
        code, last = None, str(getattr(e, "reason", e))
    if code is not None and code < 400:
        sys.exit(0)
    last = f"HTTP {code}" if code is not None else last
    if time.time() > deadline:
        print(last)
        sys.exit(1)
    time.sleep(1)
"""


def answer_command(app_name: str, python: str, port: int, path: str, error_log: str, timeout: int = ANSWER_TIMEOUT, stamp: str = "") -> str:
    """Shell that waits for the app to answer ``path`` on its loopback port, or fails naming it with its error log's end.

    ``stamp``: the answer's stamp file, removed on failure so that the next run checks again.
    """
    url = f"http://127.0.0.1:{int(port)}{path}"
    say = shlex.quote(f"app {app_name} does not answer at {url} within {timeout}s")
    log = shlex.quote(error_log)
    forget = f"rm -f {shlex.quote(stamp)}; " if stamp else ""
    return (
        f"if ! out=$({shlex.quote(python)} -c {shlex.quote(_PROBE)} {shlex.quote(url)} {int(timeout)}); then "
        f'{forget}echo {say} "($out); last lines of" {log}: >&2; tail -n 20 {log} >&2; exit 1; fi'
    )


# ------------------------------------------------------------------------ facts


class VenvPython(FactBase):
    """
    Returns the Python version ("3.12") of the venv at ``path``, or None without one.
    """

    def command(self, path):
        py = shlex.quote(f"{path}/bin/python")
        return f"if [ -x {py} ]; then {py} -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'; fi"

    def process(self, output):
        return output[0].strip() if output else None


class HostSize(FactBase):
    """
    Returns the CPU count and memory (MiB) in one round trip: ``{"cpus": 2, "memory_mb": 1987}``.
    """

    def command(self):
        return "nproc; awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo"

    def process(self, output):
        return {"cpus": int(output[0]), "memory_mb": int(output[1])}


class UnitFiles(OutputLines):
    """
    Returns the systemd unit files in /etc/systemd/system whose names start with ``prefix``.
    """

    def command(self, prefix):
        return f"cd /etc/systemd/system && ls -1d {shlex.quote(prefix)}* 2>/dev/null || true"


# ------------------------------------------------------------------- operations


@planned(lambda path, **_: [(VenvPython, {"path": path})])
@operation()
def venv(path: str, python: str, version: str, user: str):
    """
    Ensure a virtualenv made with ``python`` (of ``version``) exists at ``path``, owned by ``user``.

    A venv of another Python version is replaced.

    + path: venv directory
    + python: interpreter that creates it
    + version: its "3.X" version
    + user: owner

    **Example:**

    .. code:: python

        venv(path="/srv/apps/shop/venv", python="/usr/bin/python3.12", version="3.12", user="appuser")
    """
    current = snapshot_fact(VenvPython, path=path)
    if current == version:
        host.noop(f"{path} runs Python {version}")
        return
    p = shlex.quote(path)
    yield StringCommand(f"rm -rf {p} && " + as_user(user, f"{shlex.quote(python)} -m venv {p}"))


# ----------------------------------------------------------------------- deploys


@deploy("App")
def app_present(
    app: App,
    paths: AppPaths,
    user: str,
    python: str,
    python_version: str,
    workers: int,
    deploy_key: str = "",
    brought: dict[str, str] | None = None,
    db_port: int = 5432,
):
    """
    Ensure ``app`` is deployed, configured and running; restart it only when its code, env or unit changed.

    + app: the app's config
    + paths: where the app lives on the host (``AppPaths(name, apps_dir, logs_dir)``)
    + user: the deploy user who owns the app
    + python: interpreter for the venv (``/usr/bin/python3.12``)
    + python_version: its "3.X" version
    + workers: gunicorn workers when the app does not set them
    + deploy_key: the deploy key's private key text ('' without one)
    + brought: the app's ``secrets_from`` values, read on the controller (never printed)
    + db_port: PostgreSQL's port, for ``${DB_PORT}`` in env values

    **Example:**

    .. code:: python

        app_present(app, AppPaths("shop", "/srv/apps", "/var/log/apps"), "appuser", "/usr/bin/python3.12", "3.12", workers=5)
    """
    n = app.name
    code, env_op = app_code(
        app,
        paths,
        user,
        deploy_key,
        needs=install_alternatives(app.install, app.requirements, app.app_dir),
        missing=missing_message(n, app.install, app.requirements, app.app_dir),
        brought=brought,
        db_port=db_port,
    )
    for tool in tools_needed(app.install):
        tool_installed(
            name=f"{n}: {tool} {TOOLS[tool]} for its locked dependencies",
            tool=tool,
            python=python,
            when_any=tuple(f"{paths.code}/{f}" for f in tool_trigger(app.install, tool)),
            checkout_moves=code.will_change,
        )
    venv_op = venv(name=f"{n}: venv (Python {python_version})", path=paths.venv, python=python, version=python_version, user=user)

    keys = stamp_keys(app, paths, python_version)
    code_moves = code.will_change
    # Migrations and seeds reach the app's PostgreSQL with the URL the gunicorn unit gets.
    db_env = secret_env_path(app.name) if app.database.uses_postgres else ""
    # (stamp, label, command, also run when, secret env) in the order they must run.
    plan = [
        (
            "requirements",
            "install dependencies if they changed",
            f"cd {shlex.quote(paths.code)} && "
            + install_command(n, app.install, app.requirements, app.app_dir, paths.venv, pip_packages(app)),
            code_moves or venv_op.will_change,
            "",
        ),
        ("build", "front-end build", f"cd {shlex.quote(app.build_dir)} && {app.build}", code_moves, ""),
        ("migrate", "migrations", in_app_env(paths, app.migrate), code_moves, db_env),
        ("seed", "seed data (once)", in_app_env(paths, app.seed), False, db_env),
    ]
    known = host.get_fact(Stamps, stamps=keys)
    steps = stamped_steps(n, plan, keys, cwd=paths.src, user=user, known=known)

    unit = checked_file(
        name=f"{n}: gunicorn unit",
        dest=paths.unit_file,
        content=unit_text(app, paths, user, app.workers or workers),
        mode="644",
    )
    checked_file(
        name=f"{n}: logrotate",
        dest=paths.logrotate,
        content=render("logrotate-app.j2", paths=paths, user=user),
        validate="logrotate -d {path}",
        mode="644",
    )
    changed = [code, env_op, venv_op, unit, *steps]
    restarted = any(op.will_change for op in changed)
    unit_running(name=f"{n}: gunicorn running", unit=paths.unit, daemon_reload=unit.will_change, restarted=restarted)
    # A run whose check failed left no stamp: the next one checks again instead of passing quietly.
    answered, answer_key = keys["answer"]
    stamped_step(
        name=f"{n}: answers on {app.health_path}",
        command=answer_command(n, f"{paths.venv}/bin/python", app.port, app.health_path, f"{paths.logs}/error.log", stamp=answered),
        key_cmd=answer_key,
        stamp=answered,
        cwd=paths.src,
        user=user,
        known=known["answer"],
        force=restarted,
        again=True,
    )


@deploy("Remove app")
def app_absent(paths: AppPaths, purge: bool = False):
    """
    Ensure an app marked absent is gone: unit and its timers, logrotate config (code and data kept unless ``purge``).

    The nginx site and certificate are removed with the web stack (``nginx``, ``certbot`` modules).

    + paths: where the app lives on the host
    + purge: also delete its code, data and logs

    **Example:**

    .. code:: python

        app_absent(AppPaths("oldapp", "/srv/apps", "/var/log/apps"), purge=True)
    """
    name = paths.name
    units = host.get_fact(UnitFiles, prefix=f"app-{name}")
    mine = [u for u in units if u == paths.unit or u.startswith(f"app-{name}-")]
    for unit in sorted(mine, key=lambda u: not u.endswith(".timer")):
        systemd.service(name=f"{name}: stop {unit}", service=unit, running=False, enabled=False)
    removed = [files.file(name=f"{name}: remove {u}", path=f"/etc/systemd/system/{u}", present=False) for u in mine]
    if removed:
        systemd.daemon_reload(name=f"{name}: reload systemd", _if=lambda: any(op.did_change() for op in removed))
    files.file(name=f"{name}: remove logrotate", path=paths.logrotate, present=False)
    if purge:
        app_files_purged(paths)
